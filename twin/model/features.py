"""Features of every active establishment as of a cut-off date T, from records dated before T only.

Leakage rules (tests/model/test_features.py proves them):
- an inspection counts only when ``inspected_on < T``; a permit decision only when ``decided_on < T``
  (an application when ``applied_on < T``); an establishment is active at T when it started before T and
  had not ended before T;
- fields that a VTH system rewrites after the fact are never read: ``follow_up_status`` and
  ``repaired_on`` of inspections, and a permit's ``status`` other than the refusal (known at the decision).
  Follow-up is judged from dates instead (was there an inspection after the last violation, before T?);
- location context (deposition hexagons, buildings, housing sites) is not dated in the twin yet (issue 20,
  history); it is taken as it stands, and it is context, not behaviour.

No protected attributes or proxies: nothing of the person behind an establishment (name, legal form,
sole proprietorship, natural-person owner), no address beyond data-quality flags, no inspector, and
municipality and organisation are audit groups, not features.
"""

from __future__ import annotations

import gc
import os
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import psycopg

from layers.registry import GUIDE_DISTANCES_M
from twin.analyses.common import GUIDE_JSON

FIVE_YEARS = 1826
NH3_RADIUS_M = 3000

# Every feature the model reads, with what an inspector calls it (Dutch first, the English after it).
FEATURES: dict[str, str] = {
    "n_inspections": "aantal controles (alle jaren) / inspections, all years",
    "n_inspections_5y": "controles in de laatste 5 jaar / inspections, last 5 years",
    "n_violations_5y": "overtredingen in de laatste 5 jaar / violations, last 5 years",
    "n_violations_2y": "overtredingen in de laatste 2 jaar / violations, last 2 years",
    "violation_share": "aandeel controles met overtreding / share of inspections with a violation",
    "violation_share_5y": "aandeel overtredingen, laatste 5 jaar / violation share, last 5 years",
    "last_was_violation": "laatste controle: overtreding / last inspection found a violation",
    "last_gedrag": "gedrag bij laatste overtreding (LHS A-D) / behaviour class at the last violation",
    "last_gevolg": "gevolg bij laatste overtreding (LHS 1-4) / consequence class at the last violation",
    "worst_gedrag_5y": "zwaarste gedrag in 5 jaar (LHS) / worst behaviour class, 5 years",
    "days_since_last_visit": "dagen sinds laatste controle / days since the last inspection",
    "days_since_last_violation": "dagen sinds laatste overtreding / days since the last violation",
    "never_inspected": "nooit gecontroleerd / never inspected",
    "follow_up_open": "geen controle na laatste overtreding / no inspection since the last violation",
    "repair_overdue": "hersteltermijn verstreken zonder hercontrole / repair deadline passed, no re-inspection",
    "n_complaints_5y": "klachtcontroles in 5 jaar / complaint inspections, 5 years",
    "n_reinspections_5y": "hercontroles in 5 jaar / re-inspections, 5 years",
    "overdue_cycles": "bezoekcycli achterstallig / visit cycles overdue",
    "n_active_permits": "geldende besluiten / decisions in force",
    "has_environmental_permit": "omgevingsvergunning milieu / environmental permit in force",
    "has_tolerance": "gedoogbeschikking / tolerance decision in force",
    "n_custom_rules": "maatwerkvoorschriften / custom rules in force",
    "n_decisions_1y": "besluiten in het laatste jaar / decisions in the last year",
    "n_decisions_2y": "besluiten in de laatste 2 jaar / decisions in the last 2 years",
    "recent_revision": "revisievergunning in 2 jaar / revision permit in the last 2 years",
    "n_pending": "aanvragen in behandeling / applications pending",
    "n_expiring_1y": "besluiten die binnen een jaar vervallen / decisions expiring within a year",
    "days_since_last_decision": "dagen sinds laatste besluit / days since the last decision",
    "nh3_kg": "NH3-emissie vergund (kg/jaar) / permitted NH3 (kg/yr)",
    "nox_kg": "NOx-emissie vergund (kg/jaar) / permitted NOx (kg/yr)",
    "sbi_division": "SBI-afdeling (sector) / SBI division (sector)",
    "sector_violation_rate_3y": "overtredingspercentage sector, 3 jaar / sector violation rate, 3 years",
    "environmental_category": "milieucategorie (VNG) / environmental category",
    "activiteitenbesluit_type": "type Activiteitenbesluit (A/B/C) / Activiteitenbesluit type",
    "brzo": "Brzo-bedrijf / Brzo establishment",
    "visit_frequency_years": "bezoekfrequentie (jaren) / visit-frequency class (years)",
    "years_active": "jaren actief / years in operation",
    "other_sites": "andere vestigingen zelfde KvK / other sites of the same KvK number",
    "other_sites_violations_5y": "overtredingen op andere vestigingen (5 jaar) / violations at other sites, 5 years",
    "other_sites_violation_share_5y": "aandeel overtredingen andere vestigingen / violation share at other sites",
    "dq_kvk_missing": "KvK-nummer ontbreekt / KvK number missing",
    "dq_category_missing": "milieucategorie ontbreekt / environmental category missing",
    "dq_inspection_before_start": "controle vóór aanvangsdatum / inspection before the start date",
    "overloaded_hexagons_3km": "overbelaste natuur binnen 3 km (ha) / overloaded habitat within 3 km (ha)",
    "dwellings_nearby": "woningen binnen richtafstand / dwellings within the guide distance",
    "housing_sites_nearby": "woningbouwlocaties binnen richtafstand / housing sites within the guide distance",
}
CATEGORICAL = ("sbi_division", "activiteitenbesluit_type")
CATEGORY_ORDER = {"1": 1.0, "2": 2.0, "3.1": 3.1, "3.2": 3.2, "4.1": 4.1, "4.2": 4.2, "5.1": 5.1, "5.2": 5.2,
                  "5.3": 5.3, "6": 6.0}
