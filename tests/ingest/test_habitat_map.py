"""A BIJ12 habitattypenkaart loads as it comes: ElmID (written as a float) is the id, there is no area name, every
complex part (Habtype1..n, Perc1..n, Kwal1..n) is kept, the KDW is the lowest of the types present, H0000 and
search areas (ZGH...) are what they are. Also: the KDW list is data (layers/data/kdw.csv, TWIN_KDW_FILE) and
every habitat type code of the demo and of the list parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from ingest_fixtures import rows, run_cli

from demo import catalog
from ingest.loader import load
from layers.kdw import SHIPPED_KDW_FILE, is_habitat_code, kdw_table, normalise_code, read_kdw_file
from layers.registry import KDW_BY_HABITAT_TYPE
from twin.settings import Settings

# The values of the shipped list that this test relies on (Van Dobben et al. 2012, as in DESIGN.md).
H4030, H3130, H4010A, H4010B = 1071.0, 571.0, 1214.0, 786.0

# (ElmID as veg2hab writes it: float64, parts (Habtype, Perc, Kwal)); on the Veluwe, RD New.
POLYGONS: list[tuple[float, list[tuple[str | None, float | None, str | None]]]] = [
    (101.0, [("H4030", 70, "G"), ("H3130", 30, "M")]),
    (102.0, [("H7140_B", 60, "G"), ("ZGH4030", 40, "X")]),   # H7140B: no KDW in the shipped list
    (103.0, [("H0000", 100, "X")]),                            # no habitat type: not stored
    (104.0, [("ZGH3130", 100, "X")]),                          # only a search area: not stored
    (105.0, [("H4010A", 50, "G"), ("H2310", 30, "M"), ("H0000", 20, "X")]),  # H2310: no KDW in the list
    (106.0, [("h4010_b ", 100, "G")]),                         # case, underscore and space normalised
]


def _bij12(path: Path) -> Path:
    records: list[dict[str, Any]] = []
    geoms = []
    for k, (elm, parts) in enumerate(POLYGONS):
        rec: dict[str, Any] = {"ElmID": elm, "Area": 40000.0, "Opm": None, "Datum": "2023-05-01"}
        for i in range(1, 4):
            code, perc, kwal = parts[i - 1] if i <= len(parts) else (None, None, None)
            rec[f"Habtype{i}"], rec[f"Perc{i}"], rec[f"Opp{i}"], rec[f"Kwal{i}"] = (
                code, perc, None if perc is None else 400.0 * perc, kwal)
            rec[f"VvN{i}"], rec[f"SBB{i}"] = None, None
        records.append(rec)
        x0 = 186000.0 + 300.0 * k
        geoms.append(shapely.MultiPolygon([shapely.box(x0, 466000.0, x0 + 200.0, 466200.0)]))
    gdf = gpd.GeoDataFrame(records, geometry=geoms, crs="EPSG:28992")
    gdf.to_file(path, driver="ESRI Shapefile" if path.suffix == ".shp" else "GPKG")
    return path


def _stored(owner: str) -> dict[str, tuple[Any, ...]]:
    got = rows(owner, "SELECT habitat_id, area_name, habitat_type, habitat_share, quality, kdw, habitat_types "
               "FROM twin.natura2000_habitats ORDER BY habitat_id")
    return {r[0]: r[1:] for r in got}


def _check_values(owner: str) -> None:
    stored = _stored(owner)
    assert sorted(stored) == ["101", "102", "105", "106"]  # ElmID 101.0 -> "101"; H0000 and ZGH-only left out
    # 70% H4030 + 30% H3130: the lowest KDW present (H3130) counts, not the largest part's.
    assert stored["101"] == (None, "H3130", 30.0, "M", H3130, "H4030 70% G; H3130 30% M")
    assert min(H4030, H3130) == H3130 == 571.0
    # The search area stays in the list, marked, but gives no KDW; H7140B has none in the shipped list.
    assert stored["102"] == (None, "H7140B", 60.0, "G", None, "H7140B 60% G; ZGH4030 40% X (search area)")
    # H0000 does not count; H2310 has no KDW: the polygon's KDW is H4010A's (1214, not H4010B's 786).
    assert stored["105"][1:5] == ("H4010A", 50.0, "G", H4010A)
    assert stored["105"][5] == "H4010A 50% G; H2310 30% M; H0000 20% X"
    assert stored["106"][1:5] == ("H4010B", 100.0, "G", H4010B)
    # The parts as rows (the view natura2000_habitat_types).
    parts = rows(owner, "SELECT part, habitat_type, share, quality, search_area FROM twin.natura2000_habitat_types "
                 "WHERE habitat_id = '102' ORDER BY part")
    assert parts == [(1, "H7140B", 60.0, "G", False), (2, "ZGH4030", 40.0, "X", True)]


@pytest.mark.usefixtures("empty_layers")
def test_bij12_gpkg_loads_with_the_cli(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    path = _bij12(tmp_path / "habitattypenkaart.gpkg")
    done = run_cli(ingest_settings, "ingest", "natura2000-habitats", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "not stored" in out and "1 row(s) with only H0000" in out and "1 row(s) with only search areas" in out
    _check_values(ingest_owner)
    warned = rows(ingest_owner, "SELECT row_number, reason FROM twin.ingest_rejects WHERE run_id = "
                  "(SELECT max(id) FROM twin.ingest_runs) AND severity = 'warning' ORDER BY row_number")
    assert [r[0] for r in warned] == [2, 5]
    assert "H7140B has no known KDW" in warned[0][1] and "TWIN_KDW_FILE" in warned[0][1]
    assert "H2310 has no known KDW" in warned[1][1] and "1214" in warned[1][1]
    run = rows(ingest_owner, "SELECT rows_read, rows_inserted, rows_rejected, warnings FROM twin.ingest_runs "
               "WHERE id = (SELECT max(id) FROM twin.ingest_runs)")
    assert run == [(6, 4, 0, 2)]


@pytest.mark.usefixtures("empty_layers")
def test_bij12_shapefile_loads_and_a_users_kdw_file_completes_the_list(ingest_settings: Settings,
                                                                      ingest_owner: str, tmp_path: Path) -> None:
    path = _bij12(tmp_path / "habitattypenkaart.shp")
    result = load(ingest_settings, "natura2000-habitats", path)
    assert result.status == "succeeded", result.message
    _check_values(ingest_owner)
    # A user's list adds what the shipped one lacks (the value here is a test value, not a published KDW).
    own = tmp_path / "kdw_extra.csv"
    own.write_text("code,kdw,name_nl\nH7140_B,999,test value\n", encoding="utf-8")
    result = load(ingest_settings.model_copy(update={"kdw_file": own}), "natura2000-habitats", path)
    assert result.status == "succeeded", result.message
    assert _stored(ingest_owner)["102"][4] == 999.0
    assert result.warnings == 1  # only H2310 is left without a KDW


def test_a_code_that_is_no_habitat_type_is_kept_with_a_warning(ingest_settings: Settings, ingest_owner: str,
                                                                tmp_path: Path) -> None:
    """Kept as written, without a KDW, for the data-quality rule "habitat type is a code" to report."""
    gdf = gpd.GeoDataFrame({"ElmID": [1.0, 2.0], "Habtype1": ["H4030", "heide"], "Perc1": [100, 100],
                            "Kwal1": ["G", "G"]},
                           geometry=[shapely.box(186000, 466000, 186100, 466100),
                                     shapely.box(186200, 466000, 186300, 466100)], crs="EPSG:28992")
    gdf.to_file(tmp_path / "bad.gpkg")
    result = load(ingest_settings, "natura2000-habitats", tmp_path / "bad.gpkg", mode="replace")
    assert result.status == "succeeded" and result.rows_rejected == 0
    (warning,) = [r for r in result.rejects if r.severity == "warning"]
    assert (warning.row, warning.field) == (2, "Habtype1")
    assert "Habtype1 'heide' is not a habitat type code" in warning.reason
    assert rows(ingest_owner, "SELECT habitat_id, habitat_type, kdw FROM twin.natura2000_habitats "
                "ORDER BY habitat_id") == [("1", "H4030", H4030), ("2", "heide", None)]


def test_kdw_list_is_data_with_the_corrected_values() -> None:
    shipped = read_kdw_file(SHIPPED_KDW_FILE)
    assert KDW_BY_HABITAT_TYPE == shipped == kdw_table()
    assert (shipped["H4010A"], shipped["H4010B"]) == (1214.0, 786.0)
    assert shipped["H3130"] == 571.0 and shipped["H4030"] == 1071.0


def test_every_habitat_code_of_the_demo_and_of_the_list_parses_and_normalises() -> None:
    demo_codes = {code for area in catalog.NATURA2000_AREAS for code, _ in area.habitats} | set(catalog.KDW)
    list_codes = [line.split(",")[0] for line in SHIPPED_KDW_FILE.read_text(encoding="utf-8").splitlines()[1:]
                  if line.strip()]
    for code in [*demo_codes, *list_codes]:
        norm = normalise_code(code)
        assert norm is not None and is_habitat_code(norm), code
        assert normalise_code(norm) == norm  # the normal form is stable
    assert set(list_codes) == set(KDW_BY_HABITAT_TYPE)  # the list is written in the normal form
    assert {normalise_code(c) for c in ("H7140_B", "h7140b", " H7140 B ", "H7140-B")} == {"H7140B"}
    assert normalise_code("zgh4030") == "ZGH4030" and is_habitat_code("ZGH4030")
    assert not is_habitat_code(normalise_code("heide"))


def test_a_bad_kdw_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "kdw.csv"
    bad.write_text("code,kdw\nH4030,1071\nheide,500\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"kdw.csv, line 3: code 'heide'"):
        read_kdw_file(bad)
    bad.write_text("code,kdw\nH4030,veel\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2: kdw 'veel' of H4030 is not a number"):
        read_kdw_file(bad)
