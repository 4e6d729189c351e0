"""Area context before a visit: what lies in a circle around a point or an establishment.

For the circle: the establishments (distance, SBI, environmental category, last inspection, open
violations, active permits), the deposition at the point and its statistics in the circle per year, the
Natura 2000 habitats nearby with their KDW and current exceedance, the housing sites within the VNG guide
distance of an establishment in the circle, and the municipality. The rules are in docs/analyses.md.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import psycopg
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from twin import coverage
from twin.access import natural_person_sql
from twin.analyses.aerius import aerius_block
from twin.analyses.common import (
    FULL,
    GUIDE_JSON,
    HEX_YEAR_SQL,
    Disclosure,
    clean_text,
    fetch,
    fetch_one,
    redact_establishment,
    reduced_guide_distance,
    rounded,
    run_sync,
    to_rd,
    to_wgs84,
    today,
)
from twin.analyses.housing import housing_nitrogen
from twin.errors import InvalidParameter, NotFound
from twin.settings import Settings

NATURAL_PERSON = natural_person_sql("e")  # sole proprietors and partnerships of natural persons

VIOLATION = "voorschriften overtreden"
CLOSED_FOLLOW_UP = ("uitgevoerd", "uitgewerkt", "ingetrokken")
RESOLVING_RESULTS = ("voorschriften nageleefd", "akkoord na aanwijzing")
BUFFER_QUAD_SEGS = 8  # PostGIS' default: the circle is a 32-gon

# A violation (result "voorschriften overtreden") is open while its enforcement is not finished (follow-up
# empty, "opgelegd" or "in uitvoering") and no later inspection of the establishment found it compliant.
OPEN_VIOLATION_SQL = """
v.result = 'voorschriften overtreden' AND v.inspected_on <= %(as_of)s
AND coalesce(v.follow_up_status, '') NOT IN ('uitgevoerd', 'uitgewerkt', 'ingetrokken')
AND NOT EXISTS (
  SELECT 1 FROM twin.inspections w
  WHERE w.establishment_id = v.establishment_id AND w.inspected_on > v.inspected_on
    AND w.inspected_on <= %(as_of)s AND w.result IN ('voorschriften nageleefd', 'akkoord na aanwijzing'))
"""

# A permit is active when granted ("verleend") and in force on the reference date.
ACTIVE_PERMIT_SQL = """
p.status = 'verleend' AND (p.valid_from IS NULL OR p.valid_from <= %(as_of)s)
AND (p.valid_until IS NULL OR p.valid_until >= %(as_of)s)
"""

ESTABLISHMENTS_SQL = f"""
WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom)
SELECT e.establishment_id, e.name, e.kvk_number,
       {NATURAL_PERSON} AS sole_proprietor,
       e.sbi_code, e.sbi_description,
       e.environmental_category, (%(guide)s::jsonb ->> e.environmental_category)::float AS guide_distance_m,
       e.activiteitenbesluit_type, e.brzo, e.visit_frequency_years, e.municipality_code, e.org_code,
       ST_Distance(e.geom, c.geom) AS distance_m, ST_X(e.geom) AS x, ST_Y(e.geom) AS y,
       li.inspected_on AS last_inspected_on, li.kind AS last_kind, li.result AS last_result,
       li.lhs_cell AS last_lhs_cell,
       (SELECT count(*) FROM twin.inspections v
        WHERE v.establishment_id = e.establishment_id AND {OPEN_VIOLATION_SQL}) AS open_violations,
       (SELECT coalesce(json_agg(json_build_object(
                 'permit_id', p.permit_id, 'permit_type', p.permit_type, 'status', p.status,
                 'activities', p.activities, 'valid_from', p.valid_from, 'valid_until', p.valid_until,
                 'nh3_kg_per_year', p.nh3_kg_per_year, 'nox_kg_per_year', p.nox_kg_per_year)
               ORDER BY p.valid_from NULLS FIRST, p.permit_id), '[]'::json)
        FROM twin.permits p WHERE p.establishment_id = e.establishment_id AND {ACTIVE_PERMIT_SQL}) AS active_permits
