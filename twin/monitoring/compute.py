"""``twin monitor compute``: every KPI for every period type, dimension and scope, stored in twin.kpi_values
with the run's reference date and data version (twin.kpi_runs). Public figures of restricted KPIs pass the
statistical disclosure control of :mod:`twin.disclosure` (with secondary suppression, :mod:`twin.monitoring.sdc`);
trends are flagged with a two-proportion z-test and the Benjamini-Hochberg correction (:mod:`.stats`)."""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import json
import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from layers.registry import INTERVENTIONS, LHS_CELLS
from twin import database, history
from twin.monitoring import sdc, stats
from twin.monitoring.definitions import KPIS, Kpi
from twin.monitoring.families import CUMULATIVE, FAMILIES, N2K

LHS_MATRIX_FILE = Path(__file__).resolve().parents[2] / "layers" / "data" / "lhs_matrix.csv"
FIRST_DAY = date(2000, 1, 1)
ALPHA = 0.05
# Grouping columns of the family SQL, in GROUPING() bit order (most significant first).
GROUP_COLS = ("org_code", "municipality_code", "sector", "category", "intervention", "lhs_cell")
DIM_OF_COL = {"municipality_code": "municipality", "sector": "sector", "category": "environmental_category",
              "intervention": "intervention", "lhs_cell": "lhs_cell"}
UNKNOWN = "(unknown)"


@dataclass(slots=True)
class Row:
    kpi: str
    ptype: str
    pstart: date
    pend: date
    dimension: str
    value_key: str
    scope_org: str | None
    num: float | None
    den: float | None
    audience: str = "public"
    value: float | None = None
    ci: tuple[float, float] | None = None
    z: float | None = None
    q: float | None = None
    change: str | None = None
    p: float | None = field(default=None, repr=False)


def read_lhs_matrix(path: Path | None = None) -> list[tuple[str, list[str], bool]]:
    """The LHS matrix file (cell, expected instruments, escalate_on_repeat), checked against the registry."""
    path = path or LHS_MATRIX_FILE
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    out = []
    for rec in csv.DictReader(lines):
        cell = rec["cell"].strip()
        expected = [x.strip() for x in rec["expected"].split(";") if x.strip()]
        if cell not in LHS_CELLS or any(x not in INTERVENTIONS for x in expected):
            raise ValueError(f"{path}: cell {cell!r} or an instrument of {expected} is not in the registry")
        out.append((cell, expected, rec.get("escalate_on_repeat", "true").strip().lower() != "false"))
    return out