# Never features: what they are kept for (the fairness audit groups, display).
AUDIT_COLUMNS = ("establishment_id", "municipality_code", "org_code", "legal_form")

# One range of establishment ids (lo <= id < hi; a None bound is open): raw_as_of reads two ranges at once, on
# two connections that share one snapshot. The legal entity's record at its other sites (same KvK) and the
# sector's rate cross the ranges, so they are summed apart (SECTOR_SQL, and in pandas).
AS_OF_SQL = """
WITH est AS (
  SELECT e.establishment_id, e.kvk_number, e.sbi_code, e.environmental_category, e.activiteitenbesluit_type,
         e.brzo, e.visit_frequency_years, e.started_on, e.postcode, e.municipality_code, e.org_code, e.legal_form
  FROM twin.establishments e
  WHERE (e.started_on IS NULL OR e.started_on < %(t)s) AND (e.ended_on IS NULL OR e.ended_on >= %(t)s)
    AND (%(lo)s::text IS NULL OR e.establishment_id >= %(lo)s) AND (%(hi)s::text IS NULL OR e.establishment_id < %(hi)s)
),
ins AS (
  -- One pass over the inspections before T in the order of the index on (establishment, date DESC): the
  -- aggregates read their rows in that order, so "the last one" is the first element (no sort per
  -- establishment; the violations come newest first and raw_as_of turns them round).
  SELECT establishment_id,
         count(*) AS n_inspections,
         count(*) FILTER (WHERE inspected_on >= %(t5)s) AS n_inspections_5y,
         count(*) FILTER (WHERE viol) AS n_violations,
         count(*) FILTER (WHERE viol AND inspected_on >= %(t5)s) AS n_violations_5y,
         count(*) FILTER (WHERE viol AND inspected_on >= %(t2)s) AS n_violations_2y,
         count(*) FILTER (WHERE kind = 'complaint' AND inspected_on >= %(t5)s) AS n_complaints_5y,
         count(*) FILTER (WHERE kind = 're-inspection' AND inspected_on >= %(t5)s) AS n_reinspections_5y,
         max(inspected_on) AS last_on, min(inspected_on) AS first_on,
         max(inspected_on) FILTER (WHERE viol) AS last_viol_on,
         (array_agg(viol))[1] AS last_was_violation,
         (array_agg(g) FILTER (WHERE viol))[1] AS last_g,
         (array_agg(c) FILTER (WHERE viol))[1] AS last_c,
         (array_agg(repair_deadline) FILTER (WHERE viol))[1]
           AS last_repair_deadline,
         max(g) FILTER (WHERE viol AND inspected_on >= %(t5)s) AS worst_g_5y,
         json_agg(json_build_array(inspection_id, inspected_on, g, c)) FILTER (WHERE viol)
           AS violations  -- all, as twin.analyses.priority reads them (its repeat factor
                          -- looks back past the 5-year lookback)
  FROM (
    SELECT i.establishment_id, i.inspection_id, i.inspected_on, i.kind, i.repair_deadline,
           i.result = 'voorschriften overtreden' AS viol,
           coalesce(i.gedrag, left(i.lhs_cell, 1)) AS g, coalesce(i.gevolg, right(i.lhs_cell, 1)) AS c
    FROM twin.inspections i WHERE i.inspected_on < %(t)s
      AND (%(lo)s::text IS NULL OR i.establishment_id >= %(lo)s)
      AND (%(hi)s::text IS NULL OR i.establishment_id < %(hi)s)
    ORDER BY i.establishment_id, i.inspected_on DESC, i.inspection_id DESC
  ) i0
  GROUP BY establishment_id
),
perm AS (
  SELECT p.establishment_id,
         count(*) FILTER (WHERE a) AS n_active_permits,
         coalesce(bool_or(a AND p.permit_type = 'omgevingsvergunning'), false) AS has_environmental_permit,
         coalesce(bool_or(a AND p.permit_type = 'gedoogbeschikking'), false) AS has_tolerance,
         count(*) FILTER (WHERE a AND p.permit_type = 'maatwerkvoorschrift') AS n_custom_rules,
         count(*) FILTER (WHERE p.decided_on >= %(t1)s AND p.decided_on < %(t)s) AS n_decisions_1y,
         count(*) FILTER (WHERE p.decided_on >= %(t2)s AND p.decided_on < %(t)s) AS n_decisions_2y,
         coalesce(bool_or(p.procedure = 'revisie' AND p.decided_on >= %(t2)s AND p.decided_on < %(t)s), false)
           AS recent_revision,
         count(*) FILTER (WHERE p.applied_on < %(t)s AND (p.decided_on IS NULL OR p.decided_on >= %(t)s))
           AS n_pending,
         count(*) FILTER (WHERE a AND p.valid_until < %(t_next)s) AS n_expiring_1y,
         max(p.decided_on) FILTER (WHERE p.decided_on < %(t)s) AS last_decision_on,
         coalesce(sum(p.nh3_kg_per_year) FILTER (WHERE a), 0) AS nh3_kg,
         coalesce(sum(p.nox_kg_per_year) FILTER (WHERE a), 0) AS nox_kg
  FROM (SELECT p.*, (p.decided_on < %(t)s AND p.status <> 'geweigerd'
                     AND (p.valid_from IS NULL OR p.valid_from < %(t)s)
                     AND (p.valid_until IS NULL OR p.valid_until >= %(t)s)) AS a
        FROM twin.permits p WHERE (p.decided_on < %(t)s OR p.applied_on < %(t)s)
          AND (%(lo)s::text IS NULL OR p.establishment_id >= %(lo)s)
          AND (%(hi)s::text IS NULL OR p.establishment_id < %(hi)s)) p
  GROUP BY p.establishment_id
)
SELECT est.*, ins.n_inspections, ins.n_inspections_5y, ins.n_violations, ins.n_violations_5y, ins.n_violations_2y,
       ins.n_complaints_5y, ins.n_reinspections_5y, ins.last_on, ins.first_on, ins.last_viol_on,
       ins.last_was_violation, ins.last_g, ins.last_c, ins.last_repair_deadline, ins.worst_g_5y, ins.violations,
       perm.n_active_permits, perm.has_environmental_permit,
       perm.has_tolerance, perm.n_custom_rules, perm.n_decisions_1y, perm.n_decisions_2y, perm.recent_revision,
       perm.n_pending, perm.n_expiring_1y, perm.last_decision_on, perm.nh3_kg, perm.nox_kg
FROM est
LEFT JOIN ins ON ins.establishment_id = est.establishment_id
LEFT JOIN perm ON perm.establishment_id = est.establishment_id
ORDER BY est.establishment_id
"""
# The violation rate of each SBI division over the 3 years before T (all establishments, active or not).
SECTOR_SQL = """
SELECT left(e.sbi_code, 2) AS division, avg((i.result = 'voorschriften overtreden')::int)::float8 AS rate
FROM twin.inspections i JOIN twin.establishments e ON e.establishment_id = i.establishment_id
WHERE i.inspected_on >= %(t3)s AND i.inspected_on < %(t)s GROUP BY 1
"""
# The id that splits the establishments in two about equal ranges (from the table's row estimate).
SPLIT_SQL = """
SELECT establishment_id FROM twin.establishments ORDER BY establishment_id
OFFSET greatest(0, (SELECT reltuples FROM pg_class WHERE oid = 'twin.establishments'::regclass) / 2)::bigint LIMIT 1
"""

