"""Issue 19: the deposition hexagons as one collection per resolution and year present
(``deposition-hexagons-2025``, ``deposition-hexagons-national-2025``) next to the multi-year layer, so that a
GIS opening one draws each hexagon once; ids, items, tiles and queryables of their own; unknown query
parameters stay 400."""

from __future__ import annotations

import math
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

# (resolution, receptor, year, x, y): receptors 1 and 2 in 2023 and 2025, 3 only in 2023, a national cell
HEXAGONS = [("1ha", 1, 2023, 155000, 463000), ("1ha", 2, 2023, 155200, 463000), ("1ha", 3, 2023, 190000, 500000),
            ("1ha", 1, 2025, 155000, 463000), ("1ha", 2, 2025, 155200, 463000),
            ("national", 9, 2025, 155000, 463000)]


def square(x: float, y: float, r: float = 50) -> str:
    return f"POLYGON(({x - r} {y - r},{x + r} {y - r},{x + r} {y + r},{x - r} {y + r},{x - r} {y - r}))"


@pytest.fixture(scope="module")
def hexagons(owner_url: str) -> Iterator[None]:
    rows = [(f"{res}-{rid}-{year}", res, rid, year, 100.0 + year - 2020, 50.0, 50.0 + year - 2020, True, True,
             square(x, y)) for res, rid, year, x, y in HEXAGONS]
    with psycopg.connect(owner_url) as conn:
        conn.execute("DELETE FROM twin.deposition_hexagons")
        conn.cursor().executemany(
            "INSERT INTO twin.deposition_hexagons (hexagon_id, resolution, receptor_id, year, deposition, "
            "lowest_kdw, exceedance, overloaded, approaching, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "ST_GeomFromText(%s, 28992))", rows)
    yield
    with psycopg.connect(owner_url) as conn:
        conn.execute("DELETE FROM twin.deposition_hexagons")


def test_a_collection_per_year_present(client: TestClient, hexagons: None) -> None:
    ids = [c["id"] for c in client.get("/collections").json()["collections"]]
    i = ids.index("deposition-hexagons")
    assert ids[i:i + 4] == ["deposition-hexagons", "deposition-hexagons-2023", "deposition-hexagons-2025",
                            "deposition-hexagons-national-2025"]
    doc = client.get("/collections/deposition-hexagons-2025").json()
    assert doc["id"] == "deposition-hexagons-2025" and "2025" in doc["title"]
    bbox = doc["extent"]["spatial"]["bbox"][0]
    assert bbox[2] - bbox[0] < 0.01  # only the two hexagons near Amersfoort, not receptor 3 of 2023
    for missing in ("deposition-hexagons-2024", "deposition-hexagons-national-2023", "deposition-hexagons-x"):
        assert client.get(f"/collections/{missing}").status_code == 404
        assert client.get(f"/collections/{missing}/items").status_code == 404


def test_one_feature_per_hexagon(client: TestClient, hexagons: None) -> None:
    r = client.get("/collections/deposition-hexagons-2025/items")
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    assert sorted(f["id"] for f in features) == ["1ha-1-2025", "1ha-2-2025"]
    assert {f["properties"]["year"] for f in features} == {2025}
    assert r.json()["numberMatched"] == 2
    assert [f["id"] for f in client.get("/collections/deposition-hexagons-national-2025/items").json()["features"]] \
        == ["national-9-2025"]
    assert len(client.get("/collections/deposition-hexagons-2023/items").json()["features"]) == 3
    assert len(client.get("/collections/deposition-hexagons/items").json()["features"]) == 6  # all, as before
    assert client.get("/collections/deposition-hexagons-2025/items/1ha-1-2025").status_code == 200
    assert client.get("/collections/deposition-hexagons-2025/items/1ha-1-2023").status_code == 404
    # filters of the items endpoint work within the year; unknown parameters stay 400
    r = client.get("/collections/deposition-hexagons-2025/items", params={"receptor_id": 2})
    assert [f["id"] for f in r.json()["features"]] == ["1ha-2-2025"]
    assert client.get("/collections/deposition-hexagons-2025/items", params={"colour": "red"}).status_code == 400
    assert client.get("/collections/deposition-hexagons-2025", params={"year": "2025"}).status_code == 400
    assert client.get("/collections/deposition-hexagons-2025/queryables").status_code == 200


def test_tiles_of_a_year(client: TestClient, hexagons: None) -> None:
    tj = client.get("/collections/deposition-hexagons-2025/tiles/WebMercatorQuad/tilejson.json").json()
    assert "/collections/deposition-hexagons-2025/tiles/WebMercatorQuad/{z}/{x}/{y}.mvt" in tj["tiles"][0]

    def tile(collection: str, lon: float, lat: float, z: int = 12) -> int:
        x = int((lon + 180) / 360 * 2**z)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
        return client.get(f"/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}.mvt").status_code

    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(28992, 4326, always_xy=True)
    only_2023 = to_wgs84.transform(190000, 500000)
    both = to_wgs84.transform(155000, 463000)
    assert tile("deposition-hexagons-2023", *only_2023) == 200
    assert tile("deposition-hexagons-2025", *only_2023) == 204  # receptor 3 is not in 2025
    assert tile("deposition-hexagons-2025", *both) == 200
