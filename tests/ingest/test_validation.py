"""Validation of one batch without a database: the column mapping by aliases, the type conversions as
Dutch sources write values, enums, the LHS cell and the rules that mirror the schema's CHECKs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from ingest.validation import map_columns, to_bool, to_date, to_float, to_int, validate
from ingest.values import DATE_REASON
from layers.registry import LAYERS


def test_columns_map_by_alias_case_insensitively() -> None:
    m = map_columns(LAYERS["inspections"], ["Controle_ID", "INRICHTING-ID", "Datum Controle", "Type", "Resultaat",
                                            "LHS_cel", "opmerking"])
    assert m.fields == {"inspection_id": "Controle_ID", "establishment_id": "INRICHTING-ID",
                        "inspected_on": "Datum Controle", "kind": "Type", "result": "Resultaat",
                        "lhs_cell": "LHS_cel"}
    assert m.unused == ["opmerking"]


def test_own_field_name_wins_over_an_alias_of_another_field() -> None:
    # 'identificatie' is an alias of building_id; 'building_id' itself is present and wins.
    m = map_columns(LAYERS["buildings"], ["identificatie", "building_id", "bouwjaar"])
    assert m.fields["building_id"] == "building_id"
    assert m.unused == ["identificatie"]


def test_shapefile_names_cut_at_ten_characters_still_map() -> None:
    m = map_columns(LAYERS["establishments"], ["inrichting", "milieucate", "bezoekfreq"], truncate=10)
    assert m.fields == {"establishment_id": "inrichting", "environmental_category": "milieucate",
                        "visit_frequency_years": "bezoekfreq"}


def test_dutch_booleans() -> None:
    values, bad, _ = to_bool(pa.array(["ja", "Nee", "J", "n", "true", "FALSE", "1", "0", None, " ja ", "misschien"]))
    assert values.to_pylist() == [True, False, True, False, True, False, True, False, None, True, None]
    assert bad.tolist() == [False] * 10 + [True]
    values, bad, _ = to_bool(pa.array([1, 0, None]))
    assert values.to_pylist() == [True, False, None] and not bad.any()


def test_dates_are_iso_or_day_first() -> None:
    values, bad, reason = to_date(pa.array(["2023-05-01", "01-05-2023", "2023-02-30", "2023-05-01T10:00:00", "",
                                            None, "2023/05/01", "1-5-2023 10:15", "30-02-2023", "1 mei 2023"]))
    assert values.to_pylist() == [dt.date(2023, 5, 1), dt.date(2023, 5, 1), None, dt.date(2023, 5, 1), None, None,
                                  None, dt.date(2023, 5, 1), None, None]
    assert bad.tolist() == [False, False, True, False, False, False, True, False, True, True]
    assert reason == DATE_REASON


def test_numbers_accept_a_decimal_comma_and_whole_floats() -> None:
    values, bad, _ = to_float(pa.array(["1250,5", "3.25", "-1e3", "abc", "1.000,5", None]))
    assert values.to_pylist() == [1250.5, 3.25, -1000.0, None, None, None]
    assert bad.tolist() == [False, False, False, True, True, False]
    ints, bad, _ = to_int(pa.array(["10", "3.0", "3.5", "x"]))
    assert ints.to_pylist() == [10, 3, None, None] and bad.tolist() == [False, False, True, True]
    ints, bad, _ = to_int(pa.array([1.0, 2.5, None]))
    assert ints.to_pylist() == [1, None, None] and bad.tolist() == [False, True, False]


def _inspections(**cols: list[object]) -> tuple[pa.Table, np.ndarray]:
    n = len(next(iter(cols.values())))
    base = {"controle_id": [f"C{i}" for i in range(n)], "inrichting_id": ["E1"] * n,
            "datum_controle": ["2024-01-02"] * n, "type": ["routine"] * n,
            "resultaat": ["voorschriften overtreden"] * n}
    base.update(cols)
    return pa.table(base), np.arange(1, n + 1)


def test_enums_match_case_insensitively_and_return_the_canonical_value() -> None:
    table, rows = _inspections(type=["Routine", "COMPLAINT", "controle"])
    spec = LAYERS["inspections"]
    vb = validate(spec, map_columns(spec, table.column_names), table, rows)
    assert vb.columns["kind"].to_pylist() == ["routine", "complaint", None]
    assert vb.rejected.tolist() == [False, False, True]
    assert [(r.row, r.field) for r in vb.rejects] == [(3, "type")]
    assert vb.rejects[0].reason.startswith("type 'controle' is not one of the allowed values: routine, complaint")


def test_lhs_cell_must_be_gedrag_plus_gevolg_and_is_completed() -> None:
    table, rows = _inspections(gedrag=["B", "C", None, "A"], gevolg=["2", "3", None, "1"],
                               lhs_cel=["B2", "B3", "D4", None])
    spec = LAYERS["inspections"]
    vb = validate(spec, map_columns(spec, table.column_names), table, rows)
    assert vb.rejected.tolist() == [False, True, False, False]
    assert vb.rejects[0].reason == ("lhs_cel 'B3' does not match gedrag C + gevolg 3 (the LHS cell is gedrag "
                                    "followed by gevolg)")
    assert vb.columns["lhs_cell"].to_pylist()[2:] == ["D4", "A1"]
    assert vb.columns["gedrag"].to_pylist()[2] == "D" and vb.columns["gevolg"].to_pylist()[2] == "4"


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("kvk_nummer", "1234567", "kvk_nummer '1234567' is not valid: a KvK number has 8 digits"),
    ("sbi_code", "A141", "sbi_code 'A141' is not valid: an SBI code has 2 to 5 digits"),
    ("naam", "", "naam is required but empty"),
])
def test_schema_rules_are_rejects(column: str, value: str, reason: str) -> None:
    spec = LAYERS["establishments"]
    table = pa.table({"inrichting_id": ["E1", "E2"], "naam": ["A", "B"], "sbi_code": ["0141", "0146"],
                      "kvk_nummer": ["12345678", "23456789"]})
    table = table.set_column(table.column_names.index(column), column, pa.array([value, table.column(column)[1]]))
    vb = validate(spec, map_columns(spec, table.column_names), table, np.array([1, 2]))
    assert vb.rejected.tolist() == [True, False]
    assert [r.reason for r in vb.rejects] == [reason]


def test_numeric_kvk_and_sbi_columns_get_their_leading_zeros_back() -> None:
    spec = LAYERS["establishments"]
    table = pa.table({"inrichting_id": ["E1"], "naam": ["A"], "sbi_code": pa.array([141]),
                      "kvk_nummer": pa.array([1234567]), "vestigingsnummer": pa.array([12345678])})
    vb = validate(spec, map_columns(spec, table.column_names), table, np.array([1]))
    assert not vb.rejected.any()
    assert vb.columns["sbi_code"].to_pylist() == ["0141"]
    assert vb.columns["kvk_number"].to_pylist() == ["01234567"]
    assert vb.columns["vestigingsnummer"].to_pylist() == ["000012345678"]


def test_validity_in_threads_keeps_the_order() -> None:
    """geometry.is_valid splits a large batch over threads; the answer is shapely's, row for row."""
    import shapely

    from ingest import geometry as geo

    rng = np.random.default_rng(7)
    n = 3 * geo._VALIDITY_MIN_SPLIT + 17
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    box = shapely.box(0, 0, 10, 10)
    geoms = np.where(rng.random(n) < 0.1, bowtie, box).astype(object)
    geoms[rng.integers(0, n, 50)] = None
    got = geo.is_valid(geoms)
    assert got.dtype == bool and got.tolist() == shapely.is_valid(geoms).tolist()
    assert 0 < (~got).sum() < n