# Location context of every establishment (not dated in the twin: see the module's docstring). The latest
# 1 ha hexagon year; dwellings and housing sites within the VNG guide distance of the category. The
# overloaded hexagons of that year are first copied to a session's temporary table with its own spatial
# index (the table's index holds every year and resolution): 4x faster, the same counts.
OVERLOADED_SQL = """
CREATE TEMP TABLE model_overloaded_hexagons AS
SELECT h.geom FROM twin.deposition_hexagons h
WHERE h.resolution = '1ha' AND h.year = (SELECT max(year) FROM twin.deposition_hexagons WHERE resolution = '1ha')
  AND h.deposition > h.lowest_kdw
"""
CONTEXT_SQL = """
SELECT e.establishment_id, coalesce(hab.n, 0) AS overloaded_hexagons_3km, coalesce(dw.n, 0) AS dwellings_nearby,
       coalesce(hs.n, 0) AS housing_sites_nearby
FROM twin.establishments e
LEFT JOIN LATERAL (
  SELECT count(*) AS n FROM pg_temp.model_overloaded_hexagons h WHERE ST_DWithin(h.geom, e.geom, %(r)s)
) hab ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n FROM twin.buildings b
  WHERE b.use ILIKE '%%woon%%'
    AND ST_DWithin(b.geom, e.geom, (%(guide)s::jsonb ->> e.environmental_category)::float)
) dw ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n FROM twin.housing_sites s
  WHERE ST_DWithin(s.geom, e.geom, (%(guide)s::jsonb ->> e.environmental_category)::float)
) hs ON true
"""