FROM c
JOIN twin.establishments e ON ST_DWithin(e.geom, c.geom, %(r)s)
LEFT JOIN LATERAL (
  SELECT i.inspected_on, i.kind, i.result, i.lhs_cell FROM twin.inspections i
  WHERE i.establishment_id = e.establishment_id AND i.inspected_on <= %(as_of)s
  ORDER BY i.inspected_on DESC, i.inspection_id DESC LIMIT 1
) li ON true
ORDER BY distance_m, e.establishment_id
"""

# Habitats within the search distance; their current deposition from the 1 ha hexagons of the current
# year whose centre lies in the habitat.
HABITATS_SQL = """
WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom)
SELECT h.habitat_id, coalesce(ar.name, h.area_name) AS area_name, coalesce(ar.number, h.area_number) AS area_number,
       h.habitat_type, h.habitat_types, h.quality, h.kdw,
       ST_Distance(h.geom, c.geom) AS distance_m, hx.year, hx.hexagons, hx.dep_max, hx.dep_mean
FROM c
JOIN twin.natura2000_habitats h ON ST_DWithin(h.geom, c.geom, %(hr)s)
LEFT JOIN LATERAL (
  -- The area from the natura2000-areas layer when it is loaded (a BIJ12 habitat map names none).
  SELECT a.name, a.number FROM twin.natura2000_areas a
  WHERE a.geom && h.geom AND ST_Intersects(a.geom, ST_PointOnSurface(h.geom))
  ORDER BY a.number LIMIT 1
) ar ON true
LEFT JOIN LATERAL (
  SELECT max(x.year) AS year, count(*) AS hexagons, max(x.deposition) AS dep_max, avg(x.deposition) AS dep_mean
  FROM twin.deposition_hexagons x
  WHERE x.resolution = '1ha' AND x.year = {hex_year} AND x.deposition IS NOT NULL AND x.geom && h.geom
    AND ST_Intersects(ST_Centroid(x.geom), h.geom)
  HAVING count(*) > 0
) hx ON true
ORDER BY distance_m, h.habitat_id
""".replace("{hex_year}", HEX_YEAR_SQL)

# Fallback for habitats without hexagons: the raster, area-weighted over the habitat polygon.
HABITAT_RASTER_SQL = """
SELECT h.habitat_id, yr.year, w.mean AS dep_mean, w.max AS dep_max
FROM twin.natura2000_habitats h
CROSS JOIN LATERAL (SELECT {latest} AS year) yr
CROSS JOIN LATERAL ({weighted}) w
WHERE h.habitat_id = ANY(%(ids)s) AND yr.year IS NOT NULL
""".format(
    latest=coverage.LATEST_YEAR_SQL.format(year="%(year)s", geom="h.geom"),
    weighted=coverage.WEIGHTED_SQL.format(year="yr.year", geom="h.geom"),
)

# Housing sites that lie (partly) closer to an establishment in the circle than its VNG guide distance.
HOUSING_SQL = """
WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom),
e AS (
  SELECT e.establishment_id, e.name,
       {natural_person} AS sole_proprietor,
       e.org_code, e.environmental_category, e.geom,
         (%(guide)s::jsonb ->> e.environmental_category)::float AS guide
  FROM c JOIN twin.establishments e ON ST_DWithin(e.geom, c.geom, %(r)s)
  WHERE e.environmental_category IS NOT NULL
)
SELECT s.site_id, s.name AS site_name, s.planned_dwellings, s.phase, s.planned_year,
       e.establishment_id, e.name, e.sole_proprietor, e.org_code, e.environmental_category,
       e.guide AS guide_distance_m,
       ST_Distance(s.geom, e.geom) AS distance_m
FROM e JOIN twin.housing_sites s ON ST_DWithin(s.geom, e.geom, e.guide)
WHERE ST_Distance(s.geom, e.geom) < e.guide
ORDER BY s.site_id, distance_m, e.establishment_id
""".replace("{natural_person}", NATURAL_PERSON)

# Natura 2000 areas (natura2000-areas) within the habitat search distance; PDOK publishes some areas as one
# feature per designation, so they are grouped by number.
AREAS_SQL = """
WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom)
SELECT a.number, min(a.name) AS name, string_agg(DISTINCT a.protection, ', ') AS protection,
       string_agg(DISTINCT a.status, ', ') AS status, min(ST_Distance(a.geom, c.geom)) AS distance_m
