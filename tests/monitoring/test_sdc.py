"""The public KPI figures' disclosure control equals twin.disclosure.publishable, and secondary suppression
stops differencing."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date

import pytest

from twin.disclosure import Contribution, publishable
from twin.monitoring import compute, sdc
from twin.monitoring.definitions import Kpi


def _cell(rng: random.Random) -> list[Contribution]:
    out = []
    for _ in range(rng.randint(0, 14)):
        c = rng.randint(0, 9)
        out.append(Contribution(f"kvk:{c}", rng.random() < 0.3, rng.choice(["A", "B", "C", None]), rng.randint(1, 6)))
    return out


def test_fast_publishable_equals_disclosure_publishable() -> None:
    rng = random.Random(1)
    for _ in range(5000):
        cell = _cell(rng)
        k = rng.choice([2, 3, 5])
        assert sdc.fast_publishable(cell, k) == publishable(cell, k), cell


def test_secondary_suppression_hides_a_lone_suppressed_part() -> None:
    def many(prefix: str, n: int, org: str = "A") -> list[Contribution]:
        return [Contribution(f"{prefix}{i}", False, org, 1) for i in range(n)]

    q = ("year", date(2024, 1, 1))
    cells = {(*q, "sector", "01"): many("a", 2), (*q, "sector", "10"): many("b", 20),
             (*q, "sector", "20"): many("c", 30)}
    cells[(*q, "all", "all")] = [c for v in list(cells.values()) for c in v]
    stats = {key: sdc.stats_of(v) for key, v in cells.items()}
    published = sdc.protect(stats, 5, lambda keys: {key: cells[key] for key in keys})
    assert (*q, "sector", "01") not in published  # primary
    assert (*q, "sector", "10") not in published  # secondary: total - 20 - 30 would give sector 01
    assert (*q, "sector", "20") in published and (*q, "all", "all") in published


# --- the family's disclosure control (compute.disclosure_control) against reading every cell ----------------------
def _random_base(rng: random.Random) -> list[tuple]:
    """Base rows (ptype, pstart, org, municipality, sector, category, contributor, sole, n, d): contributors with
    one or more organisations, sole proprietors, a few heavy ones (so that counts alone often cannot decide)."""
    periods = [("quarter", date(2024, 1, 1)), ("quarter", date(2024, 4, 1)), ("year", date(2024, 1, 1)),
               ("month", date(2024, 1, 1))]
    contributors = [(f"kvk:{i}", rng.random() < 0.3, rng.choice(["A", "B", None]), 1 + (i % 7 == 0) * 6)
                    for i in range(40)]
    rows = []
    for _ in range(rng.randint(30, 400)):
        c, sole, org, weight = rng.choice(contributors)
        if rng.random() < 0.1:
            org = rng.choice(["A", "B", "C", None])
        d = rng.randint(0, 2) * weight
        for ptype, pstart in periods:
            rows.append((ptype, pstart, org, rng.choice(["GM1", "GM2", "GM3", None]), rng.choice(["01", "10", "47"]),
                         rng.choice(["1", "2"]), c, None if rng.random() < 0.05 else sole, rng.randint(0, d), d))
    return rows


def _reference(rows: list[tuple], k: int) -> set:
    cells: dict[tuple, list[Contribution]] = defaultdict(list)
    for ptype, pstart, org, muni, sector, cat, c, sole, _n, d in rows:
        if ptype == "month" or d <= 0:
            continue
        for dim, val in (("all", "all"), ("municipality", muni), ("sector", sector), ("environmental_category", cat)):
            key = (ptype, pstart, dim, compute.UNKNOWN if val is None else val)
            cells[key].append(Contribution(c, True if sole is None else sole, org, d))
    stats = {key: sdc.stats_of(v) for key, v in cells.items()}
    primary = {key: publishable(v, k) for key, v in cells.items()}
    return sdc.protect(stats, k, lambda keys: {key: cells[key] for key in keys}, primary)


def test_family_disclosure_control_equals_reading_every_cell(owner_url: str) -> None:
    """compute.disclosure_control decides most cells from counts and reads only the rest: the published cells
    must be exactly those of testing every cell on its records (twin.disclosure.publishable) followed by the
    same secondary suppression."""
    import psycopg

    kpi = Kpi("x", "x", "x", "x", "x", "proportion", "test", True, ())
    cols = ["org_code", "municipality_code", "sector", "category"]
    rng = random.Random(7)
    with psycopg.connect(owner_url) as conn:
        for trial in range(12):
            rows = _random_base(rng)
            k = rng.choice([2, 3, 5])
            conn.execute("DROP TABLE IF EXISTS mon_base")
            conn.execute("CREATE TEMP TABLE mon_base (ptype text, pstart date, org_code text, municipality_code text, "
                         "sector text, category text, contributor text, sole boolean, n_x int, d_x int)")
            with conn.cursor().copy("COPY mon_base FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            agg = conn.execute(compute.aggregate_sql("mon_base", [kpi], [kpi], cols, [])).fetchall()
            got = compute.disclosure_control(conn, agg, [kpi], [kpi], cols, ["quarter", "year"], k, {}, "test")
            assert got["x"] == _reference(rows, k), (trial, k)
        conn.rollback()


def test_kpis_with_the_same_records_are_tested_once_and_only_those(owner_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Restricted KPIs whose denominators are equal on every base row share one test (compute._same_records).
    A KPI with the same counts in every cell but other contributors (two rows' denominators swapped between
    contributors) must still be tested on its own records."""
    import psycopg

    kpis = [Kpi(i, i, i, i, i, "proportion", "test", True, ()) for i in ("x", "y", "z")]
    cols = ["org_code", "municipality_code", "sector", "category"]
    rng = random.Random(11)
    swapped = 0
    shared: list[dict[str, str]] = []
    same_records = compute._same_records

    def recorded(*args: object) -> dict[str, str]:
        shared.append(same_records(*args))  # type: ignore[arg-type]
        return shared[-1]

    monkeypatch.setattr(compute, "_same_records", recorded)
    with psycopg.connect(owner_url) as conn:
        for trial in range(8):
            rows = _random_base(rng)
            k = rng.choice([2, 3, 5])
            dz = [r[-1] for r in rows]
            seen: dict[tuple, int] = {}
            for i, r in enumerate(rows):  # swap d between rows alike in all but the contributor
                like = (r[0], r[1], r[2], r[3], r[4], r[5], True if r[7] is None else r[7])
                j = seen.get(like)
                if j is not None and rows[j][6] != r[6] and dz[j] != dz[i]:
                    dz[i], dz[j] = dz[j], dz[i]
                    swapped += 1
                    del seen[like]
                else:
                    seen[like] = i
            z_rows = [(*r[:8], min(r[8], dz[i]), dz[i]) for i, r in enumerate(rows)]
            conn.execute("DROP TABLE IF EXISTS mon_base")
            conn.execute("CREATE TEMP TABLE mon_base (ptype text, pstart date, org_code text, municipality_code text, "
                         "sector text, category text, contributor text, sole boolean, n_x int, d_x int, n_y int, "
                         "d_y int, n_z int, d_z int)")
            with conn.cursor().copy("COPY mon_base FROM STDIN") as cp:
                for r, z in zip(rows, z_rows, strict=True):
                    cp.write_row((*r, r[8], r[9], z[8], z[9]))
            agg = conn.execute(compute.aggregate_sql("mon_base", kpis, kpis, cols, [])).fetchall()
            timings: dict[str, float] = {}
            got = compute.disclosure_control(conn, agg, kpis, kpis, cols, ["quarter", "year"], k, timings, "test")
            assert got["x"] == got["y"] == _reference(rows, k), (trial, k)
            assert got["z"] == _reference(z_rows, k), (trial, k)
            assert shared[-1] == {"y": "x"}  # z, alike in its counts, is tested on its own records
        conn.rollback()
    assert swapped > 50


def test_bounded_decision_never_contradicts_publishable() -> None:
    rng = random.Random(3)
    for _ in range(3000):
        cell = _cell(rng)
        k = rng.choice([2, 3, 5])
        per: dict[str, int] = defaultdict(int)
        for c in cell:
            per[c.contributor] += c.records
        s = sdc.stats_of(cell)
        orgs = [(p.records, p.sole_records) for o, p in s.orgs.items() if o is not None and p.records > 0]
        got = compute.bounded_decision(s.records, s.sole_records, orgs, max(per.values(), default=0), k)
        if got is not None and s.records > 0:
            assert got == publishable(cell, k), cell
