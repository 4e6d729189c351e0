"""Features as of a date: computed from records dated before the cut-off only. A hand-built world
offshore (RD x 30-34 km, y 530 km; ids MD-...): the expected values are counted here from the inserted rows,
and the features at T stay the same when later records are added and later rows corrected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pandas as pd
import psycopg
import pytest

from twin.model import features as F

T = date(2024, 1, 1)


def est(eid: str, x: float, *, kvk: str | None, sbi: str = "1071", started: str = "2010-01-01",
        freq: int = 3, org: str = "ODMD") -> tuple[str, Any]:
    return ("INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, environmental_category, "
            "activiteitenbesluit_type, visit_frequency_years, org_code, started_on, legal_form, geom) VALUES "
            "(%s, 'MD Bedrijf', %s, %s, '3.1', 'B', %s, %s, %s, 'Besloten Vennootschap', "
            "ST_SetSRID(ST_MakePoint(%s, 530000), 28992))", (eid, kvk, sbi, freq, org, started, x))


def insp(iid: str, eid: str, on: str, violation: bool, *, lhs: str | None = None, kind: str = "routine",
         follow_up: str | None = None, deadline: str | None = None) -> tuple[str, Any]:
    result = "voorschriften overtreden" if violation else "voorschriften nageleefd"
    g, c = (lhs[0], lhs[1]) if lhs else (None, None)
    return ("INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, gedrag, "
            "gevolg, lhs_cell, follow_up_status, repair_deadline, org_code, geom) SELECT %s, %s, %s, %s, %s, %s, %s, "
            "%s, %s, %s, 'ODMD', geom FROM twin.establishments WHERE establishment_id = %s",
            (iid, eid, on, kind, result, g, c, lhs, follow_up, deadline, eid))


def perm(pid: str, eid: str, decided: str, *, ptype: str = "omgevingsvergunning", procedure: str = "verlening",
         until: str | None = None, nh3: float | None = None, status: str = "verleend") -> tuple[str, Any]:
    return ("INSERT INTO twin.permits (permit_id, establishment_id, permit_type, procedure, status, applied_on, "
            "decided_on, valid_from, valid_until, nh3_kg_per_year, geom) SELECT %s, %s, %s, %s, %s, "
            "%s::date - 60, %s, %s, %s, %s, geom FROM twin.establishments WHERE establishment_id = %s",
            (pid, eid, ptype, procedure, status, decided, decided, decided, until, nh3, eid))


def run(url: str, statements: list[tuple[str, Any]]) -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        for sql, params in statements:
            conn.execute(sql, params)  # type: ignore[arg-type]


@pytest.fixture()
def world(owner_url: str) -> Iterator[str]:
    run(owner_url, [("DELETE FROM twin.establishments WHERE establishment_id LIKE 'MD-%%'", None)])
    run(owner_url, [
        est("MD-1", 30000, kvk="77000001"), est("MD-2", 31000, kvk="77000001"), est("MD-3", 32000, kvk="77000003"),
        est("MD-4", 33000, kvk=None, started="2024-06-01"),  # not active at T
        insp("MD-I1", "MD-1", "2019-05-01", True, lhs="A2"),
        insp("MD-I2", "MD-1", "2021-03-01", False),
        insp("MD-I3", "MD-1", "2023-02-01", True, lhs="C3", deadline="2023-04-01", follow_up="in uitvoering"),
        insp("MD-I4", "MD-2", "2022-06-01", True, lhs="B1", kind="complaint"),
        insp("MD-I5", "MD-2", "2023-06-01", False, kind="re-inspection"),
        insp("MD-I6", "MD-3", "2017-01-01", False),
        perm("MD-P1", "MD-1", "2015-01-01", nh3=1200.0),
        perm("MD-P2", "MD-1", "2023-05-01", ptype="maatwerkvoorschrift", procedure="wijziging"),
        perm("MD-P3", "MD-2", "2022-10-01", ptype="gedoogbeschikking", until="2024-06-30"),
    ])
    yield owner_url
    run(owner_url, [("DELETE FROM twin.establishments WHERE establishment_id LIKE 'MD-%%'", None)])


def at(url: str, t: date) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        frame = F.features_at(conn, t)
    frame = frame[frame["establishment_id"].str.startswith("MD-")].set_index("establishment_id").sort_index()
    return frame


def test_values_counted_by_hand(world: str) -> None:
    f = at(world, T)
    assert list(f.index) == ["MD-1", "MD-2", "MD-3"]  # MD-4 starts after T
    one, two, three = f.loc["MD-1"], f.loc["MD-2"], f.loc["MD-3"]
    assert one["n_inspections"] == 3 and one["n_violations_5y"] == 2 and one["n_violations_2y"] == 1
    assert one["violation_share"] == pytest.approx(2 / 3)
    assert one["last_was_violation"] == 1 and one["last_gedrag"] == 3 and one["last_gevolg"] == 3
    assert one["worst_gedrag_5y"] == 3
    assert one["days_since_last_visit"] == (T - date(2023, 2, 1)).days
    assert one["follow_up_open"] == 1 and one["repair_overdue"] == 1
    assert one["n_active_permits"] == 2 and one["n_custom_rules"] == 1 and one["nh3_kg"] == 1200.0
    assert one["n_decisions_1y"] == 1 and one["has_environmental_permit"] == 1
    # The same KvK number: MD-2's one violation is MD-1's record elsewhere, and the other way round.
    assert one["other_sites"] == 1 and one["other_sites_violations_5y"] == 1
    assert two["other_sites_violations_5y"] == 2 and two["other_sites_violation_share_5y"] == pytest.approx(2 / 3)
    assert two["follow_up_open"] == 0 and two["n_complaints_5y"] == 1 and two["n_reinspections_5y"] == 1
    assert two["has_tolerance"] == 1 and two["n_expiring_1y"] == 1
    assert three["n_inspections_5y"] == 0 and three["n_inspections"] == 1 and three["other_sites"] == 0
    assert three["overdue_cycles"] == pytest.approx((T - date(2017, 1, 1)).days / (3 * 365.25) - 1)
    # No protected attribute or proxy is a feature.
    for name in ("legal_form", "sole_proprietor", "natural_person_owner", "name", "kvk_number", "municipality_code",
                 "org_code", "inspector"):
        assert name not in F.FEATURES


def test_rule_inputs_keep_their_python_types_and_order(world: str) -> None:
    """The as-of answer is read as CSV (for speed, issue 21); the rule-based score still gets what a row-wise
    fetch gave: dates as dates, the violations oldest first as JSON arrays, booleans, floats, ints."""
    one, three = at(world, T).loc["MD-1", "_rules_row"], at(world, T).loc["MD-3", "_rules_row"]
    assert one["last_on"] == date(2023, 2, 1) and type(one["last_on"]) is date
    assert one["violations"] == [["MD-I1", "2019-05-01", "A", "2"], ["MD-I3", "2023-02-01", "C", "3"]]
    assert one["brzo"] is False and one["nh3_kg"] == 1200.0 and type(one["nh3_kg"]) is float
    assert one["visit_frequency_years"] == 3 and one["environmental_category"] == "3.1"
    assert one["activiteitenbesluit_type"] == "B" and one["guide"] == F.GUIDE_DISTANCES_M["3.1"]
    assert three["violations"] == [] and three["nh3_kg"] == 0.0 and three["overloaded_hexagons"] == 0


def test_no_leakage_from_later_records_or_corrections(world: str) -> None:
    before = at(world, T)
    run(world, [
        # Later records: inspections, a permit, a new site of the same legal entity.
        insp("MD-I7", "MD-1", "2024-02-01", True, lhs="D4"),
        insp("MD-I8", "MD-3", "2024-01-01", True, lhs="A1"),
        perm("MD-P4", "MD-3", "2024-03-01", procedure="revisie", nh3=9999.0),
        est("MD-5", 34000, kvk="77000003", started="2024-02-01"),
        insp("MD-I9", "MD-5", "2024-03-01", True, lhs="B2"),
        # A later delivery corrects rows: the follow-up of an earlier violation and its repair, a later
        # inspection's result, a permit withdrawn, the establishment ended after T.
        ("UPDATE twin.inspections SET follow_up_status = 'uitgevoerd', repaired_on = '2024-02-15' "
         "WHERE inspection_id = 'MD-I3'", None),
        ("UPDATE twin.inspections SET result = 'voorschriften nageleefd', gedrag = NULL, gevolg = NULL, "
         "lhs_cell = NULL WHERE inspection_id = 'MD-I7'", None),
        ("UPDATE twin.permits SET status = 'ingetrokken' WHERE permit_id = 'MD-P3'", None),
        ("UPDATE twin.establishments SET ended_on = '2024-05-01' WHERE establishment_id = 'MD-2'", None),
    ])
    after = at(world, T)
    cols = list(F.FEATURES)
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert list(before["_rules_row"]) == list(after["_rules_row"])
    # ... while a later cut-off does see them (the test would notice a frozen feature table).
    later = at(world, date(2024, 4, 1))
    assert later.loc["MD-1", "n_inspections"] == 4 and later.loc["MD-3", "other_sites_violations_5y"] == 1


def test_labels_are_the_first_inspection_after_the_cutoff(world: str) -> None:
    run(world, [insp("MD-I10", "MD-1", "2024-03-01", False), insp("MD-I11", "MD-1", "2024-07-01", True, lhs="A1")])
    with psycopg.connect(world) as conn:
        lab = F.labels(conn, T, date(2025, 1, 1))
    lab = lab[lab["establishment_id"].str.startswith("MD-")].set_index("establishment_id")
    assert list(lab.index) == ["MD-1"] and not lab.loc["MD-1", "y"]


def test_context_cache_is_read_back_until_a_table_it_reads_changes(world: str, tmp_path: Any) -> None:
    with psycopg.connect(world) as conn:
        key = F.context_key(conn)
        cold = F.context(conn, tmp_path)
        assert [p.name for p in tmp_path.iterdir()] == [f"context-{key}.parquet"]
        warm = F.context(conn, tmp_path)
        uncached = F.context(conn)
    pd.testing.assert_frame_equal(cold, warm, check_dtype=False)
    pd.testing.assert_frame_equal(cold, uncached, check_dtype=False)
    run(world, [est("MD-6", 30500, kvk=None)])  # a new establishment: the context must be computed again
    with psycopg.connect(world) as conn:
        assert F.context_key(conn) != key
        again = F.context(conn, tmp_path)
    assert "MD-6" in set(again["establishment_id"]) and "MD-6" not in set(cold["establishment_id"])
