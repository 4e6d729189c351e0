"""Every rule against the fixture twin: the records that break it, worked out from quality_fixture.py record by
record, and nothing else."""

from __future__ import annotations

import psycopg
from conftest import Twin
from psycopg import sql
from quality_fixture import AMSTERDAM

from layers.registry import LAYERS, get_layer
from twin import database, quality

# rule -> the keys of the records that break it (see the comments in quality_fixture.py).
EXPECTED: dict[str, set[str]] = {
    # establishments: the ingested ones and E-SQL (at sea, blank name, no postcode or municipality, no run)
    "establishments.name-filled": {"E-SQL"},
    "establishments.kvk_number-filled": {"E-NO-KVK"},
    "establishments.street-filled": {"E-MANY"},
    "establishments.house_number-filled": {"E-NO-HOUSE-NUMBER"},
    "establishments.postcode-filled": {"E-SQL"},
    "establishments.city-filled": {"E-MANY"},
    "establishments.municipality_code-filled": {"E-SQL"},
    "establishments.environmental_category-filled": {"E-MANY"},
    "establishments.visit_frequency_years-filled": {"E-NO-FREQUENCY"},
    "establishments.org_code-filled": {"E-MANY"},
    "establishments.started_on-filled": {"E-NO-START"},
    "establishments.started_on-possible": {"E-FUTURE-START"},
    "establishments.inside-netherlands": {"E-SQL"},
    "establishments.delivery-current": {"E-SQL"},
    "establishments.postcode-format": {"E-BAD-POSTCODE"},
    "establishments.sole-proprietor-fits-legal-form": {"E-MANY"},
    "establishments.brzo-visit-frequency": {"E-BRZO"},
    "establishments.municipality-matches-location": {"E-WRONG-MUNICIPALITY"},
    "establishments.address-found": {"E-BAD-POSTCODE"},
    "establishments.near-building": {"E-NO-BUILDING"},
    "establishments.inspection-overdue": {"E-OVERDUE"},
    "signal.livestock-without-permit": {"E-LIVESTOCK-NO-PERMIT"},
    "signal.industry-without-permit": {"E-INDUSTRY-NO-PERMIT"},
    "signal.kvk-far-apart": {"E-KVK-A", "E-KVK-B"},  # a pair: each lies far from the other
    "signal.address-location-mismatch": {"E-FAR-FROM-ADDRESS"},
    # permits
    "permits.applied_on-filled": {"P-NO-APPLICATION-DATE"},
    "permits.org_code-filled": {"P-NO-ORG"},
    "permits.status-in-list": {"P-SQL"},
    "permits.delivery-current": {"P-SQL"},
    "permits.status-fits-dates": {"P-NO-DECISION-DATE"},
    "permits.dates-in-order": {"P-BACKWARDS"},
    "permits.near-establishment": {"P-FAR"},
    "signal.permit-of-ended-establishment": {"P-ENDED"},
    # inspections
    "inspections.org_code-filled": {"I-NO-ORG"},
    "inspections.inspected_on-possible": {"I-AFTER-AS-OF"},
    "inspections.kind-in-list": {"I-SQL"},
    "inspections.delivery-current": {"I-SQL"},
    "inspections.within-establishment-lifetime": {"I-BEFORE-START"},
    "inspections.result-fits-intervention": {"I-NO-MEASURE"},
    "inspections.repair-deadline-after-inspection": {"I-DEADLINE-FIRST"},
    "inspections.near-establishment": {"I-FAR"},
    "signal.violation-without-follow-up": {"I-WITHDRAWN"},
    # natura2000-habitats
    "natura2000-habitats.area_number-filled": {"HAB-INCOMPLETE"},
    "natura2000-habitats.protection-filled": {"HAB-INCOMPLETE"},
    "natura2000-habitats.kdw-filled": {"HAB-NO-KDW"},
    "natura2000-habitats.habitat-type-code": {"HAB-NAME"},
    "natura2000-habitats.kdw-fits-type": {"HAB-KDW-WRONG"},
    # housing-sites
    "housing-sites.phase-filled": {"S-VAGUE"},
    "housing-sites.planned_year-filled": {"S-VAGUE"},
    "housing-sites.planned-year-possible": {"S-YEAR"},
    "housing-sites.phase-fits-year": {"S-STALE"},
    "housing-sites.dwelling-density": {"S-DENSE"},
    "housing-sites.municipality-matches-location": {"S-ELSEWHERE"},
    # buildings
    "buildings.construction_year-filled": {"0344100000900004"},
    "buildings.status-filled": {"0344100000900004"},
    "buildings.use-filled": {"0344100000900004"},
    "buildings.geometry-valid": {"0344100000999999"},
    "buildings.delivery-current": {"0344100000999999"},
    "buildings.construction-year-possible": {"0344100000900001"},
    "buildings.height-plausible": {"0344100000900002"},
    "buildings.footprint-plausible": {"0344100000900003"},
    # addresses
    "addresses.street-filled": {"0344010000900005"},
    "addresses.city-filled": {"0344010000900005"},
    "addresses.unique": {"0344010000900001", "0344010000900002"},  # a pair
    "addresses.in-building": {"0344010000900003"},
    "addresses.municipality-matches-location": {"0344010000900004"},
}

