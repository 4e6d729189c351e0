"""CRS handling: RD New and WGS84 input land on the same spot, files without a CRS are refused, lat/lon
given as x/y (or swapped, or RD metres declared as degrees) is recognised and refused with that diagnosis,
and points outside the Netherlands are rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ingest_fixtures import ESTABLISHMENTS, establishments_gdf, rows, write_csv
from pyproj import Geod

from ingest.loader import load
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")
# The RD New origin (Onze Lieve Vrouwetoren, Amersfoort) and its WGS84 position to 5 decimals.
RD_ORIGIN = (155000.0, 463000.0)
ORIGIN_LONLAT = (5.38721, 52.15517)
WGS84 = Geod(ellps="WGS84")


def _one(x: float | str, y: float | str, xname: str = "x_coord", yname: str = "y_coord") -> list[dict[str, object]]:
    row = {k: v for k, v in ESTABLISHMENTS[0].items() if k not in ("x_coord", "y_coord")}
    return [{**row, xname: x, yname: y}]


def test_rd_input_lies_at_the_rd_origin_in_wgs84(ingest_settings: Settings, ingest_owner: str,
                                                 tmp_path: Path) -> None:
    src = write_csv(tmp_path / "rd.csv", _one(*RD_ORIGIN))
    assert load(ingest_settings, "establishments", src, crs="EPSG:28992").status == "succeeded"
    lon, lat = rows(ingest_owner, "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, 4326) g "
                    "FROM twin.establishments) s")[0]
    _, _, metres = WGS84.inv(lon, lat, *ORIGIN_LONLAT)
    assert metres < 1.0


@pytest.mark.parametrize("fmt", ["csv-lonlat", "geojson"])
def test_wgs84_input_lands_on_the_rd_origin(fmt: str, ingest_settings: Settings, ingest_owner: str,
                                            tmp_path: Path) -> None:
    if fmt == "csv-lonlat":
        src = write_csv(tmp_path / "ll.csv", _one(*ORIGIN_LONLAT, xname="lon", yname="lat"))
    else:
        props = {k: v for k, v in _one(0, 0)[0].items() if k not in ("x_coord", "y_coord")}
        src = tmp_path / "ll.geojson"
        src.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": props,
             "geometry": {"type": "Point", "coordinates": list(ORIGIN_LONLAT)}}]}))
    result = load(ingest_settings, "establishments", src)
    assert result.status == "succeeded", result.message
    x, y = rows(ingest_owner, "SELECT ST_X(geom), ST_Y(geom) FROM twin.establishments")[0]
    assert ((x - RD_ORIGIN[0]) ** 2 + (y - RD_ORIGIN[1]) ** 2) ** 0.5 < 1.0


def test_a_file_without_crs_is_refused(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    csv_src = write_csv(tmp_path / "e.csv", ESTABLISHMENTS)
    result = load(ingest_settings, "establishments", csv_src)
    assert result.status == "refused"
    assert result.message == (f"{csv_src}: the file does not say in which coordinate system its coordinates are; "
                              "give it with --crs (EPSG:28992 for RD New metres, EPSG:4326 for longitude/latitude)")
    shp = tmp_path / "e.shp"
    establishments_gdf().to_file(shp)
    shp.with_suffix(".prj").unlink()
    result = load(ingest_settings, "establishments", shp)
    assert result.status == "refused" and "--crs" in (result.message or "")
    assert rows(ingest_owner, "SELECT count(*) FROM twin.establishments") == [(0,)]
    # With --crs the same files load.
    assert load(ingest_settings, "establishments", shp, crs="EPSG:28992").rows_inserted == 12


def test_lonlat_given_as_xy_is_refused_with_the_diagnosis(ingest_settings: Settings, tmp_path: Path) -> None:
    data = [{**r, "x_coord": 5.3 + 0.01 * i, "y_coord": 52.1} for i, r in enumerate(ESTABLISHMENTS)]
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", data), crs="EPSG:28992")
    assert result.status == "refused"
    assert "look like longitude/latitude degrees given as x/y" in (result.message or "")
    assert "--crs EPSG:4326" in (result.message or "")


def test_swapped_lat_lon_is_refused(ingest_settings: Settings, tmp_path: Path) -> None:
    data = [{**r, "lon": 52.1, "lat": 5.3 + 0.01 * i} for i, r in enumerate(ESTABLISHMENTS)]
    data = [{k: v for k, v in d.items() if not k.endswith("coord")} for d in data]
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", data))
    assert result.status == "refused"
    assert "latitude/longitude in swapped order" in (result.message or "")


def test_rd_metres_in_geojson_are_refused(ingest_settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "rd.geojson"
    features = [{"type": "Feature", "properties": {k: v for k, v in r.items() if not k.endswith("coord")},
                 "geometry": {"type": "Point", "coordinates": [r["x_coord"], r["y_coord"]]}} for r in ESTABLISHMENTS]
    src.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = load(ingest_settings, "establishments", src)
    assert result.status == "refused"
    assert "look like RD New metres" in (result.message or "") and "--crs EPSG:28992" in (result.message or "")
    assert load(ingest_settings, "establishments", src, crs="EPSG:28992").rows_inserted == 12


def test_points_outside_the_netherlands_are_rejected(ingest_settings: Settings, tmp_path: Path) -> None:
    data = [dict(r) for r in ESTABLISHMENTS]
    data[4].update(x_coord=275000.0, y_coord=470000.0)  # Germany, east of Enschede (inside the RD bounding box)
    data[7].update(x_coord=40000.0, y_coord=560000.0)  # North Sea
    data[9].update(x_coord=-120000.0, y_coord=100000.0)  # far outside RD New
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", data), crs="EPSG:28992",
                  max_reject_rate=0.5)
    assert result.rows_inserted == 9
    outside = {r.row: r.reason for r in result.rejects}
    assert set(outside) == {5, 8, 10}
    assert outside[5] == "the location lies outside the Netherlands (x 275000, y 470000 in EPSG:28992)"
    assert all(reason.startswith("the location lies outside the Netherlands") for reason in outside.values())
