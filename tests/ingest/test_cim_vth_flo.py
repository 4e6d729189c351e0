"""An inspections export of a VTH system in CIM-VTH-Flo terms (``;``, Windows-1252, Dutch column names and
values, dates DD-MM-YYYY) loads as it comes: values mapped by the value map layers/data/valuemaps/cim-vth-flo.yaml,
Hersteldatum stored as the date the violation was found ended, ambiguous slash dates refused unless
--date-format says the order, and the Omgevingswet's Bal regime next to the old Activiteitenbesluit type."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ingest_fixtures import ESTABLISHMENTS, rows, run_cli, scalar, write_csv

from ingest.loader import load
from layers.registry import INSPECTION_KINDS, INSPECTION_RESULTS, INTERVENTIONS, LAYERS
from layers.valuemaps import VALUE_MAP_DIR, load_value_maps, normalise
from twin.settings import Settings

HEADER = "Identificatie;Datum;Type;Inrichting;Resultaat;Gedrag;Gevolg;Interventie;Hersteldatum;Aard overtreding"
LINES = (
    "CTR-2024-001;04-03-2024;Regulier;IE001;Voorschriften nageleefd;;;;;",
    "CTR-2024-002;05-03-2024 10:30;Klacht;IE002;niet akkoord, voorschriften overtreden;Onverschillig;Beperkt;"
    "Last onder dwangsom;15-04-2024;Geluidsoverlast café-terras na 23.00 uur",
    "CTR-2024-003;2024-04-15;Hercontrole;IE002;Voorschriften nageleefd;;;Geen;;",
    "CTR-2024-004;1-2-2024;Periodieke controle;IE003;Akkoord na aanwijzing;Goedwillend;Vrijwel nihil;"
    "Schriftelijke waarschuwing;;Opslag niet conform PGS 15",
    "CTR-2024-005;12-03-2024;Themacontrole;IE004;NIET AKKOORD, VOORSCHRIFTEN OVERTREDEN;calculerend;van belang;"
    "Last onder bestuursdwang;;Emissie stof boven de norm",
)


def _export(path: Path, lines: tuple[str, ...] | list[str]) -> Path:
    path.write_bytes(("\r\n".join((HEADER, *lines)) + "\r\n").encode("cp1252"))
    return path


@pytest.fixture()
def establishments(empty_layers: None, ingest_settings: Settings, tmp_path: Path) -> None:
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "inrichtingen.csv", ESTABLISHMENTS),
                  crs="EPSG:28992")
    assert result.status == "succeeded", result.message


def test_the_shipped_value_maps_agree_and_target_the_twins_codes() -> None:
    maps = load_value_maps()  # raises on a code that is not the twin's, or two shipped maps that disagree
    kinds = maps.get("inspections", "kind")
    assert {kinds[normalise(v)] for v in ("Regulier", "Klacht", "Hercontrole")} == set(INSPECTION_KINDS)
    results = maps.get("inspections", "result")
    assert results[normalise("niet akkoord, voorschriften overtreden")] == "voorschriften overtreden"
    assert set(results.values()) <= set(INSPECTION_RESULTS)
    assert set(maps.get("inspections", "intervention").values()) <= set(INTERVENTIONS)
    assert maps.get("inspections", "gedrag")[normalise("notoir/crimineel")] == "D"
    assert maps.get("inspections", "gevolg")[normalise("aanzienlijk en/of onomkeerbaar")] == "4"
    assert maps.files_for("inspections", "kind") == [VALUE_MAP_DIR / "cim-vth-flo.yaml"]


@pytest.mark.usefixtures("establishments")
def test_cim_vth_flo_export_loads_with_mapped_values_and_dates(ingest_settings: Settings, ingest_owner: str,
                                                               tmp_path: Path) -> None:
    src = _export(tmp_path / "controles_export.csv", LINES)
    assert b"caf\xe9" in src.read_bytes()
    proc = run_cli(ingest_settings, "ingest", "inspections", str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = rows(ingest_owner, "SELECT inspection_id, establishment_id, inspected_on, kind, result, gedrag, gevolg, "
               "lhs_cell, intervention, repaired_on, repair_deadline, violation FROM twin.inspections "
               "ORDER BY inspection_id")
    assert got == [
        ("CTR-2024-001", "IE001", dt.date(2024, 3, 4), "routine", "voorschriften nageleefd", None, None, None, None,
         None, None, None),
        ("CTR-2024-002", "IE002", dt.date(2024, 3, 5), "complaint", "voorschriften overtreden", "B", "2", "B2",
         "last onder dwangsom", dt.date(2024, 4, 15), None, "Geluidsoverlast café-terras na 23.00 uur"),
        ("CTR-2024-003", "IE002", dt.date(2024, 4, 15), "re-inspection", "voorschriften nageleefd", None, None, None,
         "geen", None, None, None),
        ("CTR-2024-004", "IE003", dt.date(2024, 2, 1), "routine", "akkoord na aanwijzing", "A", "1", "A1",
         "waarschuwing", None, None, "Opslag niet conform PGS 15"),
        ("CTR-2024-005", "IE004", dt.date(2024, 3, 12), "routine", "voorschriften overtreden", "C", "3", "C3",
         "bestuursdwang", None, None, "Emissie stof boven de norm"),
    ]
    # The inspections lie at their establishment.
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.inspections i JOIN twin.establishments e USING "
                  "(establishment_id) WHERE ST_Equals(i.geom, e.geom)") == 5


@pytest.mark.usefixtures("establishments")
def test_an_unknown_label_is_rejected_naming_file_row_field_value_and_the_map_to_extend(
        ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    src = _export(tmp_path / "controles_bedrijfsbezoek.csv",
                  [*LINES[:2], "CTR-2024-006;06-03-2024;Bedrijfsbezoek;IE005;Voorschriften nageleefd;;;;;"])
    proc = run_cli(ingest_settings, "ingest", "inspections", str(src))
    assert proc.returncode == 1  # 1 of 3 rows rejected: above the 1% threshold, nothing loaded
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.inspections") == 0
    (row, fld, value, reason), = rows(
        ingest_owner, "SELECT row_number, field, value, reason FROM twin.ingest_rejects WHERE run_id = "
        "(SELECT max(id) FROM twin.ingest_runs)")
    assert (row, fld, value) == (3, "Type", "Bedrijfsbezoek")
    assert reason.startswith(f"Type 'Bedrijfsbezoek' in {src} is not one of the allowed values: routine, "
                             "complaint, re-inspection, nor a label in the value map ")
    assert str(VALUE_MAP_DIR / "cim-vth-flo.yaml") in reason and "inspections.kind" in reason

    # Extended with a map of the user's own (no code), the same file loads.
    own = tmp_path / "onze_waarden.yaml"
    own.write_text("layers:\n  inspections:\n    kind:\n      Bedrijfsbezoek: routine\n", encoding="utf-8")
    proc = run_cli(ingest_settings, "ingest", "inspections", str(src), "--value-map", str(own))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows(ingest_owner, "SELECT kind FROM twin.inspections WHERE inspection_id = 'CTR-2024-006'") == [
        ("routine",)]
    # ... and so it does with TWIN_VALUE_MAPS.
    proc = run_cli(ingest_settings, "ingest", "inspections", str(src), env={"TWIN_VALUE_MAPS": f'["{own}"]'})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.usefixtures("establishments")
def test_ambiguous_slash_dates_are_refused_naming_the_rows_until_the_format_is_given(
        ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    lines = [
        "CTR-S-1;03/04/2024;Regulier;IE001;Voorschriften nageleefd;;;;;",
        "CTR-S-2;13/04/2024;Regulier;IE002;Voorschriften nageleefd;;;;;",
        "CTR-S-3;11/02/2024;Klacht;IE003;niet akkoord, voorschriften overtreden;goedwillend;beperkt;Waarschuwing;"
        "01/03/2024;Afval buiten opgeslagen",
    ]
    src = _export(tmp_path / "controles_slash.csv", lines)
    before = scalar(ingest_owner, "SELECT count(*) FROM twin.ingest_runs")
    proc = run_cli(ingest_settings, "ingest", "inspections", str(src))
    assert proc.returncode == 1
    message = " ".join((proc.stdout + proc.stderr).split())
    assert "3 date(s) could be day/month or month/day" in message
    assert "row 1 Datum '03/04/2024'" in message and "row 3 Datum '11/02/2024'" in message
    assert "row 3 Hersteldatum '01/03/2024'" in message and "row 2" not in message  # 13/04 is day first
    assert "--date-format %d/%m/%Y" in message
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.inspections") == 0
    assert rows(ingest_owner, "SELECT status FROM twin.ingest_runs WHERE id > %s", (before,)) == [("refused",)]

    proc = run_cli(ingest_settings, "ingest", "inspections", str(src), "--date-format", "%d/%m/%Y")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows(ingest_owner, "SELECT inspection_id, inspected_on, repaired_on FROM twin.inspections "
                "ORDER BY inspection_id") == [
        ("CTR-S-1", dt.date(2024, 4, 3), None), ("CTR-S-2", dt.date(2024, 4, 13), None),
        ("CTR-S-3", dt.date(2024, 2, 11), dt.date(2024, 3, 1))]


@pytest.mark.usefixtures("empty_layers")
def test_old_and_new_deliveries_carry_the_activiteitenbesluit_type_and_the_bal_regime(
        ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    old = [dict(ESTABLISHMENTS[0], type_activiteitenbesluit="Type B"),
           dict(ESTABLISHMENTS[1], type_activiteitenbesluit="C")]
    new = [dict(ESTABLISHMENTS[2], Kwalificatie="Vergunningplicht"),
           dict(ESTABLISHMENTS[3], Kwalificatie="meldingsplichtig")]
    for name, data in (("oud.csv", old), ("nieuw.csv", new)):
        result = load(ingest_settings, "establishments", write_csv(tmp_path / name, data), crs="EPSG:28992")
        assert result.status == "succeeded", result.message
    assert rows(ingest_owner, "SELECT establishment_id, activiteitenbesluit_type, bal_regime FROM "
                "twin.establishments ORDER BY establishment_id") == [
        ("IE000", "B", None), ("IE001", "C", None), ("IE002", None, "vergunningplichtig"),
        ("IE003", None, "meldingsplichtig")]
    spec = LAYERS["establishments"]
    assert {"activiteitenbesluit_type", "bal_regime"} <= {f.name for f in spec.public_fields}
