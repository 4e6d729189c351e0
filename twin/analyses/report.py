"""The printable area report (gebiedsrapport) of an area context: one self-contained HTML page with a
small map rendered on the server (matplotlib, no tiles, no CDN), the tables and the data sources with
their load dates. Browsers save it as PDF through their print dialog (print CSS for A4)."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

import psycopg
import shapely
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

import numpy as np

from layers.messages import DEFAULT_LANGUAGE, number, text
from layers.registry import ENVIRONMENTAL_CATEGORIES, LAYERS
from twin import coverage
from twin.analyses.common import HEX_YEAR_SQL, fetch
from twin.settings import Settings

MAP_LAYERS_SQL = """
WITH b AS (SELECT ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 28992) AS geom)
SELECT 'municipality' AS kind, m.code AS id,
       ST_AsBinary(ST_SimplifyPreserveTopology(ST_Intersection(ST_Boundary(m.geom), b.geom), %(tol)s)) AS wkb
FROM b JOIN twin.municipalities m ON m.geom && b.geom
UNION ALL
SELECT 'habitat', h.habitat_id,
       ST_AsBinary(ST_SimplifyPreserveTopology(ST_Intersection(h.geom, b.geom), %(tol)s))
FROM b JOIN twin.natura2000_habitats h ON h.geom && b.geom AND ST_Intersects(h.geom, b.geom)
UNION ALL
SELECT 'housing', s.site_id, ST_AsBinary(ST_SimplifyPreserveTopology(ST_Intersection(s.geom, b.geom), %(tol)s))
FROM b JOIN twin.housing_sites s ON s.geom && b.geom AND ST_Intersects(s.geom, b.geom)
"""

SOURCES_SQL = """
SELECT DISTINCT ON (layer) layer, source, status, rows_read, coalesce(finished_at, started_at) AS loaded_at
FROM twin.ingest_runs WHERE status IN ('succeeded', 'unchanged')
ORDER BY layer, coalesce(finished_at, started_at) DESC
"""

REPORT_LAYERS = ("establishments", "permits", "inspections", "natura2000-habitats", "housing-sites",
                 "municipalities", "deposition-hexagons", "nitrogen-deposition")

CATEGORY_COLOURS = dict(zip(
    ENVIRONMENTAL_CATEGORIES,
    ("#fee08b", "#fdae61", "#f98e52", "#f46d43", "#e34a33", "#d73027", "#b2182b", "#a50026", "#800026", "#4d0019"),
    strict=True,
))


HEXAGONS_SQL = """
WITH b AS (SELECT ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 28992) AS geom)
SELECT CASE WHEN h.deposition > h.lowest_kdw THEN 'overloaded'
            WHEN h.deposition > h.lowest_kdw - %(margin)s THEN 'approaching' ELSE 'below' END AS status,
       h.year, ST_AsBinary(h.geom) AS wkb