# Rules the fixture cannot break: the schema refuses what would break them (CHECK constraints on the enum
# columns, ended_on >= started_on, the permit date checks), points are always valid geometries, or the layer
# is empty (deposition-hexagons, natura2000-areas) or is the reference itself (municipalities).
NOT_APPLICABLE = {r.id for layer in ("deposition-hexagons", "natura2000-areas") for r in quality.all_rules(layer=layer)}


def _evaluate(twin: Twin) -> quality.QualityReport:
    with database.connect(database.url_for(twin.settings, "writer")) as conn:
        return quality.evaluate(conn, twin.settings, examples=20)


def test_every_rule_fails_exactly_where_the_fixture_breaks_it(quality_twin: Twin) -> None:
    report = _evaluate(quality_twin)
    got = {r.rule.id: {e["key"] for e in r.examples} for r in report.results if r.applicable and r.failed}
    assert got == EXPECTED
    counts = {r.rule.id: r.failed for r in report.results if r.applicable and r.failed}
    assert counts == {k: len(v) for k, v in EXPECTED.items()}
    assert {r.rule.id for r in report.results if not r.applicable} == NOT_APPLICABLE
    assert set(EXPECTED) <= {r.id for r in quality.all_rules()}


def test_one_record_breaks_several_rules(quality_twin: Twin) -> None:
    report = _evaluate(quality_twin)
    broken_by = {r.rule.id for r in report.results for e in r.examples if e["key"] == "E-MANY"}
    assert broken_by == {"establishments.street-filled", "establishments.city-filled", "establishments.org_code-filled",
                         "establishments.environmental_category-filled",
                         "establishments.sole-proprietor-fits-legal-form"}
    assert {r.rule.id for r in report.results for e in r.examples if e["key"] == "E-SQL"} == {
        "establishments.name-filled", "establishments.postcode-filled", "establishments.municipality_code-filled",
        "establishments.inside-netherlands", "establishments.delivery-current"}