LABEL_SQL = """
SELECT DISTINCT ON (i.establishment_id) i.establishment_id, i.result = 'voorschriften overtreden' AS y,
       i.kind AS next_kind, i.inspected_on AS next_on
FROM twin.inspections i WHERE i.inspected_on >= %(t)s AND i.inspected_on < %(h)s
ORDER BY i.establishment_id, i.inspected_on, i.inspection_id
"""


def _rows(conn: psycopg.Connection, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    cur = conn.execute(sql, params)  # type: ignore[arg-type]
    cols = [d.name for d in cur.description or []]
    return pd.DataFrame(cur.fetchall(), columns=cols)


# raw_as_of reads the answer as CSV (COPY) and parses it with Arrow's CSV reader: typed in C (dates, booleans,
# counts, correctly rounded floats), where pandas' parser with per-value converters took 3 s of the national
# 292,000 rows and a row-wise fetch 8 s. Dates stay datetime64 for the arithmetic of derive(); the two values the
# rule-based score reads as Python objects (the last visit and the violations) are made in derive().
_TEXT_COLUMNS = ("establishment_id", "kvk_number", "sbi_code", "environmental_category", "activiteitenbesluit_type",
                 "postcode", "municipality_code", "org_code", "legal_form", "last_g", "last_c", "worst_g_5y",
                 "violations")
_DATE_COLUMNS = ("started_on", "last_on", "first_on", "last_viol_on", "last_repair_deadline", "last_decision_on")
_BOOL_COLUMNS = ("brzo", "last_was_violation", "has_environmental_permit", "has_tolerance", "recent_revision")
_FLOAT_COLUMNS = ("nh3_kg", "nox_kg")
_INT_COLUMNS = ("visit_frequency_years", "n_inspections", "n_inspections_5y", "n_violations", "n_violations_5y",
                "n_violations_2y", "n_complaints_5y", "n_reinspections_5y", "n_active_permits", "n_custom_rules",
                "n_decisions_1y", "n_decisions_2y", "n_pending", "n_expiring_1y")
# Sorting 1.7 M inspections and hashing 300,000 establishments spill to disk at the default 4-32 MB.
AS_OF_WORK_MEM = "256MB"


def _arrow_types() -> dict[str, Any]:
    import pyarrow as pa

    return (dict.fromkeys(_TEXT_COLUMNS, pa.string()) | dict.fromkeys(_DATE_COLUMNS, pa.date32())
            | dict.fromkeys(_BOOL_COLUMNS, pa.bool_()) | dict.fromkeys(_FLOAT_COLUMNS, pa.float64())
            | dict.fromkeys(_INT_COLUMNS, pa.int64()))


def _copy(conn: psycopg.Connection, params: dict[str, Any]) -> Any:
    """One range of AS_OF_SQL, read by COPY and parsed by Arrow (a table)."""
    import io

    from pyarrow import csv

    buf = io.BytesIO()
    with conn.cursor().copy(f"COPY ({AS_OF_SQL}) TO STDOUT WITH (FORMAT csv, HEADER)",  # type: ignore[arg-type]
                            params) as cp:
        for block in cp:
            buf.write(block)
    buf.seek(0)
    # COPY writes NULL unquoted and an empty text quoted: only the unquoted empty field is a null.
    return csv.read_csv(buf, convert_options=csv.ConvertOptions(
        column_types=_arrow_types(), null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
        true_values=["t"], false_values=["f"]))


def _ranges_in_parallel(conn: psycopg.Connection, params: dict[str, Any]) -> list[Any] | None:
    """The two ranges of AS_OF_SQL at once, on two new sessions that share one snapshot
    (:func:`twin.database.snapshot_sessions`): the national twin's aggregates take half the time on two cores.
    None when that can't be done (the caller's transaction has written, or no session opens); the caller then
    reads in one statement on its own session."""
    from concurrent.futures import ThreadPoolExecutor

    from twin.database import snapshot_sessions

    sessions = snapshot_sessions(conn, 2)
    if sessions is None:
        return None
    a, b = sessions
    with a, b:
        for c in (a, b):
            c.execute("SELECT set_config('work_mem', %s, true)", (AS_OF_WORK_MEM,))
        split = a.execute(SPLIT_SQL).fetchone()
        if split is None:
            return None
        with ThreadPoolExecutor(2) as pool:  # psycopg and Arrow let go of the GIL while they wait and parse
            first = pool.submit(_copy, a, params | {"lo": None, "hi": split[0]})
            second = pool.submit(_copy, b, params | {"lo": split[0], "hi": None})
            tables = [first.result(), second.result()]
        tables.append(_rows(a, SECTOR_SQL, params))
        for c in (a, b):
            c.rollback()
    return tables


def raw_as_of(conn: psycopg.Connection, t: date) -> pd.DataFrame:
    """The as-of aggregates of every establishment active at ``t`` (one row each), before derivation."""
    import pyarrow as pa

    params = {"t": t, "t1": t - timedelta(days=365), "t2": t - timedelta(days=730),
              "t3": t - timedelta(days=1096), "t5": t - timedelta(days=FIVE_YEARS),
              "t_next": t + timedelta(days=365), "lo": None, "hi": None}
    parts = _ranges_in_parallel(conn, params)
    if parts is None:  # one statement on the caller's session (it may hold uncommitted rows of its own)
        with conn.transaction():
            conn.execute("SELECT set_config('work_mem', %s, true)", (AS_OF_WORK_MEM,))
            parts = [_copy(conn, params), _rows(conn, SECTOR_SQL, params)]
    *tables, sector = parts
    df = pa.concat_tables(tables).to_pandas(date_as_object=False)
    freq = df["visit_frequency_years"]
    df["visit_frequency_years"] = freq.astype("int64") if freq.notna().all() else freq.astype("float64")
    df["violations"] = [orjson.loads(x)[::-1] if isinstance(x, str) else None  # oldest first
                        for x in df["violations"].to_numpy(dtype=object, na_value=None)]
    rate = dict(zip(sector["division"], sector["rate"], strict=True)) if len(sector) else {}
    df["sector_violation_rate_3y"] = df["sbi_code"].str.slice(0, 2).map(rate).astype("float64")
    # The legal entity's record at its other active sites (same KvK number); none without a number.
    kvk = df["kvk_number"]
    by = df.assign(v5=df["n_violations_5y"].fillna(0), n5=df["n_inspections_5y"].fillna(0)).groupby(kvk)
    df["other_sites"] = by["establishment_id"].transform("size") - 1
    df["other_sites_violations_5y"] = by["v5"].transform("sum") - df["n_violations_5y"].fillna(0)
    df["other_sites_inspections_5y"] = by["n5"].transform("sum") - df["n_inspections_5y"].fillna(0)
    for c in _INT_COLUMNS[1:]:
        df[c] = df[c].astype("float64")
    return df


CONTEXT_TABLES = ("establishments", "buildings", "deposition_hexagons", "housing_sites")
CONTEXT_KEY_SQL = """
SELECT current_database(), (SELECT oid FROM pg_database WHERE datname = current_database()),
       coalesce(json_agg(json_build_array(table_name, version, changed_at) ORDER BY table_name), '[]')
FROM twin.layer_versions WHERE table_name = ANY(%s)
"""


def context_key(conn: psycopg.Connection) -> str:
    """What the context depends on: the database, the versions of the tables it reads (twin.layer_versions,
    raised by every statement that writes them) and the queries; the same key, the same context."""
    import hashlib
    import json

    row = conn.execute(CONTEXT_KEY_SQL, (list(CONTEXT_TABLES),)).fetchone()
    text = json.dumps([list(row or ()), OVERLOADED_SQL, CONTEXT_SQL, NH3_RADIUS_M, GUIDE_JSON], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def context(conn: psycopg.Connection, cache_dir: Path | None = None) -> pd.DataFrame:
    """Location context per establishment (overloaded habitat, dwellings, housing sites nearby). With
    ``cache_dir``, kept there as a Parquet file under :func:`context_key` and read back while none of the
    tables it reads has changed (the query costs seconds on medium, minutes on a national twin)."""
    if cache_dir is None:
        return _context(conn)
    path = Path(cache_dir) / f"context-{context_key(conn)}.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    ctx = _context(conn)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob("context-*.parquet"):  # stale ones are never read again: kept a week
        if old.stat().st_mtime < time.time() - 7 * 86400:
            old.unlink(missing_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    ctx.to_parquet(tmp, index=False)
    tmp.replace(path)
    return ctx


def _context(conn: psycopg.Connection) -> pd.DataFrame:
    conn.execute("DROP TABLE IF EXISTS pg_temp.model_overloaded_hexagons")
    conn.execute(OVERLOADED_SQL)
    conn.execute("CREATE INDEX ON pg_temp.model_overloaded_hexagons USING gist (geom)")
    conn.execute("ANALYZE pg_temp.model_overloaded_hexagons")
    try:
        return _rows(conn, CONTEXT_SQL, {"r": NH3_RADIUS_M, "guide": GUIDE_JSON})
    finally:
        conn.execute("DROP TABLE IF EXISTS pg_temp.model_overloaded_hexagons")


def _days(t: date, col: pd.Series) -> pd.Series:
    d = pd.to_datetime(col, errors="coerce")
    return (pd.Timestamp(t) - d).dt.days.astype("float64")


_GEDRAG = {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0}


def derive(raw: pd.DataFrame, ctx: pd.DataFrame | None, t: date) -> pd.DataFrame:
    """The model's feature table from :func:`raw_as_of` and :func:`context`: one row per establishment,
    the columns of :data:`FEATURES` plus the audit columns and what the rule-based score needs."""
    df = raw.copy()
    if ctx is not None and len(ctx):
        df = df.merge(ctx, on="establishment_id", how="left")
    for col in ("overloaded_hexagons_3km", "dwellings_nearby", "housing_sites_nearby"):
        df[col] = pd.to_numeric(df.get(col), errors="coerce").fillna(0).astype("float64") if col in df else 0.0
    n = len(df)
    out = pd.DataFrame({"establishment_id": df["establishment_id"].astype(str)})
    num = lambda c: pd.to_numeric(df[c], errors="coerce").astype("float64")  # noqa: E731
    for c in ("n_inspections", "n_inspections_5y", "n_violations_5y", "n_violations_2y", "n_complaints_5y",
              "n_reinspections_5y", "n_active_permits", "n_custom_rules", "n_decisions_1y", "n_decisions_2y",
              "n_pending", "n_expiring_1y"):
        out[c] = num(c).fillna(0.0)
    n_viol = num("n_violations").fillna(0.0)
    out["violation_share"] = np.where(out["n_inspections"] > 0, n_viol / out["n_inspections"].clip(lower=1), np.nan)
    out["violation_share_5y"] = np.where(out["n_inspections_5y"] > 0,
                                         out["n_violations_5y"] / out["n_inspections_5y"].clip(lower=1), np.nan)
    out["last_was_violation"] = df["last_was_violation"].map({True: 1.0, False: 0.0}).astype("float64")
    out["last_gedrag"] = df["last_g"].map(_GEDRAG).astype("float64")
    out["last_gevolg"] = pd.to_numeric(df["last_c"], errors="coerce").astype("float64")
    out["worst_gedrag_5y"] = df["worst_g_5y"].map(_GEDRAG).astype("float64")
    out["days_since_last_visit"] = _days(t, df["last_on"])
    out["days_since_last_violation"] = _days(t, df["last_viol_on"])
    out["never_inspected"] = df["last_on"].isna().astype("float64")
    open_ = df["last_viol_on"].notna() & (df["last_viol_on"] == df["last_on"])
    out["follow_up_open"] = open_.astype("float64")
    deadline = pd.to_datetime(df["last_repair_deadline"], errors="coerce")
    out["repair_overdue"] = (open_ & (deadline < pd.Timestamp(t))).astype("float64")
    freq = num("visit_frequency_years")
    out["overdue_cycles"] = (out["days_since_last_visit"] / (freq.fillna(5.0) * 365.25) - 1.0).clip(lower=0.0)
    for c in ("has_environmental_permit", "has_tolerance", "recent_revision"):
        out[c] = df[c].map({True: 1.0, False: 0.0}).fillna(0.0).astype("float64")
    out["days_since_last_decision"] = _days(t, df["last_decision_on"])
    out["nh3_kg"] = num("nh3_kg").fillna(0.0)
    out["nox_kg"] = num("nox_kg").fillna(0.0)
    out["sbi_division"] = pd.to_numeric(df["sbi_code"].str.slice(0, 2), errors="coerce").astype("float64")
    out["sector_violation_rate_3y"] = num("sector_violation_rate_3y")
    out["environmental_category"] = df["environmental_category"].map(CATEGORY_ORDER).astype("float64")
    out["activiteitenbesluit_type"] = df["activiteitenbesluit_type"].map({"A": 0.0, "B": 1.0, "C": 2.0})
    out["brzo"] = df["brzo"].astype(bool).astype("float64")
    out["visit_frequency_years"] = freq
    out["years_active"] = _days(t, df["started_on"]) / 365.25
    out["other_sites"] = num("other_sites")
    out["other_sites_violations_5y"] = num("other_sites_violations_5y")
    other_n = num("other_sites_inspections_5y")
    out["other_sites_violation_share_5y"] = np.where(other_n > 0, out["other_sites_violations_5y"]
                                                     / other_n.clip(lower=1), np.nan)
    out["dq_kvk_missing"] = df["kvk_number"].isna().astype("float64")
    out["dq_category_missing"] = df["environmental_category"].isna().astype("float64")
    first = pd.to_datetime(df["first_on"], errors="coerce")
    started = pd.to_datetime(df["started_on"], errors="coerce")
    out["dq_inspection_before_start"] = (first < started).astype("float64")
    for c in ("overloaded_hexagons_3km", "dwellings_nearby", "housing_sites_nearby"):
        out[c] = df[c].astype("float64")
    # Kept apart from the features: audit groups and the inputs of the rule-based score.
    for c in ("municipality_code", "org_code", "legal_form"):
        out[c] = df[c]
    if n:
        cols = [_python_values(df[c]) for c in RULES_INPUTS]  # as to_dict("records") of a row-wise fetch
        gc_was = gc.isenabled()
        gc.disable()  # 292,000 small dicts: the collector would walk them again and again (4 s of 5)
        try:
            out["_rules_row"] = [_rules_row(dict(zip(RULES_INPUTS, r, strict=True))) for r in zip(*cols, strict=True)]
        finally:
            if gc_was:
                gc.enable()
    else:
        out["_rules_row"] = []
    return out


def _python_values(col: pd.Series) -> list[Any]:
    """A column as the Python values a row-wise fetch gives: dates as ``date``, missing values as None."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return list(col.to_numpy().astype("datetime64[D]").astype(object))  # NaT becomes None
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.tolist()
    return list(col.to_numpy(dtype=object, na_value=None))


RULES_INPUTS = ("environmental_category", "activiteitenbesluit_type", "brzo", "visit_frequency_years", "last_on",
                "violations", "nh3_kg", "overloaded_hexagons_3km", "dwellings_nearby", "housing_sites_nearby")


def _rules_row(r: dict[str, Any]) -> dict[str, Any]:
    """The inputs of twin.analyses.priority's score from the same as-of aggregates (so the rules and the
    model see the same records in the backtest)."""
    cat = r.get("environmental_category")
    nh3 = r.get("nh3_kg")
    nh3 = 0.0 if nh3 is None or nh3 != nh3 else float(nh3)  # NaN: no permit row
    return {"environmental_category": cat, "activiteitenbesluit_type": r.get("activiteitenbesluit_type"),
            "brzo": bool(r.get("brzo")), "visit_frequency_years": r.get("visit_frequency_years"),
            "guide": GUIDE_DISTANCES_M.get(cat) if cat else None, "last_on": r.get("last_on"),
            "violations": r.get("violations") or [], "nh3_kg": nh3,
            "overloaded_hexagons": r.get("overloaded_hexagons_3km") if nh3 > 0 else 0,
            "dwellings": r.get("dwellings_nearby") or 0, "housing_sites": r.get("housing_sites_nearby") or 0}


def features_at(conn: psycopg.Connection, t: date, ctx: pd.DataFrame | None = None,
                cache_dir: Path | None = None) -> pd.DataFrame:
    """The feature table of every establishment active at ``t`` (records dated before ``t`` only); the
    location context from ``ctx``, else from :func:`context` (cached in ``cache_dir`` when given)."""
    if ctx is None:
        ctx = context(conn, cache_dir)
    return derive(raw_as_of(conn, t), ctx, t)


def labels(conn: psycopg.Connection, t: date, horizon: date) -> pd.DataFrame:
    """The first inspection of each establishment in [t, horizon): ``y`` = it found a violation."""
    return _rows(conn, LABEL_SQL, {"t": t, "h": horizon})


def matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """The feature columns only, in the order of :data:`FEATURES` (what the model reads)."""
    return frame[list(FEATURES)].astype("float64")
