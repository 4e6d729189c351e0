"""The configuration path of docker-compose.yml, natively: the twin pointed at a PostGIS by
TWIN_DATABASE_URL over TCP with passwords (here: the local cluster reached over 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from twin import cluster, database
from twin.settings import Settings


@pytest.fixture()
def external(base_settings: Settings) -> Iterator[Settings]:
    name = "twin_test_external"
    cluster.up(base_settings)
    cluster.drop_database(base_settings, name)
    cluster.create_database(base_settings, name)
    pw = cluster.role_passwords(base_settings)
    port = base_settings.pg_port
    yield Settings(  # type: ignore[call-arg]
        database_url=f"postgresql://twin_owner:{pw['twin_owner']}@127.0.0.1:{port}/{name}",
        reader_password=pw["twin_reader"],
        writer_password=pw["twin_writer"],
        auditor_password=pw["twin_auditor"],
    )
    cluster.drop_database(base_settings, name)


def test_migrate_and_serve_through_database_url(external: Settings) -> None:
    assert not external.local_cluster
    database.migrate(external)
    reader = database.url_for(external, "reader")
    assert reader.startswith("postgresql://twin_reader:") and "127.0.0.1" in reader
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("twin_reader",)
    with psycopg.connect(database.url_for(external, "auditor")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("twin_auditor",)
    from api.app import create_app

    with TestClient(create_app(external)) as client:
        assert client.get("/readyz").status_code == 200


def test_wrong_database_url_is_one_clear_error() -> None:
    s = Settings(database_url="postgresql://nobody:wrong@127.0.0.1:1/none")  # type: ignore[call-arg]
    with pytest.raises(Exception) as info:
        database.migrate(s)
    assert "cannot connect to the database" in str(info.value)
    assert "TWIN_DATABASE_URL" in str(info.value)
