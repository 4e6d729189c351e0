"""The raster coverage (``nitrogen-deposition``), sampled and summarised per year: the value at a point,
statistics inside a geometry, raster pieces for map tiles (and sampling them), and the summaries the
analyses use. Geometries and coordinates are in RD New (EPSG:28992); every function takes a psycopg
``AsyncConnection``, binds every value and runs its SQL through :func:`twin.sql.fetch`.

Three ways to summarise a polygon, documented in docs/analyses.md and docs/api.md:
- :func:`zonal_statistics` (the coverage endpoint): every pixel that overlaps the geometry, see below.
- :func:`centre_stats`: the pixels whose centre lies inside (``ST_Clip`` + ``ST_SummaryStatsAgg``);
  right for areas much larger than a pixel (a circle, a municipality).
- :func:`weighted_stats`: every pixel that overlaps the polygon, weighted by the overlap area; right for
  areas of a few pixels or less (a housing site), where the centre rule may find no pixel at all.

Zonal statistics count every pixel that overlaps the geometry with a positive area:

- ``count``, ``min``, ``max``, ``mean``: over those pixels (unweighted);
- ``weighted_mean``: each pixel weighted by the area it shares with the geometry (exact, so a polygon
  smaller than a pixel still gets the value of the pixels it lies in);
- ``covered_ha``: the area of the geometry that has data; ``area_ha``: the geometry's area (RD New,
  planar; within 0.02% of the true area in the Netherlands).

To stay fast on large geometries, raster tiles wholly inside are summarised as they are, pixels whose
centre lies inside are summarised by the raster engine (``ST_Clip`` + ``ST_SummaryStats``), and only the
pixels the boundary passes through become polygons whose overlap is measured (``ST_ClipByBox2D``: a
rectangle clip, exact in area and ~10x faster than ``ST_Intersection``); a pixel the boundary does not
touch is wholly inside exactly when its centre is. Which boundary pixels the clip counted as inside is
read from the clip itself, so a centre lying exactly on the boundary is never counted twice or not at all.
(Medium twin, three years: 0.6 s for a 1,860 km2 polygon; 4.3 s before these measures.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from twin.sql import ANALYSIS_TIMEOUT, fetch

POINT_SQL = """
SELECT DISTINCT ON (d.year) d.year, d.label, ST_Value(d.rast, 1, p.geom) AS value
FROM (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom) p
JOIN twin.nitrogen_deposition d ON ST_ConvexHull(d.rast) && p.geom AND ST_Intersects(d.rast, p.geom)
WHERE %(year)s::integer IS NULL OR d.year = %(year)s::integer
ORDER BY d.year, ST_Value(d.rast, 1, p.geom) IS NULL, d.rid
"""

ZONAL_SQL = """
WITH g AS (SELECT geom, ST_Boundary(geom) AS edge FROM (SELECT ST_GeomFromWKB(%(wkb)s, 28992) AS geom) s),
tiles AS (
  SELECT d.rid, d.year, d.label, d.rast, abs(ST_ScaleX(d.rast) * ST_ScaleY(d.rast)) AS pixel_area,
         greatest(abs(ST_ScaleX(d.rast)), abs(ST_ScaleY(d.rast))) AS pixel_size,
         ST_Within(ST_ConvexHull(d.rast), g.geom) AS whole  -- tiles wholly inside need no clipping
  FROM twin.nitrogen_deposition d, g
  WHERE ST_ConvexHull(d.rast) && g.geom AND ST_Intersects(ST_ConvexHull(d.rast), g.geom)
    AND (%(year)s::integer IS NULL OR d.year = %(year)s::integer)
),
cut AS (  -- the pixels whose centre lies inside
  SELECT t.*, CASE WHEN t.whole THEN t.rast ELSE ST_Clip(t.rast, 1, g.geom, true) END AS inside FROM tiles t, g
),
band AS (SELECT ST_Buffer(g.edge, (SELECT max(pixel_size) FROM tiles)) AS geom FROM g),
centre AS (
  SELECT year, label, pixel_area, (ST_SummaryStats(inside, 1, true)).* FROM cut
),
centre_year AS (
  SELECT year, min(label) AS label, coalesce(sum(count), 0) AS n, coalesce(sum(sum), 0) AS s,
         coalesce(sum(sum * pixel_area), 0) AS ws, coalesce(sum(count * pixel_area), 0) AS wa,
         min(min) AS lo, max(max) AS hi
  FROM centre GROUP BY year
),
edge_all AS (  -- pixels near the boundary, as polygons
  SELECT t.rid, t.year, (pp).val AS v, (pp).geom AS pg
  FROM cut t, band, LATERAL ST_PixelAsPolygons(ST_Clip(t.rast, 1, band.geom, true), 1, true) pp
  WHERE NOT t.whole
),
edge_in AS (  -- those of them whose centre the clip above counted as inside (same rule, no ties)
  SELECT t.rid, round(ST_XMin((pp).geom)::numeric, 3) AS px, round(ST_YMax((pp).geom)::numeric, 3) AS py
  FROM cut t, band, LATERAL ST_PixelAsPolygons(ST_Clip(t.inside, 1, band.geom, true), 1, true) pp
  WHERE NOT t.whole AND t.inside IS NOT NULL AND NOT ST_IsEmpty(t.inside)
),
edge AS (  -- the pixels the boundary passes through, with the area they share with the geometry
  SELECT e.year, e.v, ST_Area(e.pg) AS full_area, ST_Area(ST_ClipByBox2D(g.geom, e.pg::box2d)) AS a,
         i.rid IS NOT NULL AS centre_in
  FROM edge_all e CROSS JOIN g
  LEFT JOIN edge_in i ON i.rid = e.rid AND i.px = round(ST_XMin(e.pg)::numeric, 3)
                     AND i.py = round(ST_YMax(e.pg)::numeric, 3)
  WHERE ST_Intersects(e.pg, g.edge)
),
edge_year AS (
  SELECT year,
         count(*) FILTER (WHERE centre_in) AS n_in, coalesce(sum(v) FILTER (WHERE centre_in), 0) AS s_in,
         coalesce(sum(v * full_area) FILTER (WHERE centre_in), 0) AS ws_in,
         coalesce(sum(full_area) FILTER (WHERE centre_in), 0) AS wa_in,
         count(*) FILTER (WHERE a > 0) AS n_pos, coalesce(sum(v) FILTER (WHERE a > 0), 0) AS s_pos,
         coalesce(sum(v * a), 0) AS ws_pos, coalesce(sum(a), 0) AS wa_pos,
         min(v) FILTER (WHERE a > 0) AS lo, max(v) FILTER (WHERE a > 0) AS hi
  FROM edge GROUP BY year
)
SELECT c.year, c.label,
       c.n - coalesce(e.n_in, 0) + coalesce(e.n_pos, 0) AS count,
       least(c.lo, e.lo) AS min, greatest(c.hi, e.hi) AS max,
       c.s - coalesce(e.s_in, 0) + coalesce(e.s_pos, 0) AS sum,
       c.ws - coalesce(e.ws_in, 0) + coalesce(e.ws_pos, 0) AS weighted_sum,
       c.wa - coalesce(e.wa_in, 0) + coalesce(e.wa_pos, 0) AS covered_area
