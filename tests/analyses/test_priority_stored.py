"""The inspection-priority ranking kept per data version (migration 0019, issue 24): the stored ranking gives
exactly the live ranking for every role, is computed again when a table it reads changes, and is bypassed as
of a past state. The world and its expected scores are those of test_priority."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from analyses_support import api_key, as_role, execute, inspection
from fastapi.testclient import TestClient
from test_priority import AS_OF, expected, world  # noqa: F401 - the module's world fixture

from twin.analyses.common import Disclosure, act_as
from twin.analyses.priority import inspection_priority
from twin.settings import Settings

# AN-P1 (ODAN) was also inspected by another organisation: its admins' score counts that violation, the ODAN
# inspectors' score does not (they do not see it).
FOREIGN = inspection("AN-PI9", "AN-P1", "2024-03-01", "voorschriften overtreden", lhs="D4", org="ODXX")


def _rank(reader_url: str, settings: Settings, role: str = "admin", org: str | None = None,
          **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("year", 2023)
    kwargs.setdefault("limit", None)
    return as_role(reader_url, inspection_priority, settings, role=role, org_code=org, as_of=AS_OF,
                   disclosure=Disclosure(role, org), **kwargs)


def _ours(result: dict[str, Any]) -> list[tuple[str, float, list[Any]]]:
    return [(i["establishment_id"], i["score"], i["factors"]) for i in result["ranking"]
            if i["establishment_id"].startswith("AN-")]


@pytest.fixture(scope="module")
def foreign(world: None, owner_url: str) -> None:  # noqa: F811
    execute(owner_url, [FOREIGN])


@pytest.mark.parametrize(("role", "org"), [("admin", None), ("inspector", "ODAN"), ("inspector", "ODXX"),
                                           ("inspector", None), ("advisor", None)])
def test_stored_ranking_is_the_live_ranking(foreign: None, reader_url: str, settings: Settings, role: str,
                                            org: str | None) -> None:
    stored = _rank(reader_url, settings, role, org)
    live = _rank(reader_url, settings, role, org, stored=False)
    assert stored["ranking_source"]["stored"] is True and live["ranking_source"]["stored"] is False
    assert stored["ranking_as_of"] == stored["ranking_source"]["computed_at"]
    assert stored["ranking_source"]["data_versions"]["inspections"] >= 1
    assert stored["ranking"] == live["ranking"]
    assert stored["numberMatched"] == live["numberMatched"]
    # and the same as computed by hand for the world's establishments (admins: the foreign violation counts)
    ours = {eid: score for eid, score, _ in _ours(stored)}
    if role == "inspector" and org == "ODAN":
        assert sorted(ours) == ["AN-P1", "AN-P2", "AN-P3", "AN-P4", "AN-P5"]
        assert ours["AN-P1"] == pytest.approx(expected("AN-P1")["score"], abs=0.002)
    elif role == "advisor":
        assert "AN-P3" not in ours and "AN-P6" in ours
    elif role == "admin":
        assert ours["AN-P1"] > expected("AN-P1")["score"] + 0.5
        assert ours["AN-P2"] == pytest.approx(expected("AN-P2")["score"], abs=0.002)
    elif org is None:
        assert stored["numberMatched"] == 0


def test_a_municipality_reads_the_stored_ranking(foreign: None, reader_url: str, settings: Settings) -> None:
    _rank(reader_url, settings)  # stores the whole ranking
    muni = _rank(reader_url, settings, municipality_code="GM9931")
    live = _rank(reader_url, settings, municipality_code="GM9931", stored=False)
    assert muni["ranking_source"]["stored"] is True and muni["ranking"] == live["ranking"]
    assert [i["establishment_id"] for i in muni["ranking"]] == [i["establishment_id"] for i in live["ranking"]]
    assert muni["numberMatched"] == 5


def test_a_change_makes_a_new_ranking(foreign: None, reader_url: str, settings: Settings, owner_url: str) -> None:
    before = _rank(reader_url, settings)
    assert _rank(reader_url, settings)["ranking_as_of"] == before["ranking_as_of"]  # read, not computed again
    execute(owner_url, [inspection("AN-PI10", "AN-P2", "2024-06-01", "voorschriften overtreden", lhs="D4")])
    try:
        after = _rank(reader_url, settings)
        assert after["ranking_source"]["data_versions"] != before["ranking_source"]["data_versions"]
        assert after["ranking"] == _rank(reader_url, settings, stored=False)["ranking"]
        p2 = {eid: score for eid, score, _ in _ours(after)}["AN-P2"]
        assert p2 > {eid: score for eid, score, _ in _ours(before)}["AN-P2"]
    finally:
        execute(owner_url, [("DELETE FROM twin.inspections WHERE inspection_id = 'AN-PI10'", None)])


def test_the_stored_items_keep_the_inspections_audiences(foreign: None, reader_url: str,
                                                         settings: Settings) -> None:
    _rank(reader_url, settings)

    async def select(c: psycopg.AsyncConnection, role: str, org: str | None) -> list[tuple[Any, ...]]:
        await act_as(c, Disclosure(role, org))
        cur = await c.execute("SELECT DISTINCT org_code, natural_person FROM twin.priority_ranking_items")
        return await cur.fetchall()

    def seen(role: str, org: str | None) -> list[tuple[Any, ...]]:
        return as_role(reader_url, select, role, org, role=role, org_code=org)

    assert {org for org, _ in seen("inspector", "ODAN")} == {"ODAN"}
    assert not any(natural for _, natural in seen("advisor", None))
    assert seen("public", None) == [] and seen("anonymous", None) == []
    assert {org for org, _ in seen("admin", None)} >= {"ODAN", "ODXX"}
    with psycopg.connect(reader_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("BEGIN READ WRITE")  # the reader may write the tables only through the store function
        conn.execute("INSERT INTO twin.priority_rankings (key, as_of, weights_hash, versions, establishments) "
                     "VALUES ('x', now(), 'x', '{}', 0)")


def test_api_shows_the_rankings_time_and_as_of_is_live(foreign: None, client: TestClient, owner_url: str) -> None:
    params = {"as_of": "2024-06-30", "year": 2023, "limit": 100000}
    admin = api_key(owner_url, "admin")
    r = client.get("/analysis/inspection-priority", params=params, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ranking_source"]["stored"] is True and body["ranking_as_of"]
    past = client.get("/analysis/inspection-priority", params=params | {"geldigOp": "2024-06-30"}, headers=admin)
    assert past.status_code == 200, past.text
    assert past.json()["ranking_source"]["stored"] is False


def test_overrides_over_the_stored_ranking(foreign: None, reader_url: str, settings: Settings) -> None:
    from test_priority import _cli

    computed = [i["establishment_id"] for i in _rank(reader_url, settings)["ranking"]]
    assert _cli(settings, "override", "AN-P4", "--rank", "1", "--reason", "Klachten", "--author", "c").exit_code == 0
    assert _cli(settings, "override", computed[0], "--rank", "3", "--reason", "Net bezocht").exit_code == 0
    assert _cli(settings, "override", "AN-P3", "--rank", "999999", "--reason", "Laatst").exit_code == 0
    try:
        for role, org in (("admin", None), ("inspector", "ODAN"), ("advisor", None)):
            for limit in (None, 1, 2, 3, 5):
                for muni in (None, "GM9931"):
                    stored = _rank(reader_url, settings, role, org, limit=limit, municipality_code=muni)
                    live = _rank(reader_url, settings, role, org, limit=limit, municipality_code=muni, stored=False)
                    assert stored["ranking_source"]["stored"] is True
                    assert stored["ranking"] == live["ranking"], (role, limit, muni)
                    assert stored["numberMatched"] == live["numberMatched"]
        ranking = _rank(reader_url, settings)["ranking"]
        assert ranking[0]["establishment_id"] == "AN-P4" and ranking[2]["establishment_id"] == computed[0]
        assert ranking[-1]["establishment_id"] == "AN-P3" and ranking[-1]["override"]["rank"] == 999999
    finally:
        for eid in ("AN-P4", computed[0], "AN-P3"):
            _cli(settings, "clear", eid)


def test_todays_ranking_is_served_as_of_the_day_before_while_it_is_computed(
        foreign: None, reader_url: str, owner_url: str, settings: Settings) -> None:
    """A score counts the days since the last inspection, so each day has a ranking of its own. The first request
    of a day (no as_of asked for) gets the ranking kept for the same data the day before, stated as of that day,
    while today's is computed in the background; the next request gets today's. An as_of asked for is never
    served from another day."""
    import time
    from datetime import date, timedelta

    from twin.analyses.priority import refresh_ranking_sync

    today, yesterday = date.today(), date.today() - timedelta(days=1)
    execute(owner_url, [("DELETE FROM twin.priority_rankings", None)])
    assert refresh_ranking_sync(settings, as_of=yesterday, year=2023) is not None

    def rank(**kwargs: Any) -> dict[str, Any]:
        return as_role(reader_url, inspection_priority, settings, role="admin", disclosure=Disclosure("admin", None),
                       year=2023, limit=None, **kwargs)

    def kept_days() -> set[date]:
        with psycopg.connect(owner_url) as conn:
            return {d for d, in conn.execute("SELECT as_of FROM twin.priority_rankings").fetchall()}

    first = rank()
    assert first["as_of"] == yesterday.isoformat() and first["ranking_source"]["refreshing"] is True
    assert first["ranking"] == rank(as_of=yesterday, stored=False)["ranking"]  # all of it as of that day
    deadline = time.monotonic() + 60
    while today not in kept_days() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kept_days() == {yesterday, today}
    second = rank()
    assert second["as_of"] == today.isoformat() and "refreshing" not in second["ranking_source"]
    assert second["ranking"] == rank(as_of=today, stored=False)["ranking"]
    # an as_of asked for: that day's ranking, computed and kept when missing, never an earlier one
    execute(owner_url, [("DELETE FROM twin.priority_rankings WHERE as_of = CURRENT_DATE", None)])
    asked = rank(as_of=today)
    assert asked["as_of"] == today.isoformat() and "refreshing" not in asked["ranking_source"]
    assert asked["ranking_source"]["stored"] is True