FROM c JOIN twin.natura2000_areas a ON ST_DWithin(a.geom, c.geom, %(hr)s)
GROUP BY a.number
ORDER BY distance_m, a.number
"""

MUNICIPALITIES_SQL = """
WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom)
SELECT m.code, m.name, ST_Intersects(m.geom, c.geom) AS at_point
FROM c JOIN twin.municipalities m ON ST_DWithin(m.geom, c.geom, %(r)s)
ORDER BY ST_Intersects(m.geom, c.geom) DESC, m.code
"""


def _validate_radius(radius: float | None, settings: Settings) -> float:
    r = settings.analysis_default_radius_m if radius is None else radius
    if not r > 0 or r != r:
        raise InvalidParameter("radius must be a positive number of metres", parameter="radius")
    if r > settings.analysis_max_radius_m:
        raise InvalidParameter(
            f"radius {r:g} m is larger than the maximum of {settings.analysis_max_radius_m:g} m; use a smaller "
            "circle or the area summary (/analysis/area-summary) for larger areas.", parameter="radius",
        )
    return float(r)


async def resolve_centre(conn: psycopg.AsyncConnection, lon: float | None, lat: float | None,
                         establishment: str | None) -> tuple[float, float, str | None]:
    """The RD centre of the circle: a WGS84 point or the location of an establishment (404 if unknown)."""
    if establishment is not None:
        establishment = clean_text(establishment, "establishment")
        if lon is not None or lat is not None:
            raise InvalidParameter("give either lon and lat, or establishment, not both", parameter="establishment")
        row = await fetch_one(
            conn, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM twin.establishments WHERE establishment_id = %s",
            (establishment,),
        )
        if row is None:
            raise NotFound(f"establishment {establishment!r} is not in the twin", parameter="establishment")
        return float(row["x"]), float(row["y"]), establishment
    if lon is None or lat is None:
        raise InvalidParameter(
            "give lon and lat (WGS84 degrees) of the point, or establishment=ID",
            parameter="lat" if lon is not None else "lon",
        )
    x, y = to_rd(lon, lat)
    return x, y, None


POINT_CENTRE_SQL = "WITH c AS (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 28992) AS geom)"
# A housing site's context measures every distance from the site's edge (as its verdict does), not from a point.
SITE_CENTRE_SQL = "WITH c AS (SELECT s.geom FROM twin.housing_sites s WHERE s.site_id = %(site)s)"

SITE_SQL = """
SELECT site_id, name, ST_X(ST_PointOnSurface(geom)) AS x, ST_Y(ST_PointOnSurface(geom)) AS y,
       ST_AsBinary(geom) AS wkb
FROM twin.housing_sites WHERE site_id = %s
"""

SUBJECT_SQL = """
SELECT establishment_id, name, kvk_number, street, house_number, postcode, city, sole_proprietor, legal_form,
       org_code, environmental_category, sbi_code, sbi_description
FROM twin.establishments WHERE establishment_id = %s
"""

# The inspection history of the report's establishment (row-level security applies on top); the inspector's
# name is staff personal data and is left out.
HISTORY_SQL = """
SELECT inspection_id, inspected_on, kind, result, lhs_cell, violation, intervention, repair_deadline,
       follow_up_status
FROM twin.inspections WHERE establishment_id = %(id)s AND inspected_on <= %(as_of)s
ORDER BY inspected_on DESC, inspection_id DESC
"""


def _centred(query: str, site: bool) -> str:
    return query.replace(POINT_CENTRE_SQL, SITE_CENTRE_SQL) if site else query


async def subject_of(conn: psycopg.AsyncConnection, establishment_id: str, disclosure: Disclosure,
                     as_of: date) -> dict[str, Any] | None:
    """The establishment a report is about, with the fields the caller may see (name and address of a natural
    person masked, the postcode as PC4: :func:`twin.access.mask_properties`) and its full inspection history
    when the caller may see it (an advisor never sees a natural person's, partnerships included)."""
    from layers.registry import LAYERS
    from twin.access import Principal, is_personal_record, mask_properties

    row = await fetch_one(conn, SUBJECT_SQL, (establishment_id,))
    if row is None:
        return None
    spec = LAYERS["establishments"]
    props = dict(row)
    principal = Principal(role=disclosure.role if disclosure.role in (  # type: ignore[arg-type]
        "anonymous", "public", "advisor", "inspector", "admin") else "anonymous", org_code=disclosure.org_code)
    masked = mask_properties(principal, spec, dict(props))
    sees = disclosure.sees_inspections(props["sole_proprietor"], props["org_code"]) and not (
        disclosure.role == "advisor" and is_personal_record(spec, props))
    history = None
    if sees:
        history = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in h.items()}
                   for h in await fetch(conn, HISTORY_SQL, {"id": establishment_id, "as_of": as_of})]
    return {
        "establishment_id": establishment_id,
        "name": masked.get("name"),
        "street": masked.get("street"),
        "house_number": masked.get("house_number"),
        "postcode": masked.get("postcode"),
        "city": masked.get("city"),
        "personal_withheld": masked.get("name") is None,
        "inspections_visible": sees,
        "inspections": history,
    }