def periods(first: date, as_of: date) -> list[tuple[str, date, date]]:
    """(type, start, end) of every month, quarter and year from ``first`` to ``as_of``; the last of each
    type ends at ``as_of`` (a period still running is measured up to the reference date)."""
    out = []
    for ptype, months in (("month", 1), ("quarter", 3), ("year", 12)):
        start = date(first.year, 1 if months == 12 else ((first.month - 1) // months) * months + 1, 1)
        while start <= as_of:
            m = start.month - 1 + months
            nxt = date(start.year + m // 12, m % 12 + 1, 1)
            out.append((ptype, start, min(nxt - timedelta(days=1), as_of)))
            start = nxt
    return out


@functools.lru_cache(maxsize=4096)
def previous_start(ptype: str, start: date) -> date:
    months = {"month": 1, "quarter": 3, "year": 12}[ptype]
    m = start.month - 1 - months
    return date(start.year + m // 12, m % 12 + 1, 1)


def _grouping_sets(extra: Iterable[str], with_org: bool = True) -> str:
    singles = ["municipality_code", "sector", "category", *extra]
    sets = ["()", *(f"({c})" for c in singles)]
    if with_org:
        sets += ["(org_code)", *(f"(org_code, {c})" for c in singles)]
    return ", ".join(sets)


@functools.lru_cache(maxsize=4096)
def _decode_shape(g: int, cols: tuple[str, ...]) -> tuple[str, int, bool]:
    """(dimension, index of its column or -1, whether org_code is grouped) of a GROUPING() value."""
    grouped = [c for i, c in enumerate(cols) if not g & (1 << (len(cols) - 1 - i))]
    others = [c for c in grouped if c != "org_code"]
    with_org = "org_code" in grouped
    if not others:
        return ("organisation" if with_org else "all"), -1, with_org
    return DIM_OF_COL[others[0]], cols.index(others[0]), with_org


def _decode(g: int, cols: list[str], values: tuple[Any, ...]) -> tuple[str, str, str | None]:
    """(dimension, value, scope_org) of a grouping-set row from its GROUPING() bits over ``cols``."""
    dim, idx, with_org = _decode_shape(g, tuple(cols))
    org = (UNKNOWN if values[0] is None else values[0]) if with_org else None
    if idx < 0:
        return (dim, org, org) if with_org else ("all", "all", None)  # type: ignore[return-value]
    v = values[idx]
    return dim, UNKNOWN if v is None else str(v), org


def _cell_of(g: int, cols: tuple[str, ...], values: Sequence[Any]) -> tuple[tuple[str, str], bool]:
    """((dimension, value) of the cell without the organisation, whether org_code is grouped) of an aggregate row."""
    dim, idx, with_org = _decode_shape(g, cols)
    if idx < 0:
        return ("all", "all"), with_org
    v = values[idx]
    return (dim, UNKNOWN if v is None else str(v)), with_org


def _threshold(m: int, k: int) -> int:
    """The fewest records a part must have so that, with no contributor holding more than ``m`` of them, it is
    safe whatever they are: ``k`` records, more than ``m·(k-1)`` (so at least ``k`` contributors), and the
    ``DOMINANCE_N`` largest (at most ``DOMINANCE_N·m``) within the dominance share."""
    n = max(k, m * (k - 1) + 1)
    while sdc.DOMINANCE_N * m > sdc.DOMINANCE_SHARE * n:
        n += 1
    return n


def bounded_decision(records: int, sole: int, orgs: Iterable[tuple[int, int]], m: int, k: int) -> bool | None:
    """:func:`twin.disclosure.publishable` of a cell decided from its record counts alone (the whole, the sole
    proprietors', and per organisation its own and its sole proprietors') and ``m``, an upper bound of any
    contributor's records in it: False when a part the rule tests has fewer than ``k`` records (exactly what
    :func:`sdc.decide` rejects), True when every part is safe whoever holds its records, else None (read them)."""
    parts = [records, sole]
    for own, own_sole in orgs:
        parts += [records - own, sole - own_sole]
    if records < k or any(0 < n < k for n in parts):
        return False
    t = _threshold(m, k)
    if all(n == 0 or n >= t for n in parts):
        return True
    return None


def disclosure_control(conn: psycopg.Connection, agg: Sequence[tuple[Any, ...]], kpis: list[Kpi],
                       restricted: list[Kpi], cols: list[str], public_periods: list[str], k: int,
                       timings: dict[str, float], family: str) -> dict[str, set[Any]]:
    """The public cells of each restricted KPI that pass :mod:`twin.monitoring.sdc`, exactly as if every cell's
    records were read and tested (tests/monitoring/test_sdc.py checks it).

    The family's aggregate already holds, per cell, its records and its sole proprietors' records, per
    organisation too (the grouping sets with org_code). With ``m``, the most records one contributor has in a
    period (one query), most cells are decided from these counts (:func:`bounded_decision`); the records of the
    rest, and of the small cells that secondary suppression may need, are read in one query (mon_base, unpivoted
    onto the wanted cells) and tested exactly; a cell secondary suppression needs beyond those is read then."""
    t0 = time.perf_counter()
    ctup = tuple(cols)
    nc = len(cols)
    col_of = {kp.id: 3 + nc + 2 * i + 1 for i, kp in enumerate(kpis)}
    sole_of = {kp.id: 3 + nc + 2 * len(kpis) + i for i, kp in enumerate(restricted)}
    records: dict[str, dict[tuple[Any, ...], int]] = {kp.id: {} for kp in restricted}
    sole: dict[str, dict[tuple[Any, ...], int]] = {kp.id: {} for kp in restricted}
    orgs: dict[str, dict[tuple[Any, ...], list[tuple[int, int]]]] = {kp.id: defaultdict(list) for kp in restricted}
    for r in agg:
        if r[0] not in public_periods:
            continue
        (dim, val), with_org = _cell_of(r[2], ctup, r[3:3 + nc])
        key = (r[0], r[1], dim, val)
        if with_org and r[3] is None:
            continue
        for kp in restricted:
            d = r[col_of[kp.id]]
            if not d:
                continue
            s = int(r[sole_of[kp.id]] or 0)
            if with_org:
                orgs[kp.id][key].append((int(d), s))
            else:
                records[kp.id][key], sole[kp.id][key] = int(d), s
    same_as = _same_records(conn, restricted, records, sole, orgs, public_periods)
    restricted = [kp for kp in restricted if kp.id not in same_as]
    most = ", ".join(f"max(m_{kp.id})" for kp in restricted)
    per = ", ".join(f"sum(d_{kp.id}) AS m_{kp.id}" for kp in restricted)
    bound = {(r[0], r[1]): r[2:] for r in conn.execute(
        f"SELECT ptype, pstart, {most} FROM (SELECT ptype, pstart, contributor, {per} FROM mon_base "
        f"WHERE ptype = ANY(%s) GROUP BY ptype, pstart, contributor) c GROUP BY ptype, pstart",
        (public_periods,)).fetchall()}
    primary: dict[str, dict[tuple[Any, ...], bool | None]] = {}
    wanted: list[tuple[str, tuple[Any, ...]]] = []
    for i, kp in enumerate(restricted):
        decided = primary[kp.id] = {}
        for key, n in records[kp.id].items():
            m = int(bound[(key[0], key[1])][i] or 0)
            decided[key] = bounded_decision(n, sole[kp.id][key], orgs[kp.id].get(key, ()), m, k)
            if decided[key] is not True or n <= _threshold(m, k):
                wanted.append((kp.id, key))
    timings[f"{family}: disclosure control, counts"] = time.perf_counter() - t0

    records_of = "CASE w.kpi " + " ".join(f"WHEN '{kp.id}' THEN b.d_{kp.id}" for kp in restricted) + " END"
    dim_cols = {"all": "", **{DIM_OF_COL[c]: c for c in cols[1:]}}

    def per_dim(dims: set[str]) -> str:
        """One join of the base rows per dimension wanted with the cells wanted of it."""
        return " UNION ALL ".join(
            f"SELECT w.kpi, b.ptype, b.pstart, w.dim, w.val, b.contributor, coalesce(b.sole, true) AS sole, "
            f"b.org_code, {records_of} AS n FROM mon_base b JOIN mon_want w ON w.ptype = b.ptype "
            f"AND w.pstart = b.pstart AND w.dim = '{dim}'"
            + ("" if dim == "all" else f" AND w.val = coalesce(b.{col}::text, '{UNKNOWN}')")
            # the periods as constants too: secondary suppression's later reads ask for a few cells of a few
            # periods, and these base rows are read by the period index instead of all of them once per dimension
            + " WHERE b.pstart = ANY(%(starts)s)"
            for dim, col in dim_cols.items() if dim in dims)

    conn.execute("DROP TABLE IF EXISTS mon_want")
    conn.execute("CREATE TEMP TABLE mon_want (kpi text, ptype text, pstart date, dim text, val text) ON COMMIT DROP")
    reads = [0]

    def read(keys: Sequence[tuple[str, tuple[Any, ...]]]) -> dict[tuple[str, tuple[Any, ...]], list[sdc.Contribution]]:
        out: dict[tuple[str, tuple[Any, ...]], list[sdc.Contribution]] = {key: [] for key in keys}
        if not keys:
            return out
        reads[0] += 1
        conn.execute("TRUNCATE mon_want")
        with conn.cursor().copy("COPY mon_want FROM STDIN") as cp:
            for kpi, (ptype, pstart, dim, val) in keys:
                cp.write_row((kpi, ptype, pstart, dim, val))
        conn.execute("ANALYZE mon_want")
        # with a large work_mem the planner sorts all base rows on text keys for a merge join (seconds per
        # dimension); hashing is several times faster
        merge = conn.execute("SELECT current_setting('enable_mergejoin'), "
                             "set_config('enable_mergejoin', 'off', true)").fetchone()
        result = conn.execute(
            f"SELECT kpi, ptype, pstart, dim, val, contributor, sole, org_code, sum(n)::int "
            f"FROM ({per_dim({key[2] for _, key in keys})}) x "
            f"WHERE n > 0 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8", {"starts": sorted({key[1] for _, key in keys})}
        ).fetchall()
        conn.execute("SELECT set_config('enable_mergejoin', %s, true)", (merge[0] if merge else "on",))
        for r in result:
            out[(r[0], (r[1], r[2], r[3], r[4]))].append(sdc.Contribution(r[5], bool(r[6]), r[7], int(r[8])))
        return out

    t1 = time.perf_counter()
    known = read(wanted)
    exacts: dict[str, dict[tuple[Any, ...], bool]] = {}
    more: list[tuple[str, tuple[Any, ...]]] = []
    for kp in restricted:
        exact = exacts[kp.id] = {key: sdc.fast_publishable(known[(kp.id, key)], k) if v is None else v
                                 for key, v in primary[kp.id].items()}
        # the parts secondary suppression will most likely reach: in every relation with a suppressed part, the
        # three smallest published parts (read now, in the same query for all; any other is read when asked for)
        sizes = records[kp.id]
        for total, parts in sdc.partitions(list(sizes)):
            if exact[total] and not all(exact[part] for part in parts):
                shown = sorted((part for part in parts if exact[part]), key=lambda x: (sizes[x], str(x)))
                more += [(kp.id, part) for part in shown[:3] if (kp.id, part) not in known]
    known.update(read(sorted(set(more), key=str)))
    result: dict[str, set[Any]] = {}
    for kp in restricted:
        exact = exacts[kp.id]
        cells = {key: sdc.CellStats(n, 0, 0, 0, 0, {}, exact=False) for key, n in records[kp.id].items()}

        # Secondary suppression asks for one more cell at a time (the smallest published part of a relation); with
        # it, the cells of its period and dimension up to four times its size are read too, which the next
        # requests mostly are.
        neighbours: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]] = defaultdict(list)
        for key, n in records[kp.id].items():
            neighbours[key[:3]].append((n, key))
        for group in neighbours.values():
            group.sort(key=lambda x: x[0])

        def contributions_of(keys: Sequence[tuple[Any, ...]], kpi: str = kp.id,
                             sizes: dict[tuple[Any, ...], int] = records[kp.id],
                             near: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]] = neighbours
                             ) -> dict[Any, Any]:
            missing = [key for key in keys if (kpi, key) not in known]
            if missing:
                batch = set(missing)
                for key in missing:
                    limit = 4 * sizes.get(key, 0)
                    for n, other in near[key[:3]]:
                        if n > limit:
                            break
                        if (kpi, other) not in known:
                            batch.add(other)
                known.update(read([(kpi, key) for key in sorted(batch, key=str)]))
            return {key: known[(kpi, key)] for key in keys}

        result[kp.id] = sdc.protect(cells, k, contributions_of, exact)
    for kpi, same in same_as.items():
        result[kpi] = result[same]
    timings[f"{family}: disclosure control, exact ({len(wanted):,} cells read, {reads[0]} queries)"] = \
        time.perf_counter() - t1
    return result


