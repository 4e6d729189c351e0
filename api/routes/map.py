"""The map's HTTP routes: its static files (:mod:`frontend.assets`) and ``/map/config.json``, what the
page needs from the data at start. The page itself is built by :mod:`frontend.page` (the landing page)."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import PrincipalDep, can_read
from api.deps import ConnDep
from frontend.assets import respond, static_asset
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


@router.get("/map/config.json")
async def map_config(conn: ConnDep, principal: PrincipalDep) -> dict[str, Any]:
    """What the map page needs from the data at start: the deposition years and the inspection years
    (only for callers who may read inspections: for others row-level security would scan them all)."""
    cur = await conn.execute(YEARS_SQL)
    deposition_years = [int(row[0]) for row in await cur.fetchall()]
    inspection_years: list[int] = []
    if not can_read(principal, LAYERS["inspections"]):
        return {"deposition_years": deposition_years, "inspection_years": inspection_years}
    try:
        cur = await conn.execute(INSPECTION_RANGE_SQL)
        first, last = await cur.fetchone() or (None, None)
        if first and last:
            inspection_years = list(range(first.year, last.year + 1))
    except psycopg.errors.InsufficientPrivilege:
        await conn.rollback()  # a deployment may hide inspections from the map's role: no selector then
    return {"deposition_years": deposition_years, "inspection_years": inspection_years}
