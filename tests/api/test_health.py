"""Liveness, readiness (also across a database restart), the landing page and the collections."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from testdb import private_cluster as private_cluster_of

from layers.registry import LAYERS
from twin import cluster
from twin.settings import Settings


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.fixture()
def private_cluster(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Iterator[Settings]:
    """A cluster of its own for tests that stop the database, so the shared one is never disturbed."""
    with private_cluster_of(base_settings, tmp_path_factory.mktemp("cluster")) as s:
        yield s


def test_readyz_follows_the_database_without_restarting_the_api(private_cluster: Settings) -> None:
    from api.app import create_app

    with TestClient(create_app(private_cluster)) as client:
        assert client.get("/readyz").status_code == 200
        cluster.down(private_cluster)
        started = time.monotonic()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
        r = client.get("/collections")
        assert r.status_code == 503
        assert r.json()["code"] == "ServiceUnavailable"
        assert r.headers["retry-after"]
        assert time.monotonic() - started < 10, "requests must fail fast while the database is down"
        cluster.up(private_cluster)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and client.get("/readyz").status_code != 200:
            time.sleep(0.5)
        assert client.get("/readyz").status_code == 200
        assert client.get("/collections").status_code == 200


def test_landing_is_negotiated(client: TestClient) -> None:
    r = client.get("/", headers={"Accept": "application/json"})
    assert r.status_code == 200
    rels = {link["rel"] for link in r.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    r = client.get("/?f=json", headers={"Accept": "text/html"})
    assert r.headers["content-type"].startswith("application/json")
    r = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.headers["content-type"].startswith("text/html")


def test_openapi_at_api(client: TestClient) -> None:
    r = client.get("/api")
    assert r.status_code == 200
    assert r.json()["openapi"].startswith("3.")


def test_collections_lists_every_layer(client: TestClient) -> None:
    r = client.get("/collections")
    assert r.status_code == 200
    ids = {c["id"] for c in r.json()["collections"]}
    assert ids == set(LAYERS)
    r = client.get("/collections/establishments")
    assert r.status_code == 200 and r.json()["id"] == "establishments"
    r = client.get("/collections/nope")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
