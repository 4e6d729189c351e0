"""``twin monitor compute``: every KPI for every period type, dimension and scope, stored in twin.kpi_values
with the run's reference date and data version (twin.kpi_runs). Public figures of restricted KPIs pass the
statistical disclosure control of :mod:`twin.disclosure` (with secondary suppression, :mod:`twin.monitoring.sdc`);
trends are flagged with a two-proportion z-test and the Benjamini-Hochberg correction (:mod:`.stats`)."""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from layers.registry import INTERVENTIONS, LHS_CELLS
from twin.monitoring import sdc, stats
from twin.monitoring.definitions import KPIS, Kpi
from twin.monitoring.families import FAMILIES, N2K

LHS_MATRIX_FILE = Path(__file__).resolve().parents[2] / "layers" / "data" / "lhs_matrix.csv"
FIRST_DAY = date(2000, 1, 1)
ALPHA = 0.05
# Grouping columns of the family SQL, in GROUPING() bit order (most significant first).
GROUP_COLS = ("org_code", "municipality_code", "sector", "category", "intervention", "lhs_cell")
DIM_OF_COL = {"municipality_code": "municipality", "sector": "sector", "category": "environmental_category",
              "intervention": "intervention", "lhs_cell": "lhs_cell"}
UNKNOWN = "(unknown)"


@dataclass
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


def disclosure_control(conn: psycopg.Connection, base: str, params: dict[str, Any], kpis: list[Kpi],
                       cols: list[str], extra_cols: list[str], public_periods: list[str],
                       k: int) -> dict[str, set[Any]]:
    """The public cells of each restricted KPI that pass :mod:`twin.monitoring.sdc`: the records behind each
    figure (its denominator) summarised per cell in the database, decided in Python."""
    pc = cols[1:]
    dims = ", ".join(pc)
    key = f"kpi, ptype, pstart, g, {dims}"
    pivot = ", ".join(f"('{kp.id}', b.d_{kp.id})" for kp in kpis)
    conn.execute("DROP TABLE IF EXISTS mon_c, mon_pc")
    conn.execute(
        f"CREATE TEMP TABLE mon_c ON COMMIT DROP AS SELECT s.*, concat_ws('|', {key}) AS ck FROM ("
        f"SELECT x.kpi, b.ptype, b.pstart, GROUPING({dims})::int AS g, "
        f"{dims}, b.contributor, b.org_code, coalesce(b.sole, true) AS sole, sum(x.n)::int AS n "
        f"FROM ({base}) b CROSS JOIN LATERAL (VALUES {pivot}) x(kpi, n) "
        f"WHERE b.ptype = ANY(%(public_periods)s) AND x.n > 0 "
        f"GROUP BY x.kpi, b.ptype, b.pstart, b.contributor, b.org_code, b.sole, "
        f"GROUPING SETS ({_grouping_sets(extra_cols, with_org=False)})) s",
        {**params, "public_periods": public_periods})
    conn.execute("CREATE INDEX ON mon_c (ck)")
    conn.execute(
        f"CREATE TEMP TABLE mon_pc ON COMMIT DROP AS SELECT {key}, contributor, sum(n)::int AS tot, "
        f"array_agg(DISTINCT org_code) AS orgs, array_agg(DISTINCT org_code) FILTER (WHERE sole) AS sorgs, "
        f"coalesce(sum(n) FILTER (WHERE sole), 0)::int AS stot FROM mon_c GROUP BY {key}, contributor")
    stats: dict[tuple[Any, ...], sdc.CellStats] = {}
    for r in conn.execute(
        f"SELECT {key}, sum(tot)::int, count(*)::int, "
        f"(SELECT sum(t)::int FROM unnest((array_agg(tot ORDER BY tot DESC))[1:{sdc.DOMINANCE_N}]) t), "
        f"sum(stot)::int, (count(*) FILTER (WHERE sorgs IS NOT NULL))::int "
        f"FROM mon_pc GROUP BY {key}"
    ).fetchall():
        stats[tuple(r[:4 + len(pc)])] = sdc.CellStats(r[-5], r[-4], r[-3], r[-2], r[-1], {})
    for r in conn.execute(
        f"SELECT {key}, org_code, sum(n)::int, coalesce(sum(n) FILTER (WHERE sole), 0)::int FROM mon_c "
        f"GROUP BY {key}, org_code"
    ).fetchall():
        stats[tuple(r[:4 + len(pc)])].orgs[r[-3]] = sdc.OrgPart(records=r[-2], sole_records=r[-1])
    for column, attr in (("orgs", "only"), ("sorgs", "sole_only")):
        for r in conn.execute(
            f"SELECT {key}, {column}[1], count(*)::int FROM mon_pc WHERE cardinality({column}) = 1 "
            f"GROUP BY {key}, {column}[1]"
        ).fetchall():
            part = stats[tuple(r[:4 + len(pc)])].orgs.setdefault(r[-2], sdc.OrgPart())
            setattr(part, attr, r[-1])

    def cell_key(raw: tuple[Any, ...]) -> tuple[Any, ...]:
        dim, val, _ = _decode(raw[3] | (1 << (len(cols) - 1)), cols, (None, *raw[4:]))
        return raw[1], raw[2], dim, val

    def read(raw_keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], list[sdc.Contribution]]:
        out: dict[tuple[Any, ...], list[sdc.Contribution]] = defaultdict(list)
        if not raw_keys:
            return out
        wanted = ["|".join(str(x) for x in rk if x is not None) for rk in raw_keys]
        for r in conn.execute(f"SELECT {key}, contributor, sole, org_code, n FROM mon_c WHERE ck = ANY(%s)",
                              (wanted,)):
            out[tuple(r[:4 + len(pc)])].append(sdc.Contribution(r[-4], bool(r[-3]), r[-2], int(r[-1])))
        return out

    result: dict[str, set[Any]] = {}
    for kp in kpis:
        raw = {cell_key(rk): rk for rk in stats if rk[0] == kp.id}
        cells = {ck: stats[rk] for ck, rk in raw.items()}
        def reader(rk: tuple[Any, ...]) -> Callable[[], Sequence[sdc.Contribution]]:
            return lambda: read([rk]).get(rk, [])

        primary = {ck: sdc.decide(s, k, reader(raw[ck])) for ck, s in cells.items()}

        def contributions_of(keys: Sequence[tuple[Any, ...]], raw: dict[Any, Any] = raw) -> dict[Any, Any]:
            got = read([raw[ck] for ck in keys])
            return {cell_key(rk): v for rk, v in got.items()}

        result[kp.id] = sdc.protect(cells, k, contributions_of, primary)
    return result