def _same_records(conn: psycopg.Connection, restricted: list[Kpi], records: dict[str, dict[tuple[Any, ...], int]],
                  sole: dict[str, dict[tuple[Any, ...], int]],
                  orgs: dict[str, dict[tuple[Any, ...], list[tuple[int, int]]]],
                  public_periods: list[str]) -> dict[str, str]:
    """The restricted KPIs whose records are those of an earlier one, each mapped to it: the same denominator in
    every base row of the public periods (mon_base), so the same contributions in every cell and the same
    published cells. Several KPIs of a family often count the same records (effectiveness and follow-up days by
    definition, others on the data), and each is tested once. Candidates are the KPIs with the same per-cell
    counts; one scan confirms them."""
    counts = {kp.id: (records[kp.id], sole[kp.id], {key: sorted(v) for key, v in orgs[kp.id].items()})
              for kp in restricted}
    candidates: list[tuple[str, str]] = []
    first: list[str] = []
    for kp in restricted:
        earlier = next((e for e in first if counts[kp.id] == counts[e]), None)
        if earlier is None:
            first.append(kp.id)
        else:
            candidates.append((kp.id, earlier))
    if not candidates:
        return {}
    row = conn.execute(
        "SELECT " + ", ".join(f"bool_and(d_{a} IS NOT DISTINCT FROM d_{b})" for a, b in candidates)
        + " FROM mon_base WHERE ptype = ANY(%s)", (public_periods,)).fetchone()
    return {a: b for (a, b), same in zip(candidates, row or (), strict=True) if same}