async def area_context(
    conn: psycopg.AsyncConnection,
    settings: Settings,
    *,
    lon: float | None = None,
    lat: float | None = None,
    establishment: str | None = None,
    site: str | None = None,
    radius: float | None = None,
    as_of: date | None = None,
    year: int | None = None,
    disclosure: Disclosure = FULL,
    lang: str = "en",
) -> dict[str, Any]:
    """The area context of a circle around a WGS84 point or an establishment, as a JSON-ready dict.

    ``as_of`` is the reference date (default today) for "last inspection", "open" and "active";
    ``year`` the reference year for the current habitat exceedance (default the year of ``as_of``).
    ``site``: the context of a planned housing site instead: every distance is measured from the site's edge,
    habitats within the housing analysis' radius, and ``housing_site`` holds the site's verdict with its
    criteria (the same figures the housing analysis gives; ``lang`` is the language of its reasons).
    """
    r = _validate_radius(radius, settings)
    site_row = None
    if site is not None:
        site = clean_text(site, "site")
        if lon is not None or lat is not None or establishment is not None:
            raise InvalidParameter("give a site, or lon and lat, or establishment: one of them", parameter="site")
        site_row = await fetch_one(conn, SITE_SQL, (site,))
        if site_row is None:
            raise NotFound(f"housing site {site!r} is not in the twin", parameter="site")
        x, y, est_id = float(site_row["x"]), float(site_row["y"]), None
    else:
        x, y, est_id = await resolve_centre(conn, lon, lat, establishment)
    ref = today(as_of)
    ref_year = year if year is not None else ref.year
    habitat_radius = (settings.analysis_housing_habitat_radius_m if site_row is not None
                      else settings.analysis_habitat_radius_m)
    params = {"x": x, "y": y, "r": r, "as_of": ref, "guide": GUIDE_JSON, "site": site,
              "hr": habitat_radius, "year": ref_year}
    on_site = site_row is not None

    establishments = await _establishments(conn, params, disclosure, on_site)
    area = None
    if site_row is not None:
        import shapely

        area = shapely.from_wkb(bytes(site_row["wkb"]))
    deposition = await _deposition(conn, x, y, r, area)
    habitats = await _habitats(conn, params, settings, on_site)
    areas = await _areas(conn, params, habitats, on_site)
    housing = await _housing(conn, params, disclosure, on_site)
    aerius = await aerius_block(conn, params)
    municipalities = await fetch(conn, _centred(MUNICIPALITIES_SQL, on_site), params)
    at_point = [m for m in municipalities if m["at_point"]]
    housing_site = None
    if site is not None:
        one = await housing_nitrogen(conn, settings, site_ids=[site], as_of=as_of, year=year,
                                     disclosure=disclosure, lang=lang)
        housing_site = one["features"][0]["properties"] if one["features"] else None
    subject = await subject_of(conn, est_id, disclosure, ref) if est_id is not None else None

    lon_c, lat_c = to_wgs84(x, y)
    return {
        "centre": {"lon": lon_c, "lat": lat_c, "x": round(x, 2), "y": round(y, 2), "establishment_id": est_id,
                   "site_id": site},
        "measured_from": "site" if on_site else "centre",
        "radius_m": r,
        "habitat_radius_m": habitat_radius,
        "subject": subject,
        "housing_site": housing_site,
        "as_of": ref.isoformat(),
        "reference_year": ref_year,
        "municipality": {"code": at_point[0]["code"], "name": at_point[0]["name"]} if at_point else None,
        "municipalities_in_circle": [{"code": m["code"], "name": m["name"]} for m in municipalities],
        "establishments": establishments,
        "deposition": deposition,
        "natura2000_areas": areas,
        "habitats": habitats,
        "housing_within_guide_distance": housing,
        "aerius": aerius,
        "inspection_scope": disclosure.scope,
    }


