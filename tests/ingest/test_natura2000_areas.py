"""The Natura 2000 areas as PDOK (RVO) publishes them (naamN2K, nr, status, beschermin, sitecodeH, sitecodeV; a
single space where a site code does not apply; some areas as one feature per designation) load as the layer
natura2000-areas, are served as an API collection, and the area context and housing verdicts name the area."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from ingest_fixtures import TO_WGS84, rows, run_cli

from ingest.loader import load
from twin.analyses.context import area_context_sync
from twin.analyses.housing import verdict_for
from twin.settings import Settings

VELUWE = shapely.box(185000.0, 465000.0, 189000.0, 468000.0)
# Sint Pietersberg & Jekerdal: two features, one per directive (HR and VR), as PDOK has it.
PIETERSBERG_HR = shapely.box(175500.0, 314500.0, 176500.0, 316000.0)
PIETERSBERG_VR = shapely.box(175800.0, 314800.0, 176300.0, 315500.0)


def _pdok(path: Path) -> Path:
    gdf = gpd.GeoDataFrame(
        {"naamN2K": [" Veluwe ", "Sint Pietersberg & Jekerdal", "Sint Pietersberg & Jekerdal"],
         "nr": [57, 161, 161],
         "status": ["definitief", "definitief", "ontwerp"],
         "beschermin": ["VR+HR", "HR", "VR"],
         "sitecodeH": ["NL9801023", "NL1000007", " "],
         "sitecodeV": ["NL3009017", " ", "NL9802042"]},
        geometry=[shapely.MultiPolygon([g]) for g in (VELUWE, PIETERSBERG_HR, PIETERSBERG_VR)], crs="EPSG:28992")
    gdf.to_file(path, driver="ESRI Shapefile" if path.suffix == ".shp" else "GPKG")
    return path


def _check(owner: str) -> None:
    got = rows(owner, "SELECT area_id, name, number, status, protection, sitecode_h, sitecode_v, "
               "round(ST_Area(geom)) FROM twin.natura2000_areas ORDER BY area_id")
    assert got == [
        ("161-HR", "Sint Pietersberg & Jekerdal", 161, "definitief", "HR", "NL1000007", None, 1000 * 1500),
        ("161-VR", "Sint Pietersberg & Jekerdal", 161, "ontwerp", "VR", None, "NL9802042", 500 * 700),
        ("57-VR+HR", "Veluwe", 57, "definitief", "VR+HR", "NL9801023", "NL3009017", 4000 * 3000),
    ]


@pytest.mark.usefixtures("empty_layers")
def test_pdok_shapefile_loads_with_the_cli_and_is_served(ingest_settings: Settings, ingest_owner: str,
                                                          tmp_path: Path) -> None:
    path = _pdok(tmp_path / "natura2000.shp")
    done = run_cli(ingest_settings, "ingest", "natura2000-areas", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    _check(ingest_owner)
    # Loading it again changes nothing (same keys, same values).
    again = load(ingest_settings, "natura2000-areas", path)
    assert (again.status, again.rows_inserted, again.rows_updated) == ("unchanged", 0, 0)

    from api.app import create_app

    with TestClient(create_app(ingest_settings)) as client:
        r = client.get("/collections")
        assert "natura2000-areas" in {c["id"] for c in r.json()["collections"]}
        r = client.get("/collections/natura2000-areas/items", params={"number": 57})
        assert r.status_code == 200, r.text
        (feature,) = r.json()["features"]
        assert feature["id"] == "57-VR+HR"
        assert {k: feature["properties"][k] for k in ("name", "number", "protection", "sitecode_h")} == {
            "name": "Veluwe", "number": 57, "protection": "VR+HR", "sitecode_h": "NL9801023"}
        lon0, lat0, lon1, lat1 = shapely.bounds(shapely.geometry.shape(feature["geometry"]))
        want = TO_WGS84.transform(185000.0, 465000.0)
        assert abs(lon0 - want[0]) < 0.002 and abs(lat0 - want[1]) < 0.002
        assert client.get("/collections/natura2000-areas/tiles/WebMercatorQuad/8/131/84").status_code in (200, 204)


@pytest.mark.usefixtures("empty_layers")
def test_gpkg_loads_and_the_context_names_area_and_habitat(ingest_settings: Settings, ingest_owner: str,
                                                           tmp_path: Path) -> None:
    result = load(ingest_settings, "natura2000-areas", _pdok(tmp_path / "natura2000.gpkg"))
    assert result.status == "succeeded", result.message
    _check(ingest_owner)
    # A BIJ12 habitat polygon inside the Veluwe (no area name in the file): 70% H4030 + 30% H3130.
    gpd.GeoDataFrame({"ElmID": [7.0], "Habtype1": ["H4030"], "Perc1": [70], "Kwal1": ["G"], "Habtype2": ["H3130"],
                      "Perc2": [30], "Kwal2": ["M"]},
                     geometry=[shapely.box(186000, 466000, 186400, 466400)], crs="EPSG:28992"
                     ).to_file(tmp_path / "habitats.gpkg")
    assert load(ingest_settings, "natura2000-habitats", tmp_path / "habitats.gpkg").status == "succeeded"

    lon, lat = TO_WGS84.transform(186200.0, 466200.0)
    ctx: dict[str, Any] = area_context_sync(ingest_settings, lon=lon, lat=lat, radius=500)
    (area,) = ctx["natura2000_areas"]  # the Pietersberg is 150 km away
    assert (area["name"], area["number"], area["protection"], area["source"]) == (
        "Veluwe", 57, "VR+HR", "natura2000-areas")
    assert area["distance_m"] == 0
    assert area["lowest_kdw_habitat"] == {"habitat_type": "H3130", "kdw": 571, "habitat_id": "7"}
    (habitat,) = ctx["habitats"]
    assert (habitat["area_name"], habitat["area_number"], habitat["habitat_type"], habitat["kdw"]) == (
        "Veluwe", 57, "H3130", 571)
    assert habitat["habitat_types"] == "H4030 70% G; H3130 30% M"


@pytest.mark.usefixtures("empty_layers")
def test_without_the_areas_layer_the_context_names_the_area_of_the_habitat_rows(
        ingest_settings: Settings, tmp_path: Path) -> None:
    gpd.GeoDataFrame({"identificatie": ["N2K057-1"], "naamN2K": ["Veluwe"], "nr": [57], "beschermin": ["VR+HR"],
                      "Habtype1": ["H4010A"], "Perc1": [100], "Kwal1": ["G"]},
                     geometry=[shapely.box(186000, 466000, 186400, 466400)], crs="EPSG:28992"
                     ).to_file(tmp_path / "habitats.gpkg")
    assert load(ingest_settings, "natura2000-habitats", tmp_path / "habitats.gpkg").status == "succeeded"
    lon, lat = TO_WGS84.transform(186200.0, 466200.0)
    ctx = area_context_sync(ingest_settings, lon=lon, lat=lat, radius=500)
    (area,) = ctx["natura2000_areas"]
    assert (area["name"], area["number"], area["source"]) == ("Veluwe", 57, "natura2000-habitats")
    assert area["lowest_kdw_habitat"]["habitat_type"] == "H4010A" and area["lowest_kdw_habitat"]["kdw"] == 1214


def test_the_housing_verdict_names_area_habitat_type_and_kdw(ingest_settings: Settings) -> None:
    site = {"establishments": [], "habitats": {
        "overloaded_hexagons": 3, "overloaded_ha": 3.0, "nearest_overloaded_m": 400.0, "worst_exceedance": 250.0,
        "approaching_hexagons": 0, "approaching_ha": 0.0, "nearest_approaching_m": None,
        "nearest_area": "Veluwe", "nearest_area_number": 57, "nearest_habitat_type": "H3130", "nearest_kdw": 571.0}}
    verdict, reasons = verdict_for(site, ingest_settings)
    assert verdict == "conflict"
    assert "(Natura 2000 area Veluwe (57), habitat type H3130, KDW 571 mol N/ha/yr)" in reasons[0]
