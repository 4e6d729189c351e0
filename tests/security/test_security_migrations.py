"""The security migrations go down and up again cleanly (0003 -> 0001 -> 0003), leaving the same rules."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from twin import cluster, database
from twin.settings import Settings


@pytest.fixture()
def scratch(base_settings: Settings) -> Iterator[Settings]:
    name = f"twin_secmig_{os.getpid()}"
    s = base_settings.model_copy(update={"database_name": name})
    if not s.local_cluster:
        with psycopg.connect(database.url_for(base_settings, "owner"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        s = s.model_copy(update={"database_url": database.url_for(base_settings, "owner", name)})
    else:
        cluster.drop_database(s, name)
        cluster.create_database(s, name)
    yield s
    if s.local_cluster:
        cluster.drop_database(s, name)
    else:
        with psycopg.connect(database.url_for(base_settings, "owner"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
