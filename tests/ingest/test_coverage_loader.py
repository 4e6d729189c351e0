"""The deposition raster: georeferencing and values survive the tiling (a zonal mean worked out by hand),
overviews, nodata, units, years, CRS, reprojection, idempotency and the checks that refuse a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ingest_fixtures import rows, scalar, write_raster

from ingest.coverage_loader import MOL_N_PER_KG_N, NODATA, TILE
from ingest.loader import load
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")
X0, TOP, CELL = 150000.0, 461100.0, 10.0
NROWS, NCOLS = 110, 120  # 2 x 2 tiles of 100 cells


def grid() -> np.ndarray:
    r, c = np.mgrid[0:NROWS, 0:NCOLS]
    return (1000 + 2 * r + c).astype(np.float32)


def test_zonal_mean_of_a_hand_made_polygon(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    src = write_raster(tmp_path / "d.tif", [grid()], X0, TOP, CELL, descriptions=["2024"])
    result = load(ingest_settings, "nitrogen-deposition", src)
    assert result.status == "succeeded", result.message
    assert result.rows_inserted == 4  # ceil(110/100) x ceil(120/100) tiles
    # The polygon covers rows 98-101 in full and columns 98.5-101.5, across the tile boundary at column 100.
    x_left, x_right = X0 + 98.5 * CELL, X0 + 101.5 * CELL
    y_top, y_bottom = TOP - 98 * CELL, TOP - 102 * CELL
    weights = {98: 0.5, 99: 1.0, 100: 1.0, 101: 0.5}  # share of each column inside the polygon
    by_hand = sum(w * (1000 + 2 * r + c) for r in range(98, 102) for c, w in weights.items()) / \
        sum(w for _ in range(98, 102) for w in weights.values())
    assert by_hand == 1298.5
    polygon = f"POLYGON(({x_left} {y_bottom}, {x_right} {y_bottom}, {x_right} {y_top}, {x_left} {y_top}, " \
              f"{x_left} {y_bottom}))"
    mean = scalar(ingest_owner, """
        SELECT sum((pp).val * ST_Area(ST_Intersection((pp).geom, g))) / sum(ST_Area(ST_Intersection((pp).geom, g)))
        FROM twin.nitrogen_deposition d, ST_GeomFromText(%s, 28992) g, LATERAL ST_PixelAsPolygons(d.rast, 1, true) pp
        WHERE d.year = 2024 AND ST_Intersects(d.rast, g) AND ST_Intersects((pp).geom, g)""", (polygon,))
    assert mean == pytest.approx(by_hand, abs=1e-9)
    # The pixel-centre mean over whole cells (ST_Clip + ST_SummaryStatsAgg, as DESIGN.md measures it).
    inner = f"POLYGON(({X0 + 99 * CELL} {y_bottom}, {X0 + 101 * CELL} {y_bottom}, {X0 + 101 * CELL} {y_top}, " \
            f"{X0 + 99 * CELL} {y_top}, {X0 + 99 * CELL} {y_bottom}))"
    centre_mean = scalar(ingest_owner, """
        SELECT (ST_SummaryStatsAgg(ST_Clip(d.rast, g), 1, true)).mean
        FROM twin.nitrogen_deposition d, ST_GeomFromText(%s, 28992) g
        WHERE d.year = 2024 AND ST_Intersects(d.rast, g)""", (inner,))
    assert centre_mean == pytest.approx(np.mean([1000 + 2 * r + c for r in range(98, 102) for c in (99, 100)]))
    year = rows(ingest_owner, "SELECT year, label, unit, pixel_size, nodata, tile_size FROM "
                "twin.nitrogen_deposition_years")
    assert year == [(2024, "2024", "mol N/ha/yr", CELL, NODATA, TILE)]


def test_overviews_average_the_cells(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    values = grid()
    values[0, 0] = NODATA  # a nodata cell is left out of its block's mean
    load(ingest_settings, "nitrogen-deposition", write_raster(tmp_path / "d.tif", [values], X0, TOP, CELL,
                                                              descriptions=["2024"]))
    block = [1000 + 2 * r + c for r in range(4) for c in range(4) if (r, c) != (0, 0)]
    got = rows(ingest_owner, "SELECT ST_ScaleX(rast), ST_Value(rast, 1, 1, 1), ST_Width(rast), ST_Height(rast) "
               "FROM twin.nitrogen_deposition_o4")
    assert got == [(4 * CELL, pytest.approx(sum(block) / len(block)), NCOLS // 4, int(np.ceil(NROWS / 4)))]
    assert rows(ingest_owner, "SELECT ST_ScaleX(rast) FROM twin.nitrogen_deposition_o16") == [(16 * CELL,)]
    assert scalar(ingest_owner, "SELECT ST_Value(rast, 1, 1, 1) FROM twin.nitrogen_deposition "
                  "WHERE ST_UpperLeftX(rast) = %s AND ST_UpperLeftY(rast) = %s", (X0, TOP)) is None


def test_tiles_of_nodata_only_are_not_stored(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    values = grid()
    values[:100, 100:] = NODATA  # the whole upper-right tile
    result = load(ingest_settings, "nitrogen-deposition",
                  write_raster(tmp_path / "d.tif", [values], X0, TOP, CELL, descriptions=["2024"]))
    assert result.rows_inserted == 3


def test_kg_n_is_converted_to_mol(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    values = np.full((10, 10), 14.0067, dtype=np.float32)
    load(ingest_settings, "nitrogen-deposition", write_raster(tmp_path / "kg.tif", [values], X0, TOP, CELL,
                                                              descriptions=["2024"], units=["kg N/ha/yr"]))
    got = scalar(ingest_owner, "SELECT ST_Value(rast, 1, 5, 5) FROM twin.nitrogen_deposition")
    assert got == pytest.approx(float(np.float32(14.0067)) * MOL_N_PER_KG_N, rel=1e-6)
    assert got == pytest.approx(1000.0, rel=1e-5)


def test_years_from_descriptions_or_file_name_and_crs_from_option(ingest_settings: Settings, ingest_owner: str,
                                                                  tmp_path: Path) -> None:
    values = np.full((20, 20), 1500.0, dtype=np.float32)
    two = write_raster(tmp_path / "two.tif", [values, values + 100], X0, TOP, CELL, descriptions=["2023", "2030 WLO"])
    assert load(ingest_settings, "nitrogen-deposition", two).status == "succeeded"
    assert rows(ingest_owner, "SELECT year, label FROM twin.nitrogen_deposition_years ORDER BY 1") == \
        [(2023, "2023"), (2030, "2030 WLO")]
    asc = write_raster(tmp_path / "depo_ntot_2019.asc", [values], X0, TOP, CELL, crs=None, driver="AAIGrid")
    refused = load(ingest_settings, "nitrogen-deposition", asc)
    assert refused.status == "refused" and "--crs" in (refused.message or "")
    assert load(ingest_settings, "nitrogen-deposition", asc, crs="EPSG:28992").status == "succeeded"
    assert scalar(ingest_owner, "SELECT label FROM twin.nitrogen_deposition_years WHERE year = 2019") == "2019"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"descriptions": ["2024"], "units": ["ug/m3"]}, "is in 'ug/m3'; the coverage takes mol N/ha/yr"),
    ({}, "band 1 does not say which year it holds"),
])
def test_files_that_cannot_load_are_refused(kwargs: dict[str, list[str]], message: str, ingest_settings: Settings,
                                            ingest_owner: str, tmp_path: Path) -> None:
    src = write_raster(tmp_path / "bad.tif", [grid()], X0, TOP, CELL, **kwargs)  # type: ignore[arg-type]
    result = load(ingest_settings, "nitrogen-deposition", src)
    assert result.status == "refused" and message in (result.message or "")
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.nitrogen_deposition") == 0


def test_negative_deposition_is_refused(ingest_settings: Settings, tmp_path: Path) -> None:
    values = grid()
    values[5, 5] = -3
    result = load(ingest_settings, "nitrogen-deposition",
                  write_raster(tmp_path / "neg.tif", [values], X0, TOP, CELL, descriptions=["2024"]))
    assert result.status == "refused"
    assert result.message is not None and "1 cells of 2024 are below 0" in result.message


def test_wgs84_raster_is_put_on_the_rd_grid(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    values = np.full((60, 80), 1500.0, dtype=np.float32)
    src = write_raster(tmp_path / "wgs.tif", [values], 5.30, 52.20, 0.001, crs="EPSG:4326", descriptions=["2024"])
    result = load(ingest_settings, "nitrogen-deposition", src)
    assert result.status == "succeeded", result.message
    assert any("reprojected from EPSG:4326 to RD New" in n for n in result.notes)
    srid, scale, ulx, uly = rows(ingest_owner, "SELECT DISTINCT ST_SRID(rast), ST_ScaleX(rast), 0, 0 "
                                 "FROM twin.nitrogen_deposition")[0][:4]
    assert srid == 28992 and scale in (50.0, 100.0)  # 0.001 degree is ~68 m east-west, ~111 m north-south
    corners = rows(ingest_owner, "SELECT ST_UpperLeftX(rast), ST_UpperLeftY(rast) FROM twin.nitrogen_deposition")
    assert all(x % scale == 0 and y % scale == 0 for x, y in corners)  # aligned to the RD grid
    lo, hi = rows(ingest_owner, "SELECT min((s).min), max((s).max) FROM (SELECT ST_SummaryStats(rast) s "
                  "FROM twin.nitrogen_deposition) q")[0]
    assert lo == pytest.approx(1500.0) and hi == pytest.approx(1500.0)


def test_same_file_twice_is_unchanged_and_replace_drops_other_years(ingest_settings: Settings, ingest_owner: str,
                                                                    tmp_path: Path) -> None:
    a = write_raster(tmp_path / "a.tif", [grid(), grid() + 5], X0, TOP, CELL, descriptions=["2023", "2024"])
    first = load(ingest_settings, "nitrogen-deposition", a)
    second = load(ingest_settings, "nitrogen-deposition", a)
    assert (first.status, second.status, second.rows_unchanged) == ("succeeded", "unchanged", 8)
    b = write_raster(tmp_path / "b.tif", [grid() + 1], X0, TOP, CELL, descriptions=["2024"])
    third = load(ingest_settings, "nitrogen-deposition", b, mode="replace")
    assert (third.rows_inserted, third.rows_deleted) == (4, 8)
    assert rows(ingest_owner, "SELECT year FROM twin.nitrogen_deposition_years") == [(2024,)]
    assert scalar(ingest_owner, "SELECT count(DISTINCT year) FROM twin.nitrogen_deposition_o4") == 1