def compute_family(conn: psycopg.Connection, family: str, kpis: list[Kpi], as_of: date, k: int,
                   timings: dict[str, float]) -> list[Row]:
    """Aggregate one family's base rows over the grouping sets; the public cells of its restricted KPIs
    through the disclosure control."""
    t0 = time.perf_counter()
    base = FAMILIES[family]
    extra = sorted({d for kp in kpis for d in kp.extra_dimensions})
    extra_cols: list[str] = [c for c in ("intervention", "lhs_cell") if c in extra]
    params = {"as_of": as_of, "ranks": list(INTERVENTIONS), "heaviest": INTERVENTIONS[-1]}
    cols = [*GROUP_COLS[:4], *extra_cols]
    nc = len(cols)
    sums = ", ".join(f"sum(n_{kp.id})::float8, sum(d_{kp.id})::float8" for kp in kpis)
    agg = (f"SELECT ptype, pstart, GROUPING({', '.join(cols)})::int AS g, {', '.join(cols)}, {sums} "
           f"FROM ({base}) b GROUP BY ptype, pstart, GROUPING SETS ({_grouping_sets(extra_cols)})")
    ends = {(p, s): e for p, s, e in conn.execute("SELECT ptype, pstart, pend FROM mon_periods").fetchall()}
    rows: list[Row] = []
    for r in conn.execute(agg, params).fetchall():
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
    restricted = [kp for kp in kpis if kp.restricted]
    if restricted:
        t1 = time.perf_counter()
        public_periods = sorted({p for kp in restricted for p in kp.periods if p != "month"})
        published = disclosure_control(conn, base, params, restricted, cols, extra_cols, public_periods, k)
        for row in rows:
            if row.kpi in published and row.scope_org is None and row.dimension != "organisation" \
                    and (row.ptype, row.pstart, row.dimension, row.value_key) not in published[row.kpi]:
                row.audience = "admin"
        timings[f"{family}: disclosure control"] = time.perf_counter() - t1
    return rows


def compute_quality(conn: psycopg.Connection, kpi: Kpi) -> list[Row]:
    """data_quality from twin.quality_results: the latest measurement of each rule per period (and layer)."""
    q = """
    WITH latest AS (
      SELECT DISTINCT ON (mp.ptype, mp.pstart, r.rule_id) mp.ptype, mp.pstart, mp.pend, r.layer, r.checked, r.failed
      FROM twin.quality_results r JOIN mon_periods mp ON r.measured_at::date BETWEEN mp.pstart AND mp.pend
      ORDER BY mp.ptype, mp.pstart, r.rule_id, r.measured_at DESC
    )
    SELECT ptype, pstart, pend, GROUPING(layer)::int, layer, sum(checked - failed)::float8, sum(checked)::float8
    FROM latest GROUP BY ptype, pstart, pend, GROUPING SETS ((), (layer))
    """
    out = []
    for ptype, pstart, pend, g, layer, num, den in conn.execute(q).fetchall():
        if den:
            dim, val = ("all", "all") if g else ("layer", layer)
            out.append(Row(kpi.id, ptype, pstart, pend, dim, val, None, num, den))
    return out


