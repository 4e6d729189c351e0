"""Vector tiles: decoded with mapbox-vector-tile and compared with positions computed by morecantile;
zoom limits, empty tiles, cache headers, filters, restricted layers and the TileJSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import morecantile
import psycopg
import pytest
from api_fixtures import PREFIX, Establishment
from fastapi.testclient import TestClient

TMS = morecantile.tms.get("WebMercatorQuad")
BASE = "/collections/establishments/tiles/WebMercatorQuad"


def decode(content: bytes) -> dict[str, Any]:
    tile: dict[str, Any] = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return tile


def pixel(lon: float, lat: float, tile: morecantile.Tile) -> tuple[float, float]:
    """Position of a point in a 4096-unit tile, y down (computed independently of PostGIS)."""
    x, y = TMS.xy(lon, lat)
    b = TMS.xy_bounds(tile)
    return (x - b.left) / (b.right - b.left) * 4096, (b.top - y) / (b.top - b.bottom) * 4096


@pytest.fixture(scope="module")
def habitat(writer_url: str, api_data: list[Establishment]) -> Iterator[str]:
    """One habitat polygon (a 2 x 1 km rectangle in RD New) in the fixture area."""
    hid = f"{PREFIX}h001"
    with psycopg.connect(writer_url) as conn:
        conn.execute(
            "INSERT INTO twin.natura2000_habitats (habitat_id, area_name, habitat_type, kdw, geom) "
            "SELECT %s, 'Testduinen', 'H2130B', 714, ST_Multi(ST_Envelope(ST_Buffer(c, 1000, 'endcap=square'))) "
            "FROM (SELECT ST_Transform(ST_SetSRID(ST_Point(3.55, 53.52), 4326), 28992) c) s",
            (hid,),
        )
    yield hid
    with psycopg.connect(writer_url) as conn:
        conn.execute("DELETE FROM twin.natura2000_habitats WHERE habitat_id = %s", (hid,))


def test_points_decode_to_the_expected_features(client: TestClient, api_data: list[Establishment]) -> None:
    t = TMS.tile(3.54, 53.52, 8)
    r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = decode(r.content)["establishments"]
    assert layer["extent"] == 4096
    mine = {f["properties"]["establishment_id"]: f for f in layer["features"]
            if str(f["properties"].get("establishment_id", "")).startswith(PREFIX)}
    assert set(mine) == {e.id for e in api_data}
    for e in api_data:
        f = mine[e.id]
        assert f["geometry"]["type"] == "Point"
        px, py = pixel(e.lon, e.lat, t)
        assert f["geometry"]["coordinates"] == pytest.approx([px, py], abs=1.0)
        props = f["properties"]
        assert props["sbi_code"] == e.sbi_code and props["brzo"] == e.brzo
        assert props["started_on"] == e.started_on.isoformat()
        assert "name" not in props and "kvk_number" not in props  # personal data never goes into tiles
        assert isinstance(f["id"], int)


def test_a_tile_holds_only_what_lies_in_it(client: TestClient, api_data: list[Establishment]) -> None:
    t = TMS.tile(3.505, 53.505, 14)  # a tile of about 2.4 x 1.4 km around the grid's corner
    b = TMS.bounds(t)
    r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}")
    got = sorted(f["properties"]["establishment_id"] for f in decode(r.content)["establishments"]["features"])
    # the tile buffer is 64/4096 of the tile on every side
    dx, dy = (b.right - b.left) * 64 / 4096, (b.top - b.bottom) * 64 / 4096
    expected = sorted(e.id for e in api_data
                      if b.left - dx <= e.lon <= b.right + dx and b.bottom - dy <= e.lat <= b.top + dy)
    assert got == expected and 0 < len(expected) < len(api_data)


def features_of(client: TestClient, t: Any, properties: str) -> list[dict[str, Any]]:
    r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}", params={"properties": properties})
    features: list[dict[str, Any]] = decode(r.content)["establishments"]["features"]
    return features


def test_filters_on_tiles(client: TestClient, api_data: list[Establishment]) -> None:
    t = TMS.tile(3.54, 53.52, 8)
    r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}", params={"sbi_code": "0141", "brzo": "false"})
    features = decode(r.content)["establishments"]["features"]
    got = {f["properties"]["establishment_id"] for f in features}
    assert {g for g in got if g.startswith(PREFIX)} == {e.id for e in api_data if e.sbi_code == "0141" and not e.brzo}
    # the filtered fields are the same in every feature: the tile leaves them out, the TileJSON too
    assert features and all("sbi_code" not in f["properties"] and "brzo" not in f["properties"] for f in features)
    fields = client.get(f"{BASE}/tilejson.json", params={"sbi_code": "0141"}).json()["vector_layers"][0]["fields"]
    assert "sbi_code" not in fields and "brzo" in fields
    # ?properties=...: only those fields (none with an empty list); unknown or personal fields are a 400
    for wanted in (["establishment_id", "city"], []):
        r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}", params={"sbi_code": "0141", "properties": ",".join(wanted)})
        features = decode(r.content)["establishments"]["features"]
        assert len(features) >= len([e for e in api_data if e.sbi_code == "0141" and not e.brzo]) > 0
        assert all(set(f["properties"]) <= set(wanted) for f in features)
    ids = {f["properties"]["establishment_id"] for f in features_of(client, t, "establishment_id")}
    assert {e.id for e in api_data if e.sbi_code == "0141" and not e.brzo} <= ids
    for bad in ("nope", "establishment_id,name"):
        r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}", params={"properties": bad})
        assert r.status_code == 400 and r.json()["parameter"] == "properties"
    for bad in ({"name": "x"}, {"nope": "1"}, {"brzo": "maybe"}):
        r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}", params=bad)
        assert r.status_code == 400 and r.json()["parameter"] == next(iter(bad))


def test_polygons(client: TestClient, habitat: str) -> None:
    t = TMS.tile(3.55, 53.52, 12)
    r = client.get(f"/collections/natura2000-habitats/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}")
    assert r.status_code == 200
    features = [f for f in decode(r.content)["natura2000-habitats"]["features"]
                if f["properties"]["habitat_id"] == habitat]
    assert len(features) == 1
    f = features[0]
    assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert f["properties"]["kdw"] == 714 and f["properties"]["habitat_type"] == "H2130B"
    ring = f["geometry"]["coordinates"][0] if f["geometry"]["type"] == "Polygon" else f["geometry"]["coordinates"][0][0]
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    cx, cy = pixel(3.55, 53.52, t)
    # the square is centred on its centre point (within a few pixels of simplification and rounding)
    assert (min(xs) + max(xs)) / 2 == pytest.approx(cx, abs=8) and (min(ys) + max(ys)) / 2 == pytest.approx(cy, abs=8)


def test_empty_tiles_zoom_limits_and_errors(client: TestClient, api_data: list[Establishment]) -> None:
    t = TMS.tile(-30.0, 10.0, 10)  # the Atlantic
    r = client.get(f"{BASE}/{t.z}/{t.x}/{t.y}")
    assert r.status_code == 204 and r.content == b"" and "max-age" in r.headers["cache-control"]
    t = TMS.tile(3.54, 53.52, 3)  # below the layer's min_zoom (6)
    assert client.get(f"{BASE}/{t.z}/{t.x}/{t.y}").status_code == 204
    t = TMS.tile(3.54, 53.52, 10)  # buildings start at zoom 13
    assert client.get(f"/collections/buildings/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}").status_code == 204
    assert client.get(f"{BASE}/3/8/0").status_code == 404  # x beyond 2^3 - 1
    assert client.get(f"{BASE}/25/0/0").status_code == 404
    for bad in ("a/0/0", "3/-1/0", "3/0/zz"):
        r = client.get(f"{BASE}/{bad}")
        assert r.status_code in (400, 404) and r.json()["code"] in ("InvalidParameterValue", "NotFound")
    assert client.get(f"{BASE}/{t.z}/{t.x}/{t.y}.mvt").status_code in (200, 204)
    assert client.get("/collections/nope/tiles/WebMercatorQuad/0/0/0").status_code == 404
    r = client.get("/collections/inspections/tiles/WebMercatorQuad/8/130/82")
    assert r.status_code == 401


def test_etag_and_conditional_requests(client: TestClient, api_data: list[Establishment]) -> None:
    t = TMS.tile(3.54, 53.52, 10)
    url = f"{BASE}/{t.z}/{t.x}/{t.y}"
    r = client.get(url)
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert etag.startswith('"') and "max-age" in r.headers["cache-control"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == r.content


def test_tilejson(client: TestClient, api_data: list[Establishment]) -> None:
    r = client.get(f"{BASE}/tilejson.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["tilejson"].startswith("3.")
    assert doc["tiles"][0].endswith("/collections/establishments/tiles/WebMercatorQuad/{z}/{x}/{y}.mvt")
    assert doc["minzoom"] == 6 and doc["maxzoom"] == 22
    west, south, east, north = doc["bounds"]
    assert west <= 3.5 and north >= 53.55
    layer = doc["vector_layers"][0]
    assert layer["id"] == "establishments"
    assert "sbi_code" in layer["fields"] and "name" not in layer["fields"]
    filtered = client.get(f"{BASE}/tilejson.json", params={"sbi_code": "0141"}).json()
    assert filtered["tiles"][0].endswith("{z}/{x}/{y}.mvt?sbi_code=0141")
    links = client.get("/collections/establishments").json()["links"]
    assert any(link["rel"] == "tiles" and link["href"].endswith("tilejson.json") for link in links)