def run_up(rows: Sequence[tuple[Any, ...]], width: int, starts: dict[str, list[date]]) -> list[tuple[Any, ...]]:
    """The rows of a cumulative family (changes per period start, :data:`families.CUMULATIVE`) as the sums up to
    each period: every series (period type, grouping, dimension values) from its first change to the last
    period. ``width``: the leading columns that name a row (ptype, pstart, g, dimensions); sums of None stay None."""
    series: dict[tuple[Any, ...], dict[date, tuple[Any, ...]]] = defaultdict(dict)
    for r in rows:
        series[(r[0], *r[2:width])][r[1]] = r[width:]
    out = []
    for (ptype, *name), changes in series.items():
        first = min(changes)
        acc: list[Any] = [None] * len(next(iter(changes.values())))
        for pstart in starts[ptype]:
            if pstart < first:
                continue
            change = changes.get(pstart)
            if change is not None:
                acc = [a if c is None else (a or 0.0) + c for a, c in zip(acc, change, strict=True)]
            out.append((ptype, pstart, name[0], *name[1:], *acc))
    return out


def aggregate_sql(source: str, kpis: Sequence[Kpi], restricted: Sequence[Kpi], cols: Sequence[str],
                  extra_cols: Sequence[str]) -> str:
    """The family aggregate: per period and grouping set each KPI's numerator and denominator sums, then the
    sole proprietors' denominator of each restricted KPI (for :func:`disclosure_control`). The base rows are
    summed to the finest cell first and rolled up from there (integer sums, so the same figures as summing the
    base rows per grouping set, at a fraction of the work)."""
    dims = ", ".join(cols)
    # the base columns are integers: their sums are exact in float8 (far below 2^53) and rolling float8 up is
    # much faster than the numeric that sum(bigint) returns
    inner = (f"SELECT ptype, pstart, {dims}, "
             + ", ".join(f"sum(n_{kp.id})::float8 AS n_{kp.id}, sum(d_{kp.id})::float8 AS d_{kp.id}" for kp in kpis)
             + "".join(f", sum(d_{kp.id}) FILTER (WHERE coalesce(sole, true))::float8 AS s_{kp.id}"
                       for kp in restricted)
             + f" FROM {source} b GROUP BY ptype, pstart, {dims}")
    return (f"SELECT ptype, pstart, GROUPING({dims})::int AS g, {dims}, "
            + ", ".join(f"sum(n_{kp.id})::float8, sum(d_{kp.id})::float8" for kp in kpis)
            + "".join(f", sum(s_{kp.id})::float8" for kp in restricted)
            + f" FROM ({inner}) f GROUP BY ptype, pstart, GROUPING SETS ({_grouping_sets(extra_cols)})")


