"""The printable area report (gebiedsrapport) of an area context: one self-contained HTML page with a
small map rendered on the server (matplotlib, no tiles, no CDN), the tables and the data sources with
their load dates. Browsers save it as PDF through their print dialog (print CSS for A4)."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, date, datetime
from pathlib import PurePath
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from layers.messages import DEFAULT_LANGUAGE, catalogue, number, text, unit
from layers.registry import ENVIRONMENTAL_CATEGORIES, LAYERS
from twin import coverage, history
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
# The same as the twin knew it at beschikbaarOp (docs/history.md): the latest load finished by then.
SOURCES_AS_OF_SQL = """
SELECT DISTINCT ON (layer) layer, source, status, rows_read, coalesce(finished_at, started_at) AS loaded_at
FROM twin.ingest_runs WHERE status IN ('succeeded', 'unchanged') AND coalesce(finished_at, started_at) <= %(known)s
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


def result_as_of(result: dict[str, Any]) -> history.AsOf | None:
    """The as-of of an analysis answer (its ``history``: geldigOp / beschikbaarOp, None: today / now), so that
    the report's map and sources read the state the analysis read."""
    dates = result.get("history") or {}
    valid, known = dates.get(history.VALID_PARAM), dates.get(history.KNOWN_PARAM)
    if valid is None and known is None:
        return None
    return history.AsOf(history.parse_valid(valid) if valid else None,
                        history.parse_known(known) if known else None)


async def report_inputs(conn: psycopg.AsyncConnection, result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What the report needs besides the analysis: the map geometries around the circle (municipal boundaries,
    habitats, housing sites, buildings, the deposition hexagons of the current year, the raster, the other
    establishments) and the data sources with their load dates (from ``twin.ingest_runs``), all as of the
    analysis's geldigOp / beschikbaarOp (the register layers' versions then, the loads finished by then)."""
    when = result_as_of(result)
    async with history.as_of(conn, when):
        return await _report_inputs(conn, result, settings, when)


async def _report_inputs(conn: psycopg.AsyncConnection, result: dict[str, Any], settings: Settings,
                         when: history.AsOf | None) -> dict[str, Any]:
    x, y, r = result["centre"]["x"], result["centre"]["y"], result["radius_m"]
    site_id = result["centre"].get("site_id")
    site_geom = None
    if site_id:
        found = await fetch(conn, SITE_GEOM_SQL, (site_id,))
        if found:
            site_geom = shapely.from_wkb(bytes(found[0]["wkb"]))
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
    sources = await report_sources(conn, when)
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


LAYER_NAME_ALIASES = {"nitrogen-deposition": "deposition-raster"}  # the raster coverage, named as on the map


def layer_name(layer: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A layer's name as the map shows it (``layer.<id>`` in the catalogue); the id when it has none."""
    messages = catalogue(lang)
    for key in (f"layer.{layer}", f"layer.{LAYER_NAME_ALIASES.get(layer, layer)}"):
        if key in messages:
            return text(lang, key)
    return layer


def public_rows(layer: str, source: dict[str, Any] | None) -> int | None:
    """Rows read of a delivery, for public layers only: the size of a restricted register (the inspections)
    is not published."""
    if source is None:
        return None
    spec = LAYERS.get(layer)
    return source["rows_read"] if spec is not None and spec.access == "public" else None


