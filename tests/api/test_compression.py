"""Answers of 1 kB and more go gzip-compressed to clients that accept it (TWIN_GZIP_LEVEL, default 1), and as
they are to clients that do not; TWIN_GZIP_LEVEL=0 turns it off."""

from __future__ import annotations

import gzip
import json

from api_fixtures import Establishment
from fastapi.testclient import TestClient

from twin.settings import Settings

ITEMS = "/collections/establishments/items?limit=100"


def test_large_answers_are_compressed_for_clients_that_accept_gzip(client: TestClient,
                                                                    api_data: list[Establishment]) -> None:
    plain = client.get(ITEMS, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    size = len(plain.content)
    assert size > 1024

    packed = client.get(ITEMS, headers={"Accept-Encoding": "gzip"})
    assert packed.status_code == 200 and packed.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["vary"]
    assert int(packed.headers["content-length"]) < size / 2
    # httpx has decoded it: the same collection (the timeStamp aside)
    a, b = plain.json(), packed.json()
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]] and len(a["features"]) == len(api_data)
    # and what went over the wire is gzip of that JSON
    with client.stream("GET", ITEMS, headers={"Accept-Encoding": "gzip"}) as r:
        wire = b"".join(r.iter_raw())
    assert len(wire) == int(packed.headers["content-length"])
    assert [f["id"] for f in json.loads(gzip.decompress(wire))["features"]] == [f["id"] for f in a["features"]]


def test_small_answers_and_level_zero_are_not_compressed(client: TestClient, settings: Settings,
                                                         api_data: list[Establishment]) -> None:
    from api.app import create_app

    small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 200 and len(small.content) < 1024 and "content-encoding" not in small.headers
    with TestClient(create_app(settings.model_copy(update={"gzip_level": 0}))) as off:
        r = off.get(ITEMS, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and "content-encoding" not in r.headers and len(r.content) > 1024