def compute_family(conn: psycopg.Connection, family: str, kpis: list[Kpi], as_of: date, k: int,
                   timings: dict[str, float], when: history.AsOf | None = None) -> list[Row]:
    """Aggregate one family's base rows over the grouping sets (first to the finest cell, then rolled up); the
    public cells of its restricted KPIs through the disclosure control. ``when``: read the register tables as of
    it (the history)."""
    t0 = time.perf_counter()
    base = FAMILIES[family] if when is None else history.rewrite(FAMILIES[family], when)
    extra = sorted({d for kp in kpis for d in kp.extra_dimensions})
    extra_cols: list[str] = [c for c in ("intervention", "lhs_cell") if c in extra]
    params: dict[str, Any] | None = {"as_of": as_of, "ranks": list(INTERVENTIONS), "heaviest": INTERVENTIONS[-1]}
    cols = [*GROUP_COLS[:4], *extra_cols]
    nc = len(cols)
    restricted = [kp for kp in kpis if kp.restricted]
    public_periods = sorted({p for kp in restricted for p in kp.periods if p != "month"})
    source = f"({base})"
    if restricted:  # read again by the disclosure control
        conn.execute("DROP TABLE IF EXISTS mon_base")
        conn.execute(f"CREATE TEMP TABLE mon_base ON COMMIT DROP AS {base}", params)
        # the disclosure control reads the records of a few cells at a time: by period, not a scan of all
        # (temporary tables are never analysed by autovacuum)
        conn.execute("CREATE INDEX ON mon_base (pstart)")
        conn.execute("ANALYZE mon_base")
        source, params = "mon_base", None
        timings[f"{family}: base rows"] = time.perf_counter() - t0
    agg = aggregate_sql(source, kpis, restricted, cols, extra_cols)
    periods_rows = conn.execute("SELECT ptype, pstart, pend FROM mon_periods ORDER BY ptype, pstart").fetchall()
    ends = {(p, s): e for p, s, e in periods_rows}
    result = conn.execute(agg, params).fetchall()
    if family in CUMULATIVE:
        starts: dict[str, list[date]] = defaultdict(list)
        for p, s, _ in periods_rows:
            starts[p].append(s)
        result = run_up(result, 3 + nc, starts)
    rows: list[Row] = []
    for r in result:
        ptype, pstart, g = r[0], r[1], r[2]
        dim, val, org = _decode(g, cols, r[3:3 + nc])
        for i, kp in enumerate(kpis):
            if ptype not in kp.periods or dim not in kp.dimensions:
                continue
            num, den = r[3 + nc + 2 * i], r[4 + nc + 2 * i]
            if kp.kind != "count" and not den:
                continue
            if kp.kind == "count" and not num:
                continue
            rows.append(Row(kp.id, ptype, pstart, ends[(ptype, pstart)], dim, val, org, num, den,
                            audience="org" if org is not None else "public"))
    timings[f"{family}: aggregate"] = time.perf_counter() - t0
    if restricted:
        t1 = time.perf_counter()
        published = disclosure_control(conn, result, kpis, restricted, cols, public_periods, k, timings, family)
        for row in rows:
            if row.kpi in published and row.scope_org is None and row.dimension != "organisation" \
                    and (row.ptype, row.pstart, row.dimension, row.value_key) not in published[row.kpi]:
                row.audience = "admin"
        timings[f"{family}: disclosure control"] = time.perf_counter() - t1
    return rows


def compute_quality(conn: psycopg.Connection, kpi: Kpi, known_on: datetime | None = None) -> list[Row]:
    """data_quality from twin.quality_results: the latest measurement of each rule per period (and layer);
    ``known_on``: only the measurements taken by then (a run as of a date)."""
    q = """
    WITH latest AS (
      SELECT DISTINCT ON (mp.ptype, mp.pstart, r.rule_id) mp.ptype, mp.pstart, mp.pend, r.layer, r.checked, r.failed
      FROM twin.quality_results r JOIN mon_periods mp ON r.measured_at::date BETWEEN mp.pstart AND mp.pend
      WHERE %(known_on)s::timestamptz IS NULL OR r.measured_at <= %(known_on)s
      ORDER BY mp.ptype, mp.pstart, r.rule_id, r.measured_at DESC
    )
    SELECT ptype, pstart, pend, GROUPING(layer)::int, layer, sum(checked - failed)::float8, sum(checked)::float8
    FROM latest GROUP BY ptype, pstart, pend, GROUPING SETS ((), (layer))
    """
    out = []
    for ptype, pstart, pend, g, layer, num, den in conn.execute(q, {"known_on": known_on}).fetchall():
        if den:
            dim, val = ("all", "all") if g else ("layer", layer)
            out.append(Row(kpi.id, ptype, pstart, pend, dim, val, None, num, den))
    return out


def values_and_tests(rows: list[Row], kpis: dict[str, Kpi]) -> list[Row]:
    """Values, Wilson intervals and the two-proportion z-test of each proportion against its previous period
    (of the same KPI, so of the same family); the rows tested, for :func:`correct`."""
    kind_of = {kpi_id: kp.kind for kpi_id, kp in kpis.items()}
    wilson = stats.wilson
    proportions: list[Row] = []  # the rows with a trend test (a previous period is always of the same KPI)
    for r in rows:
        kind = kind_of[r.kpi]
        if kind == "count":
            r.value = r.num
        elif r.den:
            num = r.num or 0
            r.value = num / r.den
            if kind == "proportion" and 0 <= num <= r.den:
                r.ci = wilson(num, r.den)
        if kind == "proportion":
            proportions.append(r)
    index = {(r.kpi, r.ptype, r.dimension, r.value_key, r.scope_org, r.pstart): r for r in proportions}
    tested: list[Row] = []
    for r in proportions:
        prev = index.get((r.kpi, r.ptype, r.dimension, r.value_key, r.scope_org, previous_start(r.ptype, r.pstart)))
        if prev is None or (r.audience == "public" and prev.audience != "public"):
            continue
        res = stats.two_proportion_z(prev.num or 0, prev.den or 0, r.num or 0, r.den or 0)
        if res is not None:
            r.z, r.p = res
            tested.append(r)
    return tested


@dataclass
class Part:
    """A family's share of a run, ready to store: its values as lines of COPY's text format, the trend tests that
    wait for the run-wide correction, and its counts. A family computed in a worker process comes back as this
    (strings pickle cheaply; 2.2 million Row objects would not), and the main process only completes and writes."""

    lines: list[str]  # complete lines
    tests: list[tuple[str, float, float]]  # (line up to z, z, p): q and the change follow after the correction
    public: int
    suppressed: int
    timings: dict[str, float]


def _t(text: str | None) -> str:
    """A text field in COPY's text format."""
    if text is None:
        return "\\N"
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _n(x: float | None) -> str:
    """A number in COPY's text format (repr: the shortest text that reads back as the same double)."""
    return "\\N" if x is None else repr(x)


