"""Area summary for management reports: for a municipality or a polygon, the establishments by category,
inspections and the compliance rate per year, violations by LHS cell, permits by status, deposition and
the share of habitat overloaded per year, and the housing sites with their verdicts."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
import shapely
from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from layers.registry import ENVIRONMENTAL_CATEGORIES, INSPECTION_RESULTS, LHS_CELLS, PERMIT_STATUSES
from twin import coverage
from twin.analyses.common import FULL, NL_BOUNDS, Disclosure, fetch, fetch_one, municipality, rounded, run_sync, today
from twin.analyses.context import ACTIVE_PERMIT_SQL
from twin.analyses.housing import VERDICTS, housing_nitrogen
from twin.crs import CRS84, Crs, validate_geometry
from twin.errors import InvalidParameter
from twin.settings import Settings

NOT_ASSESSED = ("voorschriften niet van toepassing", "nader onderzoek noodzakelijk")
COMPLIANT = "voorschriften nageleefd"
VIOLATION = "voorschriften overtreden"
_TO_RD: dict[int, Transformer] = {}

AREA_SQL = "WITH area AS (SELECT {area} AS geom) "

ESTABLISHMENTS_SQL = AREA_SQL + """
SELECT e.environmental_category AS category, count(*) AS n, count(*) FILTER (WHERE e.brzo) AS brzo
FROM area JOIN twin.establishments e ON e.geom && area.geom AND ST_Intersects(e.geom, area.geom)
GROUP BY e.environmental_category
"""

INSPECTIONS_SQL = AREA_SQL + """
SELECT extract(year FROM i.inspected_on)::int AS year, i.result, i.lhs_cell, count(*) AS n
FROM area JOIN twin.establishments e ON e.geom && area.geom AND ST_Intersects(e.geom, area.geom)
JOIN twin.inspections i ON i.establishment_id = e.establishment_id
WHERE i.inspected_on <= %(as_of)s AND {inspections}
GROUP BY 1, 2, 3
"""

PERMITS_SQL = AREA_SQL + """
SELECT p.status, count(*) AS n, count(*) FILTER (WHERE {active}) AS active
FROM area JOIN twin.establishments e ON e.geom && area.geom AND ST_Intersects(e.geom, area.geom)
JOIN twin.permits p ON p.establishment_id = e.establishment_id
GROUP BY p.status
""".replace("{active}", ACTIVE_PERMIT_SQL)

# Hexagons are assigned to the area by their centre, so that adjacent areas never count one twice.
HEXAGONS_SQL = AREA_SQL + """
SELECT h.year, count(*) AS hexagons, sum(ST_Area(h.geom)) / 10000.0 AS ha,
       coalesce(sum(ST_Area(h.geom)) FILTER (WHERE h.deposition > h.lowest_kdw), 0) / 10000.0 AS overloaded_ha,
       coalesce(sum(ST_Area(h.geom)) FILTER (WHERE h.deposition <= h.lowest_kdw
                                          AND h.deposition > h.lowest_kdw - %(margin)s), 0) / 10000.0
         AS approaching_ha
FROM area JOIN twin.deposition_hexagons h
  ON h.resolution = '1ha' AND h.geom && area.geom AND ST_Intersects(ST_Centroid(h.geom), area.geom)