FROM b JOIN twin.deposition_hexagons h ON h.geom && b.geom
WHERE h.resolution = '1ha' AND h.year = {hex_year} AND h.deposition IS NOT NULL AND h.lowest_kdw IS NOT NULL
LIMIT 40000
""".replace("{hex_year}", HEX_YEAR_SQL)

BUILDINGS_SQL = """
WITH b AS (SELECT ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 28992) AS geom)
SELECT ST_AsBinary(ST_SimplifyPreserveTopology(g.geom, %(tol)s)) AS wkb
FROM b JOIN twin.buildings g ON g.geom && b.geom
LIMIT 30000
"""

OTHER_ESTABLISHMENTS_SQL = """
SELECT ST_X(geom) AS x, ST_Y(geom) AS y, environmental_category
FROM twin.establishments WHERE geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 28992)
LIMIT 5000
"""

SITE_GEOM_SQL = "SELECT ST_AsBinary(geom) AS wkb FROM twin.housing_sites WHERE site_id = %s"

# Buildings are drawn up to this half-width of the map (beyond it they are a grey smear and many).
BUILDINGS_MAX_HALF_M = 2500.0
MAP_PX = 600


async def report_inputs(conn: psycopg.AsyncConnection, result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What the report needs besides the analysis: the map geometries around the circle (municipal boundaries,
    habitats, housing sites, buildings, the deposition hexagons of the current year, the raster, the other
    establishments) and the data sources with their load dates (from ``twin.ingest_runs``)."""
    x, y, r = result["centre"]["x"], result["centre"]["y"], result["radius_m"]
    site_id = result["centre"].get("site_id")
    site_geom = None
    if site_id:
        row = await fetch(conn, SITE_GEOM_SQL, (site_id,))
        if row:
            site_geom = shapely.from_wkb(bytes(row[0]["wkb"]))
    ring = (site_geom if site_geom is not None else Point(x, y)).buffer(r, quad_segs=32)
    bx0, by0, bx1, by1 = ring.bounds
    half = max(bx1 - bx0, by1 - by0) / 2 * 1.25
    cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
    box_ = {"x0": cx - half, "y0": cy - half, "x1": cx + half, "y1": cy + half}
    rows = await fetch(conn, MAP_LAYERS_SQL, {**box_, "tol": half / 400})
    geoms: dict[str, list[tuple[str, BaseGeometry]]] = {"municipality": [], "habitat": [], "housing": []}
    for row in rows:
        if row["wkb"] is not None:
            g = shapely.from_wkb(bytes(row["wkb"]))
            if not g.is_empty:
                geoms[row["kind"]].append((row["id"], g))
    year = result.get("reference_year") or datetime.now(UTC).year
    hexagons = [(h["status"], h["year"], shapely.from_wkb(bytes(h["wkb"])))
                for h in await fetch(conn, HEXAGONS_SQL, {**box_, "year": year,
                                                          "margin": settings.analysis_approach_margin})]
    buildings = []
    if half <= BUILDINGS_MAX_HALF_M:
        buildings = [shapely.from_wkb(bytes(b["wkb"])) for b in await fetch(conn, BUILDINGS_SQL,
                                                                            {**box_, "tol": half / 1000})]
    others = await fetch(conn, OTHER_ESTABLISHMENTS_SQL, box_)
    raster = None
    years = [s["year"] for s in result["deposition"]["in_circle"]] or [p["year"] for p in
                                                                       result["deposition"]["at_point"]]
    if years:
        raster_year = max(years)
        try:
            pieces = await coverage.pieces(conn, (box_["x0"], box_["y0"], box_["x1"], box_["y1"]), raster_year,
                                           max(25.0, 2 * half / 150))
        except (psycopg.Error, ValueError):
            pieces = []
        if pieces:
            n = 150
            xs = np.linspace(box_["x0"], box_["x1"], n)
            ys = np.linspace(box_["y1"], box_["y0"], n)
            gx, gy = np.meshgrid(xs, ys)
            values = coverage.sample(pieces, gx, gy)
            if np.isfinite(values).any():
                raster = {"year": raster_year, "values": values}
    sources = await fetch(conn, SOURCES_SQL)
    return {"geoms": geoms, "extent": (box_["x0"], box_["y0"], box_["x1"], box_["y1"]), "sources": sources,
            "generated_at": datetime.now(UTC), "site_geom": site_geom, "ring": ring, "hexagons": hexagons,
            "buildings": buildings, "others": others, "raster": raster}


def _polys(geoms: list[BaseGeometry]) -> list[Any]:
    """Exterior rings of (multi)polygons as coordinate arrays, for a PolyCollection."""
    out = []
    for g in geoms:
        for p in getattr(g, "geoms", [g]):
            if p.geom_type == "Polygon" and not p.is_empty:
                out.append(np.asarray(p.exterior.coords))
    return out


def _patch(geom: BaseGeometry, **kwargs: Any) -> Any:
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    vertices: list[tuple[float, float]] = []
    codes: list[int] = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            coords = list(ring.coords)
            vertices.extend(coords)
            codes.extend([int(Path.MOVETO)] + [int(Path.LINETO)] * (len(coords) - 2) + [int(Path.CLOSEPOLY)])
    if not vertices:
        return None
    return PathPatch(Path(vertices, codes), **kwargs)


HEX_COLOURS = {"overloaded": "#d7301fcc", "approaching": "#fc8d59b0", "below": "#fee8c880"}