def part_of(family: str, rows: list[Row], tested: list[Row], run_id: int, timings: dict[str, float]) -> Part:
    """A family's rows (after :func:`values_and_tests`) as the lines of the run's partition (:func:`store`); the
    tested rows' lines wait for :func:`correct`, which adds their q-value and change."""
    t = time.perf_counter()
    rid = str(run_id)
    none = (None, None)
    waiting = {id(r) for r in tested}
    lines: list[str] = []
    tests: list[tuple[str, float, float]] = []
    # 2.2 million rows on the medium twin: the period columns (a few hundred distinct) are written once each
    head: dict[tuple[str, str, date, date, str], str] = {}
    public = suppressed = 0
    n, t_ = _n, _t  # locals: called about 7 million times on the medium twin
    for r in rows:
        ci = r.ci or none
        key = (r.kpi, r.ptype, r.pstart, r.pend, r.dimension)
        prefix = head.get(key)
        if prefix is None:
            prefix = head[key] = "\t".join((rid, r.kpi, r.ptype, r.pstart.isoformat(), r.pend.isoformat(),
                                             r.dimension))
        audience = r.audience
        line = (f"{prefix}\t{t_(r.value_key)}\t{t_(r.scope_org)}\t{n(r.num)}\t{n(r.den)}\t{n(r.value)}\t"
                f"{n(ci[0])}\t{n(ci[1])}\t{audience}\t{n(r.z)}")
        if id(r) in waiting:
            tests.append((line, r.z or 0.0, r.p if r.p is not None else 1.0))
        else:
            lines.append(line + "\t\\N\t\\N")
        if audience == "public":
            public += 1
        elif audience == "admin":
            suppressed += 1
    timings[f"{family}: lines to store"] = time.perf_counter() - t
    return Part(lines, tests, public, suppressed, timings)


def correct(parts: Sequence[Part]) -> tuple[list[str], int]:
    """The Benjamini-Hochberg correction over all tests of the run (the q-values do not depend on the order of
    the tests): the tested lines completed with their q-value and, where q < ALPHA, their change ("up" or
    "down"), and how many changes were flagged."""
    waiting = [test for part in parts for test in part.tests]
    qs = stats.benjamini_hochberg([p for _, _, p in waiting])
    out: list[str] = []
    flagged = 0
    for (line, z, _), q in zip(waiting, qs, strict=True):
        if q < ALPHA:
            flagged += 1
            out.append(f"{line}\t{q!r}\t{'up' if z > 0 else 'down'}")
        else:
            out.append(f"{line}\t{q!r}\t\\N")
    return out, flagged


class Store:
    """The run's values into twin.kpi_values: COPY (text format, in chunks) into the run's own table, which is then
    indexed and attached as the run's partition (migration 0022: no per-row foreign-key, row-security or index work
    over earlier runs). Lines can be written as soon as they are complete (several COPYs into the same table)."""

    def __init__(self, conn: psycopg.Connection, run_id: int) -> None:
        from psycopg import sql

        self.conn, self.run_id = conn, run_id
        self.seconds = 0.0  # spent in the COPYs
        table = conn.execute("SELECT twin.kpi_values_new_partition(%s)::text", (run_id,)).fetchone()
        assert table is not None
        schema, name = table[0].split(".", 1)
        self.copy = sql.SQL(
            "COPY {} (run_id, kpi, period_type, period_start, period_end, dimension, dimension_value, "
            "scope_org, numerator, denominator, value, ci_low, ci_high, audience, change_z, change_q, change) "
            "FROM STDIN WITH (FORMAT text)").format(sql.Identifier(schema, name.strip('"')))

    def write(self, lines: Sequence[str], chunk: int = 50_000) -> None:
        if not lines:
            return
        t = time.perf_counter()
        with self.conn.cursor().copy(self.copy) as cp:
            for i in range(0, len(lines), chunk):
                cp.write("\n".join(lines[i:i + chunk]) + "\n")
        self.seconds += time.perf_counter() - t

    def attach(self) -> None:
        self.conn.execute("SELECT twin.kpi_values_attach_partition(%s)", (self.run_id,))


# Memory for the run's grouping sets and temporary tables (the medium twin's base rows spill at the defaults).
WORK_MEM = "256MB"
TEMP_BUFFERS = "512MB"


def _tune(conn: psycopg.Connection) -> Callable[[], None]:
    """Raise work_mem for this transaction and, if no temporary table was used yet in the session, temp_buffers
    (a session setting PostgreSQL refuses to change later); returns what restores work_mem."""
    row = conn.execute("SELECT current_setting('work_mem')").fetchone()
    saved = row[0] if row else None
    conn.execute("SELECT set_config('work_mem', %s, true)", (WORK_MEM,))
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('temp_buffers', %s, false)", (TEMP_BUFFERS,))
    except psycopg.errors.DatabaseError:
        pass  # temporary tables were used before in this session: keep its temp_buffers

    def restore() -> None:
        if saved is not None:
            conn.execute("SELECT set_config('work_mem', %s, true)", (saved,))

    return restore


