"""The nitrogen-deposition coverage on a hand-made raster: values at points, zonal statistics against
pixel overlaps worked out by hand (and with shapely for a triangle), PNG tiles coloured by the shared ramp,
metadata and errors."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import morecantile
import numpy as np
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Transformer
from shapely.geometry import Polygon, box, mapping

from layers.styles import DEPOSITION_RAMP

# A 4 x 3 raster of 100 m pixels in the North Sea west of Texel (where no other test puts data), stored as
# two tiles of 2 x 3 pixels, for two scenario years nobody else uses. NaN marks the nodata pixel.
X0, Y0, PX = 10_000.0, 600_300.0, 100.0
YEARS = {2990: 0.0, 2991: 100.0}
BASE = np.array([[1000, 1100, 1200, 1300], [1400, 1500, 1600, 1700], [1800, 1900, 2000, np.nan]])
NODATA = -9999.0
COV = "/coverages/nitrogen-deposition"
TO_WGS84 = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)
TMS = morecantile.tms.get("WebMercatorQuad")


def grid(year: int) -> np.ndarray:
    return BASE + YEARS[year]


@pytest.fixture(scope="module")
def raster(writer_url: str) -> Iterator[None]:
    with psycopg.connect(writer_url) as conn:
        for year, offset in YEARS.items():
            conn.execute("DELETE FROM twin.nitrogen_deposition WHERE year = %s", (year,))
            conn.execute("DELETE FROM twin.nitrogen_deposition_years WHERE year = %s", (year,))
            conn.execute(
                "INSERT INTO twin.nitrogen_deposition_years (year, label, pixel_size, nodata, source) "
                "VALUES (%s, %s, %s, %s, 'test')", (year, f"scenario {year}", PX, NODATA))
            values = np.where(np.isnan(BASE), NODATA, BASE + offset)
            for c0 in (0, 2):
                conn.execute(
                    "INSERT INTO twin.nitrogen_deposition (year, label, rast) VALUES (%s, %s, ST_SetValues("
                    "ST_AddBand(ST_MakeEmptyRaster(2, 3, %s, %s, %s, %s, 0, 0, 28992), '32BF'::text, 0, %s), "
                    "1, 1, 1, %s::double precision[][]))",
                    (year, f"scenario {year}", X0 + c0 * PX, Y0, PX, -PX, NODATA, values[:, c0:c0 + 2].tolist()),
                )
    yield
    with psycopg.connect(writer_url) as conn:
        for year in YEARS:
            conn.execute("DELETE FROM twin.nitrogen_deposition WHERE year = %s", (year,))
            conn.execute("DELETE FROM twin.nitrogen_deposition_years WHERE year = %s", (year,))


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_WGS84.transform(x, y)
    return float(lon), float(lat)


def pixel_box(row: int, col: int) -> Polygon:
    return box(X0 + col * PX, Y0 - (row + 1) * PX, X0 + (col + 1) * PX, Y0 - row * PX)


def expected_stats(polygon: shapely.Geometry, year: int) -> dict[str, Any]:
    """Statistics by brute force over the 12 pixels with shapely (independent of PostGIS)."""
    values, areas = [], []
    g = grid(year)
    for r in range(3):
        for c in range(4):
            a = pixel_box(r, c).intersection(polygon).area
            if a > 0 and not np.isnan(g[r, c]):
                values.append(g[r, c])
                areas.append(a)
    v, a = np.array(values), np.array(areas)
    return {"count": len(v), "min": v.min(), "max": v.max(), "mean": v.mean(),
            "weighted_mean": (v * a).sum() / a.sum(), "covered_ha": a.sum() / 10_000}


def post(client: TestClient, body: Any, status: int = 200, **params: Any) -> dict[str, Any]:
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    r = client.post(f"{COV}/statistics", content=content, params=params,
                    headers={"Content-Type": "application/geo+json"})
    assert r.status_code == status, r.text
    result: dict[str, Any] = r.json()
    return result


def mine(result: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {y["year"]: y for y in result["years"] if y["year"] in YEARS}


def test_point_values(client: TestClient, raster: None) -> None:
    lon, lat = lonlat(X0 + 2.5 * PX, Y0 - 1.5 * PX)  # centre of row 1, column 2
    r = client.get(f"{COV}/point", params={"lon": lon, "lat": lat})
    assert r.status_code == 200
    body = r.json()
    assert body["unit"] == "mol N/ha/yr"
    values = {v["year"]: v["value"] for v in body["values"] if v["year"] in YEARS}
    assert values == {2990: 1600.0, 2991: 1700.0}
    assert body["rd"] == pytest.approx([X0 + 250, Y0 - 150], abs=0.01)
    one = client.get(f"{COV}/point", params={"lon": lon, "lat": lat, "year": 2991}).json()
    assert [(v["year"], v["value"]) for v in one["values"]] == [(2991, 1700.0)]
    lon, lat = lonlat(X0 + 3.5 * PX, Y0 - 2.5 * PX)  # the nodata pixel
    nodata = client.get(f"{COV}/point", params={"lon": lon, "lat": lat}).json()["values"]
    values = {v["year"]: v["value"] for v in nodata if v["year"] in YEARS}
    assert values == {2990: None, 2991: None}
    far = client.get(f"{COV}/point", params={"lon": 5.0, "lat": 40.5}).json()
    assert [v for v in far["values"] if v["year"] in YEARS] == []


def test_point_errors(client: TestClient, raster: None) -> None:
    for params, parameter in (({"lon": 5}, "lat"), ({"lon": "x", "lat": 52}, "lon"), ({"lon": 5, "lat": 91}, "lat"),
                              ({"lon": 5, "lat": 52, "year": "recent"}, "year"),
                              ({"lon": 5, "lat": 52, "year": 1850}, "year"),
                              ({"lon": 5, "lat": 52, "radius": 3}, "radius")):
        r = client.get(f"{COV}/point", params=params)
        assert r.status_code == 400 and r.json()["parameter"] == parameter, params
    assert client.get("/coverages/nope/point", params={"lon": 5, "lat": 52}).status_code == 404


def test_zonal_statistics_of_a_rectangle(client: TestClient, raster: None) -> None:
    # overlaps: columns 0/1/2 by 50/100/30 m, rows 0/1/2 by 60/100/20 m
    rect = box(X0 + 50, Y0 - 220, X0 + 230, Y0 - 40)
    w = {0: 50, 1: 100, 2: 30}
    h = {0: 60, 1: 100, 2: 20}
    by_hand = sum(BASE[r, c] * w[c] * h[r] for r in h for c in w) / sum(w[c] * h[r] for r in h for c in w)
    result = post(client, mapping(rect), crs="EPSG:28992")
    assert result["area_ha"] == pytest.approx(180 * 180 / 10_000)
    stats = mine(result)
    assert stats[2990]["weighted_mean"] == pytest.approx(by_hand)
    assert stats[2991]["weighted_mean"] == pytest.approx(by_hand + 100)
    assert stats[2990]["count"] == 9
    assert stats[2990]["min"] == 1000 and stats[2990]["max"] == 2000
    assert stats[2990]["mean"] == pytest.approx(np.mean([BASE[r, c] for r in h for c in w]))
    assert stats[2990]["covered_ha"] == pytest.approx(180 * 180 / 10_000)
    for year in YEARS:
        for key, value in expected_stats(rect, year).items():
            assert stats[year][key] == pytest.approx(value, abs=1e-4 if key == "covered_ha" else 1e-9), (year, key)


def test_zonal_statistics_with_nodata_outside_and_a_triangle(client: TestClient, raster: None) -> None:
    # over the nodata pixel and beyond the raster's right edge
    rect = box(X0 + 250, Y0 - 280, X0 + 480, Y0 - 150)
    stats = mine(post(client, mapping(rect), crs="EPSG:28992"))
    expected = expected_stats(rect, 2990)
    for key, value in expected.items():
        assert stats[2990][key] == pytest.approx(value, abs=1e-4 if key == "covered_ha" else 1e-9), key
    assert stats[2990]["covered_ha"] < rect.area / 10_000
    # a triangle cutting pixels at angles: shapely gives the overlaps
    tri = Polygon([(X0 + 20, Y0 - 290), (X0 + 370, Y0 - 260), (X0 + 140, Y0 - 15)])
    stats = mine(post(client, {"type": "Feature", "properties": {}, "geometry": mapping(tri)}, crs="EPSG:28992"))
    for year in YEARS:
        for key, value in expected_stats(tri, year).items():
            assert stats[year][key] == pytest.approx(value, abs=1e-4 if key == "covered_ha" else 1e-9), (year, key)
    # raster tiles wholly inside (summarised without clipping) next to a tile the boundary crosses
    for shape in (box(X0 - 50, Y0 - 350, X0 + 450, Y0 + 30), box(X0 - 50, Y0 - 310, X0 + 260, Y0 + 20)):
        stats = mine(post(client, mapping(shape), crs="EPSG:28992"))
        for year in YEARS:
            for key, value in expected_stats(shape, year).items():
                assert stats[year][key] == pytest.approx(value, abs=1e-4 if key == "covered_ha" else 1e-9), key
    # a polygon with a hole, and a multipolygon
    donut = box(X0 + 30, Y0 - 270, X0 + 330, Y0 - 30).difference(
        Polygon([(X0 + 120, Y0 - 200), (X0 + 240, Y0 - 180), (X0 + 170, Y0 - 90)]))
    pair = shapely.MultiPolygon([Polygon([(X0 + 10, Y0 - 10), (X0 + 90, Y0 - 30), (X0 + 40, Y0 - 140)]),
                                 Polygon([(X0 + 210, Y0 - 290), (X0 + 390, Y0 - 210), (X0 + 250, Y0 - 120)])])
    for shape in (donut, pair):
        stats = mine(post(client, mapping(shape), crs="EPSG:28992"))
        for key, value in expected_stats(shape, 2990).items():
            assert stats[2990][key] == pytest.approx(value, abs=1e-4 if key == "covered_ha" else 1e-9), key
    # smaller than a pixel: the value of the pixel it lies in
    small = box(X0 + 110, Y0 - 190, X0 + 130, Y0 - 170)
    stats = mine(post(client, mapping(small), crs="EPSG:28992", year=2990))
    assert set(stats) == {2990}
    assert stats[2990]["count"] == 1 and stats[2990]["weighted_mean"] == pytest.approx(1500)


def test_zonal_statistics_in_wgs84(client: TestClient, raster: None) -> None:
    rect = box(X0 + 50, Y0 - 220, X0 + 230, Y0 - 40)
    ring = [lonlat(x, y) for x, y in rect.exterior.coords]
    result = post(client, {"type": "Polygon", "coordinates": [ring]})
    expected = expected_stats(rect, 2990)
    stats = mine(result)[2990]
    # the corners round-trip through two projections: allow a few cm of difference
    assert stats["weighted_mean"] == pytest.approx(expected["weighted_mean"], abs=0.5)
    assert result["area_ha"] == pytest.approx(rect.area / 10_000, rel=1e-3)
    outside = post(client, {"type": "Polygon", "coordinates": [[[5, 40.5], [5.1, 40.5], [5.1, 40.6], [5, 40.5]]]})
    assert mine(outside) == {}


def test_statistics_errors(client: TestClient, raster: None) -> None:
    def error(body: Any, status: int = 400, **params: Any) -> str:
        return str(post(client, body, status, **params)["description"])

    assert "JSON" in error(b"{not json")
    assert "Polygon" in error({"type": "Point", "coordinates": [5, 52]})
    assert "Polygon" in error({"type": "FeatureCollection", "features": []})
    assert "coordinates" in error({"type": "Polygon", "coordinates": [[1, 2]]})
    bowtie = [[5, 52], [5.1, 52.1], [5.1, 52], [5, 52.1], [5, 52]]
    assert "not valid" in error({"type": "Polygon", "coordinates": [bowtie]})
    circle = shapely.Point(5.0, 52.0).buffer(0.01, quad_segs=2_501)  # 10,005 vertices
    assert "10,000" in error(mapping(circle))
    huge = {"type": "Polygon", "coordinates": [[[5, 52], [5.1, 52], [5.1, 52.1], [5, 52]]], "pad": "x" * 1_100_000}
    assert "1,048,576" in error(huge, status=413)
    assert "year" in error(mapping(box(5, 52, 5.1, 52.1)), year=1850)
    assert "crs" in error(mapping(box(5, 52, 5.1, 52.1)), crs="EPSG:3857")
    assert client.post("/coverages/nope/statistics", content=b"{}").status_code == 404


def test_png_tiles_use_the_shared_ramp(client: TestClient, raster: None) -> None:
    x, y = X0 + 1.5 * PX, Y0 - 1.5 * PX  # row 1, column 1: 1500 in 2990
    lon, lat = lonlat(x, y)
    tile = TMS.tile(lon, lat, 16)
    r = client.get(f"{COV}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png", params={"year": 2990})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert image.shape == (256, 256, 4)
    mx, my = TMS.xy(lon, lat)
    b = TMS.xy_bounds(tile)
    col = int((mx - b.left) / (b.right - b.left) * 256)
    row = int((b.top - my) / (b.top - b.bottom) * 256)
    assert tuple(image[row, col]) == DEPOSITION_RAMP.colour(1500.0)
    # the latest year is the default (2991 is ours unless another test loaded a later year)
    r2 = client.get(f"{COV}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png", params={"year": 2991})
    image2 = np.asarray(Image.open(io.BytesIO(r2.content)).convert("RGBA"))
    assert tuple(image2[row, col]) == DEPOSITION_RAMP.colour(1600.0)
    # the nodata pixel and the sea around the raster are transparent
    nx, ny = TMS.xy(*lonlat(X0 + 3.5 * PX, Y0 - 2.5 * PX))
    ncol = int((nx - b.left) / (b.right - b.left) * 256)
    nrow = int((b.top - ny) / (b.top - b.bottom) * 256)
    if 0 <= ncol < 256 and 0 <= nrow < 256:
        assert image[nrow, ncol][3] == 0
    assert image[0, 0][3] == 0 or image[255, 255][3] == 0
    etag = r.headers["etag"]
    again = client.get(f"{COV}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png", params={"year": 2990},
                       headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_png_tiles_empty_low_zoom_and_errors(client: TestClient, raster: None) -> None:
    far = TMS.tile(-40, 10, 8)
    r = client.get(f"{COV}/tiles/WebMercatorQuad/{far.z}/{far.x}/{far.y}.png", params={"year": 2990})
    assert r.status_code == 200
    assert np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))[..., 3].max() == 0
    low = TMS.tile(*lonlat(X0, Y0), 6)
    r = client.get(f"{COV}/tiles/WebMercatorQuad/{low.z}/{low.x}/{low.y}.png", params={"year": 2990})
    assert r.status_code == 200
    for path, status in (("3/9/0.png", 404), ("x/0/0.png", 400), ("0/0/0.png?year=1850", 400),
                         ("0/0/0.png?yr=2990", 400)):
        assert client.get(f"{COV}/tiles/WebMercatorQuad/{path}").status_code == status, path


def test_metadata_and_ramp(client: TestClient, raster: None) -> None:
    doc = client.get(COV).json()
    assert doc["unit"] == "mol N/ha/yr"
    years = {y["year"]: y for y in doc["years"]}
    assert {2990, 2991} <= set(years) and years[2990]["pixel_size"] == PX
    assert doc["legend"]["stops"][0]["value"] == 0 and doc["legend"]["stops"][-1]["hex"] == "#fde725"
    rd = doc["extent"]["rd"]["bbox"]
    assert rd[0] <= X0 and rd[3] >= Y0
    listing = client.get("/coverages").json()
    assert [c["id"] for c in listing["coverages"]] == ["nitrogen-deposition"]
    assert client.get("/coverages/nope").status_code == 404
    # the ramp interpolates linearly between stops, holds at the ends, and is transparent for NaN
    a, b = DEPOSITION_RAMP.stops[0].rgba, DEPOSITION_RAMP.stops[1].rgba
    mid = tuple(round((p + q) / 2) for p, q in zip(a, b, strict=True))
    assert DEPOSITION_RAMP.colour(250) == pytest.approx(mid, abs=1)
    assert DEPOSITION_RAMP.colour(-50) == a and DEPOSITION_RAMP.colour(9_999) == DEPOSITION_RAMP.stops[-1].rgba
    assert DEPOSITION_RAMP.colour(float("nan")) == (0, 0, 0, 0)


@pytest.fixture(scope="module")
def wide_raster(writer_url: str) -> Iterator[int]:
    """A 10 x 5 km raster of 100 m pixels in two tiles of 50 x 50 pixels (value 2500), for coarse tiles."""
    year = 2992
    with psycopg.connect(writer_url) as conn:
        conn.execute("DELETE FROM twin.nitrogen_deposition WHERE year = %s", (year,))
        conn.execute("DELETE FROM twin.nitrogen_deposition_years WHERE year = %s", (year,))
        conn.execute("INSERT INTO twin.nitrogen_deposition_years (year, label, pixel_size, nodata) "
                     "VALUES (%s, 'wide', 100, %s)", (year, NODATA))
        for c0 in (0, 50):
            conn.execute(
                "INSERT INTO twin.nitrogen_deposition (year, label, rast) VALUES (%s, 'wide', ST_AddBand("
                "ST_MakeEmptyRaster(50, 50, %s, %s, 100, -100, 0, 0, 28992), '32BF'::text, 2500, %s))",
                (year, 20_000 + c0 * 100, 610_000, NODATA))
    yield year
    with psycopg.connect(writer_url) as conn:
        conn.execute("DELETE FROM twin.nitrogen_deposition WHERE year = %s", (year,))
        conn.execute("DELETE FROM twin.nitrogen_deposition_years WHERE year = %s", (year,))


def test_coarse_png_tiles_have_no_gaps_between_raster_tiles(client: TestClient, wide_raster: int) -> None:
    # at zoom 9 a tile pixel is ~180 m in RD: the raster is coarsened in PostGIS before sampling
    tile = TMS.tile(*lonlat(25_000, 607_500), 9)
    r = client.get(f"{COV}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png", params={"year": wide_raster})
    image = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    b = TMS.xy_bounds(tile)
    to_rd = Transformer.from_crs("EPSG:3857", "EPSG:28992", always_xy=True)
    inside = 0
    for row in range(256):
        for col in range(256):
            mx = b.left + (col + 0.5) / 256 * (b.right - b.left)
            my = b.top - (row + 0.5) / 256 * (b.top - b.bottom)
            x, y = to_rd.transform(mx, my)
            # at least one coarse pixel (~200 m) inside the raster's edges
            if 20_200 < x < 29_800 and 605_200 < y < 609_800:
                inside += 1
                assert tuple(image[row, col]) == DEPOSITION_RAMP.colour(2500.0), (row, col, x, y)
    assert inside > 500


def test_coarsened_pieces_leave_no_gaps(reader_url: str, wide_raster: int) -> None:
    # coarse pixels that do not divide the 5 km raster tiles: the coarsened pieces must still meet
    import asyncio

    from twin import coverage

    async def values(resolution: float) -> np.ndarray:
        async with await psycopg.AsyncConnection.connect(reader_url) as conn:
            pieces = await coverage.pieces(conn, (19_000, 604_000, 31_000, 611_000), wide_raster, resolution)
        assert pieces and all(abs(p.scale_x) == resolution for p in pieces)
        xs = np.arange(20_000 + resolution, 30_000 - resolution, 10.0)
        return coverage.sample(pieces, xs, np.full(xs.shape, 607_500.0))

    for resolution in (300.0, 700.0, 900.0):
        got = asyncio.run(values(resolution))
        assert np.isfinite(got).all() and (got == 2500).all(), resolution
