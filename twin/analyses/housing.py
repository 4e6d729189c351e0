"""Housing against nitrogen and zoning: for every planned housing site, the deposition on it, the
overloaded and approaching-overload habitat hexagons nearby, the establishments whose VNG guide distance
reaches into it, and a verdict (no constraint / attention / conflict) with the reasons in words.

Returned as a GeoJSON FeatureCollection (WGS84) so that the map can colour the sites. The rules and the
settings they use are in docs/analyses.md.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import psycopg

from layers.registry import GUIDE_DISTANCES_M
from twin import coverage
from twin.analyses.common import (
    FULL,
    GUIDE_JSON,
    HEX_YEAR_SQL,
    Disclosure,
    fetch,
    municipality,
    redact_establishment,
    rounded,
    run_sync,
    today,
)
from twin.analyses.context import reduced_guide_distance
from twin.settings import Settings

VERDICTS = ("no constraint", "attention", "conflict")

# The sites to analyse: all, or those whose interior overlaps the area (a municipality or a polygon).
SITES_SQL = """
WITH area AS (SELECT {area} AS geom)
SELECT s.site_id, s.name, s.municipality_code, s.municipality_name, s.planned_dwellings, s.phase,
       s.planned_year, ST_Area(s.geom) / 10000.0 AS area_ha,
       ST_AsGeoJSON(ST_Transform(s.geom, 4326), 7) AS geometry,
       munis.list AS municipalities,
       dy.year AS deposition_year, dep.mean AS deposition_mean, dep.max AS deposition_max,
       hx.year AS hexagon_year, hx.overloaded_n, hx.overloaded_ha, hx.approaching_n, hx.approaching_ha,
       hx.worst_exceedance, hx.nearest_overloaded_m, hx.nearest_approaching_m,
       nh.area_name AS nearest_area_name, nh.area_number AS nearest_area_number,
       nh.habitat_type AS nearest_habitat_type, nh.kdw AS nearest_kdw,
       est.list AS establishments
FROM area
JOIN twin.housing_sites s
  ON area.geom IS NULL OR (s.geom && area.geom AND ST_Intersects(s.geom, area.geom)
                           AND NOT ST_Touches(s.geom, area.geom))
