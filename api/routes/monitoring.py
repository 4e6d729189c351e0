"""The KPIs of supervision (issue 22): ``/monitoring/kpis`` (the definitions) and ``/monitoring/kpis/{id}``
(the values of the latest ``twin monitor compute`` run, JSON or CSV).

Minimal version for the dashboard (frontend.dashboard). The values are read under the caller's role, so
row-level security on twin.kpi_values decides what a caller sees: public figures (those that passed the
disclosure control) for anyone, an organisation's own figures for its inspectors, everything for admins.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import ConnDep
from twin.errors import InvalidParameter, NotFound
from twin.monitoring.definitions import ALL_DIMENSIONS, BY_ID, KPIS, PERIOD_TYPES, Kpi

router = APIRouter(tags=["monitoring"])

COLUMNS = ("period_type", "period_start", "period_end", "dimension", "dimension_value", "scope_org", "numerator",
           "denominator", "value", "ci_low", "ci_high", "change", "change_q")
VALUES_SQL = f"""
SELECT {', '.join(COLUMNS)} FROM twin.kpi_values
WHERE run_id = %(run)s AND kpi = %(kpi)s AND period_type = %(period)s AND dimension = %(by)s
  AND (%(org)s::text IS NULL AND (scope_org IS NULL OR %(by)s = 'organisation') OR scope_org = %(org)s)
  AND (%(from)s::date IS NULL OR period_start >= %(from)s) AND (%(to)s::date IS NULL OR period_end <= %(to)s)
ORDER BY dimension_value, period_start
"""
RUN_SQL = "SELECT id, as_of, computed_at, data_version, k FROM twin.kpi_runs ORDER BY id DESC LIMIT 1"


def definition(kpi: Kpi) -> dict[str, Any]:
    return {"id": kpi.id, "title": kpi.title, "question": kpi.question, "formula": kpi.formula, "unit": kpi.unit,
            "kind": kpi.kind, "restricted": kpi.restricted, "sources": list(kpi.sources),
            "periods": list(kpi.periods), "dimensions": list(kpi.dimensions), "caveats": kpi.caveats,
            "links": [{"rel": "data", "href": f"/monitoring/kpis/{kpi.id}"}]}


@router.get("/monitoring/kpis", summary="The KPIs of supervision with their definitions")
async def kpis() -> dict[str, Any]:
    return {"kpis": [definition(k) for k in KPIS]}


@router.get("/monitoring/kpis/{kpi_id}", summary="A KPI's values per period and dimension, JSON or CSV",
            responses={200: {"content": {"text/csv": {}}}, 404: {"description": "Unknown KPI"}})
async def kpi_values(
    kpi_id: str,
    conn: ConnDep,
    period: Literal["month", "quarter", "year"] = Query("year", description=f"One of {', '.join(PERIOD_TYPES)}"),
    by: str = Query("all", description=f"Dimension: one of {', '.join(ALL_DIMENSIONS)}"),
    org: str | None = Query(None, description="Only this organisation's figures (scope)"),
    from_: date | None = Query(None, alias="from", description="Periods starting on or after this date"),
    to: date | None = Query(None, description="Periods ending on or before this date"),
    f: Literal["json", "csv"] = Query("json"),
) -> Response:
    kpi = BY_ID.get(kpi_id)
    if kpi is None:
        raise NotFound(f"no KPI {kpi_id!r}; see /monitoring/kpis")
    if by not in kpi.dimensions:
        raise InvalidParameter(f"by={by!r} is not a dimension of {kpi_id}; use one of {', '.join(kpi.dimensions)}")
    run_row = await (await conn.execute(RUN_SQL)).fetchone()
    rows: list[tuple[Any, ...]] = []
    if run_row is not None:
        cur = await conn.execute(VALUES_SQL, {"run": run_row[0], "kpi": kpi_id, "period": period, "by": by,
                                              "org": org, "from": from_, "to": to})
        rows = list(await cur.fetchall())
    if f == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(("kpi", *COLUMNS))
        for r in rows:
            w.writerow((kpi_id, *("" if v is None else v for v in r)))
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="kpi-{kpi_id}-{period}-{by}.csv"'})
    run = None if run_row is None else {"id": run_row[0], "as_of": run_row[1].isoformat(),
                                        "computed_at": run_row[2].isoformat(), "data_version": run_row[3],
                                        "k": run_row[4]}
    body = {"kpi": definition(kpi), "period": period, "by": by, "org": org, "run": run,
            "values": [{c: (v.isoformat() if isinstance(v, date) else v) for c, v in zip(COLUMNS, r, strict=True)}
                       for r in rows]}
    return Response(orjson.dumps(body), media_type="application/json")
