"""twin.kpi_values partitioned by run (migration 0022): existing values survive the upgrade and the downgrade, a
run written by `twin monitor compute` becomes a partition of its own, and the writer's direct access to that
table ends when it is attached."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from alembic import command
from testdb import throwaway_database

from twin import database
from twin.monitoring import compute
from twin.settings import Settings

RUN = "INSERT INTO twin.kpi_runs (as_of, data_version, k) VALUES ('2024-12-31', '{}', 5) RETURNING id"
VALUES = ("INSERT INTO twin.kpi_values (run_id, kpi, period_type, period_start, period_end, dimension, "
          "dimension_value, scope_org, numerator, denominator, value, audience) "
          "VALUES (%s, 'compliance', 'year', '2024-01-01', '2024-12-31', 'all', 'all', NULL, %s, 10, %s, 'public')")


@pytest.fixture()
def scratch(base_settings: Settings) -> Iterator[Settings]:
    with throwaway_database(base_settings, f"twin_kpipart_{os.getpid()}", migrated=False) as s:
        yield s


def _values(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT run_id, numerator, value FROM twin.kpi_values ORDER BY run_id").fetchall()


def _partitions(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = "
            "i.inhrelid WHERE i.inhparent = 'twin.kpi_values'::regclass").fetchall())


def test_upgrade_and_downgrade_keep_the_values(scratch: Settings) -> None:
    owner = database.url_for(scratch, "owner")
    cfg = database.alembic_config(owner)
    command.upgrade(cfg, "0021")
    with psycopg.connect(owner) as conn:
        for n in (1, 2):
            run = conn.execute(RUN).fetchone()
            conn.execute(VALUES, (run[0], n, n / 10))  # type: ignore[index]
    before = _values(owner)
    command.upgrade(cfg, "head")
    assert _values(owner) == before
    runs = [r[0] for r in before]
    assert _partitions(owner) == {"kpi_values_default": "DEFAULT",
                                  **{f"kpi_values_run_{r}": f"FOR VALUES IN ('{r}')" for r in runs}}
    with psycopg.connect(owner) as conn:  # the BI view reads the partitioned table
        assert conn.execute("SELECT count(*) FROM bi.fact_kpi_values_v1").fetchone() == (1,)
    command.downgrade(cfg, "0021")
    assert _values(owner) == before
    with psycopg.connect(owner) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'twin.kpi_values'::regclass").fetchone() == ("r",)
        assert conn.execute("SELECT count(*) FROM bi.fact_kpi_values_v1").fetchone() == (1,)
    command.upgrade(cfg, "head")
    assert _values(owner) == before


def test_a_run_is_a_partition_the_writer_cannot_touch_afterwards(scratch: Settings) -> None:
    database.migrate(scratch)
    writer = database.url_for(scratch, "writer")
    with psycopg.connect(writer) as conn:
        summary = compute.compute(conn, as_of=date(2024, 12, 31), k=5)  # an empty twin: the quality KPI only
        conn.commit()
    owner = database.url_for(scratch, "owner")
    assert _partitions(owner)[f"kpi_values_run_{summary.run_id}"] == f"FOR VALUES IN ('{summary.run_id}')"
    with psycopg.connect(writer) as conn:
        assert conn.execute("SELECT count(*) FROM twin.kpi_values WHERE run_id = %s",
                            (summary.run_id,)).fetchone() == (summary.values,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO twin.kpi_values_run_{summary.run_id} SELECT * FROM twin.kpi_values")
        conn.rollback()
        with pytest.raises(psycopg.errors.UniqueViolation):  # a run's values are written once
            conn.execute("SELECT twin.kpi_values_new_partition(%s)", (summary.run_id,))
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("SELECT twin.kpi_values_new_partition(-1)")
        conn.rollback()
        # a run written by hand still lands in the default partition
        run = conn.execute(RUN).fetchone()
        conn.execute(VALUES, (run[0], 3, 0.3))  # type: ignore[index]
        conn.commit()
    with psycopg.connect(owner) as conn:
        assert conn.execute("SELECT count(*) FROM twin.kpi_values_default").fetchone() == (1,)
