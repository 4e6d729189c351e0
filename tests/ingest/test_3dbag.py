"""The 3D BAG GeoPackage (3dbag.nl) loads as it comes (issue 16): ``pand`` joined with ``lod12_2d`` on ``fid``,
roof parts combined per building (area-weighted), the ``NL.IMBAG.Pand.`` prefix stripped, heights above
ground added to the BAG's buildings without touching their BAG attributes or footprints; both name
generations (``b3_`` from 2023 on), EPSG:7415 and EPSG:28992.

The fixtures follow the 3dbag-docs layer schema (layers/data/3dbag.md): ``pand`` with ``fid`` as its primary
key and the building-wide attributes, ``lod12_2d``/``lod22_2d`` with one row per roof part and ``fid`` as an
ordinary column (several parts share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from ingest_fixtures import rows, run_cli, scalar, table_checksum

from ingest.loader import load
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")

X, Y = 155000.0, 463000.0  # Amersfoort
PREFIX = "NL.IMBAG.Pand."
A, B, C, D = "0307100000000001", "0307100000000002", "0307100000000003", "0307100000000099"


def box(dx: float, dy: float, w: float, h: float) -> shapely.Polygon:
    return shapely.box(X + dx, Y + dy, X + dx + w, Y + dy + h)


def _bag_pand(path: Path) -> Path:
    """The BAG as loaded before (PDOK bag-light ``pand``), with a height column for A and B."""
    recs = [
        {"identificatie": A, "bouwjaar": 1990, "status": "Pand in gebruik", "gebruiksdoel": "woonfunctie",
         "hoogte": 5.0, "geometry": box(0, 0, 10, 10)},
        {"identificatie": B, "bouwjaar": 1975, "status": "Pand in gebruik", "gebruiksdoel": "industriefunctie",
         "hoogte": 4.0, "geometry": box(100, 0, 20, 50)},  # a greenhouse
        {"identificatie": C, "bouwjaar": 2001, "status": "Pand in gebruik", "gebruiksdoel": "kantoorfunctie",
         "hoogte": None, "geometry": box(200, 0, 10, 10)},
    ]
    gpd.GeoDataFrame(recs, crs="EPSG:28992").to_file(path, layer="pand", driver="GPKG")
    return path


def _write(path: Path, layer: str, recs: list[dict[str, Any]], crs: str, pk_is_fid: bool) -> None:
    gdf = gpd.GeoDataFrame(recs, crs=crs)
    # pand: fid is the primary key; the LoD layers repeat it per roof part, so their key is another column.
    options = {} if pk_is_fid else {"FID": "ogc_fid"}
    gdf.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", layer_options=options)


def _new_generation(path: Path, with_pand: bool = True) -> Path:
    """A 3D BAG of 2024 (``b3_`` names) in EPSG:7415. Footprints in ``pand`` lie 1 m east of the BAG's, and its
    BAG attributes differ (bouwjaar + 1), so that the test sees they are not taken over for known buildings."""
    pand = [
        {"fid": 1, "identificatie": PREFIX + A, "status": "Pand in gebruik", "oorspronkelijkbouwjaar": 1991,
         "b3_h_maaiveld": 2.0, "b3_dak_type": "slanted", "b3_kas_warenhuis": False, "b3_volume_lod12": 800.5,
         "b3_volume_lod13": 810.0, "b3_volume_lod22": 790.25, "geometry": box(1, 0, 10, 10)},
        {"fid": 2, "identificatie": PREFIX + B, "status": "Pand in gebruik", "oorspronkelijkbouwjaar": 1976,
         "b3_h_maaiveld": 1.5, "b3_dak_type": "no points", "b3_kas_warenhuis": True, "b3_volume_lod12": None,
         "b3_volume_lod13": None, "b3_volume_lod22": None, "geometry": box(101, 0, 20, 50)},
        {"fid": 3, "identificatie": PREFIX + C, "status": "Pand in gebruik", "oorspronkelijkbouwjaar": 2002,
         "b3_h_maaiveld": 0.5, "b3_dak_type": "horizontal", "b3_kas_warenhuis": False, "b3_volume_lod12": 625.0,
         "b3_volume_lod13": 625.0, "b3_volume_lod22": 625.0, "geometry": box(201, 0, 10, 10)},
        {"fid": 4, "identificatie": PREFIX + D, "status": "Bouw gestart", "oorspronkelijkbouwjaar": 2024,
         "b3_h_maaiveld": 1.0, "b3_dak_type": "multiple horizontal", "b3_kas_warenhuis": False,
         "b3_volume_lod12": 600.0, "b3_volume_lod13": 600.0, "b3_volume_lod22": 610.0, "geometry": box(300, 0, 10, 10)},
    ]

    def part(fid: int, ident: str, deel: int, dd: int, h70: float | None, geom: shapely.Polygon) -> dict[str, Any]:
        return {"fid": fid, "identificatie": PREFIX + ident, "b3_pand_deel_id": deel, "b3_dd_id": dd,
                "b3_h_dak_min": None if h70 is None else h70 - 1, "b3_h_dak_50p": None if h70 is None else h70 - 0.5,
                "b3_h_dak_70p": h70, "b3_h_dak_max": None if h70 is None else h70 + 1, "geometry": geom}

    lod12 = [
        part(1, A, 0, 0, 12.0, box(1, 0, 6, 10)),    # 60 m2 at 12.0
        part(1, A, 0, 1, 7.0, box(7, 0, 4, 10)),     # 40 m2 at 7.0
        part(2, B, 0, 0, None, box(101, 0, 20, 50)),  # the greenhouse: no LoD 1.2 heights
        part(3, C, 0, 0, 6.75, box(201, 0, 10, 10)),
        part(4, D, 0, 0, 11.0, box(300, 0, 5, 10)),  # 50 m2 at 11.0
        part(4, D, 0, 1, 5.0, box(305, 0, 5, 5)),    # 25 m2 at 5.0
        part(4, D, 1, 2, None, box(305, 5, 5, 5)),   # 25 m2 without a height: left out
    ]
    lod22 = [part(1, A, 0, 0, 14.0, box(1, 0, 10, 10)), part(3, C, 0, 0, 7.0, box(201, 0, 10, 10)),
             part(4, D, 0, 0, 9.0, box(300, 0, 10, 10))]
    if with_pand:
        _write(path, "pand", pand, "EPSG:7415", pk_is_fid=True)
    _write(path, "lod12_2d", lod12, "EPSG:7415", pk_is_fid=False)
    _write(path, "lod22_2d", lod22, "EPSG:7415", pk_is_fid=False)
    return path


def _old_generation(path: Path) -> Path:
    """A 3D BAG of 2021 (v21.09: names without ``b3_``, fid kept in pand) in EPSG:28992."""
    pand = [
        {"fid": 7, "identificatie": PREFIX + A, "status": "Pand in gebruik", "oorspronkelijkbouwjaar": 1990,
         "h_maaiveld": 1.0, "dak_type": "slanted", "kas_warenhuis": False, "geometry": box(0, 0, 10, 10)},
        {"fid": 8, "identificatie": PREFIX + D, "status": "Pand in gebruik", "oorspronkelijkbouwjaar": 2019,
         "h_maaiveld": 3.0, "dak_type": "horizontal", "kas_warenhuis": False, "geometry": box(300, 0, 10, 10)},
    ]
    lod12 = [
        {"fid": 7, "pand_deel_id": 0, "dd_id": 0, "h_dak_50p": 8.0, "h_dak_70p": 9.0, "geometry": box(0, 0, 2, 10)},
        {"fid": 7, "pand_deel_id": 0, "dd_id": 1, "h_dak_50p": 3.0, "h_dak_70p": 4.0, "geometry": box(2, 0, 8, 10)},
        {"fid": 8, "pand_deel_id": 0, "dd_id": 0, "h_dak_50p": 12.0, "h_dak_70p": 13.5,
         "geometry": box(300, 0, 10, 10)},
    ]
    _write(path, "pand", pand, "EPSG:28992", pk_is_fid=True)
    _write(path, "lod12_2d", lod12, "EPSG:28992", pk_is_fid=False)
    return path


def _buildings(url: str) -> dict[str, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in rows(url, "SELECT building_id, height_m, roof_type, volume_m3, construction_year, "
                                           "status, use, round(ST_XMin(geom)) FROM twin.buildings")}


def test_3dbag_enriches_the_bag_buildings(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    assert load(ingest_settings, "buildings", _bag_pand(tmp_path / "bag.gpkg")).status == "succeeded"
    path = _new_generation(tmp_path / "3dbag.gpkg")

    done = run_cli(ingest_settings, "ingest", "buildings", str(path), "--no-quality")
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "pand joined with lod12_2d on fid" in out
    assert "EPSG:7415" in out

    got = _buildings(ingest_owner)
    assert sorted(got) == [A, B, C, D]  # no prefixed ids, nothing duplicated
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.buildings WHERE building_id LIKE 'NL%'") == 0
    # A: roof parts 60 m2 at 12.0 and 40 m2 at 7.0 -> (60*12 + 40*7) / 100 = 10.0 NAP; ground 2.0 -> 8.0 m.
    # Its BAG attributes and footprint stay (bouwjaar 1990, not the 3D BAG's 1991; x from 155000, not 155001).
    assert got[A] == (8.0, "slanted", 800.5, 1990, "Pand in gebruik", "woonfunctie", X)
    # B: a greenhouse without LoD 1.2 heights keeps the height it had (4.0); it has a roof type, no volume.
    assert got[B] == (4.0, "no points", None, 1975, "Pand in gebruik", "industriefunctie", X + 100)
    # C: one part at 6.75, ground 0.5 -> 6.25 m (it had no height).
    assert got[C] == (6.25, "horizontal", 625.0, 2001, "Pand in gebruik", "kantoorfunctie", X + 200)
    # D is not in the BAG: added with the 3D BAG's attributes and footprint; parts 50 m2 at 11.0 and 25 m2 at
    # 5.0 (the third part has no height) -> (550 + 125) / 75 = 9.0, ground 1.0 -> 8.0 m.
    assert got[D] == (8.0, "multiple horizontal", 600.0, 2024, "Bouw gestart", None, X + 300)

    before = table_checksum(ingest_owner, "buildings")
    again = run_cli(ingest_settings, "ingest", "buildings", str(path), "--no-quality")
    assert again.returncode == 0, again.stdout + again.stderr
    assert table_checksum(ingest_owner, "buildings") == before
    runs = rows(ingest_owner, "SELECT status, mode, rows_inserted, rows_updated FROM twin.ingest_runs "
                              "ORDER BY id DESC LIMIT 2")
    assert runs == [("unchanged", "enrich", 0, 0), ("succeeded", "enrich", 1, 3)]

    # LoD 2.2: A 14.0 - 2.0 = 12.0, C 7.0 - 0.5 = 6.5, D 9.0 - 1.0 = 8.0; volumes of lod22; B keeps 4.0.
    result = load(ingest_settings, "buildings", path, lod="2.2")
    assert result.status == "succeeded", result.message
    got = _buildings(ingest_owner)
    assert [got[k][:3] for k in (A, B, C, D)] == [(12.0, "slanted", 790.25), (4.0, "no points", None),
                                                 (6.5, "horizontal", 625.0), (8.0, "multiple horizontal", 610.0)]
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.buildings") == 4


def test_3dbag_before_2023_names(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    result = load(ingest_settings, "buildings", _old_generation(tmp_path / "3dbag_v2109.gpkg"))
    assert result.status == "succeeded", result.message
    got = _buildings(ingest_owner)
    # A: 20 m2 at 9.0 and 80 m2 at 4.0 -> (180 + 320) / 100 = 5.0 NAP, ground 1.0 -> 4.0 m; D: 13.5 - 3.0.
    assert {k: v[:2] for k, v in got.items()} == {A: (4.0, "slanted"), D: (10.5, "horizontal")}
    assert got[A][3] == 1990


def test_3dbag_lod_layer_alone(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    # With pand in the file, naming the LoD layer picks it for the join.
    path = _new_generation(tmp_path / "3dbag.gpkg")
    result = load(ingest_settings, "buildings", f"{path}:lod22_2d")
    assert result.status == "succeeded", result.message
    assert _buildings(ingest_owner)[A][0] == 12.0
    # Without pand: the parts combined per identificatie, the footprint their union (60 + 40 m2 for A).
    alone = _new_generation(tmp_path / "lod_only.gpkg", with_pand=False)
    result = load(ingest_settings, "buildings", f"{alone}:lod12_2d", mode="replace")
    assert result.status == "succeeded", result.message
    assert sorted(_buildings(ingest_owner)) == [A, B, C, D]
    assert scalar(ingest_owner, "SELECT round(ST_Area(geom)) FROM twin.buildings WHERE building_id = %s", (A,)) == 100