def finish(rows: list[Row], kpis: dict[str, Kpi]) -> None:
    """Values, Wilson intervals and the trend tests (BH over all tests of the run)."""
    for r in rows:
        kind = kpis[r.kpi].kind
        if kind == "count":
            r.value = r.num
        elif r.den:
            r.value = (r.num or 0) / r.den
            if kind == "proportion" and 0 <= (r.num or 0) <= r.den:
                r.ci = stats.wilson(r.num or 0, r.den)
    index = {(r.kpi, r.ptype, r.dimension, r.value_key, r.scope_org, r.pstart): r for r in rows}
    tested: list[Row] = []
    for r in rows:
        if kpis[r.kpi].kind != "proportion":
            continue
        prev = index.get((r.kpi, r.ptype, r.dimension, r.value_key, r.scope_org, previous_start(r.ptype, r.pstart)))
        if prev is None or (r.audience == "public" and prev.audience != "public"):
            continue
        res = stats.two_proportion_z(prev.num or 0, prev.den or 0, r.num or 0, r.den or 0)
        if res is not None:
            r.z, r.p = res
            tested.append(r)
    for r, q in zip(tested, stats.benjamini_hochberg([r.p or 1.0 for r in tested]), strict=True):
        r.q = q
        if q < ALPHA:
            r.change = "up" if (r.z or 0) > 0 else "down"


def store(conn: psycopg.Connection, run_id: int, rows: list[Row]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    for r in rows:
        w.writerow([run_id, r.kpi, r.ptype, r.pstart, r.pend, r.dimension, r.value_key,
                    "\\N" if r.scope_org is None else r.scope_org, *(_n(x) for x in (r.num, r.den, r.value)),
                    *(_n(x) for x in (r.ci or (None, None))), r.audience, _n(r.z), _n(r.q), r.change or "\\N"])
    # COPY cannot write a table under row-level security: through a temporary table of the same shape.
    conn.execute("CREATE TEMP TABLE mon_values (LIKE twin.kpi_values) ON COMMIT DROP")
    with conn.cursor().copy(
        "COPY mon_values (run_id, kpi, period_type, period_start, period_end, dimension, dimension_value, "
        "scope_org, numerator, denominator, value, ci_low, ci_high, audience, change_z, change_q, change) "
        "FROM STDIN WITH (FORMAT text)"
    ) as cp:
        cp.write(buf.getvalue())
    conn.execute("INSERT INTO twin.kpi_values SELECT * FROM mon_values")


def _n(x: float | None) -> str:
    return "\\N" if x is None else repr(float(x))


@dataclass
class RunSummary:
    run_id: int
    as_of: date
    values: int
    public: int
    suppressed: int
    flagged: int
    seconds: float
    data_version: dict[str, int]
    timings: dict[str, float]


def compute(conn: psycopg.Connection, as_of: date | None = None, k: int = 5, kpi_ids: Iterable[str] | None = None,
            lhs_matrix: Path | None = None) -> RunSummary:
    """Compute and store one run (as the writer or owner, who read every row); commits nothing itself."""
    t0 = time.perf_counter()
    as_of = as_of or date.today()
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
    first = conn.execute("SELECT least((SELECT min(inspected_on) FROM twin.inspections), "
                         "(SELECT min(measured_at)::date FROM twin.quality_results))").fetchone()
    first_day = max(first[0] if first and first[0] else as_of, FIRST_DAY)
    conn.execute("CREATE TEMP TABLE mon_periods (ptype text, pstart date, pend date, PRIMARY KEY (ptype, pstart)) "
                 "ON COMMIT DROP")
    with conn.cursor().copy("COPY mon_periods FROM STDIN") as cp:
        for p in periods(first_day, as_of):
            cp.write_row(p)
    conn.execute("ANALYZE mon_periods")
    conn.execute(N2K)
    version_row = conn.execute("SELECT coalesce(jsonb_object_agg(table_name, version), '{}'::jsonb) "
                               "FROM twin.layer_versions").fetchone()
    data_version = version_row[0] if version_row else {}
    timings: dict[str, float] = {}
    rows: list[Row] = []
    by_family: dict[str, list[Kpi]] = defaultdict(list)
    for kp in wanted:
        by_family[kp.family].append(kp)
    for family, kpis in by_family.items():
        if family == "quality":
            t = time.perf_counter()
            rows += compute_quality(conn, kpis[0])
            timings["quality"] = time.perf_counter() - t
        else:
            rows += compute_family(conn, family, kpis, as_of, k, timings)
    t = time.perf_counter()
    finish(rows, {kp.id: kp for kp in KPIS})
    timings["values, intervals, trend tests"] = time.perf_counter() - t
    run = conn.execute("INSERT INTO twin.kpi_runs (as_of, data_version, k) VALUES (%s, %s, %s) RETURNING id",
                       (as_of, json.dumps(data_version), k)).fetchone()
    assert run is not None
    t = time.perf_counter()
    store(conn, int(run[0]), rows)
    timings["store"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    conn.execute("UPDATE twin.kpi_runs SET seconds = %s, values_count = %s WHERE id = %s", (seconds, len(rows), run[0]))
    return RunSummary(int(run[0]), as_of, len(rows), sum(r.audience == "public" for r in rows),
                      sum(r.audience == "admin" for r in rows), sum(r.change is not None for r in rows), seconds,
                      dict(data_version), timings)
