"""Nitrogen deposition summaries the analyses need beyond :mod:`twin.deposition` (which serves the
coverage endpoints and the value at a point): the statistics inside a polygon by the pixel-centre rule and
the area-weighted mean over a small polygon, per year. Every function takes an RD New geometry as WKB and
binds every value.

Two ways to summarise a polygon, both documented in docs/analyses.md:
- :func:`zonal_stats`: the pixels whose centre lies inside (``ST_Clip`` + ``ST_SummaryStatsAgg``);
  right for areas much larger than a pixel (a circle, a municipality).
- :func:`weighted_stats`: every pixel that overlaps the polygon, weighted by the overlap area; right for
  areas of a few pixels or less (a housing site), where the centre rule may find no pixel at all.
"""

from __future__ import annotations

from typing import Any

import psycopg

from twin.analyses.common import fetch

ZONAL_SQL = """
WITH z AS (SELECT ST_GeomFromWKB(%(wkb)s, 28992) AS geom),
clipped AS (
  SELECT d.year, d.label, ST_Clip(d.rast, 1, z.geom, true) AS rast
  FROM z JOIN twin.nitrogen_deposition d ON ST_ConvexHull(d.rast) && z.geom AND ST_Intersects(d.rast, z.geom)
),
agg AS (SELECT year, min(label) AS label, ST_SummaryStatsAgg(rast, 1, true, 1) AS s FROM clipped GROUP BY year)
SELECT year, label, (s).count AS count, (s).min AS min, (s).max AS max, (s).mean AS mean FROM agg ORDER BY year
"""

# Area-weighted over every pixel that overlaps the geometry ``{geom}`` (an SQL expression), for one year
# ``{year}``. The tile is first cut to the geometry's box grown by one pixel, so that only the few pixels
# around a small polygon become polygons.
WEIGHTED_SQL = """
SELECT sum(q.a * q.val) / nullif(sum(q.a), 0) AS mean, max(q.val) AS max, min(q.val) AS min,
       count(*) AS pixels, sum(q.a) / 10000.0 AS covered_ha
FROM (
  SELECT (pp).val AS val, ST_Area(ST_Intersection((pp).geom, {geom})) AS a
  FROM twin.nitrogen_deposition d,
       LATERAL ST_PixelAsPolygons(
         ST_Clip(d.rast, 1, ST_Expand(ST_Envelope({geom}),
                 greatest(abs(ST_ScaleX(d.rast)), abs(ST_ScaleY(d.rast)))), true), 1, true) AS pp
  WHERE d.year = {year} AND ST_ConvexHull(d.rast) && {geom} AND ST_Intersects(d.rast, {geom})
) q
WHERE q.a > 0
"""

# The latest year not after ``{year}`` that has a tile over ``{geom}``; NULL when none.
LATEST_YEAR_SQL = """
(SELECT max(d.year) FROM twin.nitrogen_deposition d
 WHERE d.year <= {year} AND ST_ConvexHull(d.rast) && {geom} AND ST_Intersects(d.rast, {geom}))
"""


async def zonal_stats(conn: psycopg.AsyncConnection, wkb: bytes) -> list[dict[str, Any]]:
    """Pixel-centre statistics (count, min, max, mean) inside an RD geometry, one row per year."""
    return await fetch(conn, ZONAL_SQL, {"wkb": wkb})


async def weighted_stats(conn: psycopg.AsyncConnection, wkb: bytes, year: int) -> dict[str, Any]:
    """Area-weighted mean, max and min over every pixel overlapping a (small) RD geometry in one year."""
    sql = "WITH g AS (SELECT ST_GeomFromWKB(%(wkb)s, 28992) AS geom) " + WEIGHTED_SQL.format(
        geom="(SELECT geom FROM g)", year="%(year)s"
    )
    rows = await fetch(conn, sql, {"wkb": wkb, "year": year})
    return rows[0]
