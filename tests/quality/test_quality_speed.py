"""The faster ways of measuring (docs/quality.md, Speed) count exactly what the plain ones count: the queries on
two sessions sharing one snapshot against one session, and the municipality hint of the inside-the-Netherlands
rule against the probe over all land."""

from __future__ import annotations

import importlib
from typing import Any

import psycopg
from conftest import Twin
from psycopg import sql

from layers.registry import get_layer
from twin import database, quality
from twin.quality.generic import inside_netherlands

evaluate_module = importlib.import_module("twin.quality.evaluate")


def _counts(report: quality.QualityReport) -> dict[str, Any]:
    return {r.rule.id: (r.applicable, r.note, r.checked, r.failed, r.examples) for r in report.results}


def test_two_sessions_measure_what_one_session_measures(quality_twin: Twin, monkeypatch: Any) -> None:
    s = quality_twin.settings
    opened: list[bool] = []
    real = evaluate_module.snapshot_sessions

    def spy(conn: psycopg.Connection, n: int, **kwargs: Any) -> Any:
        sessions = real(conn, n, **kwargs)
        opened.append(sessions is not None)
        return sessions

    monkeypatch.setattr(evaluate_module, "snapshot_sessions", spy)
    with database.connect(database.url_for(s, "writer")) as conn:
        two = quality.evaluate(conn, s, examples=20)
    assert opened == [True], "a plain writer connection measures on two sessions"
    monkeypatch.setattr(evaluate_module, "snapshot_sessions", lambda conn, n, **kwargs: None)
    with database.connect(database.url_for(s, "writer")) as conn:
        one = quality.evaluate(conn, s, examples=20)
    assert _counts(two) == _counts(one)
    assert any(r.failed for r in two.results)


def _keys(conn: psycopg.Connection, rule: quality.QualityRule, settings: Any) -> set[str]:
    rows = conn.execute(sql.SQL("SELECT b.building_id FROM ({}) f JOIN twin.buildings b ON b.id = f.id")
                        .format(quality.failing_sql(rule, settings))).fetchall()
    return {r[0] for r in rows}


def test_municipality_hint_changes_no_count(quality_twin: Twin) -> None:
    """Buildings whose BAG identifier names a municipality they do not lie in, or one that does not exist, are
    inside the Netherlands all the same; one at sea with the identifier of a real municipality is not. The rule
    with the hint (a hash join on the code first) and the rule without it (the probe over all land) agree."""
    s = quality_twin.settings
    hinted = quality.get_rule("buildings.inside-netherlands")
    plain = inside_netherlands(get_layer("buildings"))
    assert hinted.sql.joins != plain.sql.joins
    x, y = 134950.0, 456350.0  # on land, among the fixture's records
    with psycopg.connect(quality_twin.owner) as conn:  # never committed
        own, other = conn.execute(
            "SELECT (SELECT code FROM twin.municipalities WHERE ST_Intersects(geom, p)), "
            "(SELECT code FROM twin.municipalities WHERE NOT ST_Intersects(geom, p) ORDER BY code LIMIT 1) "
            "FROM ST_Point(%s, %s, 28992) p", (x, y)).fetchone() or (None, None)
        assert own and other and own != other
        rows = {"9999100000888801": (x, y),  # no municipality has code GM9999
                f"{other[2:]}100000888802": (x + 20, y),  # another municipality's identifier
                f"{own[2:]}100000888803": (x + 40, y),  # its own municipality's identifier
                f"{own[2:]}100000888804": (50000.0, 560000.0)}  # at sea
        for building_id, (bx, by) in rows.items():
            conn.execute("INSERT INTO twin.buildings (building_id, construction_year, status, use, height_m, geom) "
                         "VALUES (%s, 1990, 'Pand in gebruik', 'woonfunctie', 10, "
                         "ST_MakeEnvelope(%s, %s, %s, %s, 28992))", (building_id, bx - 4, by - 4, bx + 4, by + 4))
        at_sea = {f"{own[2:]}100000888804"}
        assert _keys(conn, hinted, s) == _keys(conn, plain, s) == at_sea
        counts = [conn.execute(quality.count_sql(r, s)).fetchone() for r in (hinted, plain)]
        assert counts[0] == counts[1]
        # evaluate on a session with uncommitted rows measures on that session alone, so it sees them
        report = quality.evaluate(conn, s, [hinted, quality.get_rule("buildings.geometry-valid")], examples=5)
        assert (report.results[0].failed, {e["key"] for e in report.results[0].examples}) == (1, at_sea)
        conn.rollback()
