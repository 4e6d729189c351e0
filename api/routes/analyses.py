"""``/analysis/...``: the cross-cutting analyses of the twin (rules in docs/analyses.md).

Routes are thin: they parse the parameters, decide what the caller may see (:func:`disclosure`), call the
analysis in :mod:`twin.analyses` on the request's reader connection and return its result.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import Principal, PrincipalDep, record_access
from api.cache import lookup
from api.deps import ConnDep, SettingsDep
from twin.analyses.common import Disclosure, disclosure_for, today
from twin.analyses.context import area_context
from twin.analyses.housing import housing_nitrogen
from twin.analyses.priority import DEFAULT_LIMIT, inspection_priority
from twin.analyses.summary import area_summary, polygon_from_geojson
from twin.model.plan import METHODS, stored_plan
from twin.crs import CRS84, parse_crs
from twin.errors import Forbidden, InvalidParameter, NotFound

router = APIRouter(prefix="/analysis", tags=["analyses"])

# The tables twin.analyses.housing reads (SITES_SQL, with the raster's latest year and weighted mean): its
# cached answers are keyed by their versions.
HOUSING_TABLES = ("housing_sites", "municipalities", "deposition_hexagons", "establishments", "nitrogen_deposition")


def disclosure(principal: Principal) -> Disclosure:
    """The access rule of the analyses for this caller; the rule itself is
    :class:`twin.analyses.common.Disclosure` (one place for the security engineer to tighten)."""
    return disclosure_for(principal.role, principal.org_code)


def _format(f: str | None) -> str:
    fmt = (f or "json").lower()
    if fmt not in ("json", "html"):
        raise InvalidParameter(f"f={f!r} is not supported here; use f=json or f=html", parameter="f")
    return fmt


@router.get("/context", summary="Area context before a visit: what lies in a circle around a point or establishment")
async def context(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    lon: float | None = Query(None, description="Longitude of the centre (WGS84 degrees)"),
    lat: float | None = Query(None, description="Latitude of the centre (WGS84 degrees)"),
    establishment: str | None = Query(None, description="Centre on this establishment (instead of lon/lat)"),
    radius: float | None = Query(None, description="Radius in metres (default 500, at most 5,000)"),
    as_of: date | None = Query(None, description="Reference date for last/open/active (default today)"),
    year: int | None = Query(None, description="Reference year of the current habitat exceedance (default: as_of)"),
    f: str | None = Query(None, description="json (default) or html: a printable area report"),
) -> Any:
    fmt = _format(f)
    who = disclosure(principal)
    result = await area_context(conn, settings, lon=lon, lat=lat, establishment=establishment, radius=radius,
                                as_of=as_of, year=year, disclosure=who)
    shown = sum(1 for e in result["establishments"] if e["inspections_visible"] and e["last_inspection"])
    if shown:
        record_access(shown, "inspections")  # for the audit log: establishments whose inspections were shown
    if fmt == "json":
        return result
    from twin.analyses import report

    extras = await report.report_inputs(conn, result, settings)
    page = await asyncio.to_thread(report.render_context_report, result, extras)
    return HTMLResponse(page)


@router.get("/housing-nitrogen", summary="Housing sites against nitrogen and zoning, with a verdict per site",
            response_class=JSONResponse, responses={200: {"content": {"application/geo+json": {}}}})
async def housing(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    municipality: str | None = Query(None, description="CBS code (GM....): only sites overlapping it"),
    as_of: date | None = Query(None, description="Reference date (default today); its year picks the deposition"),
    year: int | None = Query(None, description="Reference year of deposition and hexagons (default: as_of)"),
) -> Response:
    # The map asks for every site on every page load (1.7 s of database work on the medium twin): the answer
    # is kept (TWIN_ANALYSIS_CACHE_MB) under the versions of the tables it reads, the reference date and
    # the caller's audience, so it is computed again only when one of those changed.
    cached = await lookup(request, conn, "analysis_cache_mb", HOUSING_TABLES, principal,
                          "housing-nitrogen", municipality, today(as_of), year)
    headers = {"X-Analysis-Cache": cached.status} if cached.status else None
    if cached.data is not None:
        return Response(cached.data, media_type="application/geo+json", headers=headers)
    result = await housing_nitrogen(conn, settings, municipality_code=municipality, as_of=as_of, year=year,
                                    disclosure=disclosure(principal))
    response = JSONResponse(result, media_type="application/geo+json", headers=headers)
    cached.store(bytes(response.body))
    return response


@router.get("/inspection-priority", summary="Establishments ranked by a transparent risk score, with overrides")
async def priority(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    municipality: str | None = Query(None, description="CBS code (GM....): only establishments inside it"),
    limit: int = Query(DEFAULT_LIMIT, description="How many of the ranking to return (1 to 100,000)"),
    as_of: date | None = Query(None, description="Reference date (default today)"),
    year: int | None = Query(None, description="Reference year of the deposition hexagons (default: as_of)"),
    method: str | None = Query(None, description="Read the latest stored visit plan ('twin priority plan') of "
                               "this method: model, rules or blend (model and blend: inspector or admin). "
                               "Without it: the live rule-based ranking."),
) -> dict[str, Any]:
    who = disclosure(principal)
    if not who.inspections and principal.role != "anonymous":
        raise Forbidden("the inspection priority is built on restricted inspection data: it needs an advisor, "
                        "inspector or admin API key.")
    if method is not None:
        if method not in METHODS:
            raise InvalidParameter(f"method must be one of {', '.join(METHODS)}, not {method!r}", parameter="method")
        if method != "rules" and principal.role not in ("inspector", "admin"):
            raise Forbidden("the model's visit plan predicts the behaviour of named establishments: it needs an "
                            "inspector or admin API key.")
        if not 1 <= limit <= 100_000:
            raise InvalidParameter(f"limit must be between 1 and 100000, not {limit}", parameter="limit")
        plan = await stored_plan(conn, method=method, disclosure=who, municipality_code=municipality, limit=limit)
        if plan is not None:
            record_access(plan["numberReturned"], "inspections")
            return plan
        if method != "rules":
            raise NotFound(f"no visit plan of method {method!r} is stored: run 'twin priority plan --method {method} "
                           "--capacity N' first.")
    result = await inspection_priority(conn, settings, municipality_code=municipality, limit=limit, as_of=as_of,
                                       year=year, disclosure=who)
    record_access(result["numberReturned"], "inspections")  # for the audit log
    return result


@router.get("/area-summary", summary="Summary of a municipality for management reports")
async def summary_of_municipality(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    municipality: str | None = Query(None, description="CBS code (GM....) of the municipality"),
    as_of: date | None = Query(None, description="Reference date (default today)"),
) -> dict[str, Any]:
    if not municipality:
        raise InvalidParameter("give municipality=CODE (e.g. GM0363), or POST a GeoJSON polygon to this path",
                               parameter="municipality")
    return await area_summary(conn, settings, municipality_code=municipality, as_of=as_of,
                              disclosure=disclosure(principal))


@router.post("/area-summary", summary="Summary of a posted GeoJSON polygon for management reports")
async def summary_of_polygon(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    crs: str | None = Query(None, description="CRS of the posted polygon (default CRS84, lon/lat)"),
    as_of: date | None = Query(None, description="Reference date (default today)"),
) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"the body is not JSON ({exc}); post a GeoJSON Polygon or MultiPolygon",
                               parameter="body") from exc
    area = await asyncio.to_thread(polygon_from_geojson, body, settings, parse_crs(crs) if crs else CRS84)
    return await area_summary(conn, settings, area=area, as_of=as_of, disclosure=disclosure(principal))
