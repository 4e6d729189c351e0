"""A real client: GDAL's OAPIF driver (gdal-bin) against the API served by uvicorn on a loopback port.
ogrinfo lists the collections; ogr2ogr copies a whole collection to a GeoPackage through paging."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyogrio
import pytest
import shapely
from api_fixtures import Establishment
from servers import serve_app

from twin.settings import Settings


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    """The API on a free loopback port in a thread, for as long as the module runs."""
    with serve_app(settings) as base:
        yield base


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(args[0])
    assert tool, f"{args[0]} (gdal-bin) is not installed"
    return subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=120, check=False)


def test_ogrinfo_lists_the_collections(server: str, api_data: list[Establishment]) -> None:
    r = gdal("ogrinfo", "-ro", "-q", f"OAPIF:{server}")
    assert r.returncode == 0, r.stderr
    assert "establishments" in r.stdout and "natura2000-habitats" in r.stdout
    r = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server}/collections/establishments", "establishments")
    assert r.returncode == 0, r.stderr
    assert "Geometry: Point" in r.stdout and "sbi_code: String" in r.stdout


def test_ogr2ogr_copies_a_whole_collection_through_paging(server: str, api_data: list[Establishment],
                                                          reader_url: str, tmp_path: Path) -> None:
    out = tmp_path / "establishments.gpkg"
    r = gdal("ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{server}/collections/establishments")
    assert r.returncode == 0, r.stderr
    with psycopg.connect(reader_url) as conn:
        row = conn.execute("SELECT count(*) FROM twin.establishments").fetchone()
    assert row is not None
    meta, _fids, geometry, fields = pyogrio.raw.read(out)
    names = list(meta["fields"])
    ids = list(fields[names.index("establishment_id")])
    assert len(ids) == len(set(ids)) == row[0]  # every feature once, across GDAL's pages of 10
    by_id = {e.id: e for e in api_data}
    seen = 0
    for i, fid in enumerate(ids):
        e = by_id.get(fid)
        if e is None:
            continue
        seen += 1
        point = shapely.from_wkb(geometry[i])
        assert (point.x, point.y) == pytest.approx((e.lon, e.lat), abs=1e-6)
        assert fields[names.index("sbi_code")][i] == e.sbi_code
        assert fields[names.index("visit_frequency_years")][i] == e.frequency
    assert seen == len(api_data)


def test_ogr2ogr_with_a_spatial_filter(server: str, api_data: list[Establishment], tmp_path: Path) -> None:
    out = tmp_path / "part.gpkg"
    r = gdal("ogr2ogr", "-f", "GPKG", "-spat", "3.515", "53.505", "3.545", "53.525", str(out),
             f"OAPIF:{server}/collections/establishments")
    assert r.returncode == 0, r.stderr
    info = pyogrio.read_info(out)
    expected = [e for e in api_data if 3.515 < e.lon < 3.545 and 53.505 < e.lat < 53.525]
    assert info["features"] == len(expected) == 6


def test_gdal_mvt_driver_opens_a_tile_from_the_tilejson_template(server: str, api_data: list[Establishment],
                                                                 tmp_path: Path) -> None:
    """Issue 19: the TileJSON's template ends in .mvt, so GDAL's MVT driver (3.6) opens its tiles directly."""
    import json
    import math
    import urllib.request

    with urllib.request.urlopen(f"{server}/collections/establishments/tiles/WebMercatorQuad/tilejson.json") as r:
        template = json.load(r)["tiles"][0]
    assert template.endswith("/{z}/{x}/{y}.mvt")
    e = api_data[0]
    z = 12
    x = int((e.lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(e.lat))) / math.pi) / 2 * 2**z)
    url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    r = gdal("ogrinfo", "-ro", "-al", "-so", f"MVT:{url}")
    assert r.returncode == 0, r.stderr
    assert "Layer name: establishments" in r.stdout and "Geometry: Point" in r.stdout
    count = int(r.stdout.split("Feature Count: ")[1].split()[0])
    assert count >= 1
    out = tmp_path / "tile.gpkg"
    r = gdal("ogr2ogr", "-f", "GPKG", "-t_srs", "EPSG:4326", str(out), f"MVT:{url}")
    assert r.returncode == 0, r.stderr
    ids = set(pyogrio.read_dataframe(out)["establishment_id"])
    assert e.id in ids


def test_gdal_types_dates_from_the_feature_schema(server: str, api_data: list[Establishment]) -> None:
    """Issue 19: GDAL 3.6 infers field types from the first page, where a mostly-null date holds no value; it
    follows the collection's describedBy link to the feature schema and reads dates as Date."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server}/collections/establishments/schema") as r:
        part5 = json.load(r)
    assert part5["properties"]["ended_on"] == {**part5["properties"]["ended_on"], "type": "string", "format": "date"}
    assert part5["properties"]["establishment_id"]["x-ogc-role"] == "id"
    r = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server}/collections/establishments", "establishments")
    assert r.returncode == 0, r.stderr
    assert "started_on: Date" in r.stdout and "ended_on: Date" in r.stdout
    assert "visit_frequency_years: Integer" in r.stdout