async def _establishments(conn: psycopg.AsyncConnection, params: dict[str, Any],
                          disclosure: Disclosure, on_site: bool = False) -> list[dict[str, Any]]:
    rows = await fetch(conn, _centred(ESTABLISHMENTS_SQL, on_site), params)
    out = []
    for row in rows:
        permits = row["active_permits"]
        if isinstance(permits, str):
            permits = json.loads(permits)
        item: dict[str, Any] = {
            "establishment_id": row["establishment_id"],
            "name": row["name"],
            "kvk_number": row["kvk_number"],
            "sole_proprietor": row["sole_proprietor"],
            "sbi_code": row["sbi_code"],
            "sbi_description": row["sbi_description"],
            "environmental_category": row["environmental_category"],
            "guide_distance_m": row["guide_distance_m"],
            "activiteitenbesluit_type": row["activiteitenbesluit_type"],
            "brzo": row["brzo"],
            "visit_frequency_years": row["visit_frequency_years"],
            "org_code": row["org_code"],
            "distance_m": rounded(row["distance_m"]),
            "x": round(row["x"], 2),
            "y": round(row["y"], 2),
            "active_permits": permits,
        }
        # Inspection details are restricted (common.Disclosure): withheld shows as null, never as zero.
        visible = disclosure.sees_inspections(row["sole_proprietor"], row["org_code"])
        item["inspections_visible"] = visible
        item["last_inspection"] = None if not visible or row["last_inspected_on"] is None else {
            "date": row["last_inspected_on"].isoformat(), "kind": row["last_kind"],
            "result": row["last_result"], "lhs_cell": row["last_lhs_cell"],
        }
        item["open_violations"] = int(row["open_violations"]) if visible else None
        out.append(redact_establishment(item, disclosure, row["org_code"]))
    return out


async def _deposition(conn: psycopg.AsyncConnection, x: float, y: float, r: float,
                      area: BaseGeometry | None = None) -> dict[str, Any]:
    circle = (area if area is not None else Point(x, y)).buffer(r, quad_segs=BUFFER_QUAD_SEGS)
    points = await coverage.point_values(conn, x, y)
    stats = await coverage.centre_stats(conn, circle.wkb)
    return {
        "unit": "mol N/ha/yr",
        "at_point": [{"year": p.year, "label": p.label, "value": rounded(p.value)} for p in points],
        "in_circle": [
            {"year": s["year"], "label": s["label"], "pixels": int(s["count"] or 0), "min": rounded(s["min"]),
             "max": rounded(s["max"]), "mean": rounded(s["mean"])}
            for s in stats
        ],
    }


def exceedance_status(deposition: float | None, kdw: float | None, margin: float) -> tuple[float | None, str | None]:
    """(deposition - KDW, status): overloaded above the KDW, approaching above KDW - margin, else below."""
    if deposition is None or kdw is None:
        return None, None
    exc = float(deposition) - float(kdw)
    if exc > 0:
        return exc, "overloaded"
    if exc > -margin:
        return exc, "approaching"
    return exc, "below"


