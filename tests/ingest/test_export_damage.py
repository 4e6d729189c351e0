"""Everyday export damage (issue 16): Excel's trailing separator lines, no-value words, UTF-16 and
Windows-1252 files, Shapefile names cut short, BAG ids that lost their leading zero, the BAG's bouwjaar 1005,
and the data folder found from any working directory. Each damage is repaired (values checked after loading)
or refused per row or per file, and a refused file leaves nothing behind."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from ingest_fixtures import CSV_FIELDS, ESTABLISHMENTS, ROOT, rows, run_cli, scalar, write_csv

from ingest.loader import load
from twin import cluster
from twin.settings import Settings, default_data_dir

pytestmark = pytest.mark.usefixtures("empty_layers")


def _csv_text(data: list[dict[str, object]], fields: list[str], delimiter: str = ";") -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, delimiter=delimiter, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    w.writerows(data)
    return out.getvalue()


def _establishments(url: str) -> list[tuple[object, ...]]:
    return rows(url, "SELECT establishment_id, name, kvk_number, legal_form, environmental_category, "
                "visit_frequency_years, started_on::text FROM twin.establishments ORDER BY 1")


# --- trailing lines of only separators -----------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ","])
def test_trailing_separator_lines_are_skipped(ingest_settings: Settings, ingest_owner: str, tmp_path: Path,
                                              delimiter: str) -> None:
    # Excel writes as many separators as the header has (';;;;;;;;;;'), other tools fewer.
    full = delimiter * (len(CSV_FIELDS) - 1)
    text = _csv_text(ESTABLISHMENTS, CSV_FIELDS, delimiter) + f"{full}\r\n{full}\r\n{delimiter * 3}\r\n"
    src = tmp_path / "inrichtingen.csv"
    src.write_text(text, encoding="utf-8")
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.0)
    assert (result.status, result.rows_read, result.rows_inserted, result.rows_rejected) == ("succeeded", 12, 12, 0)
    assert result.separator_lines == 3
    assert any("3 line(s) of only separators" in n for n in result.notes)
    assert [r[0] for r in _establishments(ingest_owner)] == [r["inrichting_id"] for r in ESTABLISHMENTS]
    options = scalar(ingest_owner, "SELECT options FROM twin.ingest_runs WHERE id = %s", (result.run_id,))
    assert options["separator_lines"] == 3


def test_separator_lines_do_not_shift_row_numbers(ingest_settings: Settings, ingest_owner: str,
                                                  tmp_path: Path) -> None:
    data = [dict(r) for r in ESTABLISHMENTS]
    data[10]["sbi_code"] = "9"  # a bad row after the blank line: its number must be the line's record number
    lines = _csv_text(data, CSV_FIELDS).splitlines()
    lines.insert(3, ";" * (len(CSV_FIELDS) - 1))  # a separator line between record 2 and 3
    src = tmp_path / "gaten.csv"
    src.write_text("\r\n".join(lines) + "\r\n;;\r\n", encoding="utf-8")
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.5)
    assert (result.rows_inserted, result.rows_rejected, result.separator_lines) == (11, 1, 2)
    bad = [r for r in result.rejects if r.severity == "error"]
    assert [(r.row, r.field) for r in bad] == [(12, "sbi_code")]


# --- no-value words --------------------------------------------------------------------------------------------


def test_null_words_read_as_null_and_counted(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    data = [dict(r) for r in ESTABLISHMENTS]
    data[1].update(aanvang="n.v.t.", rechtsvorm="NVT")
    data[2].update(bezoekfrequentie="onbekend", kvk_nummer=" - ")
    data[3].update(milieucategorie="Onbekend", aanvang="")
    src = write_csv(tmp_path / "nvt.csv", data, CSV_FIELDS)
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.0)
    assert (result.status, result.rows_inserted, result.rows_rejected) == ("succeeded", 12, 0), result.rejects
    got = {r[0]: r for r in _establishments(ingest_owner)}
    assert got["IE001"][3] is None and got["IE001"][6] is None  # rechtsvorm, aanvang
    assert got["IE002"][2] is None and got["IE002"][5] is None  # kvk_nummer, bezoekfrequentie
    assert got["IE003"][4] is None and got["IE003"][6] is None  # milieucategorie, aanvang (empty)
    assert got["IE004"][1:] == ("Bedrijf 4", "30000004", "BV", "2", 1, "2014-05-15")  # untouched
    # counted per column (the empty aanvang is an ordinary empty value, not a no-value word)
    words = {k.split(":")[0]: v for k, v in result.nulled.items()}
    assert words == {"aanvang": 1, "rechtsvorm": 1, "bezoekfrequentie": 1, "kvk_nummer": 1, "milieucategorie": 1}
    assert result.rows_nulled == 5
    options = scalar(ingest_owner, "SELECT options FROM twin.ingest_runs WHERE id = %s", (result.run_id,))
    assert sum(options["nulled"].values()) == 5


def test_null_word_in_a_required_field_is_rejected(ingest_settings: Settings, ingest_owner: str,
                                                   tmp_path: Path) -> None:
    data = [dict(r) for r in ESTABLISHMENTS]
    data[4]["sbi_code"] = "n.v.t."
    src = write_csv(tmp_path / "verplicht.csv", data, CSV_FIELDS)
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992")
    assert result.status == "refused"  # 1 of 12 is more than 1%
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.establishments") == 0
    (reject,) = [r for r in result.rejects if r.severity == "error"]
    assert (reject.row, reject.field, reject.value) == (5, "sbi_code", "n.v.t.")
    assert "required" in reject.reason
    report = (tmp_path / "verplicht.csv.rejects.csv").read_text(encoding="utf-8")
    assert str(src) in report and ",5,sbi_code,n.v.t.," in report


def test_cli_summary_shows_values_read_as_null(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    data = [dict(r, aanvang="nvt" if k < 3 else r["aanvang"]) for k, r in enumerate(ESTABLISHMENTS)]
    src = write_csv(tmp_path / "cli.csv", data, CSV_FIELDS)
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src), "--crs", "EPSG:28992")
    assert proc.returncode == 0, proc.stderr
    assert "as NULL" in proc.stdout
    assert "read as empty: aanvang: no-value word x 3" in proc.stdout
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.establishments WHERE started_on IS NULL") == 3


# --- encodings ------------------------------------------------------------------------------------------------

ACCENTS = ["Café Zoë", "Brasserie 't Hôôgje", "Bäckerei Müller", "Ölmühle"]


def _accented() -> list[dict[str, object]]:
    return [dict(r, naam=ACCENTS[k % 4] + f" {k}") for k, r in enumerate(ESTABLISHMENTS)]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8-sig"])
def test_unicode_text_exports_load(ingest_settings: Settings, ingest_owner: str, tmp_path: Path,
                                   encoding: str) -> None:
    # Excel's "Unicode text" is UTF-16 with a byte order mark, tab-separated; "CSV UTF-8" has a UTF-8 BOM.
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-8-sig": b""}[encoding]
    delimiter = ";" if encoding == "utf-8-sig" else "\t"
    src = tmp_path / "export.txt"
    src.write_bytes(bom + _csv_text(_accented(), CSV_FIELDS, delimiter).encode(encoding))
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.0)
    assert (result.status, result.rows_inserted) == ("succeeded", 12), result.message
    got = _establishments(ingest_owner)
    assert [r[1] for r in got] == [r["naam"] for r in _accented()]
    assert got[5][1:] == ("Brasserie 't Hôôgje 5", "30000005", "BV", "3.1", 3, "2015-06-15")


def test_windows_1252_found_after_the_first_64_kb(ingest_settings: Settings, ingest_owner: str,
                                                  tmp_path: Path) -> None:
    data = _accented()
    data[0]["activiteiten"] = "opslag " * 12000  # 84 kB of ASCII before the first accent
    src = tmp_path / "ansi.csv"
    src.write_bytes(_csv_text(data, [*CSV_FIELDS, "activiteiten"]).encode("cp1252"))
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.0)
    assert (result.status, result.rows_inserted) == ("succeeded", 12), result.message
    assert any("Windows-1252" in n for n in result.notes)
    assert [r[1] for r in _establishments(ingest_owner)] == [r["naam"] for r in data]


# --- Shapefile names cut short -----------------------------------------------------------------------------


def _addresses_shp(path: Path, columns: dict[str, str]) -> Path:
    """Three BAG addresses in Amersfoort as a Shapefile whose columns are named as ``columns`` says."""
    data = {"identificatie": [f"030701000000000{n}" for n in range(3)], "huisnummer": [10, 11, 12],
            "huisletter": ["A", None, None], "postcode": ["3811AB", "3811AC", None],
            "woonplaatsnaam": ["Amersfoort"] * 3}
    gdf = gpd.GeoDataFrame({columns.get(k, k): v for k, v in data.items()},
                           geometry=shapely.points([155000.0, 155100.0, 155200.0], [463000.0] * 3), crs="EPSG:28992")
    gdf.to_file(path, driver="ESRI Shapefile")
    return path


def test_shapefile_columns_cut_shorter_than_ten_are_matched(ingest_settings: Settings, ingest_owner: str,
                                                            tmp_path: Path) -> None:
    cut = {"identificatie": "IDENTIFIC", "huisletter": "HUISL", "postcode": "POSTC", "woonplaatsnaam": "WOONPLA"}
    src = _addresses_shp(tmp_path / "vbo.shp", cut)
    result = load(ingest_settings, "addresses", src, max_reject_rate=0.0)
    assert (result.status, result.rows_inserted) == ("succeeded", 3), result.message
    assert rows(ingest_owner, "SELECT address_id, house_number, house_letter, postcode, city FROM twin.addresses "
                "ORDER BY 1") == [("0307010000000000", 10, "A", "3811AB", "Amersfoort"),
                                  ("0307010000000001", 11, None, "3811AC", "Amersfoort"),
                                  ("0307010000000002", 12, None, None, "Amersfoort")]


def test_ambiguous_cut_column_is_not_matched(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    # 'HUISN' could be huisnummer or huisnummertoevoeging: refused, and the error says why.
    src = _addresses_shp(tmp_path / "kort.shp", {"identificatie": "IDENTIFIC", "huisnummer": "HUISN"})
    result = load(ingest_settings, "addresses", src)
    assert result.status == "refused"
    assert result.message and "house_number" in result.message
    assert "'HUISN' could be house_number or house_number_addition" in result.message
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.addresses") == 0


# --- BAG ids without their leading zero, bouwjaar 1005 ------------------------------------------------------

BUILDINGS = [
    {"identificatie": f"030710000000000{n}", "bouwjaar": 1960 + n, "status": "Pand in gebruik",
     "gebruiksdoel": "woonfunctie",
     "wkt": shapely.box(155000 + 50 * n, 463000, 155020 + 50 * n, 463020).wkt}
    for n in range(4)
]


def test_buildings_id_without_leading_zero_is_refused(ingest_settings: Settings, ingest_owner: str,
                                                     tmp_path: Path) -> None:
    data = [dict(r) for r in BUILDINGS]
    data[2]["identificatie"] = data[2]["identificatie"].lstrip("0")  # what Excel does to 0307...
    src = write_csv(tmp_path / "panden.csv", data)
    result = load(ingest_settings, "buildings", src, crs="EPSG:28992")
    assert result.status == "refused"
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.buildings") == 0
    (reject,) = [r for r in result.rejects if r.severity == "error"]
    assert (reject.row, reject.field, reject.value) == (3, "identificatie", "307100000000002")
    assert "lost its leading zero?" in reject.reason and "16 digits" in reject.reason
    # with a higher tolerance the good rows load and the damaged one stays out
    result = load(ingest_settings, "buildings", src, crs="EPSG:28992", max_reject_rate=0.5)
    assert (result.status, result.rows_inserted, result.rows_rejected) == ("succeeded", 3, 1)
    assert [r[0] for r in rows(ingest_owner, "SELECT building_id FROM twin.buildings ORDER BY 1")] == [
        BUILDINGS[0]["identificatie"], BUILDINGS[1]["identificatie"], BUILDINGS[3]["identificatie"]]


def test_addresses_id_without_leading_zero_names_the_cause(ingest_settings: Settings, tmp_path: Path) -> None:
    data = [{"identificatie": f"30701000000000{n}", "huisnummer": 10 + n, "postcode": "3811AB",
             "x": 155000.0 + 100 * n, "y": 463000.0} for n in range(3)]
    result = load(ingest_settings, "addresses", write_csv(tmp_path / "vbo.csv", data), crs="EPSG:28992")
    assert result.status == "refused"
    errors = [r for r in result.rejects if r.severity == "error"]
    assert [r.row for r in errors] == [1, 2, 3]
    assert all("lost its leading zero?" in r.reason for r in errors)


def test_bouwjaar_1005_is_stored_as_null(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    data = [dict(r) for r in BUILDINGS]
    data[1]["bouwjaar"] = 1005
    data[3]["bouwjaar"] = 1005
    result = load(ingest_settings, "buildings", write_csv(tmp_path / "panden.csv", data), crs="EPSG:28992",
                  max_reject_rate=0.0)
    assert (result.status, result.rows_inserted) == ("succeeded", 4)
    assert rows(ingest_owner, "SELECT building_id, construction_year FROM twin.buildings ORDER BY 1") == [
        (r["identificatie"], None if k in (1, 3) else r["bouwjaar"]) for k, r in enumerate(BUILDINGS)]
    assert result.nulled == {"bouwjaar: 1005 (the BAG's 'unknown' bouwjaar)": 2}
    assert any("1005" in n for n in result.notes)


# --- the data folder from any working directory ---------------------------------------------------------------


def test_default_data_dir_is_the_checkout() -> None:
    assert default_data_dir() == ROOT / ".twin"
    assert Settings().data_dir == ROOT / ".twin" or "TWIN_DATA_DIR" in os.environ


def _twin_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TWIN_DATA_DIR", "TWIN_DATABASE_URL")}
    return {**env, "COLUMNS": "200", **extra}


def test_twin_finds_the_cluster_from_another_folder(base_settings: Settings, tmp_path: Path) -> None:
    twin = Path(sys.executable).parent / "twin"
    proc = subprocess.run([str(twin), "db", "status"], capture_output=True, text=True, cwd=tmp_path,
                          env=_twin_env(), timeout=60)
    expected = cluster.status(Settings(data_dir=ROOT / ".twin"))
    assert str(expected.pgdata) in proc.stdout
    if base_settings.data_dir.resolve() == (ROOT / ".twin").resolve():  # the tests run on the default cluster
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "running      yes" in proc.stdout
    # A folder without a cluster: the message says where it looked.
    nowhere = tmp_path / "nowhere"
    proc = subprocess.run([str(twin), "db", "status"], capture_output=True, text=True, cwd=tmp_path,
                          env=_twin_env(TWIN_DATA_DIR=str(nowhere)), timeout=60)
    assert proc.returncode == 3 and f"no running cluster in {nowhere}" in proc.stdout
    proc = subprocess.run([str(twin), "ingest", "runs"], capture_output=True, text=True, cwd=tmp_path,
                          env=_twin_env(TWIN_DATA_DIR=str(nowhere)), timeout=60)
    sock = cluster.cluster_paths(Settings(data_dir=nowhere))[1]
    assert proc.returncode != 0 and f"socket in {sock}" in proc.stderr
    assert f"data folder {nowhere}" in proc.stderr


def test_options_json_of_a_clean_load_has_no_repairs(ingest_settings: Settings, ingest_owner: str,
                                                     tmp_path: Path) -> None:
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "schoon.csv", ESTABLISHMENTS, CSV_FIELDS),
                  crs="EPSG:28992")
    options = scalar(ingest_owner, "SELECT options FROM twin.ingest_runs WHERE id = %s", (result.run_id,))
    assert "nulled" not in options and "separator_lines" not in options
    assert json.loads(json.dumps(options))["crs"] == "EPSG:28992"
