"""One way to make a throwaway, migrated database for a test session: in the project's PostGIS cluster,
or in the server of TWIN_DATABASE_URL. Used by every conftest that needs a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from twin import cluster, database
from twin.settings import Settings


def _drop(base: Settings, name: str) -> None:
    with psycopg.connect(database.url_for(base, "owner"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def throwaway_database(base: Settings, name: str, **updates: Any) -> Iterator[Settings]:
    """Settings of a fresh database ``name`` migrated by the real migrations; dropped afterwards."""
    s = base.model_copy(update={"database_name": name, **updates})
    if s.local_cluster:
        cluster.up(s)
        cluster.drop_database(s, name)
        cluster.create_database(s, name)
    else:
        _drop(base, name)
        with psycopg.connect(database.url_for(base, "owner"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        s = s.model_copy(update={"database_url": database.url_for(base, "owner", name)})
    database.migrate(s)
    try:
        yield s
    finally:
        if s.local_cluster:
            cluster.up(s)  # a test may have stopped it
            cluster.drop_database(s, name)
        else:
            _drop(base, name)