def _e(value: Any, lang: str = DEFAULT_LANGUAGE) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return html.escape(text(lang, "value.yes" if value else "value.no"))
    if isinstance(value, float):
        return number(value, lang, 0 if value.is_integer() else 1)
    if isinstance(value, int):
        return number(value, lang, 0)
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], empty: str, lang: str = DEFAULT_LANGUAGE) -> str:
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v, lang)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def long_date(value: date | datetime | str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """'7 december 2026' / '7 December 2026' (a time is added for a datetime)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return str(value)
    months = text(lang, "report.months").split(",")
    out = f"{value.day} {months[value.month - 1]} {value.year}"
    if isinstance(value, datetime):
        out += f" {value:%H:%M} UTC"
    return out


# The print layout (A4) of the reports. Served in a <style> carrying the request's CSP nonce, so that a saved
# copy of the page stays styled; the print button is wired by /static/report.js (no inline handler).
CSS = """
:root { color-scheme: light; }
body { font-family: "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans", sans-serif;
       font-size: 10.5pt; line-height: 1.4; color: #111; background: #fff; max-width: 190mm; margin: 1em auto;
       padding: 0 1em; }
h1 { font-size: 16pt; margin: 0.2em 0; line-height: 1.2; } h2 { font-size: 12.5pt; margin-top: 1.2em;
     border-bottom: 1px solid #999; } h3 { font-size: 11pt; }
.meta { color: #333; font-size: 9.5pt; } .empty { color: #555; font-style: italic; }
.verdict { border-left: 6px solid #888; padding: 0.3em 0.8em; background: #f4f4f4; }
.verdict-conflict { border-color: #b2182b; } .verdict-attention { border-color: #e08214; }
.verdict-no-constraint { border-color: #1a9850; }
table { border-collapse: collapse; width: 100%; font-size: 8.5pt; margin: 0.3em 0; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; }
th { background: #eee; } tr { break-inside: avoid; page-break-inside: avoid; }
thead { display: table-header-group; }
figure { margin: 0.5em 0; } img.map { width: 130mm; height: 130mm; border: 1px solid #999; display: block; }
.note, footer { font-size: 8.5pt; color: #333; }
footer { margin-top: 1.5em; border-top: 1px solid #999; }
.toolbar { display: flex; gap: 1em; align-items: center; margin-bottom: 0.5em; }
.toolbar button { font: inherit; font-size: 11pt; padding: 0.35em 1em; cursor: pointer; }
a { color: #0b4f8a; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  .noprint { display: none !important; }
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, img.map { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _aerius_lines(block: dict[str, Any] | None, lang: str) -> str:
    """One line per loaded AERIUS situation near the circle: the project's contribution next to the background."""
    if not block:
        return ""
    lines = []
    for i in block["items"]:
        what = (f"{i['situation']} minus reference {i['reference']}" if i["basis"] == "PROPOSED - REFERENCE"
                else f"{i['situation_type']} {i['situation']} (as given)")
        bg = (f"; background {i['background_mean']} mean ({i['background_year']}), {i['background_at_max']} at that "
              "receptor" if i["background_mean"] is not None else "; no background hexagons")
        lines.append(f"<li>{i['year']}, {html.escape(what)}: max {i['max']} (receptor {i['max_receptor_id']}), "
                     f"mean {i['mean']} on {i['receptors']} receptors within {number(block['radius_m'], lang)} m"
                     f"{html.escape(bg)} ({html.escape(block['unit'])}; "
                     f"AERIUS {html.escape(str(i['aerius_version']))})</li>")
    return f"<h3>{html.escape(text(lang, 'report.aerius'))}</h3>\n<ul>" + "".join(lines) + "</ul>"


def reader_line(role: str, org_code: str | None, lang: str) -> str:
    """'Prepared for: inspector, organisation ODX.'"""
    org = text(lang, "role.org", org=org_code) if org_code else ""
    return text(lang, "report.reader", role=text(lang, f"role.{role}"), org=org)


def scope_text(role: str, org_code: str | None, lang: str) -> str:
    """The inspection data a reader sees, in words (``Disclosure.scope`` in the report's language)."""
    if role == "inspector":
        return text(lang, "scope.inspector", org=org_code) if org_code else text(lang, "scope.none")
    return text(lang, f"scope.{role}") if role in ("admin", "advisor") else text(lang, "scope.none")


def _shell(title: str, body: str, lang: str, nonce: str | None, script_url: str | None, map_url: str) -> str:
    """The page around a report: the styles (with the CSP nonce), the print button (wired by ``script_url``)."""
    nonce_attr = f' nonce="{html.escape(nonce)}"' if nonce else ""
    script = f'<script src="{html.escape(script_url)}" defer></script>' if script_url else ""
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<style{nonce_attr}>{CSS}</style>{script}</head>
<body>
<div class="toolbar noprint"><button type="button" id="print-report">{html.escape(text(lang, "report.print"))}</button>
<a href="{html.escape(map_url)}">{html.escape(text(lang, "report.back"))}</a></div>
<main>
<h1>{html.escape(title)}</h1>
{body}
</main>
</body></html>
"""


async def report_sources(conn: psycopg.AsyncConnection, when: history.AsOf | None) -> list[dict[str, Any]]:
    """The latest load per layer, as known at ``when.known_on`` (all loads: now)."""
    if when is None or when.known_on is None:
        return await fetch(conn, SOURCES_SQL)
    return await fetch(conn, SOURCES_AS_OF_SQL, {"known": when.known_on})


def history_line(result: dict[str, Any], lang: str) -> str:
    """Both dates of the state a report shows (docs/history.md): valid on (geldigOp, default today) and as
    registered at (beschikbaarOp, default now)."""
    when = result_as_of(result)
    valid = long_date(when.valid_on, lang) if when and when.valid_on else text(lang, "report.today")
    known = long_date(when.known_on.astimezone(UTC), lang) if when and when.known_on else text(lang, "report.now")
    return text(lang, "report.state", valid=valid, known=known)


def _sources_footer(extras: dict[str, Any], as_of: str, lang: str) -> str:
    sources = {s["layer"]: s for s in extras["sources"]}
    src_rows = []
    for layer in REPORT_LAYERS:
        s = sources.get(layer)
        src_rows.append([layer_name(layer, lang), source_name(s["source"]) if s else text(lang, "report.no_load"),
                         long_date(s["loaded_at"], lang) if s else None, public_rows(layer, s)])
    for layer, s in sorted(sources.items()):
        if layer not in REPORT_LAYERS:
            src_rows.append([layer_name(layer, lang), source_name(s["source"]), long_date(s["loaded_at"], lang),
                             public_rows(layer, s)])
    t = lambda key, **kw: html.escape(text(lang, key, **kw))  # noqa: E731
    return f"""<footer>
<h2>{t("report.sources")}</h2>
{_table([text(lang, "report.col.layer"), text(lang, "report.col.source"), text(lang, "report.col.loaded"),
         text(lang, "report.col.rows")], src_rows, text(lang, "report.no_loads"), lang)}
<p class="note">{t("report.rules")}</p>
<p>{t("report.footer", as_of=long_date(as_of, lang), generated=long_date(extras["generated_at"], lang))}</p>
</footer>"""


def criteria_table(props: dict[str, Any], lang: str) -> str:
    """The criteria of a housing verdict: value, threshold, source, triggered, effect."""
    rows = []
    for c in props.get("criteria") or []:
        value = c["value"]
        shown = (f"{number(value, lang)} {unit(lang, c['unit'])}" if value is not None else c.get("none_text"))
        rows.append([c["label"], c.get("subject"), shown, c["threshold_text"], c["triggered"],
                     text(lang, f"verdict.{c['effect']}") if c["effect"] else None, c["source"]])
    heads = [text(lang, f"criteria.{k}") for k in ("criterion", "subject", "value", "threshold", "triggered",
                                                      "effect", "source")]
    return _table(heads, rows, "–", lang)


def verdict_block(props: dict[str, Any], settings_params: dict[str, Any] | None, lang: str) -> str:
    """The indicative verdict of a site: the verdict and what drives it, the reasons, the criteria and thresholds."""
    t = lambda key, **kw: html.escape(text(lang, key, **kw))  # noqa: E731
    drivers = ", ".join(text(lang, f"driver.{d}") for d in props.get("drivers") or [])
    head = t("housing.indicative", verdict=text(lang, f"verdict.{props['verdict']}"))
    if drivers:
        head += " · " + t("housing.driven_by", drivers=drivers)
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in props.get("reasons") or [])
    thresholds = ""
    if settings_params:
        thresholds = "<p class=\"note\">" + t(
            "housing.thresholds", near=number(settings_params["conflict_habitat_distance_m"], lang),
            margin=number(settings_params["approach_margin"], lang),
            radius=number(settings_params["habitat_radius_m"], lang)) + "</p>"
    return (f'<div class="verdict verdict-{props["verdict"].replace(" ", "-")}"><p><strong>{head}</strong></p>'
            f"<ul>{reasons}</ul></div>\n<h3>{t('criteria.heading')}</h3>\n{criteria_table(props, lang)}\n"
            f"{thresholds}<p class=\"note\">{t('housing.indicative_note')}</p>")


def report_title(result: dict[str, Any], lang: str) -> str:
    """The title: the establishment's name and address as far as the reader may see them, the housing site
    and its verdict, or the municipality of the point."""
    subject = result.get("subject")
    site = result.get("housing_site")
    if subject is not None:
        if subject.get("name"):
            address = " ".join(str(p) for p in (subject.get("street"), subject.get("house_number")) if p)
            place = " ".join(str(p) for p in (subject.get("postcode"), subject.get("city")) if p)
            what = ", ".join(p for p in (subject["name"], address, place) if p)
        else:
            place = " ".join(str(p) for p in (subject.get("postcode"), subject.get("city")) if p)
            what = text(lang, "report.establishment_withheld", id=subject["establishment_id"]) + (
                f", {place}" if place else "")
        return text(lang, "report.title", what=what)
    if site is not None:
        what = text(lang, "report.site", name=f"{site['name'] or site['site_id']} ({site['site_id']})")
        what += " – " + text(lang, "housing.indicative", verdict=text(lang, f"verdict.{site['verdict']}"))
        return text(lang, "report.title", what=what)
    muni = result["municipality"]
    where = f"{muni['name']} ({muni['code']})" if muni else text(lang, "report.outside")
    return text(lang, "report.title_point", where=where)


def render_context_report(result: dict[str, Any], extras: dict[str, Any], lang: str = DEFAULT_LANGUAGE, *,
                          nonce: str | None = None, script_url: str | None = None, map_url: str = "/",
                          reader: tuple[str, str | None] = ("anonymous", None),
                          housing_parameters: dict[str, Any] | None = None) -> str:
    """The gebiedsrapport as one HTML page (the map inline as PNG), in ``lang``. Blocking: call in a thread."""
    png = base64.b64encode(render_map_png(result, extras, lang)).decode("ascii")
    t = lambda key, **kw: html.escape(text(lang, key, **kw))  # noqa: E731
    c = result["centre"]
    title = report_title(result, lang)
    withheld = text(lang, "report.withheld")
    est_rows = []
    for e in result["establishments"]:
        last = e["last_inspection"]
        permits = ", ".join(f"{p['permit_id']} ({p['permit_type']})" for p in e["active_permits"]) or None
        est_rows.append([
            e["establishment_id"], e["name"] if e["name"] is not None else withheld, e["distance_m"],
            f"{e['sbi_code']} {e['sbi_description'] or ''}".strip(), e["environmental_category"],
            e["guide_distance_m"],
            (f"{long_date(last['date'], lang)}: {last['result']}" if last
             else (withheld if not e["inspections_visible"] else None)),
            last["lhs_cell"] if last else None,
            e["open_violations"] if e["inspections_visible"] else withheld, permits,
        ])
    dep = result["deposition"]
    at_point = {p["year"]: p for p in dep["at_point"]}
    dep_rows = [
        [s["label"], (at_point.get(s["year"]) or {}).get("value"), s["pixels"], s["min"], s["mean"], s["max"]]
        for s in dep["in_circle"]
    ]
    hab_rows = [
        [h["area_name"], h["habitat_type"], h["kdw"], h["distance_m"], str(h["year"]) if h["year"] else None,
         h["deposition_max"], h["exceedance"], text(lang, f"report.status.{h['status']}") if h["status"] else None,
         h["source"]]
        for h in result["habitats"]
    ]
    housing_rows = [
        [s["site_id"], s["name"], s["planned_dwellings"], e["name"] or e["establishment_id"],
         e["environmental_category"], e["guide_distance_m"], e["distance_m"], text(lang, f"verdict.{e['severity']}")]
        for s in result["housing_within_guide_distance"] for e in s["establishments"]
    ]
    munis = ", ".join(f"{m['name']} ({m['code']})" for m in result["municipalities_in_circle"]) or text(
        lang, "report.none")
    if result.get("measured_from") == "site":
        meta = t("report.meta_site", radius=number(result["radius_m"], lang),
                 habitat_radius=number(result["habitat_radius_m"], lang), as_of=long_date(result["as_of"], lang),
                 municipalities=munis)
    else:
        meta = t("report.meta", lat=f"{c['lat']:.6f}", lon=f"{c['lon']:.6f}", x=number(c["x"], lang),
                 y=number(c["y"], lang), radius=number(result["radius_m"], lang),
                 as_of=long_date(result["as_of"], lang), municipalities=munis)
    parts = [f'<p class="meta">{meta} {html.escape(reader_line(*reader, lang))} '
             f"{t('report.scope', scope=scope_text(*reader, lang))}</p>",
             f'<p class="meta state">{html.escape(history_line(result, lang))}</p>']
    site = result.get("housing_site")
    if site is not None:
        parts.append(f"<h2>{t('report.verdict')}</h2>\n{verdict_block(site, housing_parameters, lang)}")
    parts.append(f'<h2>{t("report.map")}</h2>\n<figure><img class="map" alt="{t("report.map_alt", what=title)}" '
                 f'src="data:image/png;base64,{png}"></figure>')
    subject = result.get("subject")
    if subject is not None:
        history = subject.get("inspections")
        if history is None:
            parts.append(f"<h2>{t('report.history', n='–')}</h2>\n"
                         f"<p class=\"empty\">{t('report.history_withheld')}</p>")
        else:
            rows = [[long_date(h["inspected_on"], lang), h["kind"], h["result"], h["lhs_cell"], h["violation"],
                     h["intervention"], h["follow_up_status"]] for h in history]
            heads = [text(lang, f"report.col.{k}") for k in ("date", "kind", "result", "lhs", "violation",
                                                               "intervention", "follow_up")]
            parts.append(f"<h2>{t('report.history', n=str(len(history)))}</h2>\n"
                         f"{_table(heads, rows, text(lang, 'report.history_none'), lang)}")
    est_heading = (t("report.establishments_site", radius=number(result["radius_m"], lang),
                     n=str(len(result["establishments"]))) if result.get("measured_from") == "site"
                   else t("report.establishments", n=str(len(result["establishments"]))))
    col = lambda *keys: [text(lang, f"report.col.{k}") for k in keys]  # noqa: E731
    parts.append(f"<h2>{est_heading}</h2>\n" + _table(
        col("id", "name", "distance", "sbi", "category", "guide", "last", "lhs", "open", "permits"), est_rows,
        text(lang, "report.no_establishments"), lang))
    parts.append(f"<h2>{t('report.deposition', unit=unit(lang, dep['unit']) or dep['unit'])}</h2>\n" + _table(
        col("year", "at_centre", "pixels", "min", "mean", "max"), dep_rows, text(lang, "report.no_deposition"), lang))
    parts.append(_aerius_lines(result.get("aerius"), lang))
    parts.append(f"<h2>{t('report.habitats', radius=number(result.get('habitat_radius_m', 3000), lang))}</h2>\n"
                 + _table(col("area", "habitat_type", "kdw", "distance", "year", "max_deposition", "exceedance",
                              "status", "source"), hab_rows, text(lang, "report.no_habitats"), lang))
    parts.append(f"<h2>{t('report.housing')}</h2>\n" + _table(
        col("site", "name", "dwellings", "establishment", "category", "guide", "distance", "severity"), housing_rows,
        text(lang, "report.no_housing"), lang))
    parts.append(_sources_footer(extras, result["as_of"], lang))
    return _shell(title, "\n".join(p for p in parts if p), lang, nonce, script_url, map_url)


def render_housing_report(result: dict[str, Any], extras: dict[str, Any], lang: str = DEFAULT_LANGUAGE, *,
                          nonce: str | None = None, script_url: str | None = None, map_url: str = "/",
                          reader: tuple[str, str | None] = ("anonymous", None)) -> str:
    """The printable verdicts of the housing analysis (``f=html``): per site its indicative verdict, drivers,
    reasons and criteria, in the same print layout as the gebiedsrapport."""
    t = lambda key, **kw: html.escape(text(lang, key, **kw))  # noqa: E731
    features = result["features"]
    dwellings = sum(int(f["properties"].get("planned_dwellings") or 0) for f in features)
    muni = result.get("municipality")
    verdicts = ", ".join(text(lang, f"verdict.{v}") for v in result.get("verdict_filter") or []) or text(
        lang, "housing.report_all")
    where = f"{muni['name']} ({muni['code']})" if muni else text(lang, "housing.filter_all")
    scope = t("housing.report_scope", sites=len(features), dwellings=dwellings, municipality=where, verdicts=verdicts,
              year=str(result["reference_year"]))
    parts = [f'<p class="meta">{scope} {html.escape(reader_line(*reader, lang))}</p>',
             f'<p class="meta state">{html.escape(history_line(result, lang))}</p>',
             f'<p class="note">{t("housing.indicative_note")}</p>']
    p = result["parameters"]
    parts.append('<p class="note">' + t("housing.thresholds", near=number(p["conflict_habitat_distance_m"], lang),
                                         margin=number(p["approach_margin"], lang),
                                         radius=number(p["habitat_radius_m"], lang)) + "</p>")
    for f in features:
        props = f["properties"]
        munis = ", ".join(f"{m['name']} ({m['code']})" for m in props.get("municipalities") or []) or props.get(
            "municipality_code") or ""
        name = html.escape(f"{props['name'] or props['site_id']} ({props['site_id']})")
        homes = t("housing.dwellings", n=props["planned_dwellings"] or 0)
        parts.append(f'<section><h2>{name}</h2><p class="meta">{html.escape(munis)} · {homes}</p>'
                     f"{verdict_block(props, None, lang)}</section>")
    if not features:
        parts.append(f'<p class="empty">{t("housing.filter_none")}</p>')
    parts.append(_sources_footer(extras, str(result.get("as_of") or ""), lang))
    return _shell(text(lang, "housing.report_title"), "\n".join(parts), lang, nonce, script_url, map_url)
