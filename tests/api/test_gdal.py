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
