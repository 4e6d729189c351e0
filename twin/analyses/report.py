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

from layers.registry import ENVIRONMENTAL_CATEGORIES, LAYERS
from twin.analyses.common import fetch
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


async def report_inputs(conn: psycopg.AsyncConnection, result: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What the report needs besides the analysis: the map geometries around the circle and the data
    sources with their load dates (from ``twin.ingest_runs``)."""
    x, y, r = result["centre"]["x"], result["centre"]["y"], result["radius_m"]
    half = r * 1.25
    rows = await fetch(conn, MAP_LAYERS_SQL, {"x0": x - half, "y0": y - half, "x1": x + half, "y1": y + half,
                                              "tol": half / 400})
    geoms: dict[str, list[tuple[str, BaseGeometry]]] = {"municipality": [], "habitat": [], "housing": []}
    for row in rows:
        if row["wkb"] is not None:
            g = shapely.from_wkb(bytes(row["wkb"]))
            if not g.is_empty:
                geoms[row["kind"]].append((row["id"], g))
    sources = await fetch(conn, SOURCES_SQL)
    return {"geoms": geoms, "extent": (x - half, y - half, x + half, y + half), "sources": sources,
            "generated_at": datetime.now(UTC)}


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


def render_map_png(result: dict[str, Any], extras: dict[str, Any]) -> bytes:
    """A 600 x 600 px map of the circle: municipal boundaries, habitats, housing sites, establishments by
    category, the guide distances that reach housing sites, a scale bar. Blocking: call in a thread."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    x0, y0, x1, y1 = extras["extent"]
    cx, cy, r = result["centre"]["x"], result["centre"]["y"], result["radius_m"]
    fig = Figure(figsize=(6, 6), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.add_patch(_patch(box(x0, y0, x1, y1), facecolor="#f7f7f2", edgecolor="none"))
    for _, g in extras["geoms"]["habitat"]:
        p = _patch(g, facecolor="#1a985066", edgecolor="#006837", linewidth=0.8)
        if p is not None:
            ax.add_patch(p)
    for _, g in extras["geoms"]["housing"]:
        p = _patch(g, facecolor="#fdae61aa", edgecolor="#b35806", linewidth=1.0)
        if p is not None:
            ax.add_patch(p)
    for _, g in extras["geoms"]["municipality"]:
        for line in getattr(g, "geoms", [g]):
            if line.geom_type == "LineString":
                xs, ys = line.xy
                ax.plot(xs, ys, color="#555555", linewidth=1.2, linestyle="-.")
    circle = Point(cx, cy).buffer(r, quad_segs=32)
    ax.add_patch(_patch(circle, facecolor="none", edgecolor="#2166ac", linewidth=1.5, linestyle="--"))
    near_housing = {e["establishment_id"] for s in result["housing_within_guide_distance"] for e in s["establishments"]}
    for e in result["establishments"]:
        colour = CATEGORY_COLOURS.get(e["environmental_category"] or "", "#999999")
        ax.plot(e["x"], e["y"], marker="o", markersize=7, color=colour, markeredgecolor="#222222")
        if e["establishment_id"] in near_housing and e["guide_distance_m"]:
            ring = Point(e["x"], e["y"]).buffer(e["guide_distance_m"], quad_segs=32)
            ax.add_patch(_patch(ring, facecolor="none", edgecolor="#b2182b", linewidth=1.0, linestyle=":"))
    ax.plot(cx, cy, marker="+", markersize=14, color="#000000", markeredgewidth=2)
    # Scale bar: a round length of about a quarter of the map width.
    width = x1 - x0
    nice = max(v for v in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000) if v <= width / 4)
    sx, sy = x0 + width * 0.05, y0 + width * 0.05
    ax.plot([sx, sx + nice], [sy, sy], color="#000000", linewidth=3)
    ax.text(sx + nice / 2, sy + width * 0.015, f"{nice:,} m", ha="center", va="bottom", fontsize=9)
    ax.text(x1 - width * 0.05, y1 - width * 0.06, "N\u2191", ha="center", fontsize=12, fontweight="bold")
    legend = [
        Line2D([], [], marker="+", color="#000000", linestyle="none", markersize=10, label="centre"),
        Line2D([], [], color="#2166ac", linestyle="--", label=f"circle, {r:,.0f} m"),
        Line2D([], [], marker="o", color="#f46d43", markeredgecolor="#222222", linestyle="none",
               label="establishment (colour: category)"),
        Line2D([], [], color="#b2182b", linestyle=":", label="guide distance reaching housing"),
        Line2D([], [], color="#006837", linewidth=6, alpha=0.5, label="Natura 2000 habitat"),
        Line2D([], [], color="#fdae61", linewidth=6, label="planned housing site"),
        Line2D([], [], color="#555555", linestyle="-.", label="municipal boundary"),
    ]
    ax.legend(handles=legend, loc="upper left", fontsize=7, framealpha=0.85)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _e(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 11pt; color: #111;
       max-width: 190mm; margin: 1em auto; padding: 0 1em; }
h1 { font-size: 16pt; margin-bottom: 0.2em; } h2 { font-size: 12.5pt; margin-top: 1.2em;
     border-bottom: 1px solid #999; }
.meta { color: #444; font-size: 9.5pt; } .empty { color: #666; font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 0.3em 0; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; }
th { background: #eee; } tr { page-break-inside: avoid; }
img.map { width: 120mm; height: 120mm; border: 1px solid #999; display: block; }
.note { font-size: 8.5pt; color: #333; }
button { font-size: 11pt; padding: 0.3em 1em; }
@page { size: A4; margin: 14mm; }
@media print { .noprint { display: none; } body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } }
"""


def _aerius_lines(block: dict[str, Any] | None) -> str:
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
                     f"mean {i['mean']} on {i['receptors']} receptors within {block['radius_m']:,.0f} m"
                     f"{html.escape(bg)} ({html.escape(block['unit'])}; "
                     f"AERIUS {html.escape(str(i['aerius_version']))})</li>")
    return "<h3>AERIUS project contribution</h3>\n<ul>" + "".join(lines) + "</ul>"


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


def render_context_report(result: dict[str, Any], extras: dict[str, Any]) -> str:
    """The gebiedsrapport as one HTML page (the map inline as PNG). Blocking: call in a thread."""
    png = base64.b64encode(render_map_png(result, extras)).decode("ascii")
    c = result["centre"]
    muni = result["municipality"]
    where = f"{muni['name']} ({muni['code']})" if muni else "outside any municipality in the twin"
    title = f"Gebiedsrapport: {where}"
    if c.get("establishment_id"):
        title += f", establishment {c['establishment_id']}"

    est_rows = []
    for e in result["establishments"]:
        last = e["last_inspection"]
        permits = ", ".join(f"{p['permit_id']} ({p['permit_type']})" for p in e["active_permits"]) or None
        est_rows.append([
            e["establishment_id"], e["name"] if e["name"] is not None else "(withheld)", e["distance_m"],
            f"{e['sbi_code']} {e['sbi_description'] or ''}".strip(), e["environmental_category"],
            e["guide_distance_m"],
            (f"{last['date']}: {last['result']}" if last else ("(withheld)" if not e["inspections_visible"] else None)),
            last["lhs_cell"] if last else None,
            e["open_violations"] if e["inspections_visible"] else "(withheld)", permits,
        ])
    dep = result["deposition"]
    at_point = {p["year"]: p for p in dep["at_point"]}
    dep_rows = [
        [s["label"], (at_point.get(s["year"]) or {}).get("value"), s["pixels"], s["min"], s["mean"], s["max"]]
        for s in dep["in_circle"]
    ]
    hab_rows = [
        [h["area_name"], h["habitat_type"], h["kdw"], h["distance_m"], h["year"], h["deposition_max"],
         h["exceedance"], h["status"], h["source"]]
        for h in result["habitats"]
    ]
    housing_rows = [
        [s["site_id"], s["name"], s["planned_dwellings"], e["establishment_id"], e["environmental_category"],
         e["guide_distance_m"], e["distance_m"], e["severity"]]
        for s in result["housing_within_guide_distance"] for e in s["establishments"]
    ]
    sources = {s["layer"]: s for s in extras["sources"]}
    src_rows = []
    for layer in REPORT_LAYERS:
        s = sources.get(layer)
        src_rows.append([layer, source_name(s["source"]) if s else "no load recorded",
                         s["loaded_at"].strftime("%Y-%m-%d %H:%M") if s else None, public_rows(layer, s)])
    for layer, s in sorted(sources.items()):
        if layer not in REPORT_LAYERS:
            src_rows.append([layer, source_name(s["source"]), s["loaded_at"].strftime("%Y-%m-%d %H:%M"),
                             public_rows(layer, s)])
    munis = ", ".join(f"{m['name']} ({m['code']})" for m in result["municipalities_in_circle"]) or "none"

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<p class="noprint"><button onclick="window.print()">Print / save as PDF</button></p>
<h1>{html.escape(title)}</h1>
<p class="meta">Centre {c['lon']:.6f}, {c['lat']:.6f} (WGS84) = RD {c['x']:,.0f}, {c['y']:,.0f};
radius {result['radius_m']:,.0f} m; reference date {html.escape(result['as_of'])}; municipalities in the circle:
{html.escape(munis)}. Generated {extras['generated_at'].strftime('%Y-%m-%d %H:%M UTC')} by vth-twin.
Inspection data shown: {html.escape(result['inspection_scope'])}.</p>
<h2>Map</h2>
<img class="map" alt="Map of the circle" src="data:image/png;base64,{png}">
<h2>Establishments in the circle ({len(result['establishments'])})</h2>
{_table(["id", "name", "distance m", "SBI", "cat.", "guide m", "last inspection", "LHS", "open viol.",
         "active permits"], est_rows, "No establishments in the circle.")}
<h2>Nitrogen deposition ({html.escape(dep['unit'])})</h2>
{_table(["year", "at the centre", "pixels in circle", "min", "mean", "max"], dep_rows,
        "No deposition raster covers the circle.")}
{_aerius_lines(result.get("aerius"))}
<h2>Natura 2000 habitats within {result.get('habitat_radius_m', 3000):,.0f} m</h2>
{_table(["area", "habitat type", "KDW", "distance m", "year", "max deposition", "exceedance", "status", "source"],
        hab_rows, "No Natura 2000 habitats nearby.")}
<h2>Housing sites within the VNG guide distance of an establishment in the circle</h2>
{_table(["site", "name", "dwellings", "establishment", "cat.", "guide m", "distance m", "severity"],
        housing_rows, "No housing site lies within the guide distance of an establishment in the circle.")}
<h2>Data sources</h2>
{_table(["layer", "source", "loaded", "rows"], src_rows, "No loads recorded.")}
<p class="note">Rules: distances are in RD New (EPSG:28992) metres to the nearest edge; "open" violations are
results "voorschriften overtreden" whose enforcement is not finished and that no later inspection found
compliant; active permits are granted ("verleend") and in force on the reference date; deposition in the
circle counts pixels whose centre lies inside; a habitat is overloaded when the highest deposition on it exceeds
its KDW, approaching within the margin below it; "conflict" means closer than the guide distance one step
lower (what a mixed area allows), "attention" closer than the full guide distance. See docs/analyses.md.
Municipal boundaries: CBS, Kadaster (CC-BY 4.0).</p>
</body></html>
"""
