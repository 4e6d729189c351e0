"""The security migrations go down and up again cleanly (0003 -> 0001 -> 0003), leaving the same rules."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from testdb import throwaway_database

from twin import database
from twin.settings import Settings


@pytest.fixture()
def scratch(base_settings: Settings) -> Iterator[Settings]:
    with throwaway_database(base_settings, f"twin_secmig_{os.getpid()}", migrated=False) as s:
        yield s


def _policies(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'twin'").fetchall()
    return {(t, p) for t, p in rows}


def test_down_and_up_again(scratch: Settings) -> None:
    owner = database.url_for(scratch, "owner")
    database.migrate(scratch)
    at_head = _policies(owner)
    assert ("inspections", "inspections_inspector") in at_head and ("audit_log", "audit_log_append") in at_head
    cfg = database.alembic_config(owner)
    command.downgrade(cfg, "0001")
    assert _policies(owner) == set()
    with psycopg.connect(owner) as conn:
        assert conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = 'twin.inspections'::regclass"
                            ).fetchone() == (False,)
    command.upgrade(cfg, "head")
    assert _policies(owner) == at_head
