"""The KPIs of supervision on a tiny world worked out by hand (issue 22): every numerator and denominator below
is counted from the fixture in the comments, not copied from the output. And a run as of a date recomputed after a
correcting delivery, as known at the first run's time, gives the same values (issue 20).

The world (reference date 2024-12-31; organisations ODA and ODB; municipality GM0001):

    E1 ODA sbi 0146 cat 3.1 freq 1y   I1 2024-02-10 overtreden  cell B2 hersteltermijn, term 2024-03-10, repaired 03-01
                                    I2 2024-03-05 nageleefd
    E2 ODA sbi 1011 cat 2 freq 3y   I3 2024-05-01 overtreden  cell A1 hersteltermijn, no term (-> +90 d: 2024-07-30)
                                    I4 2024-09-01 overtreden  cell A2 geen, term 2025-01-31 (after the reference date)
    E3 ODB sbi 0146 cat 3.1 freq 1y   I5 2024-06-15 akkoord na aanwijzing
       vergunningplichtig           I6 2024-11-20 nader onderzoek noodzakelijk (no verdict)
    E4 ODB sbi 0146 freq 3y, started 2015-01-01, never inspected, Activiteitenbesluit type C, no permit
    E5 ODB no visit frequency;  E6 ODB ended 2023-06-30 (vergunningplichtig, freq 1y)
    permits: P1 E1 2019-01-01..2025-06-30, P2 E2 2018-01-01..2025-03-01 with successor P2b 2025-03-02.., P3 E3
             2020-01-01.., P4 E4 vervallen
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import psycopg
import pytest
from testdb import throwaway_database

from twin import database
from twin.monitoring import compute
from twin.settings import Settings

D = date(2024, 12, 31)
Y2024 = date(2024, 1, 1)
ODA, ODB = "ODA", "ODB"
POINT = "ST_SetSRID(ST_MakePoint(%s, %s), 28992)"
# id, org, sbi, category, freq, started, ended, bal_regime, activiteitenbesluit type, kvk
ESTABLISHMENTS = (
    ("KW-E1", ODA, "0146", "3.1", 1, "2020-01-01", None, None, None, "10000001"),
    ("KW-E2", ODA, "1011", "2", 3, "2020-01-01", None, None, None, "10000002"),
    ("KW-E3", ODB, "0146", "3.1", 1, "2020-01-01", None, "vergunningplichtig", None, None),
    ("KW-E4", ODB, "0146", "3.1", 3, "2015-01-01", None, None, "C", None),
    ("KW-E5", ODB, "0146", "3.1", None, "2020-01-01", None, None, None, None),
    ("KW-E6", ODB, "0146", "3.1", 1, "2020-01-01", "2023-06-30", "vergunningplichtig", None, None),
)
# id, establishment, date, result, lhs cell, intervention, repair deadline, repaired on
INSPECTIONS = (
    ("KW-I1", "KW-E1", "2024-02-10", "voorschriften overtreden", "B2", "hersteltermijn", "2024-03-10", "2024-03-01"),
    ("KW-I2", "KW-E1", "2024-03-05", "voorschriften nageleefd", None, None, None, None),
    ("KW-I3", "KW-E2", "2024-05-01", "voorschriften overtreden", "A1", "hersteltermijn", None, None),
    ("KW-I4", "KW-E2", "2024-09-01", "voorschriften overtreden", "A2", "geen", "2025-01-31", None),
    ("KW-I5", "KW-E3", "2024-06-15", "akkoord na aanwijzing", None, None, None, None),
    ("KW-I6", "KW-E3", "2024-11-20", "nader onderzoek noodzakelijk", None, None, None, None),
)
# id, establishment, status, valid from, valid until
PERMITS = (
    ("KW-P1", "KW-E1", "verleend", "2019-01-01", "2025-06-30"),
    ("KW-P2", "KW-E2", "verleend", "2018-01-01", "2025-03-01"),
    ("KW-P2b", "KW-E2", "verleend", "2025-03-02", None),
    ("KW-P3", "KW-E3", "verleend", "2020-01-01", None),
    ("KW-P4", "KW-E4", "vervallen", "2010-01-01", "2014-12-31"),
)
ORG = {e[0]: e[1] for e in ESTABLISHMENTS}


def load_world(writer_url: str, owner_url: str) -> None:
    """The world above, registered as valid from 2015 (so that it is history as of 2024 too)."""
    with psycopg.connect(writer_url) as conn:
        conn.execute("SELECT set_config('twin.valid_from', '2015-01-01', true)")
        for i, (eid, org, sbi, cat, freq, started, ended, regime, ab_type, kvk) in enumerate(ESTABLISHMENTS):
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, "
                "environmental_category, visit_frequency_years, started_on, ended_on, bal_regime, "
                "activiteitenbesluit_type, legal_form, "
                f"municipality_code, org_code, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'B.V.', "
                f"'GM0001', %s, {POINT})",
                (eid, f"Bedrijf {eid}", kvk, sbi, cat, freq, started, ended, regime, ab_type, org,
                 150000 + 100 * i, 450000))
        for iid, eid, on, result, cell, intervention, deadline, repaired in INSPECTIONS:
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, lhs_cell, "
                "intervention, repair_deadline, repaired_on, inspector, org_code, geom) VALUES (%s, %s, %s, 'routine', "
                f"%s, %s, %s, %s, %s, 'inspecteur', %s, {POINT})",
                (iid, eid, on, result, cell, intervention, deadline, repaired, ORG[eid], 150000, 450000))
        for pid, eid, status, valid_from, valid_until in PERMITS:
            conn.execute(
                "INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, valid_from, valid_until, "
                "org_code, geom) VALUES (%s, %s, 'omgevingsvergunning', %s, %s, %s, %s, "
                f"ST_Buffer({POINT}, 50))", (pid, eid, status, valid_from, valid_until, ORG[eid], 150000, 450000))
    with psycopg.connect(owner_url) as conn:
        for rule, layer, kind, checked, failed, on in (
                ("r1", "establishments", "completeness", 10, 2, "2024-05-01 12:00+02"),
                ("r1", "establishments", "completeness", 10, 1, "2024-06-01 12:00+02"),
                ("r2", "inspections", "validity", 5, 0, "2024-05-02 12:00+02")):
            conn.execute("INSERT INTO twin.quality_results (rule_id, layer, kind, checked, failed, score, measured_at) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)", (rule, layer, kind, checked, failed,
                                                                 (checked - failed) / checked, on))


@pytest.fixture(scope="module")
def kpi_settings(base_settings: Settings) -> Iterator[Settings]:
    """A database of its own holding only the world above (KPIs count everything in the database)."""
    with throwaway_database(base_settings, f"twin_kpi_{os.getpid()}", rate_limit_rps=0.0, key_cache_s=0.0) as s:
        load_world(database.url_for(s, "writer"), database.url_for(s, "owner"))
        yield s


@pytest.fixture(scope="module")
def run(kpi_settings: Settings) -> int:
    with psycopg.connect(database.url_for(kpi_settings, "writer")) as conn:
        summary = compute.compute(conn, as_of=D, k=5)
        conn.commit()
    return summary.run_id


def value(s: Settings, run: int, kpi: str, ptype: str = "year", pstart: date = Y2024, dim: str = "all",
          val: str = "all", scope: str | None = None) -> tuple[Any, ...] | None:
    """(numerator, denominator, value, audience) of one stored figure, or None."""
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        row = conn.execute(
            "SELECT numerator, denominator, value, audience FROM twin.kpi_values WHERE run_id = %s AND kpi = %s "
            "AND period_type = %s AND period_start = %s AND dimension = %s AND dimension_value = %s "
            "AND scope_org IS NOT DISTINCT FROM %s", (run, kpi, ptype, pstart, dim, val, scope)).fetchone()
    return None if row is None else tuple(row)


def test_compliance(kpi_settings: Settings, run: int) -> None:
    # verdicts in 2024: I1 ov, I2 nageleefd, I3 ov, I4 ov, I5 akkoord na aanwijzing (I6 has none) -> 1 / 5
    assert value(kpi_settings, run, "compliance")[:3] == (1, 5, 0.2)
    # ODA: I1..I4 -> 1 / 4; ODB: I5 -> 0 / 1
    assert value(kpi_settings, run, "compliance", dim="organisation", val=ODA, scope=ODA) == (1, 4, 0.25, "org")
    assert value(kpi_settings, run, "compliance", dim="organisation", val=ODB, scope=ODB) == (0, 1, 0.0, "org")
    # quarters: Q1 I1, I2 -> 1/2; Q2 I3, I5 -> 0/2; Q3 I4 -> 0/1; Q4 nothing with a verdict
    assert value(kpi_settings, run, "compliance", "quarter", date(2024, 1, 1))[:2] == (1, 2)
    assert value(kpi_settings, run, "compliance", "quarter", date(2024, 4, 1))[:2] == (0, 2)
    assert value(kpi_settings, run, "compliance", "quarter", date(2024, 7, 1))[:2] == (0, 1)
    assert value(kpi_settings, run, "compliance", "quarter", date(2024, 10, 1)) is None
    # sector 10 (E2): I3, I4 -> 0/2; sector 01 (E1, E3): I1, I2, I5 -> 1/3
    assert value(kpi_settings, run, "compliance", dim="sector", val="10")[:2] == (0, 2)
    assert value(kpi_settings, run, "compliance", dim="sector", val="01")[:2] == (1, 3)
    # months: February I1 -> 0/1, March I2 -> 1/1
    assert value(kpi_settings, run, "compliance", "month", date(2024, 3, 1))[:2] == (1, 1)


def test_wilson_interval_of_compliance(kpi_settings: Settings, run: int) -> None:
    import math

    z = 1.959963984540054
    p, n = 1 / 5, 5
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    with psycopg.connect(database.url_for(kpi_settings, "owner")) as conn:
        lo, hi = conn.execute("SELECT ci_low, ci_high FROM twin.kpi_values WHERE run_id = %s AND kpi = 'compliance' "
                              "AND period_type = 'year' AND dimension = 'all' AND scope_org IS NULL", (run,)).fetchone()
    assert lo == pytest.approx((centre - half) / (1 + z * z / n))
    assert hi == pytest.approx((centre + half) / (1 + z * z / n))


def test_follow_up_family(kpi_settings: Settings, run: int) -> None:
    s = kpi_settings
    # violations: I1, I3, I4. Terms: I1 2024-03-10, I3 2024-05-01 + 90 = 2024-07-30, I4 2025-01-31 (not passed).
    # I1 followed up on 03-05 (in term), I3 on 09-01 (late) -> 1 / 2
    assert value(s, run, "follow_up")[:3] == (1, 2, 0.5)
    # days to the next inspection: I1 24, I3 123 (I4 has none) -> 147 / 2
    assert value(s, run, "follow_up_days")[:3] == (147, 2, 73.5)
    # deadlines passed: I1 (repaired 03-01 <= 03-10) -> 1 / 1
    assert value(s, run, "repaired_in_term")[:2] == (1, 1)
    # with a next inspection: I1 (next nageleefd), I3 (next I4 overtreden) -> 1 / 2; both hersteltermijn
    assert value(s, run, "effectiveness")[:2] == (1, 2)
    assert value(s, run, "effectiveness", dim="intervention", val="hersteltermijn")[:2] == (1, 2)
    # repeats within 730 days: I4 (after I3) -> 1 / 3
    assert value(s, run, "repeat_violation")[:2] == (1, 3)
    # LHS: B2 hersteltermijn (expected), A1 hersteltermijn (expected), A2 geen (not) -> 2 / 3
    assert value(s, run, "lhs_adherence")[:2] == (2, 3)
    assert value(s, run, "lhs_adherence", dim="lhs_cell", val="A2")[:2] == (0, 1)
    # escalation: I4 repeats I3 (hersteltermijn) with geen, lighter -> 0 / 1
    assert value(s, run, "lhs_escalation")[:2] == (0, 1)


def test_coverage_family(kpi_settings: Settings, run: int) -> None:
    s = kpi_settings
    # active on 2024-12-31 with a frequency: E1 (last I2 + 1y > end), E2 (I4 + 3y), E3 (I6 + 1y), E4 (never,
    # due 2018-01-01); E5 has no frequency, E6 ended -> 3 / 4
    assert value(s, run, "coverage")[:2] == (3, 4)
    # overdue: E4, (2024-12-31 - 2018-01-01) days
    days = (D - date(2018, 1, 1)).days
    assert value(s, run, "overdue_age_days")[:3] == (days, 1, days)
    # Q1 (end 2024-03-31): only E1 inspected (I2); E2 due 2023-01-01, E3 2021-01-01, E4 2018-01-01 -> 1 / 4
    q1_end = date(2024, 3, 31)
    assert value(s, run, "coverage", "quarter", date(2024, 1, 1))[:2] == (1, 4)
    overdue = [(q1_end - date(2023, 1, 1)).days, (q1_end - date(2021, 1, 1)).days, (q1_end - date(2018, 1, 1)).days]
    assert value(s, run, "overdue_age_days", "quarter", date(2024, 1, 1))[:2] == (sum(overdue), 3)
    # ODB: E3 covered, E4 not -> 1 / 2
    assert value(s, run, "coverage", dim="organisation", val=ODB, scope=ODB)[:2] == (1, 2)


def test_permits_family(kpi_settings: Settings, run: int) -> None:
    s = kpi_settings
    # in force on 2024-12-31: P1, P2, P3 (P2b from 2025, P4 vervallen) -> 3, public (permits are a public layer)
    assert value(s, run, "permits_in_force") == (3, None, 3, "public")
    # expiring by 2025-12-31 without a successor: P1 (P2 has P2b) -> 1 / 3
    assert value(s, run, "permits_expiring")[:2] == (1, 3)
    assert value(s, run, "permits_expiring", dim="organisation", val=ODA, scope=ODA)[:2] == (1, 2)
    # needing a permit and active: E3 (has P3), E4 (type C, none); E6 ended -> 1 / 2
    assert value(s, run, "without_permit")[:2] == (1, 2)


def test_data_quality(kpi_settings: Settings, run: int) -> None:
    # the latest of each rule in 2024: r1 (10 checked, 1 failed), r2 (5, 0) -> 14 / 15
    assert value(kpi_settings, run, "data_quality")[:2] == (14, 15)
    assert value(kpi_settings, run, "data_quality", dim="layer", val="establishments")[:2] == (9, 10)


def test_restricted_public_figures_pass_the_disclosure_control(kpi_settings: Settings, run: int) -> None:
    # 5 inspections of 3 enterprises cannot be published under k = 5: suppressed for the public (admins only)
    assert value(kpi_settings, run, "compliance")[3] == "admin"
    with psycopg.connect(database.url_for(kpi_settings, "owner")) as conn:
        leaked = conn.execute("SELECT count(*) FROM twin.kpi_values v JOIN twin.kpi_definitions d ON d.id = v.kpi "
                              "WHERE v.run_id = %s AND d.restricted AND v.audience = 'public'", (run,)).fetchone()
    assert leaked == (0,)


def _values(s: Settings, run: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        return conn.execute(
            "SELECT kpi, period_type, period_start, period_end, dimension, dimension_value, scope_org, numerator, "
            "denominator, value, ci_low, ci_high, audience, change_z, change_q, change FROM twin.kpi_values "
            "WHERE run_id = %s ORDER BY 1, 2, 3, 5, 6, 7", (run,)).fetchall()


def test_as_of_from_history_equals_the_current_state(kpi_settings: Settings, run: int) -> None:
    """The same reference date from the current tables and from the history: the same values."""
    with psycopg.connect(database.url_for(kpi_settings, "writer")) as conn:
        current = compute.compute(conn, as_of=D, k=5, from_history=False)
        conn.commit()
    assert not current.from_history
    assert _values(kpi_settings, current.run_id) == _values(kpi_settings, run)


def test_recomputed_as_of_a_date_after_a_correction(kpi_settings: Settings, run: int) -> None:
    """Compute as of D; a correcting delivery; recompute as of D known at the first run's time -> identical."""
    s = kpi_settings
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        known = conn.execute("SELECT known_on, from_history FROM twin.kpi_runs WHERE id = %s", (run,)).fetchone()
    assert known is not None and known[1] is True
    first_known: datetime = known[0]
    with psycopg.connect(database.url_for(s, "writer")) as conn:
        conn.execute("SELECT set_config('twin.correction', 'on', true)")
        conn.execute("UPDATE twin.inspections SET result = 'voorschriften overtreden' WHERE inspection_id = 'KW-I2'")
        conn.commit()
    try:
        with psycopg.connect(database.url_for(s, "writer")) as conn:
            again = compute.compute(conn, as_of=D, k=5, known_on=first_known)
            now = compute.compute(conn, as_of=D, k=5)
            conn.commit()
        assert again.known_on == first_known and again.from_history
        assert _values(s, again.run_id) == _values(s, run)
        # as known now the correction counts: no inspection complied in 2024
        assert value(s, now.run_id, "compliance")[:2] == (0, 5)
    finally:
        with psycopg.connect(database.url_for(s, "writer")) as conn:
            conn.execute("SELECT set_config('twin.correction', 'on', true)")
            conn.execute("UPDATE twin.inspections SET result = 'voorschriften nageleefd' "
                         "WHERE inspection_id = 'KW-I2'")


