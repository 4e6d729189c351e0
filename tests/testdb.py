"""One way to make a throwaway, migrated database for a test session: in the project's PostGIS cluster,
or in the server of TWIN_DATABASE_URL. Used by every conftest that needs a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from twin import cluster, database
from twin.settings import Settings


def _drop(base: Settings, name: str) -> None:
    with psycopg.connect(database.url_for(base, "owner"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def throwaway_database(base: Settings, name: str, *, migrated: bool = True, **updates: Any) -> Iterator[Settings]:
    """Settings of a fresh database ``name`` migrated by the real migrations (empty when not ``migrated``, for
    tests of the migrations themselves); dropped afterwards."""
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
    if migrated:
        database.migrate(s)
    try:
        yield s
    finally:
        if s.local_cluster:
            cluster.up(s)  # a test may have stopped it
            cluster.drop_database(s, name)
        else:
            _drop(base, name)


@contextmanager
def private_cluster(base: Settings, data_dir: Path, **updates: Any) -> Iterator[Settings]:
    """A migrated cluster of its own in ``data_dir`` on a free port, for tests that stop the database, so
    the shared cluster is never disturbed; deleted afterwards."""
    from servers import free_port

    data_dir.chmod(0o755)  # the cluster's unprivileged user must reach it
    s = base.model_copy(update={"data_dir": data_dir, "pg_port": free_port(), "database_name": "twin", **updates})
    cluster.up(s)
    try:
        database.migrate(s)
        yield s
    finally:
        cluster.reset(s)
