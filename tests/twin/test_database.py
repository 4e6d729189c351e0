"""The database foundation: migrations, roles and the local cluster."""

from __future__ import annotations

import psycopg
import pytest

from twin import cluster, database
from twin.settings import Settings

LAYER_TABLES = (
    "municipalities", "establishments", "permits", "inspections", "natura2000_habitats", "housing_sites",
    "buildings", "addresses", "deposition_hexagons", "nitrogen_deposition", "ingest_runs", "ingest_rejects",
)


def test_migrate_is_idempotent(settings: Settings, owner_url: str) -> None:
    before, after = database.migrate(settings)
    assert before == after == database.head_revision()
    with psycopg.connect(owner_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'twin'")}
    assert set(LAYER_TABLES) <= tables


def test_every_geometry_is_rd_new_with_a_gist_index(owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:
        cols = conn.execute(
            "SELECT f_table_name, srid FROM geometry_columns WHERE f_table_schema = 'twin'"
        ).fetchall()
        indexed = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_indexes WHERE schemaname = 'twin' AND indexdef ILIKE '%USING gist%'"
        )}
    assert cols, "no geometry columns"
    assert {srid for _, srid in cols} == {28992}
    assert {t for t, _ in cols} <= indexed


def test_natural_keys_are_unique_and_references_hold(writer_url: str) -> None:
    with psycopg.connect(writer_url) as conn:
        conn.execute(
            "INSERT INTO twin.establishments (establishment_id, name, sbi_code, geom) "
            "VALUES ('E-T1', 'Test', '0141', ST_SetSRID(ST_MakePoint(155000, 463000), 28992))"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, sbi_code, geom) "
                "VALUES ('E-T1', 'Again', '0141', ST_SetSRID(ST_MakePoint(155000, 463000), 28992))"
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, geom) "
                "VALUES ('I-1', 'NOPE', '2024-01-01', 'routine', 'voorschriften nageleefd', "
                "ST_SetSRID(ST_MakePoint(155000, 463000), 28992))"
            )
        conn.rollback()


def test_reader_cannot_write_or_create(reader_url: str) -> None:
    with psycopg.connect(reader_url) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        assert timeout is not None and timeout[0] not in ("0", "0ms")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(
                "INSERT INTO twin.municipalities (code, name, geom) VALUES ('GM9999', 'x', "
                "ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(155000, 463000), 28992), 10)))"
            )
        conn.rollback()
    # Even outside a read-only transaction the role lacks the privileges.
    with psycopg.connect(reader_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO twin.municipalities (code, name, geom) VALUES ('GM9999', 'x', NULL)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE twin.evil (id int)")


def test_db_up_twice_is_harmless(settings: Settings) -> None:
    if not settings.local_cluster:
        pytest.fail("this test needs the local cluster")
    first = cluster.up(settings)
    second = cluster.up(settings)
    assert first.running and second.running
    assert first.pgdata == second.pgdata


def test_url_for_external_database_swaps_roles() -> None:
    s = Settings(database_url="postgresql://admin:secret@db.example:5433/twin", reader_password="r p")  # type: ignore[arg-type]
    assert database.url_for(s, "owner") == "postgresql://admin:secret@db.example:5433/twin"
    assert database.url_for(s, "reader") == "postgresql://twin_reader:r%20p@db.example:5433/twin"
    assert database.url_for(s, "writer") == "postgresql://twin_writer@db.example:5433/twin"
