"""The API's tile cache: a tile cut once is served from memory until its table changes (twin.layer_versions,
raised by triggers), within its memory bound, and not at all with TWIN_TILE_CACHE_MB=0."""

from __future__ import annotations

from collections.abc import Iterator

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from api_fixtures import PREFIX, Establishment
from fastapi.testclient import TestClient

from api.cache import VersionedCache
from layers.registry import COVERAGES, LAYERS
from twin.settings import Settings

TMS = morecantile.tms.get("WebMercatorQuad")
BASE = "/collections/establishments/tiles/WebMercatorQuad"


def _cities(content: bytes) -> dict[str, str]:
    layer = mapbox_vector_tile.decode(content)["establishments"]
    return {f["properties"]["establishment_id"]: f["properties"].get("city") for f in layer["features"]
            if str(f["properties"]["establishment_id"]).startswith(PREFIX)}


def test_a_tile_is_cut_once_and_cut_again_after_a_change(client: TestClient, api_data: list[Establishment],
                                                          writer_url: str) -> None:
    t = TMS.tile(3.54, 53.52, 8)
    url = f"{BASE}/{t.z}/{t.x}/{t.y}"
    first, second = client.get(url), client.get(url)
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["X-Tile-Cache"], second.headers["X-Tile-Cache"]) == ("miss", "hit")
    assert second.content == first.content and second.headers["ETag"] == first.headers["ETag"]
    # another audience's view of the same tile (fewer properties) is a tile of its own
    assert client.get(url, params={"properties": "establishment_id,city"}).headers["X-Tile-Cache"] == "miss"

    e = api_data[0]
    with psycopg.connect(writer_url) as conn:
        old = conn.execute("SELECT city FROM twin.establishments WHERE establishment_id = %s", (e.id,)).fetchone()
        assert old is not None
        conn.execute("UPDATE twin.establishments SET city = 'Elders' WHERE establishment_id = %s", (e.id,))
    try:
        changed = client.get(url)
        assert changed.headers["X-Tile-Cache"] == "miss"
        assert _cities(changed.content)[e.id] == "Elders"
        assert changed.headers["ETag"] != first.headers["ETag"]
        assert client.get(url).headers["X-Tile-Cache"] == "hit"
    finally:
        with psycopg.connect(writer_url) as conn:
            conn.execute("UPDATE twin.establishments SET city = %s WHERE establishment_id = %s", (old[0], e.id))
    assert _cities(client.get(url).content)[e.id] == old[0]


def test_every_layer_table_raises_its_version(owner_url: str) -> None:
    """A layer added later needs the triggers of migration 0007, or its cached tiles and analyses would go
    stale."""
    tables = {spec.table for spec in LAYERS.values()} | {c.table for c in COVERAGES.values()}
    tables.add("nitrogen_deposition_years")
    with psycopg.connect(owner_url) as conn:
        rows = conn.execute(
            "SELECT c.relname, array_agg(t.tgname ORDER BY t.tgname) FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'twin' AND t.tgfoid = 'twin.layer_version_bump'::regproc GROUP BY 1").fetchall()
        triggered = {name: set(tgs) for name, tgs in rows}
        assert set(triggered) == tables
        for name in tables:
            assert triggered[name] == {f"{name}_version", f"{name}_version_truncate"}
        versions = dict(conn.execute("SELECT table_name, version FROM twin.layer_versions").fetchall())
    assert set(versions) == tables


@pytest.fixture()
def uncached_client(settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(settings.model_copy(update={"tile_cache_mb": 0}))) as c:
        yield c


def test_the_cache_can_be_switched_off(uncached_client: TestClient, api_data: list[Establishment]) -> None:
    t = TMS.tile(3.54, 53.52, 8)
    r = uncached_client.get(f"{BASE}/{t.z}/{t.x}/{t.y}")
    assert r.status_code == 200 and "X-Tile-Cache" not in r.headers


def test_the_cache_keeps_to_its_memory_bound() -> None:
    cache = VersionedCache(max_bytes=3 * (1000 + VersionedCache.OVERHEAD))
    for i in range(4):
        cache.put(("layer", 1, i), bytes(1000))
    assert len(cache) == 3 and cache.bytes <= cache.max_bytes
    assert cache.get(("layer", 1, 0)) is None  # the least recently used went first
    assert cache.get(("layer", 1, 1)) is not None
    cache.put(("layer", 1, 9), bytes(1000))  # now 2 is the least recently used
    assert cache.get(("layer", 1, 2)) is None and cache.get(("layer", 1, 1)) is not None
    cache.put(("big",), bytes(10_000))  # larger than the whole cache: not kept, nothing evicted
    assert cache.get(("big",)) is None and len(cache) == 3
    assert (cache.hits, cache.misses) == (2, 3)