def render_map_png(result: dict[str, Any], extras: dict[str, Any], lang: str = DEFAULT_LANGUAGE) -> bytes:
    """A 600 x 600 px map of the area: the deposition raster, the deposition hexagons of the current year by
    exceedance, buildings, habitats, housing sites (the report's site outlined), municipal boundaries, the circle
    (or the band around the site), establishments by category, the guide distances that reach housing sites,
    a scale bar, a north arrow and a legend. Blocking: call in a thread. No GPU: matplotlib's Agg renderer."""
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    x0, y0, x1, y1 = extras["extent"]
    cx, cy, r = result["centre"]["x"], result["centre"]["y"], result["radius_m"]
    fig = Figure(figsize=(6, 6), dpi=MAP_PX / 6)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.add_patch(_patch(box(x0, y0, x1, y1), facecolor="#f7f7f2", edgecolor="none"))
    legend: list[Any] = []
    raster = extras.get("raster")
    if raster is not None:
        ax.imshow(raster["values"], extent=(x0, x1, y0, y1), cmap="YlOrRd", alpha=0.45, origin="upper",
                  interpolation="nearest", zorder=1)
        legend.append(Patch(facecolor="#fd8d3c", alpha=0.45,
                            label=text(lang, "report.legend.deposition", year=str(raster["year"]))))
    hexes = extras.get("hexagons") or []
    for status, key in (("below", "report.legend.hex_below"), ("approaching", "report.legend.hex_appr"),
                        ("overloaded", "report.legend.hex_over")):
        chosen = [g for s, _, g in hexes if s == status]
        if chosen:
            ax.add_collection(PolyCollection(_polys(chosen), facecolors=HEX_COLOURS[status], edgecolors="none",
                                             zorder=2))
            legend.append(Patch(facecolor=HEX_COLOURS[status],
                                label=text(lang, key, year=str(hexes[0][1]))))
    buildings = extras.get("buildings") or []
    if buildings:
        ax.add_collection(PolyCollection(_polys(buildings), facecolors="#9e9e9e", edgecolors="#6b6b6b",
                                         linewidths=0.2, zorder=3))
        legend.append(Patch(facecolor="#9e9e9e", edgecolor="#6b6b6b", label=text(lang, "report.legend.building")))
    if extras["geoms"]["habitat"]:
        ax.add_collection(PolyCollection(_polys([g for _, g in extras["geoms"]["habitat"]]), facecolors="#1a985033",
                                         edgecolors="#006837", linewidths=0.8, zorder=4))
        legend.append(Patch(facecolor="#1a985033", edgecolor="#006837", label=text(lang, "report.legend.habitat")))
    if extras["geoms"]["housing"]:
        ax.add_collection(PolyCollection(_polys([g for _, g in extras["geoms"]["housing"]]), facecolors="#fdae6199",
                                         edgecolors="#b35806", linewidths=1.0, zorder=5))
        legend.append(Patch(facecolor="#fdae6199", edgecolor="#b35806", label=text(lang, "report.legend.housing")))
    site = extras.get("site_geom")
    if site is not None:
        p = _patch(site, facecolor="none", edgecolor="#542788", linewidth=2.5, zorder=9)
        if p is not None:
            ax.add_patch(p)
        legend.append(Line2D([], [], color="#542788", linewidth=2.5, label=text(lang, "report.legend.site")))
    municipal = False
    for _, g in extras["geoms"]["municipality"]:
        for line in getattr(g, "geoms", [g]):
            if line.geom_type == "LineString":
                xs, ys = line.xy
                ax.plot(xs, ys, color="#555555", linewidth=1.2, linestyle="-.", zorder=6)
                municipal = True
    if municipal:
        legend.append(Line2D([], [], color="#555555", linestyle="-.", label=text(lang, "report.legend.municipality")))
    ring = extras.get("ring") or Point(cx, cy).buffer(r, quad_segs=32)
    ax.add_patch(_patch(ring, facecolor="none", edgecolor="#2166ac", linewidth=1.5, linestyle="--", zorder=7))
    legend.append(Line2D([], [], color="#2166ac", linestyle="--", label=text(
        lang, "report.legend.buffer" if site is not None else "report.legend.circle", radius=number(r, lang))))
    for o in extras.get("others") or []:
        ax.plot(o["x"], o["y"], marker="o", markersize=3, color="#bbbbbb", markeredgecolor="#777777",
                markeredgewidth=0.4, zorder=8)
    near_housing = {e["establishment_id"] for s in result["housing_within_guide_distance"] for e in s["establishments"]}
    guide_drawn = False
    for e in result["establishments"]:
        colour = CATEGORY_COLOURS.get(e["environmental_category"] or "", "#999999")
        ax.plot(e["x"], e["y"], marker="o", markersize=7, color=colour, markeredgecolor="#222222", zorder=10)
        if e["establishment_id"] in near_housing and e["guide_distance_m"]:
            g = Point(e["x"], e["y"]).buffer(e["guide_distance_m"], quad_segs=32)
            ax.add_patch(_patch(g, facecolor="none", edgecolor="#b2182b", linewidth=1.0, linestyle=":", zorder=9))
            guide_drawn = True
    if result["establishments"]:
        legend.append(Line2D([], [], marker="o", color="#f46d43", markeredgecolor="#222222", linestyle="none",
                             label=text(lang, "report.legend.establishment")))
    if guide_drawn:
        legend.append(Line2D([], [], color="#b2182b", linestyle=":", label=text(lang, "report.legend.guide")))
    if site is None:
        ax.plot(cx, cy, marker="+", markersize=14, color="#000000", markeredgewidth=2, zorder=11)
        legend.insert(0, Line2D([], [], marker="+", color="#000000", linestyle="none", markersize=10,
                                label=text(lang, "report.legend.centre")))
    # Scale bar: a round length of about a quarter of the map width, in two halves.
    width = x1 - x0
    nice = max(v for v in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000) if v <= width / 4)
    sx, sy = x0 + width * 0.04, y0 + width * 0.04
    ax.add_patch(_patch(box(sx - width * 0.015, sy - width * 0.015, sx + nice + width * 0.015, sy + width * 0.05),
                        facecolor="#ffffffd9", edgecolor="none", zorder=12))
    ax.plot([sx, sx + nice / 2], [sy, sy], color="#000000", linewidth=4, solid_capstyle="butt", zorder=13)
    ax.plot([sx + nice / 2, sx + nice], [sy, sy], color="#ffffff", linewidth=4, solid_capstyle="butt", zorder=13)
    ax.plot([sx, sx + nice], [sy, sy], color="#000000", linewidth=0.6, zorder=14)
    label = f"{number(nice / 1000, lang, 1 if nice % 1000 else 0)} km" if nice >= 1000 else f"{nice} m"
    ax.text(sx + nice / 2, sy + width * 0.012, label, ha="center", va="bottom", fontsize=9, zorder=14)
    # North arrow (RD New's grid north; within a degree of true north in the Netherlands).
    nx, ny = x1 - width * 0.06, y1 - width * 0.16
    ax.annotate("", xy=(nx, ny + width * 0.09), xytext=(nx, ny),
                arrowprops={"arrowstyle": "-|>,head_width=0.5,head_length=0.9", "color": "#000000", "lw": 2},
                zorder=14)
    ax.text(nx, ny + width * 0.1, text(lang, "report.north"), ha="center", va="bottom", fontsize=12,
            fontweight="bold", zorder=14)
    ax.legend(handles=legend, loc="upper left", fontsize=6.5, framealpha=0.88)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def source_name(source: str | None) -> str | None:
    """A delivery's name as a report shows it: the file name without the server's directories (a path on the
    server is an internal detail, docs/privacy.md)."""
    if not source:
        return source
    return PurePath(source.rstrip("/\\")).name.rsplit("\\", 1)[-1] or source


def public_rows(layer: str, source: dict[str, Any] | None) -> int | None:
    """Rows read of a delivery, for public layers only: the size of a restricted register (the inspections)
    is not published."""
    if source is None:
        return None
    spec = LAYERS.get(layer)
    return source["rows_read"] if spec is not None and spec.access == "public" else None