FROM centre_year c LEFT JOIN edge_year e USING (year)
ORDER BY c.year
"""

AREA_SQL = "SELECT ST_Area(ST_GeomFromWKB(%(wkb)s, 28992))"

YEARS_SQL = """
SELECT y.year, y.label, y.unit, y.pixel_size, y.nodata, y.source
FROM twin.nitrogen_deposition_years y ORDER BY y.year
"""

EXTENT_SQL = """
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
FROM (SELECT ST_Extent(ST_Envelope(rast)) AS e FROM twin.nitrogen_deposition) s
"""

PIECES_SQL = """
SELECT ST_AsBinary(CASE WHEN %(res)s > 1.5 * abs(ST_ScaleX(c))
                      THEN ST_Resample(c, %(res)s, -%(res)s, 0, 0, 0, 0, 'NearestNeighbor') ELSE c END)
FROM (
  SELECT ST_Clip(d.rast, 1, e.env, true) AS c
  FROM twin.nitrogen_deposition d,
       (SELECT ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 28992) AS env) e
  WHERE d.year = %(year)s AND ST_ConvexHull(d.rast) && e.env
) s
WHERE c IS NOT NULL AND NOT ST_IsEmpty(c)
"""

# The analyses' summaries (pixel centres inside; area-weighted over a small polygon).
CENTRE_STATS_SQL = """
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
# around a small polygon become polygons. Only the pixels on the geometry's edge are intersected with it: a
# pixel inside counts whole and one outside not at all, which ST_Covers and ST_Intersects tell from the
# geometry prepared once per geometry (PostGIS caches it while the first argument stays the same). All 2,000
# housing sites of the national demo: 23-24 s -> 14 s, the same figures.
WEIGHTED_SQL = """
SELECT sum(q.a * q.val) / nullif(sum(q.a), 0) AS mean, max(q.val) AS max, min(q.val) AS min,
       count(*) AS pixels, sum(q.a) / 10000.0 AS covered_ha
FROM (
  SELECT (pp).val AS val,
         CASE WHEN ST_Covers({geom}, (pp).geom) THEN ST_Area((pp).geom)
              WHEN NOT ST_Intersects({geom}, (pp).geom) THEN 0
              ELSE ST_Area(ST_Intersection((pp).geom, {geom})) END AS a
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


@dataclass(frozen=True)
class PointValue:
    """The deposition at a point in one year (None where the raster has no data)."""

    year: int
    label: str
    value: float | None


@dataclass(frozen=True)
class ZonalStats:
    """Statistics of the pixels overlapping a geometry in one year (see the module docstring)."""

    year: int
    label: str
    count: int
    min: float | None
    max: float | None
    mean: float | None
    weighted_mean: float | None
    covered_ha: float


async def point_values(conn: psycopg.AsyncConnection, x: float, y: float,
                       year: int | None = None) -> list[PointValue]:
    """The deposition at RD New point (x, y), per year (one year when ``year`` is given)."""
    rows = await fetch(conn, POINT_SQL, {"x": x, "y": y, "year": year})
    return [PointValue(int(r[0]), str(r[1]), None if r[2] is None else float(r[2])) for r in rows]


async def zonal_statistics(conn: psycopg.AsyncConnection, wkb: bytes,
                           year: int | None = None) -> tuple[float, list[ZonalStats]]:
    """(area in ha, statistics per year) of an RD New geometry given as WKB."""
    area = await fetch(conn, AREA_SQL, {"wkb": wkb})
    area_ha = float(area[0][0]) / 10_000 if area and area[0][0] is not None else 0.0
    out = []
    rows = await fetch(conn, ZONAL_SQL, {"wkb": wkb, "year": year})
    for yr, label, count, lo, hi, total, weighted, covered in rows:
        n = int(count or 0)
        covered = float(covered or 0)
        out.append(ZonalStats(
            year=int(yr), label=str(label), count=n,
            min=None if n == 0 or lo is None else float(lo),
            max=None if n == 0 or hi is None else float(hi),
            mean=float(total) / n if n else None,
            weighted_mean=float(weighted) / covered if covered > 0 else None,
            covered_ha=covered / 10_000,
        ))
    return area_ha, out


async def years(conn: psycopg.AsyncConnection) -> list[dict[str, Any]]:
    """The years (or scenarios) of the coverage, with their label, unit, pixel size and source."""
    return [
        {"year": int(r[0]), "label": r[1], "unit": r[2], "pixel_size": r[3], "nodata": r[4], "source": r[5]}
        for r in await fetch(conn, YEARS_SQL)
    ]


async def extent(conn: psycopg.AsyncConnection) -> tuple[float, float, float, float] | None:
    """The RD New extent of all raster tiles, or None when the coverage is empty."""
    found = await fetch(conn, EXTENT_SQL)
    row = found[0] if found else None
    if not row or row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


@dataclass(frozen=True)
class Piece:
    """A piece of raster: upper-left corner, pixel size (``scale_y`` negative) and values (NaN: no data)."""

    ulx: float
    uly: float
    scale_x: float
    scale_y: float
    values: np.ndarray


async def pieces(conn: psycopg.AsyncConnection, bounds: tuple[float, float, float, float], year: int,
                 resolution: float) -> list[Piece]:
    """The raster of ``year`` inside RD New ``bounds``, coarsened to ``resolution`` metres where that is
    much coarser than the stored pixels (so a national view does not read every pixel). Coarse pieces share
    one grid (aligned at 0, 0), so each coarse pixel comes from the tile that holds its centre: no gaps."""
    x0, y0, x1, y1 = bounds
    rows = await fetch(conn, PIECES_SQL, {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "year": year,
                                          "res": resolution})
    return [p for (wkb,) in rows if (p := parse_raster_wkb(bytes(wkb))) is not None]


_PIXTYPES = {3: "i1", 4: "u1", 5: "<i2", 6: "<u2", 7: "<i4", 8: "<u4", 10: "<f4", 11: "<f8"}
_HEADER = struct.Struct("<BHHddddddiHH")


def parse_raster_wkb(data: bytes) -> Piece | None:
    """Band 1 of a PostGIS raster in WKB (little endian, in-db) as a :class:`Piece`."""
    if not data or data[0] != 1:
        raise ValueError("expected a little-endian raster WKB")
    _, _, nbands, sx, sy, ulx, uly, _skx, _sky, _srid, width, height = _HEADER.unpack_from(data, 0)
    if nbands < 1 or width == 0 or height == 0:
        return None
    offset = _HEADER.size
    flags = data[offset]
    offset += 1
    pixtype = flags & 0x0F
    dtype = np.dtype(_PIXTYPES.get(pixtype, "<f8"))
    if pixtype not in _PIXTYPES or flags & 0x80:
        raise ValueError(f"unsupported raster band (pixel type {pixtype}, flags {flags:#x})")
    nodata = np.frombuffer(data, dtype, 1, offset)[0]
    offset += dtype.itemsize
    values = np.frombuffer(data, dtype, width * height, offset).reshape(height, width).astype(np.float64)
    if flags & 0x40:
        values[values == nodata] = np.nan
    if flags & 0x20:  # every pixel is nodata
        values[:] = np.nan
    return Piece(ulx, uly, sx, sy, values)


def sample(pieces_: list[Piece], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Values at RD New points (nearest pixel), NaN where no piece has data."""
    out = np.full(xs.shape, np.nan)
    for p in pieces_:
        cols = np.floor((xs - p.ulx) / p.scale_x).astype(np.int64)
        rows = np.floor((ys - p.uly) / p.scale_y).astype(np.int64)
        h, w = p.values.shape
        inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
        vals = np.full(xs.shape, np.nan)
        vals[inside] = p.values[rows[inside], cols[inside]]
        take = inside & np.isfinite(vals)
        out[take] = vals[take]
    return out


# -- the analyses' summaries -------------------------------------------------------------------------------

async def centre_stats(conn: psycopg.AsyncConnection, wkb: bytes) -> list[dict[str, Any]]:
    """Pixel-centre statistics (count, min, max, mean) inside an RD geometry, one row per year."""
    return await fetch(conn, CENTRE_STATS_SQL, {"wkb": wkb}, rows="dict", timeout=ANALYSIS_TIMEOUT)


async def weighted_stats(conn: psycopg.AsyncConnection, wkb: bytes, year: int) -> dict[str, Any]:
    """Area-weighted mean, max and min over every pixel overlapping a (small) RD geometry in one year."""
    query = "WITH g AS (SELECT ST_GeomFromWKB(%(wkb)s, 28992) AS geom) " + WEIGHTED_SQL.format(
        geom="(SELECT geom FROM g)", year="%(year)s"
    )
    rows = await fetch(conn, query, {"wkb": wkb, "year": year}, rows="dict", timeout=ANALYSIS_TIMEOUT)
    return rows[0]