LEFT JOIN LATERAL (
  SELECT json_agg(json_build_object('code', m.code, 'name', m.name,
                  'share', ST_Area(ST_Intersection(m.geom, s.geom)) / nullif(ST_Area(s.geom), 0))
                  ORDER BY ST_Area(ST_Intersection(m.geom, s.geom)) DESC, m.code) AS list
  FROM twin.municipalities m
  WHERE m.geom && s.geom AND ST_Intersects(m.geom, s.geom) AND NOT ST_Touches(m.geom, s.geom)
) munis ON true
LEFT JOIN LATERAL (SELECT {latest_raster_year} AS year) dy ON true
LEFT JOIN LATERAL ({weighted}) dep ON dy.year IS NOT NULL
LEFT JOIN LATERAL (
  SELECT max(x.year) AS year,
         count(*) FILTER (WHERE x.exc > 0) AS overloaded_n,
         coalesce(sum(x.area) FILTER (WHERE x.exc > 0), 0) / 10000.0 AS overloaded_ha,
         count(*) FILTER (WHERE x.exc <= 0 AND x.exc > -%(margin)s) AS approaching_n,
         coalesce(sum(x.area) FILTER (WHERE x.exc <= 0 AND x.exc > -%(margin)s), 0) / 10000.0 AS approaching_ha,
         max(x.exc) FILTER (WHERE x.exc > -%(margin)s) AS worst_exceedance,
         min(x.dist) FILTER (WHERE x.exc > 0) AS nearest_overloaded_m,
         min(x.dist) FILTER (WHERE x.exc <= 0 AND x.exc > -%(margin)s) AS nearest_approaching_m
  FROM (
    SELECT h.year, h.deposition - h.lowest_kdw AS exc, ST_Area(h.geom) AS area, ST_Distance(h.geom, s.geom) AS dist
    FROM twin.deposition_hexagons h
    WHERE h.resolution = '1ha' AND h.year = {hex_year} AND ST_DWithin(h.geom, s.geom, %(hex_r)s)
      AND h.deposition IS NOT NULL AND h.lowest_kdw IS NOT NULL
  ) x
  HAVING count(*) > 0
) hx ON true
LEFT JOIN LATERAL (
  -- The habitat the verdict names: in the nearest overloaded hexagon (else the nearest approaching one), the
  -- habitat polygon with the lowest KDW, and its Natura 2000 area (natura2000-areas when loaded).
  SELECT hb.habitat_type, hb.kdw, coalesce(ar.name, hb.area_name) AS area_name,
         coalesce(ar.number, hb.area_number) AS area_number
  FROM (
    SELECT h.geom FROM twin.deposition_hexagons h
    WHERE hx.year IS NOT NULL AND h.resolution = '1ha' AND h.year = hx.year
      AND ST_DWithin(h.geom, s.geom, %(hex_r)s) AND h.deposition IS NOT NULL AND h.lowest_kdw IS NOT NULL
      AND h.deposition - h.lowest_kdw > -%(margin)s
    ORDER BY h.deposition > h.lowest_kdw DESC, ST_Distance(h.geom, s.geom) LIMIT 1
  ) n
  JOIN LATERAL (
    SELECT b.habitat_type, b.kdw, b.area_name, b.area_number, b.geom FROM twin.natura2000_habitats b
    WHERE b.geom && n.geom AND ST_Intersects(b.geom, n.geom) AND b.kdw IS NOT NULL
    ORDER BY b.kdw, b.habitat_id LIMIT 1
  ) hb ON true
  LEFT JOIN LATERAL (
    SELECT a.name, a.number FROM twin.natura2000_areas a
    WHERE a.geom && hb.geom AND ST_Intersects(a.geom, ST_PointOnSurface(hb.geom)) ORDER BY a.number LIMIT 1
  ) ar ON true
) nh ON true
LEFT JOIN LATERAL (
  SELECT json_agg(json_build_object(
           'establishment_id', e.establishment_id, 'name', e.name, 'sole_proprietor', e.sole_proprietor,
           'org_code', e.org_code, 'environmental_category', e.environmental_category,
           'guide_distance_m', e.guide, 'distance_m', e.dist) ORDER BY e.dist, e.establishment_id) AS list
  FROM (
    SELECT e.*, (%(guide)s::jsonb ->> e.environmental_category)::float AS guide, ST_Distance(e.geom, s.geom) AS dist
    FROM twin.establishments e
    WHERE e.environmental_category IS NOT NULL AND ST_DWithin(e.geom, s.geom, %(max_guide)s)
  ) e
  WHERE e.dist < e.guide
) est ON true
ORDER BY s.site_id
""".replace("{latest_raster_year}", coverage.LATEST_YEAR_SQL.format(year="%(year)s", geom="s.geom")).replace(
    "{weighted}", coverage.WEIGHTED_SQL.format(year="dy.year", geom="s.geom")).replace("{hex_year}", HEX_YEAR_SQL)


def _m(value: float) -> str:
    return f"{value:,.0f} m"


def _habitat_named(hx: dict[str, Any]) -> str:
    """' (Natura 2000 area Veluwe, habitat type H4030, KDW 1,071 mol N/ha/yr)' for the nearest hexagon named."""
    words = []
    if hx.get("nearest_area"):
        number = f" ({hx['nearest_area_number']})" if hx.get("nearest_area_number") is not None else ""
        words.append(f"Natura 2000 area {hx['nearest_area']}{number}")
    if hx.get("nearest_habitat_type"):
        kdw = hx.get("nearest_kdw")
        words.append(f"habitat type {hx['nearest_habitat_type']}"
                     + (f", KDW {kdw:,.0f} mol N/ha/yr" if kdw is not None else ""))
    return f" ({', '.join(words)})" if words else ""


def verdict_for(site: dict[str, Any], settings: Settings) -> tuple[str, list[str]]:
    """The verdict of one site and its reasons in words, from the figures of :func:`housing_nitrogen`.

    conflict: an establishment closer than its guide distance one step lower (what a mixed area allows),
    or an overloaded habitat hexagon within ``analysis_housing_conflict_habitat_m``.
    attention: an establishment closer than its full guide distance, an overloaded hexagon farther away but
    within ``analysis_housing_habitat_radius_m``, or hexagons approaching overload within that radius.
    """
    conflicts: list[str] = []
    attention: list[str] = []
    for e in site["establishments"]:
        reduced = e["mixed_area_distance_m"]
        what = (f"establishment {e['establishment_id']} (category {e['environmental_category']}, guide distance "
                f"{_m(e['guide_distance_m'])}) lies {_m(e['distance_m'])} from the site")
        if reduced is not None and e["distance_m"] < reduced:
            conflicts.append(f"{what}: closer than the {_m(reduced)} that applies even in a mixed area")
        else:
            attention.append(f"{what}: within the guide distance for a quiet residential area; acceptable only in "
                             f"a mixed area (at least {_m(reduced or 0)}) or with a motivated deviation")
    hx = site["habitats"]
    radius = settings.analysis_housing_habitat_radius_m
    near = settings.analysis_housing_conflict_habitat_m
    named = _habitat_named(hx)
    if hx["overloaded_hexagons"]:
        what = (f"{hx['overloaded_hexagons']} overloaded habitat hexagon(s) ({hx['overloaded_ha']:,.1f} ha) within "
                f"{_m(radius)}, the nearest {_m(hx['nearest_overloaded_m'])} away{named}, worst exceedance "
                f"{hx['worst_exceedance']:,.0f} mol N/ha/yr above the KDW")
        if hx["nearest_overloaded_m"] <= near:
            conflicts.append(f"{what}: within {_m(near)}, extra deposition from building and living here will "
                             "need an ecological assessment (Wnb)")
        else:
            attention.append(what)
    if hx["approaching_hexagons"]:
        attention.append(
            f"{hx['approaching_hexagons']} habitat hexagon(s) ({hx['approaching_ha']:,.1f} ha) within {_m(radius)} "
            f"approach overload (within {settings.analysis_approach_margin:,.0f} mol N/ha/yr below the KDW), the "
            f"nearest {_m(hx['nearest_approaching_m'])} away"
            + (named if not hx["overloaded_hexagons"] else "")
        )
    if conflicts:
        return "conflict", conflicts + attention
    if attention:
        return "attention", attention
    return "no constraint", [
        f"no establishment's guide distance reaches the site and no overloaded or approaching habitat hexagon "
        f"lies within {_m(radius)}"
    ]


def _site(row: dict[str, Any], settings: Settings, disclosure: Disclosure) -> dict[str, Any]:
    def load(value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        return json.loads(value) if isinstance(value, str) else list(value)

    munis = load(row["municipalities"])
    establishments = []
    for e in load(row["establishments"]):
        org = e.pop("org_code")
        e["distance_m"] = rounded(e["distance_m"])
        e["mixed_area_distance_m"] = reduced_guide_distance(e["environmental_category"])
        establishments.append(redact_establishment(e, disclosure, org))
    props: dict[str, Any] = {
        "site_id": row["site_id"],
        "name": row["name"],
        "planned_dwellings": row["planned_dwellings"],
        "phase": row["phase"],
        "planned_year": row["planned_year"],
        "area_ha": rounded(row["area_ha"], 2),
        # A site over a municipal boundary is one feature; it lists every municipality it overlaps (share of
        # the site's area) and is assigned to the one with the largest overlap.
        "municipalities": [{"code": m["code"], "name": m["name"], "share": round(m["share"], 4)} for m in munis],
        "municipality_code": munis[0]["code"] if munis else row["municipality_code"],
        "deposition": {
            "year": row["deposition_year"],
            "mean": rounded(row["deposition_mean"]),
            "max": rounded(row["deposition_max"]),
            "unit": "mol N/ha/yr",
        },
        "habitats": {
            "year": row["hexagon_year"],
            "radius_m": settings.analysis_housing_habitat_radius_m,
            "overloaded_hexagons": int(row["overloaded_n"] or 0),
            "overloaded_ha": rounded(row["overloaded_ha"] or 0, 2),
            "approaching_hexagons": int(row["approaching_n"] or 0),
            "approaching_ha": rounded(row["approaching_ha"] or 0, 2),
            "worst_exceedance": rounded(row["worst_exceedance"]),
            "nearest_overloaded_m": rounded(row["nearest_overloaded_m"]),
            "nearest_approaching_m": rounded(row["nearest_approaching_m"]),
            # The Natura 2000 area and habitat type (with its KDW) of the nearest overloaded hexagon, else of the
            # nearest approaching one.
            "nearest_area": row["nearest_area_name"],
            "nearest_area_number": row["nearest_area_number"],
            "nearest_habitat_type": row["nearest_habitat_type"],
            "nearest_kdw": rounded(row["nearest_kdw"]),
        },
        "establishments": establishments,
    }
    props["verdict"], props["reasons"] = verdict_for(props, settings)
    return {"type": "Feature", "id": row["site_id"], "geometry": json.loads(row["geometry"]), "properties": props}


async def housing_nitrogen(
    conn: psycopg.AsyncConnection,
    settings: Settings,
    *,
    municipality_code: str | None = None,
    area_wkb: bytes | None = None,
    as_of: date | None = None,
    year: int | None = None,
    disclosure: Disclosure = FULL,
) -> dict[str, Any]:
    """Every housing site (or those overlapping a municipality or an RD polygon) with its deposition,
    nearby overloaded habitat, guide-distance conflicts and verdict, as a GeoJSON FeatureCollection.

    ``year``: the reference year (default the year of ``as_of``, default today): per site the latest
    deposition year not after it is used.
    """
    ref_year = year if year is not None else today(as_of).year
    muni = None
    if municipality_code is not None:
        muni = await municipality(conn, municipality_code)
        area_sql = "(SELECT geom FROM twin.municipalities WHERE code = %(muni)s)"
    elif area_wkb is not None:
        area_sql = "ST_GeomFromWKB(%(area)s, 28992)"
    else:
        area_sql = "NULL::geometry"
    params = {
        "muni": muni["code"] if muni else None, "area": area_wkb, "year": ref_year,
        "margin": settings.analysis_approach_margin, "hex_r": settings.analysis_housing_habitat_radius_m,
        "guide": GUIDE_JSON, "max_guide": max(GUIDE_DISTANCES_M.values()),
    }
    rows = await fetch(conn, SITES_SQL.replace("{area}", area_sql), params)
    features = [_site(row, settings, disclosure) for row in rows]
    counts = {v: sum(1 for f in features if f["properties"]["verdict"] == v) for v in VERDICTS}
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "municipality": None if muni is None else {"code": muni["code"], "name": muni["name"]},
        "reference_year": ref_year,
        "verdicts": counts,
        "parameters": {
            "habitat_radius_m": settings.analysis_housing_habitat_radius_m,
            "conflict_habitat_distance_m": settings.analysis_housing_conflict_habitat_m,
            "approach_margin": settings.analysis_approach_margin,
            "guide_distances_m": GUIDE_DISTANCES_M,
        },
    }


def housing_nitrogen_sync(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """:func:`housing_nitrogen` from plain Python (a notebook): opens its own reader connection."""
    return run_sync(settings, housing_nitrogen, settings, **kwargs)