def test_known_on_in_the_future_is_refused(kpi_settings: Settings) -> None:
    from datetime import UTC, timedelta

    with psycopg.connect(database.url_for(kpi_settings, "writer")) as conn, pytest.raises(ValueError):
        compute.compute(conn, as_of=D, known_on=datetime.now(UTC) + timedelta(days=2))


def test_bi_feed_shows_the_newest_run_on_the_current_state(kpi_settings: Settings, run: int) -> None:
    """bi.fact_kpi_values_v1 (migration 0021): the newest run computed from the current state, not a later
    recomputation as of a date from the history (which has the highest run id)."""
    with psycopg.connect(database.url_for(kpi_settings, "writer")) as conn:
        current = compute.compute(conn, as_of=D, k=5, from_history=False)
        conn.commit()
        later = compute.compute(conn, as_of=D, k=5)
        conn.commit()
    assert not current.from_history and later.from_history and later.run_id > current.run_id
    with psycopg.connect(database.url_for(kpi_settings, "owner")) as conn:
        shown = {r[0] for r in conn.execute("SELECT DISTINCT run_id FROM bi.fact_kpi_values_v1").fetchall()}
        newest = conn.execute("SELECT max(id) FROM twin.kpi_runs").fetchone()
    assert shown == {current.run_id}
    assert newest is not None and newest[0] == later.run_id


def test_two_sessions_and_one_give_the_same_run(kpi_settings: Settings, run: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """compute runs its heaviest families in worker processes, each on a session importing the run's snapshot
    (when the caller's transaction has written nothing yet); a caller that has written takes one session, since
    another could not see its rows. Both ways store the same values. (The test twin is small enough to run on
    one session anyway: the threshold is lowered.)"""
    monkeypatch.setattr(compute, "WORKER_MIN_ROWS", 0)
    with psycopg.connect(database.url_for(kpi_settings, "writer")) as conn:
        parallel = compute.compute(conn, as_of=D, k=5)
        conn.commit()
        conn.execute("INSERT INTO twin.kpi_runs (as_of, known_on, from_history, data_version, k) "
                     "VALUES (%s, now(), false, '{}', 5)", (D,))  # this transaction has now written
        single = compute.compute(conn, as_of=D, k=5)
        conn.commit()
    assert (parallel.sessions, single.sessions) == (1 + len(compute.WORKER_FAMILIES), 1)
    assert _values(kpi_settings, parallel.run_id) == _values(kpi_settings, single.run_id) \
        == _values(kpi_settings, run)