WHERE h.deposition IS NOT NULL AND h.lowest_kdw IS NOT NULL
GROUP BY h.year ORDER BY h.year
"""


def polygon_from_geojson(body: Any, settings: Settings, crs: Crs = CRS84) -> BaseGeometry:
    """The RD New polygon of a posted GeoJSON geometry or Feature (CRS84 unless ``crs`` says otherwise):
    a (Multi)Polygon, valid, inside the Netherlands, at most ``analysis_max_area_km2``."""
    if isinstance(body, dict) and body.get("type") == "Feature":
        body = body.get("geometry")
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        raise InvalidParameter("post one GeoJSON Polygon or MultiPolygon (a geometry or a Feature), not a "
                               "FeatureCollection", parameter="body")
    try:
        geom = shape(body)
    except Exception as exc:  # noqa: BLE001 - shapely raises several types on bad GeoJSON
        raise InvalidParameter(f"the body is not a GeoJSON geometry ({exc}); post a Polygon or MultiPolygon",
                               parameter="body") from exc
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidParameter(f"the area must be a Polygon or MultiPolygon, not a {geom.geom_type}",
                               parameter="body")
    geom = validate_geometry(geom, crs, "body")
    if crs.srid != 28992:
        west, south, east, north = NL_BOUNDS
        if crs.srid == 4326:
            minx, miny, maxx, maxy = geom.bounds
            if minx < west or maxx > east or miny < south or maxy > north:
                raise InvalidParameter(
                    f"the polygon reaches outside the Netherlands (lon {west} to {east}, lat {south} to {north}); "
                    "the twin covers only the Netherlands", parameter="body")
        transformer = _TO_RD.setdefault(crs.srid, Transformer.from_crs(crs.srid, 28992, always_xy=True))
        step = max(geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1]) / 64
        geom = shapely.transform(shapely.segmentize(geom, step) if step > 0 else geom,
                                 lambda c: _transform(transformer, c))
    area_km2 = geom.area / 1e6
    if area_km2 > settings.analysis_max_area_km2:
        raise InvalidParameter(f"the polygon covers {area_km2:,.0f} km2; at most {settings.analysis_max_area_km2:,.0f}"
                               " km2 is allowed (TWIN_ANALYSIS_MAX_AREA_KM2)", parameter="body")
    return geom


def _transform(transformer: Transformer, coords: Any) -> Any:
    import numpy as np

    x, y = transformer.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


async def area_summary(
    conn: psycopg.AsyncConnection,
    settings: Settings,
    *,
    municipality_code: str | None = None,
    area: BaseGeometry | None = None,
    as_of: date | None = None,
    disclosure: Disclosure = FULL,
) -> dict[str, Any]:
    """The summary of a municipality (CBS code) or an RD New polygon (see :func:`polygon_from_geojson`)."""
    if (municipality_code is None) == (area is None):
        raise InvalidParameter("give either a municipality code or a polygon", parameter="municipality")
    ref = today(as_of)
    if municipality_code is not None:
        muni = await municipality(conn, municipality_code)
        area_sql = "(SELECT geom FROM twin.municipalities WHERE code = %(muni)s)"
        params: dict[str, Any] = {"muni": muni["code"]}
        wkb_row = await fetch_one(conn, "SELECT ST_AsBinary(geom) AS wkb FROM twin.municipalities WHERE code = %s",
                                  (muni["code"],))
        area_wkb = bytes(wkb_row["wkb"]) if wkb_row else b""
        described = {"kind": "municipality", "code": muni["code"], "name": muni["name"],
                     "area_ha": rounded(muni["area_ha"], 2)}
    else:
        assert area is not None
        area_wkb = shapely.to_wkb(area)
        area_sql = "ST_GeomFromWKB(%(area)s, 28992)"
        params = {"area": area_wkb}
        described = {"kind": "polygon", "code": None, "name": None, "area_ha": rounded(area.area / 10000, 2)}
    params |= {"as_of": ref, "margin": settings.analysis_approach_margin, "disclosure_org": disclosure.org_code}

    def q(sql: str) -> str:
        return sql.replace("{area}", area_sql)

    est_rows = await fetch(conn, q(ESTABLISHMENTS_SQL), params)
    by_cat = {r["category"]: int(r["n"]) for r in est_rows}
    establishments = {
        "total": sum(by_cat.values()),
        "brzo": sum(int(r["brzo"]) for r in est_rows),
        "by_category": [{"category": c, "count": by_cat.get(c, 0)} for c in ENVIRONMENTAL_CATEGORIES]
        + [{"category": None, "count": by_cat.get(None, 0)}],
    }

    inspections: dict[str, Any] = {"scope": disclosure.scope}
    if disclosure.inspections:
        rows = await fetch(conn, q(INSPECTIONS_SQL).replace("{inspections}", disclosure.inspection_sql("i", "e")),
                           params)
        inspections |= _inspection_figures(rows)
    else:
        inspections |= {"per_year": None, "violations_by_lhs_cell": None,
                        "note": "inspection figures need an advisor, inspector or admin API key"}

    permit_rows = await fetch(conn, q(PERMITS_SQL), params)
    by_status = {r["status"]: int(r["n"]) for r in permit_rows}
    permits = {
        "total": sum(by_status.values()),
        "active": sum(int(r["active"]) for r in permit_rows),
        "by_status": {s: by_status.get(s, 0)
                      for s in (*PERMIT_STATUSES, *sorted(set(by_status) - set(PERMIT_STATUSES)))},
    }

    dep = await _deposition(conn, area_wkb)
    hexes = await fetch(conn, q(HEXAGONS_SQL), params)
    deposition = {
        "unit": "mol N/ha/yr",
        "per_year": dep,
        "habitat_per_year": [
            {"year": h["year"], "hexagons": int(h["hexagons"]), "habitat_ha": rounded(h["ha"], 2),
             "overloaded_ha": rounded(h["overloaded_ha"], 2), "approaching_ha": rounded(h["approaching_ha"], 2),
             "overloaded_share": round(h["overloaded_ha"] / h["ha"], 4) if h["ha"] else None}
            for h in hexes
        ],
    }

    housing = await housing_nitrogen(conn, settings, municipality_code=municipality_code,
                                     area_wkb=None if municipality_code else area_wkb, as_of=as_of,
                                     disclosure=disclosure)
    return {
        "area": described,
        "as_of": ref.isoformat(),
        "establishments": establishments,
        "inspections": inspections,
        "permits": permits,
        "deposition": deposition,
        "housing": _housing_figures(housing["features"], municipality_code),
    }


async def _deposition(conn: psycopg.AsyncConnection, area_wkb: bytes) -> list[dict[str, Any]]:
    """Deposition per year over the area: the pixels whose centre lies inside; an area too small to hold a
    pixel centre gets the area-weighted mean of the pixels it overlaps; a year whose raster only touches
    the area is left out."""
    out = []
    for d in await coverage.centre_stats(conn, area_wkb):
        row = {"year": d["year"], "label": d["label"], "method": "pixel centres", "pixels": int(d["count"] or 0),
               "mean": rounded(d["mean"]), "min": rounded(d["min"]), "max": rounded(d["max"])}
        if not row["pixels"]:
            w = await coverage.weighted_stats(conn, area_wkb, d["year"])
            if w["mean"] is None:
                continue
            row |= {"method": "area-weighted", "pixels": int(w["pixels"]), "mean": rounded(w["mean"]),
                    "min": rounded(w["min"]), "max": rounded(w["max"])}
        out.append(row)
    return out


def _inspection_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    years: dict[int, dict[str, Any]] = {}
    cells = dict.fromkeys(LHS_CELLS, 0) | {"unknown": 0}
    for r in rows:
        fig = years.setdefault(r["year"], {"year": r["year"], "inspections": 0, "assessed": 0, "compliant": 0,
                                           "by_result": dict.fromkeys(INSPECTION_RESULTS, 0)})
        n = int(r["n"])
        fig["inspections"] += n
        fig["by_result"][r["result"]] = fig["by_result"].get(r["result"], 0) + n
        if r["result"] not in NOT_ASSESSED:
            fig["assessed"] += n
        if r["result"] == COMPLIANT:
            fig["compliant"] += n
        if r["result"] == VIOLATION:
            cells[r["lhs_cell"] if r["lhs_cell"] in cells else "unknown"] += n
    per_year = []
    for y in sorted(years):
        item = years[y]
        item["compliance_rate"] = round(item["compliant"] / item["assessed"], 4) if item["assessed"] else None
        per_year.append(item)
    return {"per_year": per_year, "violations_by_lhs_cell": cells}


def _housing_figures(features: list[dict[str, Any]], municipality_code: str | None) -> dict[str, Any]:
    """Sites counted once: for a municipality, the sites assigned to it (largest overlap); the sites that
    only partly lie in it are listed apart."""
    counted, partly = [], []
    for f in features:
        p = f["properties"]
        if municipality_code is None or p["municipality_code"] == municipality_code:
            counted.append(p)
        else:
            partly.append(p)

    def brief(p: dict[str, Any]) -> dict[str, Any]:
        return {"site_id": p["site_id"], "name": p["name"], "planned_dwellings": p["planned_dwellings"],
                "verdict": p["verdict"], "municipality_code": p["municipality_code"],
                "municipalities": [m["code"] for m in p["municipalities"]]}

    return {
        "sites": len(counted),
        "planned_dwellings": sum(p["planned_dwellings"] for p in counted),
        "by_verdict": {v: {"sites": sum(1 for p in counted if p["verdict"] == v),
                           "planned_dwellings": sum(p["planned_dwellings"] for p in counted if p["verdict"] == v)}
                       for v in VERDICTS},
        "list": [brief(p) for p in counted],
        "partly_here_assigned_elsewhere": [brief(p) for p in partly],
    }


def area_summary_sync(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """:func:`area_summary` from plain Python (a notebook): opens its own reader connection."""
    return run_sync(settings, area_summary, settings, **kwargs)
