"""``/analysis/...``: the cross-cutting analyses of the twin (rules in docs/analyses.md).

Routes are thin: they parse the parameters, decide what the caller may see (:func:`disclosure`), call the
analysis in :mod:`twin.analyses` on the request's reader connection and return its result.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import Principal, PrincipalDep, record_access
from api.cache import lookup
from api.deps import ConnDep, SettingsDep
from api.paging import load_secret
from api.params import AsOfDep
from api.signed import sign
from layers.messages import language
from twin import history
from twin.analyses.common import Disclosure, disclosure_for, fetch, today
from twin.analyses.context import area_context
from twin.analyses.housing import TABLES as HOUSING_TABLES
from twin.analyses.housing import housing_csv, housing_nitrogen
from twin.analyses.priority import DEFAULT_LIMIT, inspection_priority
from twin.analyses.summary import area_summary, polygon_from_geojson
from twin.crs import CRS84, parse_crs
from twin.errors import Forbidden, InvalidParameter, NotFound
from twin.model.plan import METHODS, stored_plan
from twin.settings import Settings

router = APIRouter(prefix="/analysis", tags=["analyses"])

# The tables twin.analyses.housing reads (housing.TABLES: SITES_SQL, with the raster's latest year and weighted
# mean, and the Natura 2000 habitats and areas it names): its cached answers are keyed by their versions.


def disclosure(principal: Principal) -> Disclosure:
    """The access rule of the analyses for this caller; the rule itself is
    :class:`twin.analyses.common.Disclosure` (one place for the security engineer to tighten)."""
    return disclosure_for(principal.role, principal.org_code)


def _state_dates(result: dict[str, Any], when: history.AsOf | None) -> dict[str, Any]:
    """An answer as of a date says so: geldigOp and beschikbaarOp (None: today / now; docs/history.md)."""
    result["history"] = (when or history.AsOf()).describe()
    return result


def _format(f: str | None, allowed: tuple[str, ...] = ("json", "html")) -> str:
    fmt = (f or "json").lower()
    if fmt not in allowed:
        raise InvalidParameter(f"f={f!r} is not supported here; use " + " or ".join(f"f={a}" for a in allowed),
                               parameter="f")
    return fmt


def _report_page(request: Request, lang: str) -> dict[str, Any]:
    """What a printable page needs from the request: the CSP nonce of its <style>, the script that wires its
    print button, the way back to the map in the same language."""
    from frontend.assets import asset_url

    return {"nonce": getattr(request.state, "csp_nonce", None), "script_url": asset_url("report.js"),
            "map_url": f"/?lang={lang}"}


@router.get("/context", summary="Area context before a visit: what lies in a circle around a point or establishment")
async def context(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    when: AsOfDep,
    lon: float | None = Query(None, description="Longitude of the centre (WGS84 degrees)"),
    lat: float | None = Query(None, description="Latitude of the centre (WGS84 degrees)"),
    establishment: str | None = Query(None, description="Centre on this establishment (instead of lon/lat)"),
    site: str | None = Query(None, description="A planned housing site (instead of lon/lat): distances from its edge, "
                             "its verdict with the criteria"),
    radius: float | None = Query(None, description="Radius in metres (default 500, at most 5,000)"),
    as_of: date | None = Query(None, description="Reference date for last/open/active (default today)"),
    year: int | None = Query(None, description="Reference year of the current habitat exceedance (default: as_of)"),
    f: str | None = Query(None, description="json (default) or html: a printable area report (gebiedsrapport)"),
    lang: str | None = Query(None, description="Language of the report and the verdict's reasons: nl (default) or en"),
) -> Any:
    fmt = _format(f)
    lg = language(lang)
    who = disclosure(principal)
    async with history.as_of(conn, when):
        result = await area_context(conn, settings, lon=lon, lat=lat, establishment=establishment, site=site,
                                    radius=radius, as_of=history.reference_date(as_of, when), year=year,
                                    disclosure=who, lang=lg)
    _state_dates(result, when)
    shown = sum(1 for e in result["establishments"] if e["inspections_visible"] and e["last_inspection"])
    subject = result.get("subject") or {}
    shown += len(subject.get("inspections") or [])
    if shown:
        record_access(shown, "inspections")  # for the audit log: inspections shown
    if fmt == "json":
        return result
    from twin.analyses import report

    extras = await report.report_inputs(conn, result, settings)
    page = await asyncio.to_thread(
        report.render_context_report, result, extras, lg, reader=(principal.role, principal.org_code),
        housing_parameters=_housing_parameters(settings), **_report_page(request, lg))
    return HTMLResponse(page)


def _housing_parameters(settings: Settings) -> dict[str, Any]:
    return {"habitat_radius_m": settings.analysis_housing_habitat_radius_m,
            "conflict_habitat_distance_m": settings.analysis_housing_conflict_habitat_m,
            "approach_margin": settings.analysis_approach_margin}


def _verdicts(values: list[str] | None) -> list[str] | None:
    """``verdict=conflict,attention`` or repeated ``verdict=``; ``no-constraint`` and ``no_constraint`` too."""
    if not values:
        return None
    out = [v.strip().lower().replace("-", " ").replace("_", " ") for value in values for v in value.split(",")]
    return [v for v in out if v] or None


@router.get("/housing-nitrogen", summary="Housing sites against nitrogen and zoning, an indicative verdict per site",
            response_class=JSONResponse, responses={200: {"content": {"application/geo+json": {}, "text/csv": {},
                                                                      "text/html": {}}}})
async def housing(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    when: AsOfDep,
    municipality: str | None = Query(None, description="CBS code (GM....): only sites overlapping it"),
    verdict: list[str] | None = Query(None, description="Only these verdicts: conflict, attention, no constraint "
                                      "(comma-separated or repeated)"),
    as_of: date | None = Query(None, description="Reference date (default today); its year picks the deposition"),
    year: int | None = Query(None, description="Reference year of deposition and hexagons (default: as_of)"),
    f: str | None = Query(None, description="json or geojson (default), csv (one row per site) or html (printable)"),
    lang: str | None = Query(None, description="Language of the reasons and labels: nl (default) or en"),
) -> Response:
    fmt = _format(f, ("json", "geojson", "csv", "html"))
    lg = language(lang)
    verdicts = _verdicts(verdict)
    as_of = history.reference_date(as_of, when)

    async def compute() -> bytes:
        async with history.as_of(conn, when):
            result = await housing_nitrogen(conn, settings, municipality_code=municipality, as_of=as_of, year=year,
                                            disclosure=disclosure(principal), verdicts=verdicts, lang=lg)
        result["as_of"] = today(as_of).isoformat()
        return bytes(JSONResponse(_state_dates(result, when)).body)

    headers: dict[str, str] = {}
    if when is not None:  # as of a past state: not the map's page load, and the cache keys the current versions
        body = await compute()
    else:
        # The map asks for every site on every page load (1.7 s of database work on the medium twin): the answer
        # is kept (TWIN_ANALYSIS_CACHE_MB) under the versions of the tables it reads, the reference date and
        # the caller's audience, so it is computed again only when one of those changed.
        cached = await lookup(request, conn, "analysis_cache_mb", HOUSING_TABLES, principal,
                              "housing-nitrogen", municipality, today(as_of), year, lg,
                              ",".join(verdicts) if verdicts else None)
        headers = {"X-Analysis-Cache": cached.status} if cached.status else {}
        if cached.data is not None:
            body = cached.data
        else:
            body = await compute()
            cached.store(body)
    if fmt in ("json", "geojson"):
        return Response(body, media_type="application/geo+json", headers=headers)
    result = json.loads(body)
    name = "woningbouw-stikstof" + (f"-{municipality}" if municipality else "")
    if fmt == "csv":
        return Response(housing_csv(result).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                        headers={**headers, "Content-Disposition": f'attachment; filename="{name}.csv"'})
    from twin.analyses import report

    extras = {"sources": await fetch(conn, report.SOURCES_SQL), "generated_at": datetime.now(UTC)}
    page = await asyncio.to_thread(report.render_housing_report, result, extras, lg,
                                   reader=(principal.role, principal.org_code), **_report_page(request, lg))
    return HTMLResponse(page, headers=headers)


@router.get("/link", summary="A short-lived signed link to a report, carrying the caller's rights without the key")
async def signed_link(
    settings: SettingsDep,
    principal: PrincipalDep,
    href: str = Query(..., max_length=4000, description="The report's path and query, e.g. "
                      "/analysis/context?establishment=X&f=html"),
) -> dict[str, Any]:
    """Browsers open a report in a new tab, where no API key header can go along: this answers the same URL
    with a ``grant`` (api.signed) valid for ``TWIN_REPORT_LINK_TTL_S`` seconds. Anonymous callers get the
    URL as it is."""
    if not principal.authenticated:
        sign(b"-", principal, href, 1)  # validates the path
        return {"href": href, "expires": None, "role": principal.role, "org_code": None}
    signed, expires = sign(load_secret(settings), principal, href, settings.report_link_ttl_s)
    return {"href": signed, "expires": datetime.fromtimestamp(expires, UTC).isoformat(),
            "ttl_s": settings.report_link_ttl_s, "role": principal.role, "org_code": principal.org_code}


@router.get("/inspection-priority", summary="Establishments ranked by a transparent risk score, with overrides")
async def priority(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    when: AsOfDep,
    municipality: str | None = Query(None, description="CBS code (GM....): only establishments inside it"),
    limit: int = Query(DEFAULT_LIMIT, description="How many of the ranking to return (1 to 100,000)"),
    as_of: date | None = Query(None, description="Reference date (default today)"),
    year: int | None = Query(None, description="Reference year of the deposition hexagons (default: as_of)"),
    method: str | None = Query(None, description="Read the latest stored visit plan ('twin priority plan') of "
                               "this method: model, rules or blend (model and blend: inspector or admin). "
                               "Without it: the live rule-based ranking."),
) -> dict[str, Any]:
    who = disclosure(principal)
    as_of = history.reference_date(as_of, when)
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
    async with history.as_of(conn, when):
        result = await inspection_priority(conn, settings, municipality_code=municipality, limit=limit, as_of=as_of,
                                           year=year, disclosure=who)
    _state_dates(result, when)
    record_access(result["numberReturned"], "inspections")  # for the audit log
    return result


@router.get("/area-summary", summary="Summary of a municipality for management reports")
async def summary_of_municipality(
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    when: AsOfDep,
    municipality: str | None = Query(None, description="CBS code (GM....) of the municipality"),
    as_of: date | None = Query(None, description="Reference date (default today)"),
) -> dict[str, Any]:
    if not municipality:
        raise InvalidParameter("give municipality=CODE (e.g. GM0363), or POST a GeoJSON polygon to this path",
                               parameter="municipality")
    async with history.as_of(conn, when):
        result = await area_summary(conn, settings, municipality_code=municipality,
                                    as_of=history.reference_date(as_of, when), disclosure=disclosure(principal))
    return _state_dates(result, when)


@router.post("/area-summary", summary="Summary of a posted GeoJSON polygon for management reports")
async def summary_of_polygon(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    when: AsOfDep,
    crs: str | None = Query(None, description="CRS of the posted polygon (default CRS84, lon/lat)"),
    as_of: date | None = Query(None, description="Reference date (default today)"),
) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"the body is not JSON ({exc}); post a GeoJSON Polygon or MultiPolygon",
                               parameter="body") from exc
    area = await asyncio.to_thread(polygon_from_geojson, body, settings, parse_crs(crs) if crs else CRS84)
    async with history.as_of(conn, when):
        result = await area_summary(conn, settings, area=area, as_of=history.reference_date(as_of, when),
                                    disclosure=disclosure(principal))
    return _state_dates(result, when)
