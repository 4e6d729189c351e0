"""Public aggregates of restricted layers: counts per cell of a fixed RD New grid and per calendar year,
published under the statistical disclosure control of :mod:`twin.disclosure`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from twin import disclosure
from twin.access import natural_person_sql
from twin.sql import fetch

NATURAL_PERSON = natural_person_sql("e")  # sole proprietors and partnerships of natural persons

# The records of the grid, grouped per cell, year and contributor (what twin.disclosure needs). A bbox
# selects whole cells: it is snapped outwards to the grid, and records are assigned by their cell.
INSPECTION_CONTRIBUTIONS_SQL = """
WITH b AS (SELECT ST_Transform(ST_GeomFromWKB(%(wkb)s::bytea, %(srid)s::integer), 28992) AS g),
r AS (
  SELECT floor(ST_XMin(b.g) / %(cell)s)::bigint AS cx0, floor(ST_YMin(b.g) / %(cell)s)::bigint AS cy0,
         greatest(ceil(ST_XMax(b.g) / %(cell)s)::bigint, floor(ST_XMin(b.g) / %(cell)s)::bigint + 1) AS cx1,
         greatest(ceil(ST_YMax(b.g) / %(cell)s)::bigint, floor(ST_YMin(b.g) / %(cell)s)::bigint + 1) AS cy1
  FROM b
),
rec AS (
  SELECT floor(ST_X(i.geom) / %(cell)s)::bigint AS cx, floor(ST_Y(i.geom) / %(cell)s)::bigint AS cy,
         extract(year FROM i.inspected_on)::integer AS year,
         coalesce('kvk:' || e.kvk_number, 'est:' || i.establishment_id) AS contributor,
         {natural_person} AS sole,
         i.org_code AS org
  FROM r, twin.inspections i
  LEFT JOIN twin.establishments e ON e.establishment_id = i.establishment_id
  WHERE (r.cx0 IS NULL OR i.geom && ST_MakeEnvelope(r.cx0 * %(cell)s, r.cy0 * %(cell)s, r.cx1 * %(cell)s,
                                                      r.cy1 * %(cell)s, 28992))
    AND (%(year)s::integer IS NULL OR (i.inspected_on >= make_date(%(year)s::integer, 1, 1)
                                       AND i.inspected_on < make_date(%(year)s::integer + 1, 1, 1)))
)
SELECT rec.cx, rec.cy, rec.year, rec.contributor, rec.sole, rec.org, count(*)
FROM rec, r
WHERE rec.cx IS NOT NULL AND rec.cy IS NOT NULL
  AND (r.cx0 IS NULL OR (rec.cx >= r.cx0 AND rec.cx < r.cx1 AND rec.cy >= r.cy0 AND rec.cy < r.cy1))
GROUP BY 1, 2, 3, 4, 5, 6
""".replace("{natural_person}", NATURAL_PERSON)

CELL_GEOMETRY_SQL = """
SELECT c.cx, c.cy, ST_AsGeoJSON(ST_Transform(ST_MakeEnvelope(c.cx * %(cell)s, c.cy * %(cell)s,
       (c.cx + 1) * %(cell)s, (c.cy + 1) * %(cell)s, 28992), 4326), 6)
FROM unnest(%(cx)s::bigint[], %(cy)s::bigint[]) AS c(cx, cy)
"""


@dataclass(frozen=True)
class GridCell:
    cx: int
    cy: int
    count: int
    years: list[int]
    geometry: dict[str, Any]


async def inspection_grid(conn: psycopg.AsyncConnection, *, cell: int, k: int, wkb: bytes | None, srid: int,
                          year: int | None) -> list[GridCell]:
    """The published cells of the inspection grid, ordered south to north, west to east: per cell and
    calendar year under :func:`twin.disclosure.publish`; without ``year`` a cell's count is the sum of
    its published years (:func:`twin.disclosure.period_totals`)."""
    rows = await disclosure.fetch_unrestricted(
        conn, INSPECTION_CONTRIBUTIONS_SQL, {"wkb": wkb, "srid": srid, "cell": cell, "year": year})
    published = disclosure.publish(disclosure.cells_from_rows(rows), k)
    totals = disclosure.period_totals({((cx, cy), yr): n for (cx, cy, yr), n in published.items()})
    order = sorted(totals, key=lambda c: (c[1], c[0]))
    geoms = {(cx, cy): json.loads(g) for cx, cy, g in await fetch(
        conn, CELL_GEOMETRY_SQL, {"cell": cell, "cx": [c[0] for c in order], "cy": [c[1] for c in order]})}
    return [GridCell(cx, cy, totals[(cx, cy)][0], totals[(cx, cy)][1], geoms[(cx, cy)]) for cx, cy in order]