def test_checked_counts_and_scores(quality_twin: Twin) -> None:
    by_id = {r.rule.id: r for r in _evaluate(quality_twin).results}
    n_est = len(quality_twin.fixture.establishments) + 1  # and E-SQL
    # every establishment is checked for a filled name; one fails
    assert (by_id["establishments.name-filled"].checked, by_id["establishments.name-filled"].failed) == (n_est, 1)
    assert by_id["establishments.name-filled"].score == 1 - 1 / n_est
    # livestock: SBI 0146 and 0141, neither ended; industry: 2511 and 1011
    assert by_id["signal.livestock-without-permit"].checked == 2
    assert by_id["signal.industry-without-permit"].checked == 2
    # overdue: only those whose term has run since they started (AS_OF 2026-06-30): E-LIVESTOCK-OK (1 y,
    # 2000), E-INDUSTRY-OK (3 y, 2000), E-NO-START (10 y, no start), E-BRZO (5 y, 2020), E-OVERDUE (1 y, 2000)
    assert by_id["establishments.inspection-overdue"].checked == 5
    # follow-up: the violations whose repair deadline passed: I-DEADLINE-FIRST, I-WITHDRAWN, I-FOLLOWED-UP
    assert by_id["signal.violation-without-follow-up"].checked == 3
    # ended establishments' permits: the 'verleend' ones are checked: P-LIVESTOCK-OK, P-INDUSTRY-OK,
    # P-NO-DECISION-DATE, P-BACKWARDS, P-NO-APPLICATION-DATE, P-NO-ORG, P-ENDED, P-FAR (not P-LIVESTOCK-EXPIRED,
    # 'vervallen', nor P-SQL, 'granted')
    assert by_id["signal.permit-of-ended-establishment"].checked == 8
    # near-building does not apply at sea (E-SQL: no building within 500 m)
    assert by_id["establishments.near-building"].checked == n_est - 1
    # the reasons name the values
    reason = by_id["signal.address-location-mismatch"].examples[0]["reason"]
    assert reason.startswith("lies 400 m from its address")
    # the rules written as anti-joins (for speed) still say where the record lies
    assert by_id["addresses.in-building"].examples[0]["reason"] == "lies in no building"
    wrong = by_id["addresses.municipality-matches-location"].examples[0]["reason"]
    assert wrong.startswith(f"municipality_code {AMSTERDAM} but it lies in GM"), wrong
    assert "GM0363" not in wrong.removeprefix(f"municipality_code {AMSTERDAM}")
    site = by_id["housing-sites.municipality-matches-location"].examples[0]["reason"]
    assert site.startswith(f"municipality_code {AMSTERDAM} but it lies in GM"), site
    at_sea = by_id["establishments.inside-netherlands"].examples[0]["reason"]
    assert at_sea.startswith("lies outside every municipality (at "), at_sea
    # an address in a building counts as checked without the 500 m probe; all fixture addresses have buildings
    # around them
    assert by_id["addresses.in-building"].checked == by_id["addresses.street-filled"].checked


def test_in_building_at_its_edges(quality_twin: Twin) -> None:
    """addresses.in-building where its grid step and its 500 m condition decide, in a transaction that is rolled
    back: an address 0.7 m outside a building, across a 25 m grid line from it, lies in a building (the building
    is listed in the cells of its box grown by 1 m); one 3 m outside fails; one more than 500 m from every
    building is not checked. count_sql and failing_sql agree on it all."""
    rule = quality.get_rule("addresses.in-building")
    s = quality_twin.settings
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        checked0, failed0 = conn.execute(quality.count_sql(rule, s)).fetchone() or (0, 0)
        conn.execute(
            "INSERT INTO twin.buildings (building_id, geom) VALUES ('0344100000800001', "
            "ST_MakeEnvelope(134976, 455976, 134999.5, 455999.5, 28992))")  # cells 5399-5400 x 18239-18240
        conn.execute(
            "INSERT INTO twin.addresses (address_id, house_number, geom) VALUES "
            "('0344010000800001', 1, ST_SetSRID(ST_Point(135000.2, 455990), 28992)), "  # 0.7 m: in the building
            "('0344010000800002', 2, ST_SetSRID(ST_Point(134990, 456000.1), 28992)), "  # 0.6 m, the cell above
            "('0344010000800003', 3, ST_SetSRID(ST_Point(135002.5, 455990), 28992)), "  # 3 m: fails
            "('0344010000800004', 4, ST_SetSRID(ST_Point(150000, 470000), 28992))")  # no building within 500 m
        checked, failed = conn.execute(quality.count_sql(rule, s)).fetchone() or (0, 0)
        assert (checked - checked0, failed - failed0) == (3, 1)
        failing = conn.execute(
            sql.SQL("SELECT a.address_id, f.reason FROM ({}) f JOIN twin.addresses a ON a.id = f.id").format(
                quality.failing_sql(rule, s))).fetchall()
        assert len(failing) == failed
        assert ("0344010000800003", "lies in no building") in failing
        assert not {"0344010000800001", "0344010000800002", "0344010000800004"} & {k for k, _ in failing}
        conn.rollback()


def test_signals_read_only_the_tables_their_fingerprint_covers() -> None:
    """/quality/signals serves a signal's recorded count while its fingerprint holds (migration 0025), which covers
    the versions of rule_tables(rule) only: every table a signal's SQL reads must be among them, and each must
    raise its version on a change (a layer table, with the trigger of migration 0007)."""
    import re

    versioned = {spec.table for spec in LAYERS.values()}
    signals = quality.all_rules(kind="signal")
    assert signals
    for rule in signals:
        text = quality.count_sql(rule).as_string(None) + quality.failing_sql(rule).as_string(None)
        read = set(re.findall(r'twin\."?([a-z_0-9]+)"?', text))
        assert read <= set(quality.rule_tables(rule)) <= versioned, rule.id
        assert quality.fingerprint_covers(rule), rule.id
    # what the API checks before it serves a recorded count of any rule: a delivery-age rule reads twin.ingest_runs
    assert not quality.fingerprint_covers(quality.get_rule("buildings.delivery-current"))