async def _habitats(conn: psycopg.AsyncConnection, params: dict[str, Any], settings: Settings,
                   on_site: bool = False) -> list[dict[str, Any]]:
    rows = await fetch(conn, _centred(HABITATS_SQL, on_site), params)
    missing = [r["habitat_id"] for r in rows if r["hexagons"] is None]
    from_raster: dict[str, dict[str, Any]] = {}
    if missing:
        for r in await fetch(conn, HABITAT_RASTER_SQL, {"ids": missing, "year": params["year"]}):
            from_raster[r["habitat_id"]] = r
    out = []
    for row in rows:
        source = "deposition-hexagons" if row["hexagons"] is not None else None
        dep_max, dep_mean, yr = row["dep_max"], row["dep_mean"], row["year"]
        fr = from_raster.get(row["habitat_id"])
        if source is None and fr is not None and fr["dep_max"] is not None:
            source, dep_max, dep_mean, yr = "nitrogen-deposition", fr["dep_max"], fr["dep_mean"], fr["year"]
        exc, status = exceedance_status(dep_max, row["kdw"], settings.analysis_approach_margin)
        out.append({
            "habitat_id": row["habitat_id"],
            "area_name": row["area_name"],
            "area_number": row["area_number"],
            "habitat_type": row["habitat_type"],
            "habitat_types": row["habitat_types"],
            "quality": row["quality"],
            "kdw": rounded(row["kdw"]),
            "distance_m": rounded(row["distance_m"]),
            "year": yr,
            "deposition_max": rounded(dep_max),
            "deposition_mean": rounded(dep_mean),
            "exceedance": rounded(exc),
            "status": status,
            "source": source,
            "hexagons": row["hexagons"],
        })
    return out


async def _areas(conn: psycopg.AsyncConnection, params: dict[str, Any],
                 habitats: list[dict[str, Any]], on_site: bool = False) -> list[dict[str, Any]]:
    """The Natura 2000 areas within the habitat search distance, nearest first, each with the habitat type of
    the lowest KDW among its habitats nearby: from natura2000-areas when loaded, else from the habitats' names."""
    rows = await fetch(conn, _centred(AREAS_SQL, on_site), params)
    source = "natura2000-areas"
    if not rows:
        source = "natura2000-habitats"
        grouped: dict[tuple[Any, Any], dict[str, Any]] = {}
        for h in habitats:
            if h["area_name"] is None and h["area_number"] is None:
                continue
            key = (h["area_number"], h["area_name"])
            seen = grouped.get(key)
            if seen is None or (h["distance_m"] or 0) < (seen["distance_m"] or 0):
                grouped[key] = {"number": h["area_number"], "name": h["area_name"], "protection": None,
                                "status": None, "distance_m": h["distance_m"]}
        rows = sorted(grouped.values(), key=lambda a: (a["distance_m"] or 0, a["number"] or 0))
    out = []
    for a in rows:
        inside = [h for h in habitats if h["kdw"] is not None
                  and (h["area_number"] == a["number"] if a["number"] is not None else h["area_name"] == a["name"])]
        lowest = min(inside, key=lambda h: (h["kdw"], h["distance_m"] or 0), default=None)
        out.append({
            "name": a["name"], "number": a["number"], "protection": a["protection"], "status": a["status"],
            "distance_m": rounded(a["distance_m"]), "source": source,
            "lowest_kdw_habitat": None if lowest is None else {
                "habitat_type": lowest["habitat_type"], "kdw": lowest["kdw"], "habitat_id": lowest["habitat_id"]},
        })
    return out


async def _housing(conn: psycopg.AsyncConnection, params: dict[str, Any],
                   disclosure: Disclosure, on_site: bool = False) -> list[dict[str, Any]]:
    rows = await fetch(conn, _centred(HOUSING_SQL, on_site), params)
    sites: dict[str, dict[str, Any]] = {}
    for row in rows:
        site = sites.setdefault(row["site_id"], {
            "site_id": row["site_id"], "name": row["site_name"], "planned_dwellings": row["planned_dwellings"],
            "phase": row["phase"], "planned_year": row["planned_year"], "establishments": [],
        })
        reduced = reduced_guide_distance(row["environmental_category"])
        est = redact_establishment({
            "establishment_id": row["establishment_id"], "name": row["name"],
            "sole_proprietor": row["sole_proprietor"], "environmental_category": row["environmental_category"],
            "guide_distance_m": row["guide_distance_m"], "mixed_area_distance_m": reduced,
            "distance_m": rounded(row["distance_m"]),
            "severity": "conflict" if reduced is not None and row["distance_m"] < reduced else "attention",
        }, disclosure, row["org_code"])
        site["establishments"].append(est)
    return list(sites.values())


def area_context_sync(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """:func:`area_context` from plain Python (a notebook): opens its own reader connection."""
    return run_sync(settings, area_context, settings, **kwargs)
