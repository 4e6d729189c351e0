"""Public aggregates of restricted layers: counts per cell of a fixed RD New grid and per calendar year,
published under the statistical disclosure control of :mod:`twin.disclosure`, today or as of a date
(``geldigOp`` / ``beschikbaarOp``: the same control on that state, against today's; docs/history.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from twin import disclosure, history
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
"""

# As of a date the advisors' row-level security on history.inspections_versions (migration 0015) hides the
# inspections of every establishment that is or ever was registered as a natural person; the audiences of
# twin.disclosure mirror that.
EVER_NATURAL_PERSON = (
    "(" + NATURAL_PERSON + " OR EXISTS (SELECT 1 FROM history.establishments_versions ev "
    "WHERE ev.establishment_id = i.establishment_id "
    "AND twin.is_natural_person(ev.sole_proprietor, ev.natural_person_owner, ev.legal_form)))")
INSPECTION_CONTRIBUTIONS_AS_OF_SQL = INSPECTION_CONTRIBUTIONS_SQL.replace("{natural_person}", EVER_NATURAL_PERSON)
INSPECTION_CONTRIBUTIONS_SQL = INSPECTION_CONTRIBUTIONS_SQL.replace("{natural_person}", NATURAL_PERSON)

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
                          year: int | None, when: history.AsOf | None = None) -> list[GridCell]:
    """The published cells of the inspection grid, ordered south to north, west to east: per cell and
    calendar year under :func:`twin.disclosure.publish`; without ``year`` a cell's count is the sum of
    its published years (:func:`twin.disclosure.period_totals`). ``when``: the inspections as of that
    state, under :func:`twin.disclosure.publish_as_of` (that state against today's)."""
    params = {"wkb": wkb, "srid": srid, "cell": cell, "year": year}
    now = disclosure.cells_from_rows(
        await disclosure.fetch_unrestricted(conn, INSPECTION_CONTRIBUTIONS_SQL, params))
    if when is None:
        published = disclosure.publish(now, k)
    else:
        async with history.as_of(conn, when):
            then = disclosure.cells_from_rows(
                await disclosure.fetch_unrestricted(conn, INSPECTION_CONTRIBUTIONS_AS_OF_SQL, params))
        published = disclosure.publish_as_of(then, now, k)
    totals = disclosure.period_totals({((cx, cy), yr): n for (cx, cy, yr), n in published.items()})
    order = sorted(totals, key=lambda c: (c[1], c[0]))
    geoms = {(cx, cy): json.loads(g) for cx, cy, g in await fetch(
        conn, CELL_GEOMETRY_SQL, {"cell": cell, "cx": [c[0] for c in order], "cy": [c[1] for c in order]})}
    return [GridCell(cx, cy, totals[(cx, cy)][0], totals[(cx, cy)][1], geoms[(cx, cy)]) for cx, cy in order]