def _session_tables(conn: psycopg.Connection, period_rows: list[tuple[str, date, date]],
                    matrix: list[tuple[str, list[str], bool]], q: Callable[[str], str]) -> None:
    """The run's temporary tables in a session: the periods, the run's LHS matrix (as twin.lhs_matrix holds it
    once this run commits: a session sharing the run's snapshot sees the matrix of the run before) and the
    livestock establishments near overloaded habitats."""
    conn.execute("DROP TABLE IF EXISTS mon_periods, mon_lhs_matrix, mon_n2k, mon_values")  # an earlier run
    conn.execute("CREATE TEMP TABLE mon_periods (ptype text, pstart date, pend date, PRIMARY KEY (ptype, pstart)) "
                 "ON COMMIT DROP")
    with conn.cursor().copy("COPY mon_periods FROM STDIN") as cp:
        for p in period_rows:
            cp.write_row(p)
    conn.execute("ANALYZE mon_periods")
    conn.execute("CREATE TEMP TABLE mon_lhs_matrix (cell text PRIMARY KEY, expected text[], "
                 "escalate_on_repeat boolean) ON COMMIT DROP")
    with conn.cursor().copy("COPY mon_lhs_matrix FROM STDIN") as cp:
        for row in matrix:
            cp.write_row(row)
    conn.execute(q(N2K))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a run's work. A run allocates millions of small objects (rows,
    contributions, lines) and none of them in cycles; each collection of the youngest generation walks them all
    again (the violations family of the medium twin: 42 s with it, 25 s without). Back on, as before, at the end."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class RunSummary:
    run_id: int
    as_of: date
    known_on: datetime
    from_history: bool
    values: int
    public: int
    suppressed: int
    flagged: int
    seconds: float
    data_version: dict[str, int]
    timings: dict[str, float]
    sessions: int = 1  # 1 + the worker processes that computed a share of the families on their own sessions


def compute(conn: psycopg.Connection, as_of: date | None = None, k: int = 5, kpi_ids: Iterable[str] | None = None,
            lhs_matrix: Path | None = None, known_on: datetime | None = None,
            from_history: bool | None = None) -> RunSummary:
    """Compute and store one run (as the writer or owner, who read every row); commits nothing itself.

    ``as_of``: the reference date (default today). With a reference date or ``known_on`` given (or
    ``from_history``), the register tables are read from the history as valid on ``as_of`` and as registered at
    ``known_on`` (default: the moment of this run), so a later correction does not change a recomputation as of
    the same two times (issue 20). Without them the current state is read (as fast as ever); the run records
    both times either way."""
    t0 = time.perf_counter()
    if from_history is None:
        from_history = as_of is not None or known_on is not None
    as_of = as_of or date.today()
    now_row = conn.execute("SELECT now()").fetchone()
    assert now_row is not None
    read_at: datetime = known_on or now_row[0]
    if read_at > now_row[0]:
        raise ValueError(f"known-on {read_at.isoformat()} lies in the future: the twin cannot know yet what it "
                         "will know.")
    # A session holding the snapshot of this moment, taken before this run writes anything (else the caller's
    # own earlier writes would be invisible to it): the worker processes of the heaviest families import it. The
    # families read nothing this run writes but the LHS matrix, which reaches every session as a temporary table.
    row = conn.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                       "WHERE oid = to_regclass('twin.inspections')").fetchone()
    big = row is not None and int(row[0]) >= WORKER_MIN_ROWS
    sides = database.snapshot_sessions(conn, 1, read_only=False) if big else None
    try:
        snapshot = None
        if sides:
            row = sides[0].execute("SELECT pg_export_snapshot()").fetchone()
            snapshot = row[0] if row else None
        with _gc_paused():
            return _compute(conn, as_of, k, kpi_ids, lhs_matrix, read_at, from_history, t0, snapshot)
    finally:
        for side in sides or ():
            side.close()


# The families computed in worker processes when the run can share its snapshot: the two heaviest, so that the
# Python work of the families (building the rows, the disclosure control, the lines to store), which a thread
# would serialise on the GIL, runs on both cores (medium twin: 66 s with one process and a second session).
WORKER_FAMILIES = ("violations", "establishments")
# Below this many inspections (the planner's estimate) a run takes a second or two and starting the worker
# processes would cost more than it saves: everything runs on the caller's session.
WORKER_MIN_ROWS = 20_000


@dataclass(frozen=True)
class _Job:
    """What a worker process needs to compute one family of a run (pickled to it)."""

    dsn: str
    password: str | None
    snapshot: str
    family: str
    kpi_ids: tuple[str, ...]
    as_of: date
    k: int
    period_rows: list[tuple[str, date, date]]
    matrix: list[tuple[str, list[str], bool]]
    when: history.AsOf | None
    run_id: int


def _work(job: _Job) -> Part:
    """A worker process: one family on a session of its own at the run's snapshot, as lines to store."""
    from psycopg import sql

    with _gc_paused(), psycopg.connect(job.dsn, password=job.password, connect_timeout=5) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(job.snapshot)))
        _tune(conn)
        _session_tables(conn, job.period_rows, job.matrix, functools.partial(_as_of, when=job.when))
        kpis = [kp for kp in KPIS if kp.id in job.kpi_ids]
        return _family(conn, job.family, kpis, job.as_of, job.k, job.when, None, job.run_id)


def _as_of(text: str, when: history.AsOf | None) -> str:
    """``text`` reading the register tables as of ``when`` (from the history), or as they are now (None)."""
    return text if when is None else history.rewrite(text, when)


