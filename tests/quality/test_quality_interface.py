"""The interface the API builds on: the SQL runs unchanged on sync and async connections and under the API's
roles, where row-level security decides which rows count; the recorded results are readable by the API roles
but their examples only by admins."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from conftest import Twin

from twin import database, quality

RULE = "inspections.org_code-filled"


def _as(conn: psycopg.Connection, role: str, org: str = "") -> None:
    conn.execute(f"SET LOCAL ROLE {role}")
    conn.execute("SELECT set_config('twin.org_code', %s, true)", (org,))


@pytest.mark.parametrize(("role", "org", "checked", "failed"), [
    ("twin_api_public", "", 0, 0),  # inspections are restricted: none visible
    ("twin_api_admin", "", 15, 1),  # the 14 ingested and I-SQL; I-NO-ORG has no organisation
    ("twin_api_inspector", "ODU", 14, 0),  # the organisation's own: all but I-NO-ORG
])
def test_counts_follow_row_level_security(quality_twin: Twin, role: str, org: str, checked: int,
                                          failed: int) -> None:
    rule = quality.get_rule(RULE)
    with psycopg.connect(database.url_for(quality_twin.settings, "reader")) as conn:
        _as(conn, role, org)
        assert conn.execute(quality.count_sql(rule), {}).fetchone() == (checked, failed)
        assert len(conn.execute(quality.failing_sql(rule)).fetchall()) == failed


def test_async_connection(quality_twin: Twin) -> None:
    async def run() -> list[tuple[int, str]]:
        async with await psycopg.AsyncConnection.connect(database.url_for(quality_twin.settings, "reader")) as conn:
            await conn.execute("SET LOCAL ROLE twin_api_admin")
            cur = await conn.execute(quality.failing_sql(quality.get_rule("signal.violation-without-follow-up"),
                                                         quality_twin.settings))
            return await cur.fetchall()

    # In a thread of its own: Playwright's sync API (the browser tests, same session) keeps an event loop
    # running in the main thread, and asyncio.run refuses to start inside it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        rows = pool.submit(asyncio.run, run()).result()
    assert len(rows) == 1 and "the measure 'last onder dwangsom' was withdrawn" in rows[0][1]


def test_recorded_results_are_readable_but_examples_only_by_admins(quality_twin: Twin) -> None:
    with psycopg.connect(database.url_for(quality_twin.settings, "reader")) as conn:
        _as(conn, "twin_api_public")
        latest = conn.execute(quality.latest_results_sql()).fetchall()
        assert {r[0] for r in latest} >= {"establishments.kvk_number-filled", "signal.kvk-far-apart"}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT examples FROM twin.quality_results LIMIT 1")
    with psycopg.connect(database.url_for(quality_twin.settings, "reader")) as conn:
        _as(conn, "twin_api_admin")
        assert conn.execute("SELECT count(examples) FROM twin.quality_results").fetchone() is not None


def test_get_rule_and_kinds() -> None:
    with pytest.raises(KeyError):
        quality.get_rule("no.such-rule")
    assert {r.kind for r in quality.all_rules()} == set(quality.KINDS)
    assert all(r.layer == "establishments" for r in quality.all_rules(layer="establishments"))
    assert len(quality.all_rules(kind="signal")) == 6
