"""Monitoring KPIs: ``/monitoring/kpis`` (the definitions), ``/monitoring/runs`` (the stored runs with both their
times) and ``/monitoring/kpis/{id}`` (the values of one run: the latest, ``run=``, or the one chosen by
``geldigOp``/``beschikbaarOp``) as JSON or CSV.

Who sees what is decided by row-level security on twin.kpi_values (migration 0013) under the caller's database
role: everyone the public figures (which passed the disclosure control), inspectors also their own
organisation's figures (``org=``), admins everything."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.auth import PrincipalDep
from api.cache import app_cache
from api.deps import ConnDep
from api.params import qparam
from twin.access import request_settings
from twin.errors import InvalidParameter, NotFound
from twin.history import KNOWN_PARAM, VALID_PARAM, parse_known, parse_valid
from twin.monitoring.definitions import ALL_DIMENSIONS, BY_ID, KPIS, PERIOD_TYPES
from twin.sql import fetch

router = APIRouter(tags=["monitoring"])
ALLOWED = {"period", "by", "from", "to", "org", "f", "run", VALID_PARAM, KNOWN_PARAM}
RUN_COLUMNS = ("id", "as_of", "known_on", "computed_at", "from_history", "data_version", "k", "seconds",
               "values_count")
COLUMNS = ("period_type", "period_start", "period_end", "dimension", "dimension_value", "scope_org", "numerator",
           "denominator", "value", "ci_low", "ci_high", "change", "change_q", "audience")


@dataclass(frozen=True)
class KpiQuery:
    period: str
    by: str
    start: date | None
    end: date | None
    org: str | None
    format: str
    run: int | None = None
    valid_on: date | None = None  # geldigOp: the run with this reference date
    known_on: datetime | None = None  # beschikbaarOp: the latest run computed at or before this moment


def parse_kpi_query(request: Request) -> KpiQuery:
    """The validated parameters of ``/monitoring/kpis/{id}``; every malformed value a 400 naming it."""
    qp = request.query_params
    unknown = sorted(set(qp) - ALLOWED)
    if unknown:
        raise InvalidParameter(f"unknown parameter {unknown[0]!r}; allowed: {', '.join(sorted(ALLOWED))}",
                               parameter=unknown[0])
    period = qp.get("period", "year")
    if period not in PERIOD_TYPES:
        raise InvalidParameter(f"period={period!r}: use month, quarter or year", parameter="period")
    by = qp.get("by", "all")
    if by not in ALL_DIMENSIONS:
        raise InvalidParameter(f"by={by!r}: use one of {', '.join(ALL_DIMENSIONS)}", parameter="by")
    dates: dict[str, date | None] = {}
    for name in ("from", "to"):
        raw = qp.get(name)
        try:
            dates[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            raise InvalidParameter(f"{name}={raw!r} is not a date: use YYYY-MM-DD", parameter=name) from None
    fmt = qp.get("f", "json")
    if fmt not in ("json", "csv"):
        raise InvalidParameter(f"f={fmt!r}: use json or csv", parameter="f")
    org = qp.get("org") or None
    if org is not None and (len(org) > 64 or not org.replace("-", "").replace("_", "").replace(".", "").isalnum()):
        raise InvalidParameter(f"org={org!r} is not an organisation code", parameter="org")
    run_raw = qp.get("run")
    run: int | None = None
    if run_raw is not None:
        if not run_raw.isdigit() or len(run_raw) > 18:
            raise InvalidParameter(f"run={run_raw!r} is not a run id; GET /monitoring/runs lists them",
                                   parameter="run")
        run = int(run_raw)
    valid = parse_valid(qp[VALID_PARAM]) if qp.get(VALID_PARAM) is not None else None
    known = parse_known(qp[KNOWN_PARAM]) if qp.get(KNOWN_PARAM) is not None else None
    if run is not None and (valid is not None or known is not None):
        raise InvalidParameter(f"give run= or {VALID_PARAM}/{KNOWN_PARAM}, not both: a run id names one run",
                               parameter="run")
    return KpiQuery(period, by, dates["from"], dates["to"], org, fmt, run, valid, known)


def _run_json(run: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(RUN_COLUMNS, run, strict=True))
    for key in ("as_of", "known_on", "computed_at"):
        out[key] = out[key].isoformat()
    out[VALID_PARAM], out[KNOWN_PARAM] = out["as_of"], out["known_on"]
    return out


async def choose_run(conn: Any, q: KpiQuery) -> tuple[Any, ...] | None:
    """The run to serve: ``run=``; else the latest run with reference date ``geldigOp`` (if given) computed at
    or before ``beschikbaarOp`` (if given); else the latest run. None: no run stored yet (404 when one was
    asked for)."""
    cols = ", ".join(RUN_COLUMNS)
    if q.run is not None:
        rows = await fetch(conn, f"SELECT {cols} FROM twin.kpi_runs WHERE id = %s", (q.run,))
        if not rows:
            raise NotFound(f"there is no KPI run {q.run}; GET /monitoring/runs lists them.")
        return rows[0]
    rows = await fetch(
        conn, f"SELECT {cols} FROM twin.kpi_runs WHERE (%s::date IS NULL OR as_of = %s) "
        "AND (%s::timestamptz IS NULL OR computed_at <= %s) ORDER BY computed_at DESC, id DESC LIMIT 1",
        (q.valid_on, q.valid_on, q.known_on, q.known_on))
    if not rows and (q.valid_on is not None or q.known_on is not None):
        asked = ", ".join(f"{n}={v.isoformat()}" for n, v in ((VALID_PARAM, q.valid_on), (KNOWN_PARAM, q.known_on))
                          if v is not None)
        raise NotFound(f"no KPI run matches {asked}; compute one with `twin monitor compute --as-of DATE` "
                       "or see GET /monitoring/runs.")
    return rows[0] if rows else None


def _definition(request: Request, kpi: Any) -> dict[str, Any]:
    return {"id": kpi.id, "title": kpi.title, "question": kpi.question, "formula": kpi.formula, "unit": kpi.unit,
            "kind": kpi.kind, "restricted": kpi.restricted, "sources": list(kpi.sources), "periods": list(kpi.periods),
            "dimensions": list(kpi.dimensions), "caveats": kpi.caveats,
            "href": str(request.url_for("monitoring_kpi", kpi_id=kpi.id))}


@router.get("/monitoring/kpis", summary="The KPIs of supervision with their definitions")
async def kpis(request: Request) -> JSONResponse:
    return JSONResponse({"kpis": [_definition(request, k) for k in KPIS],
                         "documentation": "docs/monitoring.md"})


@router.get("/monitoring/runs", summary="The stored KPI runs with their reference date and registration time")
async def runs(conn: ConnDep) -> JSONResponse:
    rows = await fetch(conn, f"SELECT {', '.join(RUN_COLUMNS)} FROM twin.kpi_runs ORDER BY id DESC")
    return JSONResponse({"runs": [_run_json(r) for r in rows],
                         "note": f"as_of ({VALID_PARAM}) is the day the figures describe, known_on ({KNOWN_PARAM}) "
                                 "what the twin knew when the run read its data."})


@router.get(
    "/monitoring/kpis/{kpi_id}", name="monitoring_kpi", summary="One KPI's values per period and dimension",
    description="Values of one `twin monitor compute` run (default the latest; `run=` an id of /monitoring/runs; "
    "`geldigOp` the latest run with that reference date, `beschikbaarOp` the latest computed at or before that "
    "moment): `period` (month, quarter, year), `by` (all, "
    "organisation, municipality, sector, environmental_category, and the KPI's own dimensions), `from`/`to` "
    "(period start dates), `org` (an organisation's own figures: its inspectors and admins), `f=csv`. Public "
    "figures of restricted KPIs are published under the disclosure control (suppressed ones are absent).",
    openapi_extra={"parameters": [
        qparam("period", "month, quarter or year (default year)", {"type": "string", "enum": list(PERIOD_TYPES)}),
        qparam("by", "dimension (default all)", {"type": "string", "enum": list(ALL_DIMENSIONS)}),
        qparam("from", "first period start (YYYY-MM-DD)", {"type": "string", "format": "date"}),
        qparam("to", "last period start (YYYY-MM-DD)", {"type": "string", "format": "date"}),
        qparam("org", "an organisation's own figures", {"type": "string"}),
        qparam("f", "json or csv", {"type": "string", "enum": ["json", "csv"]}),
        qparam("run", "a run id (GET /monitoring/runs)", {"type": "integer"}),
        qparam(VALID_PARAM, "the latest run with this reference date (YYYY-MM-DD)",
               {"type": "string", "format": "date"}),
        qparam(KNOWN_PARAM, "the latest run computed at or before this moment (RFC 3339 date-time or a date)",
               {"type": "string"}),
    ]},
    responses={404: {"description": "Unknown KPI, or no run as asked."}},
)
async def kpi_values(request: Request, kpi_id: str, conn: ConnDep, principal: PrincipalDep) -> Response:
    kpi = BY_ID.get(kpi_id)
    if kpi is None:
        raise NotFound(f"there is no KPI {kpi_id!r}; GET /monitoring/kpis lists them.")
    q = parse_kpi_query(request)
    if q.by not in kpi.dimensions:
        raise InvalidParameter(f"by={q.by!r}: {kpi.id} has {', '.join(kpi.dimensions)}", parameter="by")
    dimension = "organisation" if (q.org and q.by == "all") else q.by
    run = await choose_run(conn, q)
    # A run stored by `twin monitor compute` never changes (its values are a partition the writer can no longer
    # write, migration 0022; values_count is set in the same transaction): its answers are kept per process
    # (TWIN_ANALYSIS_CACHE_MB) under the run, the caller's audience (row-level security) and the parameters. A
    # run written by hand (no values_count) is read every time.
    cache = app_cache(request, "analysis_cache_mb") if run and run[-1] is not None else None
    key = None if cache is None or not run else (
        "kpi-values", run[0], run[3], request_settings(principal), str(request.base_url), kpi.id, q.period,
        dimension, q.org, q.start, q.end, q.format)  # the base URL: the answer's links name the host asked
    if cache is not None and (hit := cache.get(key)) is not None:
        return _kpi_response(hit, q.format, kpi.id, "hit")
    body = await _kpi_body(request, conn, kpi, q, dimension, run)
    if cache is not None:
        cache.put(key, body)
    return _kpi_response(body, q.format, kpi.id, None if cache is None else "miss")


def _kpi_response(body: bytes, fmt: str, kpi_id: str, cached: str | None) -> Response:
    headers = {"X-Analysis-Cache": cached} if cached else {}
    if fmt == "csv":
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={**headers, "Content-Disposition": f'attachment; filename="{kpi_id}.csv"'})
    return Response(body, media_type="application/json", headers=headers)


async def _kpi_body(request: Request, conn: Any, kpi: Any, q: KpiQuery, dimension: str,
                    run: tuple[Any, ...] | None) -> bytes:
    rows: list[tuple[Any, ...]] = []
    if run:
        rows = await fetch(
            conn, f"SELECT {', '.join(COLUMNS)} FROM twin.kpi_values WHERE run_id = %s AND kpi = %s "
            "AND period_type = %s AND dimension = %s "
            # per organisation without org=: every organisation's own row the caller may read (row-level security
            # decides which); otherwise the figures of the scope asked for (national: none)
            "AND ((dimension = 'organisation' AND %s::text IS NULL) OR scope_org IS NOT DISTINCT FROM %s) "
            "AND (%s::date IS NULL OR period_start >= %s) "
            "AND (%s::date IS NULL OR period_start <= %s) ORDER BY dimension_value, period_start",
            (run[0], kpi.id, q.period, dimension, q.org, q.org, q.start, q.start, q.end, q.end))
    if q.format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(("kpi", *COLUMNS))
        for r in rows:
            w.writerow((kpi.id, *r))
        return buf.getvalue().encode("utf-8")
    # orjson writes the dates as ISO 8601 and the floats in their shortest form (a quarter x municipality table
    # is 14,000 rows: several times faster than the standard library's encoder)
    return orjson.dumps({
        "kpi": _definition(request, kpi),
        "run": None if not run else _run_json(run),
        "period": q.period, "by": q.by, "org": q.org, "values": [dict(zip(COLUMNS, r, strict=True)) for r in rows],
    })
