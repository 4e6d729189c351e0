"""The map's HTTP routes: its static files (:mod:`frontend.assets`), ``/map/config.json`` (what the page needs
from the data at start), ``/map/places.json`` (the place names it draws) and the accessibility statement
(``/toegankelijkheid``), and the monitoring dashboard (``/dashboard``, :mod:`frontend.dashboard`).
The page itself is built by :mod:`frontend.page` (the landing page)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import PrincipalDep, can_read
from api.cache import lookup
from api.deps import ConnDep
from frontend.assets import respond, static_asset
from frontend.dashboard import DASHBOARD_URL, render_dashboard
from frontend.page import STATEMENT_URL, render_statement
from layers.registry import LAYERS

router = APIRouter(tags=["map"], include_in_schema=False)


@router.get("/static/{name:path}")
def static_file(name: str, request: Request) -> Response:
    """The map's own JavaScript, CSS and images."""
    return respond(request, static_asset(name), immutable="v" in request.query_params)


# Years with deposition data: the coverage's years and, by a loose index scan over (resolution, year), the
# hexagon years; inspection years from the date index (min and max only: the rows stay restricted).
YEARS_SQL = """
WITH RECURSIVE hex(resolution, year) AS (
  SELECT r, (SELECT h.year FROM twin.deposition_hexagons h WHERE h.resolution = r ORDER BY h.year LIMIT 1)
  FROM unnest(ARRAY['national', '1ha']) AS r
  UNION ALL
  SELECT hex.resolution, (SELECT h.year FROM twin.deposition_hexagons h
                          WHERE h.resolution = hex.resolution AND h.year > hex.year ORDER BY h.year LIMIT 1)
  FROM hex WHERE hex.year IS NOT NULL
)
SELECT year FROM hex WHERE year IS NOT NULL
UNION
SELECT year FROM twin.nitrogen_deposition_years
ORDER BY 1
"""
INSPECTION_RANGE_SQL = "SELECT min(inspected_on), max(inspected_on) FROM twin.inspections"
# The methods of the stored visit plans (the plans' headers: no establishment in them), for the map's
# priority colouring: it asks for the plan of the settings' method only when one is stored.
PLAN_METHODS_SQL = "SELECT method FROM twin.visit_plans GROUP BY method ORDER BY method"
RANKING_ROLES = ("advisor", "inspector", "admin")  # who may see inspection priorities (api/routes/analyses.py)


async def _plan_methods(conn: psycopg.AsyncConnection) -> list[str]:
    try:
        cur = await conn.execute(PLAN_METHODS_SQL)
        return [str(row[0]) for row in await cur.fetchall()]
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
        await conn.rollback()  # an older schema or a deployment that hides the plans: the live ranking then
        return []


@router.get("/map/config.json")
async def map_config(conn: ConnDep, principal: PrincipalDep) -> dict[str, Any]:
    """What the map page needs from the data at start: the deposition years and the inspection years
    (only for callers who may read inspections: for others row-level security would scan them all), and for
    callers who may see inspection priorities the methods of the stored visit plans (``plan_methods``)."""
    cur = await conn.execute(YEARS_SQL)
    deposition_years = [int(row[0]) for row in await cur.fetchall()]
    inspection_years: list[int] = []
    if not can_read(principal, LAYERS["inspections"]):
        return {"deposition_years": deposition_years, "inspection_years": inspection_years}
    plan_methods = await _plan_methods(conn) if principal.role in RANKING_ROLES else []
    try:
        cur = await conn.execute(INSPECTION_RANGE_SQL)
        first, last = await cur.fetchone() or (None, None)
        if first and last:
            inspection_years = list(range(first.year, last.year + 1))
    except psycopg.errors.InsufficientPrivilege:
        await conn.rollback()  # a deployment may hide inspections from the map's role: no selector then
    return {"deposition_years": deposition_years, "inspection_years": inspection_years, "plan_methods": plan_methods}


# Place names for the map's labels: each municipality at a point on its surface, and each BAG place
# (woonplaats) with at least PLACE_MIN_ADDRESSES addresses at the mean of its addresses.
PLACE_MIN_ADDRESSES = 50
PLACES_SQL = """
SELECT name, 'municipality' AS kind, ST_X(p) AS lon, ST_Y(p) AS lat, 0 AS addresses
FROM (SELECT name, ST_Transform(ST_PointOnSurface(geom), 4326) AS p FROM twin.municipalities) m
UNION ALL
SELECT city, 'place', ST_X(p), ST_Y(p), n
FROM (SELECT city, count(*) AS n,
             ST_Transform(ST_SetSRID(ST_MakePoint(avg(ST_X(geom)), avg(ST_Y(geom))), 28992), 4326) AS p
      FROM twin.addresses WHERE city IS NOT NULL GROUP BY city HAVING count(*) >= %(min)s) a
"""


@router.get("/map/places.json")
async def places(request: Request, conn: ConnDep, principal: PrincipalDep) -> Response:
    """Municipality and place names with a position (lon, lat), for the map's labels; cached per table version."""
    cached = await lookup(request, conn, "tile_cache_mb", ("municipalities", "addresses"), principal, "places")
    body = cached.data
    if body is None:
        rows: list[dict[str, Any]] = []
        try:
            cur = await conn.execute(PLACES_SQL, {"min": PLACE_MIN_ADDRESSES})
            for name, kind, lon, lat, n in await cur.fetchall():
                if name and lon is not None:
                    rows.append({"name": name, "kind": kind, "position": [round(lon, 5), round(lat, 5)],
                                 "addresses": int(n)})
        except psycopg.errors.InsufficientPrivilege:
            await conn.rollback()  # a deployment may hide the addresses from this role: no labels then
        body = json.dumps({"places": rows}, ensure_ascii=False, separators=(",", ":")).encode()
        cached.store(body)
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=300"})


@router.get(STATEMENT_URL, response_class=HTMLResponse)
async def accessibility_statement(lang: str | None = None) -> HTMLResponse:
    """The accessibility statement (toegankelijkheidsverklaring) of the map, Dutch or ``?lang=en``."""
    return HTMLResponse(render_statement(lang or "nl"))


@router.get(DASHBOARD_URL, response_class=HTMLResponse)
async def dashboard(lang: str | None = None) -> HTMLResponse:
    """The monitoring dashboard (KPIs of supervision over time), Dutch or ``?lang=en``; its figures come from
    ``/monitoring/kpis`` with the visitor's key."""
    return HTMLResponse(render_dashboard(lang or "nl"))
