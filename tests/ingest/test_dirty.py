"""One test per fault of the demo generator's dirty set (demo/dirty.py): the loader rejects the
row the manifest names, under the field it names, for the reason it should, or refuses the whole file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from ingest_fixtures import rows, scalar

from demo.dirty import write_dirty
from ingest.loader import load
from ingest.runs import RunResult
from ingest.values import DATE_REASON
from twin.settings import Settings

TESTED: set[str] = set()


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("dirty")
    write_dirty(out, seed=42)
    manifest = json.loads((out / "manifest.json").read_text())
    return {"dir": out, "manifest": manifest, "faults": {f["fault"]: f for f in manifest["files"]}}


@pytest.fixture(scope="module")
def reference(dirty: dict[str, Any], ingest_settings: Settings, ingest_owner: str) -> Iterator[None]:
    """The clean establishments the dirty permits and inspections refer to."""
    import psycopg

    with psycopg.connect(ingest_owner) as conn:
        conn.execute("TRUNCATE twin.establishments, twin.permits, twin.inspections, twin.natura2000_habitats, "
                     "twin.buildings CASCADE")
    for ref in dirty["manifest"]["reference_files"]:
        result = load(ingest_settings, ref["layer"], dirty["dir"] / ref["file"], crs=ref["crs"])
        assert result.status == "succeeded", result.message
    yield


def _load(dirty: dict[str, Any], settings: Settings, fault: str, **kwargs: Any) -> tuple[RunResult, dict[str, Any]]:
    TESTED.add(fault)
    f = dirty["faults"][fault]
    result = load(settings, f["layer"], dirty["dir"] / f["file"], crs=f["crs"], max_reject_rate=1.0, **kwargs)
    return result, f


def _only_reject(result: RunResult, f: dict[str, Any]) -> str:
    errors = [r for r in result.rejects if r.severity == "error"]
    assert [(r.row, r.field) for r in errors] == [(f["row"], f["field"])], [r.reason for r in errors]
    assert result.rows_rejected == 1 and result.rows_loaded + result.rows_unchanged == f["rows"] - 1
    return errors[0].reason


pytestmark = pytest.mark.usefixtures("reference")


def test_missing_coordinates(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "missing-coordinates")
    assert _only_reject(result, f) == "x_coord and y_coord are empty: the row has no location"


def test_latlon_swapped(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "latlon-swapped")
    reason = _only_reject(result, f)
    assert reason.startswith("the location lies outside the Netherlands (x 52.1")
    assert "the coordinates look like latitude/longitude degrees given as x/y" in reason
    assert [r.value for r in result.rejects] == [f["value"]]


def test_outside_netherlands(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "outside-netherlands")
    assert _only_reject(result, f) == "the location lies outside the Netherlands (x 40000, y 520000 in EPSG:28992)"
    assert [r.value for r in result.rejects] == [f["value"]]


def test_duplicate_id(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "duplicate-id")
    assert _only_reject(result, f) == f"inrichting_id {f['value']!r} is a duplicate: row 2 has the same key"


def test_unknown_sbi_code(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "unknown-sbi-code")
    assert _only_reject(result, f) == "sbi_code '0000' is not an SBI 2008 code: there is no SBI division 00"


def test_empty_file(dirty: dict[str, Any], ingest_settings: Settings, ingest_owner: str) -> None:
    result, f = _load(dirty, ingest_settings, "empty-file")
    assert result.status == "refused"
    assert result.message == f"{dirty['dir'] / f['file']}: the file is empty (a CSV needs a header line)"
    assert scalar(ingest_owner, "SELECT status FROM twin.ingest_runs WHERE id = %s", (result.run_id,)) == "refused"


def test_unknown_establishment(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "unknown-establishment")
    assert _only_reject(result, f) == ("inrichting_id 'INR9999999' does not exist: no establishments row with this "
                                       "establishment_id in the twin (load establishments first)")


def test_bad_date_format(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "bad-date-format")
    assert _only_reject(result, f) == f"datum_controle {f['value']!r} {DATE_REASON}"


def test_text_in_numeric_field(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "text-in-numeric-field")
    assert _only_reject(result, f) == "nh3_emissie 'circa 12' is not a number"


def test_self_intersecting_polygon(dirty: dict[str, Any], ingest_settings: Settings, ingest_owner: str) -> None:
    result, f = _load(dirty, ingest_settings, "self-intersecting-polygon")
    # Polygons with only H0000 (no habitat type) are read but not stored, and counted (no rejects).
    no_habitat = int((pyogrio.read_dataframe(dirty["dir"] / f["file"])["Habtype1"] == "H0000").sum())
    assert f"not stored: {no_habitat} row(s) with only H0000 (no habitat type)" in result.notes or not no_habitat
    # A bow-tie becomes two triangles: still a MultiPolygon, so it is repaired (with a warning), not rejected.
    assert result.rows_rejected == 0 and result.rows_loaded == f["rows"] - no_habitat
    warnings = [r for r in result.rejects if r.severity == "warning"]
    assert [(r.row, r.field) for r in warnings] == [(f["row"], f["field"])]
    assert warnings[0].reason.startswith("geom: the geometry was invalid (Self-intersection")
    assert warnings[0].reason.endswith("and was repaired with ST_MakeValid")
    assert rows(ingest_owner, "SELECT bool_and(ST_IsValid(geom)), count(*) FROM twin.natura2000_habitats") == \
        [(True, f["rows"] - no_habitat)]


def test_missing_crs(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "missing-crs")
    assert f["crs"] is None
    assert result.status == "refused"
    assert result.message is not None and "does not say in which coordinate system" in result.message
    assert "--crs" in result.message


def test_truncated_raster(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "truncated-raster")
    assert result.status == "refused"
    assert result.message is not None and f["file"] in result.message and "cannot be read" in result.message


def test_every_fault_has_a_test(dirty: dict[str, Any]) -> None:
    names = {n[len("test_"):].replace("_", "-") for n in globals() if n.startswith("test_")}
    assert set(dirty["faults"]) <= names, set(dirty["faults"]) - names


def test_rejects_report_lists_the_row(dirty: dict[str, Any], ingest_settings: Settings) -> None:
    result, f = _load(dirty, ingest_settings, "bad-date-format")
    report = Path(str(dirty["dir"] / f["file"]) + ".rejects.csv")
    assert result.report == report
    lines = report.read_text().splitlines()
    assert lines[0] == "file,row,field,value,reason,severity"
    assert lines[1].startswith(f"{dirty['dir'] / f['file']},{f['row']},datum_controle,{f['value']},")