def _family(session: psycopg.Connection, family: str, kpis: list[Kpi], as_of: date, k: int,
            when: history.AsOf | None, read_at: datetime | None, run_id: int) -> Part:
    """One family's rows, their values and trend tests, as lines to store."""
    spent: dict[str, float] = {}
    if family == "quality":
        t = time.perf_counter()
        rows = compute_quality(session, kpis[0], read_at if when is not None else None)
        spent["quality"] = time.perf_counter() - t
    else:
        rows = compute_family(session, family, kpis, as_of, k, spent, when)
    t = time.perf_counter()
    tested = values_and_tests(rows, {kp.id: kp for kp in kpis})
    spent[f"{family}: values, intervals, trend tests"] = time.perf_counter() - t
    return part_of(family, rows, tested, run_id, spent)


def _compute(conn: psycopg.Connection, as_of: date, k: int, kpi_ids: Iterable[str] | None, lhs_matrix: Path | None,
             read_at: datetime, from_history: bool, t0: float, snapshot: str | None) -> RunSummary:
    """:func:`compute` after its checks: ``snapshot`` a snapshot of this moment that other sessions may import, or
    None (everything on ``conn``)."""
    when = history.AsOf(as_of, read_at) if from_history else None
    restore = _tune(conn)
    q = functools.partial(_as_of, when=when)

    wanted = [kp for kp in KPIS if kpi_ids is None or kp.id in set(kpi_ids)]
    matrix = read_lhs_matrix(lhs_matrix)
    source = str(lhs_matrix or "layers/data/lhs_matrix.csv (the twin's configurable default)")
    conn.execute("DELETE FROM twin.lhs_matrix")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO twin.lhs_matrix (cell, expected, escalate_on_repeat, source) "
                        "VALUES (%s, %s, %s, %s)",
                        [(c, e, esc, source) for c, e, esc in matrix])
        cur.executemany(
            "INSERT INTO twin.kpi_definitions (id, title, question, formula, unit, kind, restricted, dimensions, "
            "periods) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, "
            "question = EXCLUDED.question, formula = EXCLUDED.formula, unit = EXCLUDED.unit, kind = EXCLUDED.kind, "
            "restricted = EXCLUDED.restricted, dimensions = EXCLUDED.dimensions, periods = EXCLUDED.periods",
            [(kp.id, kp.title, kp.question, kp.formula, kp.unit, kp.kind, kp.restricted, list(kp.dimensions),
              list(kp.periods)) for kp in KPIS])
    first = conn.execute(q("SELECT least((SELECT min(inspected_on) FROM twin.inspections), "
                           "(SELECT min(measured_at)::date FROM twin.quality_results))")).fetchone()
    first_day = max(first[0] if first and first[0] else as_of, FIRST_DAY)
    period_rows = periods(first_day, as_of)
    _session_tables(conn, period_rows, matrix, q)
    version_row = conn.execute("SELECT coalesce(jsonb_object_agg(table_name, version), '{}'::jsonb) "
                               "FROM twin.layer_versions").fetchone()
    data_version = version_row[0] if version_row else {}
    run_row = conn.execute("INSERT INTO twin.kpi_runs (as_of, known_on, from_history, data_version, k) "
                           "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                           (as_of, read_at, from_history, json.dumps(data_version), k)).fetchone()
    assert run_row is not None
    run_id = int(run_row[0])
    by_family: dict[str, list[Kpi]] = defaultdict(list)
    for kp in wanted:
        by_family[kp.family].append(kp)

    aside = [f for f in WORKER_FAMILIES if f in by_family] if snapshot is not None else []
    parts: dict[str, Part] = {}
    timings: dict[str, float] = {}
    store = Store(conn, run_id)
    # spawn, not fork: this process holds open connections (and maybe threads) that a fork would share
    with (ProcessPoolExecutor(len(aside), mp_context=multiprocessing.get_context("spawn")) if aside
          else contextlib.nullcontext()) as pool:
        later = {} if pool is None else {
            pool.submit(_work, _Job(conn.info.dsn, conn.info.password, snapshot or "", f,
                                    tuple(kp.id for kp in by_family[f]), as_of, k, period_rows, matrix, when,
                                    run_id)): f for f in aside}
        # each family's complete lines go in as soon as it ends, while the workers still compute
        for f in by_family:
            if f not in aside:
                parts[f] = _family(conn, f, by_family[f], as_of, k, when, read_at, run_id)
                store.write(parts[f].lines)
        for future in as_completed(later):
            parts[later[future]] = future.result()
            store.write(parts[later[future]].lines)
    ordered = [parts[f] for f in by_family]
    for part in ordered:
        timings.update(part.timings)
    t = time.perf_counter()
    tested, flagged = correct(ordered)
    timings["trend test correction (Benjamini-Hochberg)"] = time.perf_counter() - t
    store.write(tested)
    timings["store: values (COPY)"] = store.seconds
    t = time.perf_counter()
    store.attach()
    timings["store: index and attach"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    values = sum(len(part.lines) + len(part.tests) for part in ordered)
    conn.execute("UPDATE twin.kpi_runs SET seconds = %s, values_count = %s WHERE id = %s", (seconds, values, run_id))
    restore()
    return RunSummary(run_id, as_of, read_at, from_history, values, sum(part.public for part in ordered),
                      sum(part.suppressed for part in ordered), flagged, seconds, dict(data_version), timings,
                      1 + len(aside))