def test_interface_sql_runs_for_every_rule(quality_twin: Twin) -> None:
    """failing_sql and count_sql agree for every rule, and no fragment holds a '%' (callers may bind {})."""
    with psycopg.connect(database.url_for(quality_twin.settings, "writer")) as conn:
        for rule in quality.all_rules():
            text = quality.failing_sql(rule, quality_twin.settings).as_string(conn)
            assert "%" not in text, rule.id
            if rule.layer not in LAYERS or rule.id in NOT_APPLICABLE:
                continue
            failing = conn.execute(quality.failing_sql(rule, quality_twin.settings), {}).fetchall()
            checked, failed = conn.execute(quality.count_sql(rule, quality_twin.settings), {}).fetchone() or (0, 0)
            assert failed == len(failing) == len(EXPECTED.get(rule.id, ())), rule.id
            assert all(isinstance(i, int) and reason for i, reason in failing), rule.id
            assert checked >= failed
            # the form for a few ids (the API's quality_issue_list) finds the same records among them
            table = get_layer(rule.layer).table
            first = conn.execute(f"SELECT id FROM twin.{table} ORDER BY id LIMIT 5").fetchall()  # noqa: S608
            ids = [i for i, _ in failing] + [i for (i,) in first]
            few = conn.execute(sql.SQL("SELECT f.id, f.reason FROM ({}) f WHERE f.id = ANY(%s)").format(
                quality.failing_sql(rule, quality_twin.settings, few=True)), (ids,)).fetchall()
            assert sorted(few) == sorted(failing), rule.id


def test_fingerprints_stay_for_rules_whose_tables_did_not_change_meanwhile(quality_twin: Twin) -> None:
    """The fingerprint of a measurement (migration 0025) is recorded per rule: a change that commits while the rules
    are measured (here a statement on the buildings, which raises their version) voids it for the rules that read
    that table and leaves it for the others ('twin ingest-all' measures rules while the hexagons are derived)."""
    rules = [quality.get_rule("establishments.name-filled"), quality.get_rule("buildings.status-filled")]
    bumped = []

    def progress(done: int, total: int) -> None:
        if not bumped:  # after the first query, before the versions are read again
            with psycopg.connect(quality_twin.owner, autocommit=True) as other:
                other.execute("UPDATE twin.buildings SET status = status WHERE false")
            bumped.append(done)

    with psycopg.connect(database.url_for(quality_twin.settings, "writer")) as conn:
        before = dict(conn.execute("SELECT table_name, version FROM twin.layer_versions").fetchall())
        report = quality.evaluate(conn, quality_twin.settings, rules, progress=progress)
        today = conn.execute("SELECT current_date").fetchone()[0]  # type: ignore[index]
        after = dict(conn.execute("SELECT table_name, version FROM twin.layer_versions").fetchall())
    assert bumped and after["buildings"] > before["buildings"] and after["establishments"] == before["establishments"]
    got = {r.rule.id: r for r in report.results}
    assert all(r.applicable for r in got.values())
    assert got["buildings.status-filled"].fingerprint is None
    assert got["establishments.name-filled"].fingerprint == quality.fingerprint(rules[0], quality_twin.settings,
                                                                               today, after)


def test_only_rules_that_read_the_clock_take_the_date_into_their_fingerprint() -> None:
    """A recorded count stands past midnight unless the rule reads the clock (its fingerprint then changes with
    the date): the API served live counts for every rule from 00:00 on before."""
    from datetime import date

    versions = {"buildings": 3, "addresses": 4}
    plain, clock = quality.get_rule("buildings.status-filled"), quality.get_rule("buildings.delivery-current")
    day, next_day = date(2026, 12, 7), date(2026, 12, 8)
    assert quality.fingerprint(plain, None, day, versions) == quality.fingerprint(plain, None, next_day, versions)
    assert quality.fingerprint(clock, None, day, versions) != quality.fingerprint(clock, None, next_day, versions)
    assert quality.fingerprint(plain, None, day, versions) != quality.fingerprint(plain, None, day,
                                                                                  {**versions, "buildings": 5})
