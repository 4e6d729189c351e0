"""Housing against nitrogen and zoning: for every planned housing site, the deposition on it, the
overloaded and approaching-overload habitat hexagons nearby, the establishments whose VNG guide distance
reaches into it, and a verdict (no constraint / attention / conflict) with the reasons in words.

Returned as a GeoJSON FeatureCollection (WGS84) so that the map can colour the sites. The rules and the
settings they use are in docs/analyses.md.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg

from layers.messages import DEFAULT_LANGUAGE, number, text
from layers.registry import GUIDE_DISTANCES_M
from twin import coverage, history
from twin.access import natural_person_sql
from twin.analyses.common import (
    FULL,
    GUIDE_JSON,
    HEX_YEAR_SQL,
    Disclosure,
    fetch,
    keep,
    kept_versions,
    municipality,
    redact_establishment,
    reduced_guide_distance,
    rounded,
    run_sync,
    today,
)
from twin.errors import InvalidParameter
from twin.settings import Settings

NATURAL_PERSON = natural_person_sql("e")  # sole proprietors and partnerships of natural persons

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
       hx.worst_exceedance, hx.max_exceedance, hx.nearest_overloaded_m, hx.nearest_approaching_m,
       nh.area_name AS nearest_area_name, nh.area_number AS nearest_area_number,
       nh.habitat_type AS nearest_habitat_type, nh.kdw AS nearest_kdw,
       est.list AS establishments
FROM area
JOIN twin.housing_sites s
  ON (%(sites)s::text[] IS NULL OR s.site_id = ANY(%(sites)s::text[]))
  AND (area.geom IS NULL OR (s.geom && area.geom AND ST_Intersects(s.geom, area.geom)
                             AND NOT ST_Touches(s.geom, area.geom)))
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
         max(x.exc) AS max_exceedance,
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
           'establishment_id', e.establishment_id, 'name', e.name,
           'sole_proprietor', {natural_person},
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
""".replace("{natural_person}", NATURAL_PERSON).replace(
    "{latest_raster_year}", coverage.LATEST_YEAR_SQL.format(year="%(year)s", geom="s.geom")).replace(
    "{weighted}", coverage.WEIGHTED_SQL.format(year="dy.year", geom="s.geom")).replace("{hex_year}", HEX_YEAR_SQL)


# --- Every site, kept per data version (migration 0019) -----------------------------------------------------
# The tables SITES_SQL reads: the rows for every site are stored (twin.analysis_results) under their versions, the
# reference year and the settings, so that the map's request of all sites reads them instead of computing them.
# No restricted table among them: what a caller is shown is decided by _site, as for live rows.
TABLES = ("housing_sites", "municipalities", "deposition_hexagons", "establishments", "nitrogen_deposition",
          "natura2000_habitats", "natura2000_areas")
ANALYSIS = "housing-nitrogen"
ROWS_FORMAT = "1"  # raised when SITES_SQL changes what a stored row holds
STORED_SQL = """
SELECT a.rows, a.computed_at, a.versions, a.seconds FROM twin.analysis_results a
WHERE a.analysis = %(analysis)s AND a.key = %(key)s
"""
# The stored rows of the sites overlapping one municipality (each row lists them), picked in the database: the
# national answer is 24 MB of JSON, of which a municipality needs a few rows.
STORED_MUNICIPALITY_SQL = """
SELECT coalesce((SELECT jsonb_agg(r ORDER BY r->>'site_id') FROM jsonb_array_elements(a.rows) r
                 WHERE r->'municipalities' @> jsonb_build_array(jsonb_build_object('code', %(muni)s::text))),
                '[]'::jsonb) AS rows, a.computed_at, a.versions, a.seconds
FROM twin.analysis_results a
WHERE a.analysis = %(analysis)s AND a.key = %(key)s
"""
STORE_SQL = """
SELECT twin.analysis_result_store(%(analysis)s::text, %(key)s::text, %(versions)s::jsonb, %(seconds)s::float8,
                                  %(rows)s::jsonb)
"""


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _key(versions: dict[str, Any], params: dict[str, Any]) -> str:
    """What decides the rows of every site: the tables' versions, the reference year and the settings."""
    settings_part = json.dumps({k: params[k] for k in ("year", "margin", "hex_r", "guide", "max_guide")},
                               sort_keys=True)
    return "|".join([ROWS_FORMAT, ",".join(f"{t}={versions[t]}" for t in TABLES),
                     hashlib.sha256(settings_part.encode()).hexdigest()[:16]])


async def _versions(conn: psycopg.AsyncConnection) -> dict[str, Any] | None:
    return await kept_versions(conn, "twin.analysis_results", TABLES)


async def refresh_sites(settings: Settings, params: dict[str, Any]) -> dict[str, Any] | None:
    """Compute the rows of every site for the current data and store them (twin.analysis_results), unless they
    are stored already; the stored entry (rows, computed_at, versions), or None on a database that cannot store
    (:func:`twin.analyses.common.keep`)."""
    async def find(c: psycopg.AsyncConnection, key: str) -> list[dict[str, Any]]:
        return await fetch(c, STORED_SQL, {"analysis": ANALYSIS, "key": key})

    async def inputs(c: psycopg.AsyncConnection) -> list[dict[str, Any]]:
        return await fetch(c, SITES_SQL.replace("{area}", "NULL::geometry"),
                           {**params, "muni": None, "area": None, "sites": None})

    def store_call(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        return STORE_SQL, {"analysis": ANALYSIS, "rows": json.dumps(rows, default=_json_value)}

    return await keep(settings, store="twin.analysis_results", tables=TABLES, key_of=lambda v: _key(v, params),
                      find=find, inputs=inputs, store_call=store_call)


async def _stored_rows(conn: psycopg.AsyncConnection, settings: Settings, params: dict[str, Any],
                       municipality: str | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """The rows of every site for the current data, stored (computed and stored first when missing); None when
    the database cannot store them. With ``municipality``: only the rows of its sites, and None when nothing is
    stored yet (a municipality does not start the computation of every site)."""
    versions = await _versions(conn)
    if versions is None:
        return None
    key = _key(versions, params)
    found = await fetch(conn, STORED_SQL if municipality is None else STORED_MUNICIPALITY_SQL,
                        {"analysis": ANALYSIS, "key": key, "muni": municipality})
    if not found and municipality is not None:
        return None
    if not found:
        try:
            stored = await refresh_sites(settings, params)
        except psycopg.OperationalError:  # the primary (where it is stored) is unreachable: computed live
            stored = None
        if stored is None or stored["versions"] != versions:
            return None
        found = [stored]
    entry = found[0]
    rows = entry["rows"]
    return (json.loads(rows) if isinstance(rows, str) else rows), entry


@lru_cache(maxsize=4096)
def _label(lang: str, key: str, *params: tuple[str, str]) -> str:
    """A message whose parameters repeat from site to site (labels, thresholds, sources), formatted once: every
    site of a national answer has a dozen of them."""
    return text(lang, key, **dict(params))


def _m(value: float | None, lang: str) -> str:
    """A distance in whole metres as the language writes it (``5.000`` / ``5,000``)."""
    return number(value or 0, lang, 0)


def _habitat_named(hx: dict[str, Any], lang: str = "en") -> str:
    """' (Natura 2000 area Veluwe, habitat type H4030, KDW 1,071 mol N/ha/yr)' for the nearest hexagon named."""
    words = []
    if hx.get("nearest_area"):
        number_ = f" ({hx['nearest_area_number']})" if hx.get("nearest_area_number") is not None else ""
        words.append(text(lang, "reason.area", name=f"{hx['nearest_area']}{number_}"))
    if hx.get("nearest_habitat_type"):
        kdw = hx.get("nearest_kdw")
        words.append(text(lang, "reason.habitat_kdw", type=hx["nearest_habitat_type"], kdw=_m(kdw, lang))
                     if kdw is not None else text(lang, "reason.habitat", type=hx["nearest_habitat_type"]))
    return f" ({', '.join(words)})" if words else ""


def habitat_label(hx: dict[str, Any]) -> str | None:
    """The habitat a verdict names, in short: 'Veluwe (57), H4030, KDW 1071'."""
    parts = []
    if hx.get("nearest_area"):
        parts.append(hx["nearest_area"] + (f" ({hx['nearest_area_number']})" if hx.get("nearest_area_number") else ""))
    if hx.get("nearest_habitat_type"):
        parts.append(str(hx["nearest_habitat_type"]))
    if hx.get("nearest_kdw") is not None:
        parts.append(f"KDW {hx['nearest_kdw']:.0f}")
    return ", ".join(parts) or None


def criteria_for(site: dict[str, Any], settings: Settings, lang: str = "en") -> list[dict[str, Any]]:
    """Every criterion of the verdict with its value, thresholds, source and whether it triggered: one row per
    establishment whose VNG guide distance reaches the site (or one 'none' row), the distance to the nearest
    overloaded habitat hexagon and the nitrogen headroom within the search radius. The verdict is derived
    from these rows only (:func:`verdict_for`), so a verdict and its table cannot disagree.

    Each row: ``criterion`` (zoning / habitat-distance / nitrogen-headroom), ``driver`` (zoning / nitrogen),
    ``subject`` (what it concerns), ``value`` and ``unit``, ``thresholds`` ({effect: number}, the effect applies
    below the number, for habitat-distance at or below), ``triggered``, ``effect`` (the verdict it leads to,
    or None), ``source``, ``label``, ``threshold_text`` and ``reason`` (a sentence, None when not triggered)."""
    hx = site["habitats"]
    radius = settings.analysis_housing_habitat_radius_m
    near = settings.analysis_housing_conflict_habitat_m
    margin = settings.analysis_approach_margin
    rows: list[dict[str, Any]] = []
    for e in site["establishments"]:
        mixed = e["mixed_area_distance_m"]
        guide = e["guide_distance_m"]
        who = f"{e['name']} ({e['establishment_id']})" if e.get("name") else e["establishment_id"]
        conflict = mixed is not None and e["distance_m"] < mixed
        params = {"who": who, "cat": e["environmental_category"], "guide": _m(guide, lang),
                  "distance": _m(e["distance_m"], lang), "mixed": _m(mixed, lang)}
        rows.append({
            "criterion": "zoning", "driver": "zoning", "label": _label(lang, "criterion.zoning"),
            "subject": who, "establishment_id": e["establishment_id"],
            "value": e["distance_m"], "unit": "m",
            "thresholds": {"attention": guide, "conflict": mixed},
            "threshold_text": _label(lang, "criterion.threshold_zoning", ("guide", _m(guide, lang)),
                                     ("mixed", _m(mixed, lang))),
            "triggered": True, "effect": "conflict" if conflict else "attention",
            "source": _label(lang, "criterion.source_zoning", ("cat", e["environmental_category"])),
            "reason": text(lang, "reason.zoning_conflict" if conflict else "reason.zoning_attention", **params),
        })
    if not site["establishments"]:
        rows.append({
            "criterion": "zoning", "driver": "zoning", "label": _label(lang, "criterion.zoning"),
            "subject": _label(lang, "criterion.subject_none"), "establishment_id": None, "value": None, "unit": "m",
            "thresholds": {}, "threshold_text": _label(lang, "criterion.threshold_zoning_any"),
            "triggered": False, "effect": None, "source": _label(lang, "criterion.source_zoning_any"), "reason": None,
        })
    named = _habitat_named(hx, lang)
    year = hx.get("year")
    nearest = hx["nearest_overloaded_m"]
    over_near = nearest is not None and nearest <= near
    overloaded = None
    if hx["overloaded_hexagons"]:
        overloaded = text(lang, "reason.overloaded", n=hx["overloaded_hexagons"],
                          ha=number(hx["overloaded_ha"], lang, 1), radius=_m(radius, lang),
                          distance=_m(nearest, lang), named=named,
                          exceedance=_m(hx["worst_exceedance"], lang))
    rows.append({
        "criterion": "habitat-distance", "driver": "nitrogen", "label": _label(lang, "criterion.habitat_distance"),
        "subject": habitat_label(hx) if hx["overloaded_hexagons"] else None,
        "value": nearest, "unit": "m", "thresholds": {"conflict": near},
        "threshold_text": _label(lang, "criterion.threshold_habitat", ("near", _m(near, lang))),
        "triggered": over_near, "effect": "conflict" if over_near else None,
        "source": _label(lang, "criterion.source_habitat", ("year", str(year) if year else "–")),
        "reason": text(lang, "reason.overloaded_near", what=overloaded, near=_m(near, lang)) if over_near else None,
        "none_text": None if nearest is not None else _label(lang, "criterion.none_within",
                                                              ("radius", _m(radius, lang))),
    })
    worst = hx.get("max_exceedance")
    headroom = None if worst is None else rounded(-worst)
    approaching = hx["approaching_hexagons"] > 0
    tight = bool(hx["overloaded_hexagons"] or approaching)
    reasons = []
    if hx["overloaded_hexagons"] and not over_near:
        reasons.append(overloaded)
    if approaching:
        reasons.append(text(lang, "reason.approaching", n=hx["approaching_hexagons"],
                            ha=number(hx["approaching_ha"], lang, 1), radius=_m(radius, lang),
                            margin=_m(margin, lang), distance=_m(hx["nearest_approaching_m"], lang),
                            named=named if not hx["overloaded_hexagons"] else ""))
    rows.append({
        "criterion": "nitrogen-headroom", "driver": "nitrogen", "label": _label(lang, "criterion.headroom"),
        "subject": habitat_label(hx) if tight else None,
        "value": headroom, "unit": "mol N/ha/yr", "thresholds": {"attention": margin},
        "threshold_text": _label(lang, "criterion.threshold_headroom", ("margin", _m(margin, lang)),
                                     ("radius", _m(radius, lang))),
        "triggered": tight, "effect": "attention" if tight else None,
        "source": _label(lang, "criterion.source_headroom", ("year", str(year) if year else "–")),
        "reason": "; ".join(r for r in reasons if r) or None,
        "reasons": [r for r in reasons if r],
        "none_text": None if headroom is not None else _label(lang, "criterion.no_hexagons",
                                                               ("radius", _m(radius, lang))),
    })
    return rows


def verdict_for(site: dict[str, Any], settings: Settings, lang: str = "en") -> tuple[str, list[str]]:
    """The verdict of one site and its reasons in words, from the figures of :func:`housing_nitrogen`.

    conflict: an establishment closer than its guide distance one step lower (what a mixed area allows),
    or an overloaded habitat hexagon within ``analysis_housing_conflict_habitat_m``.
    attention: an establishment closer than its full guide distance, an overloaded hexagon farther away but
    within ``analysis_housing_habitat_radius_m``, or hexagons approaching overload within that radius.
    """
    verdict, reasons, _, _ = judge(site, settings, lang)
    return verdict, reasons


def judge(site: dict[str, Any], settings: Settings, lang: str = "en",
          ) -> tuple[str, list[str], list[dict[str, Any]], list[str]]:
    """(verdict, reasons, criteria, drivers): the verdict from :func:`criteria_for`; the drivers are the kinds of
    criterion (zoning, nitrogen) that lead to it."""
    rows = criteria_for(site, settings, lang)
    conflict = [r for r in rows if r["effect"] == "conflict"]
    attention = [r for r in rows if r["effect"] == "attention"]

    def sentences(chosen: list[dict[str, Any]]) -> list[str]:
        out: list[str] = []
        for r in chosen:
            out.extend(r.get("reasons") or ([r["reason"]] if r["reason"] else []))
        return out

    if conflict:
        verdict, drivers_of = "conflict", conflict
        reasons = sentences(conflict) + sentences(attention)
    elif attention:
        verdict, drivers_of = "attention", attention
        reasons = sentences(attention)
    else:
        verdict, drivers_of = "no constraint", []
        reasons = [text(lang, "reason.none", radius=_m(settings.analysis_housing_habitat_radius_m, lang))]
    drivers = [d for d in ("zoning", "nitrogen") if any(r["driver"] == d for r in drivers_of)]
    return verdict, reasons, rows, drivers


def _site(row: dict[str, Any], settings: Settings, disclosure: Disclosure, lang: str = "en") -> dict[str, Any]:
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
            # the largest exceedance (deposition - KDW, negative: headroom) of any hexagon within the radius
            "max_exceedance": rounded(row["max_exceedance"]),
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
    props["verdict"], props["reasons"], props["criteria"], props["drivers"] = judge(props, settings, lang)
    props["verdict_label"] = _label(lang, f"verdict.{props['verdict']}")
    props["indicative"] = True  # a first signal from the twin's data, not a legal test (docs/analyses.md)
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
    site_ids: list[str] | None = None,
    verdicts: list[str] | None = None,
    lang: str = DEFAULT_LANGUAGE,
    stored: bool = True,
) -> dict[str, Any]:
    """Every housing site (or those overlapping a municipality or an RD polygon) with its deposition,
    nearby overloaded habitat, guide-distance conflicts and verdict, as a GeoJSON FeatureCollection.

    ``year``: the reference year (default the year of ``as_of``, default today): per site the latest
    deposition year not after it is used. ``site_ids`` and ``verdicts`` keep only those sites and verdicts;
    ``lang`` is the language of the reasons and labels.

    ``stored``: for every site (no municipality or area), read the rows kept for the current data and reference
    year (twin.analysis_results; computed and stored on the first request after the data changed). As of a past
    state (:func:`twin.history.as_of`) always live.
    """
    if verdicts is not None:
        unknown = [v for v in verdicts if v not in VERDICTS]
        if unknown:
            raise InvalidParameter(f"verdict must be one of {', '.join(VERDICTS)}, not {unknown[0]!r}",
                                   parameter="verdict")
    ref_year = year if year is not None else today(as_of).year
    muni = None
    if municipality_code is not None:
        muni = await municipality(conn, municipality_code)
        area_sql = "(SELECT geom FROM twin.municipalities WHERE code = %(muni)s)"
    elif area_wkb is not None:
        area_sql = "ST_GeomFromWKB(%(area)s, 28992)"
    else:
        area_sql = "NULL::geometry"
    params = {**sites_params(settings, ref_year), "muni": muni["code"] if muni else None, "area": area_wkb,
              "sites": site_ids}
    kept = None
    if stored and area_wkb is None and history.active() is None:
        # every site: stored (computed first when missing); a municipality: its sites picked from the stored rows
        # in the database when they are there (STORED_MUNICIPALITY_SQL: each row lists the municipalities its site
        # overlaps by the live query's own test, intersecting and not only touching), else live
        kept = await _stored_rows(conn, settings, params, municipality=muni["code"] if muni else None)
    if kept is not None:
        wanted = None if site_ids is None else set(site_ids)
        rows = kept[0] if wanted is None else [r for r in kept[0] if r["site_id"] in wanted]
        source = {"stored": True, "computed_at": kept[1]["computed_at"].isoformat(),
                  "data_versions": kept[1]["versions"],
                  "compute_seconds": None if kept[1]["seconds"] is None else round(kept[1]["seconds"], 1)}
    else:
        rows = await fetch(conn, SITES_SQL.replace("{area}", area_sql), params)
        source = {"stored": False}
    features = [_site(row, settings, disclosure, lang) for row in rows]
    if verdicts is not None:
        features = [f for f in features if f["properties"]["verdict"] in verdicts]
    counts = {v: sum(1 for f in features if f["properties"]["verdict"] == v) for v in VERDICTS}
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "municipality": None if muni is None else {"code": muni["code"], "name": muni["name"]},
        "reference_year": ref_year,
        "verdicts": counts,
        "verdict_filter": verdicts,
        "indicative": True,
        "lang": lang,
        # the figures of every site stored per data version: when they were computed and from which versions
        "analysis_source": source,
        "parameters": {
            "habitat_radius_m": settings.analysis_housing_habitat_radius_m,
            "conflict_habitat_distance_m": settings.analysis_housing_conflict_habitat_m,
            "approach_margin": settings.analysis_approach_margin,
            "guide_distances_m": GUIDE_DISTANCES_M,
        },
    }


def sites_params(settings: Settings, year: int) -> dict[str, Any]:
    """The parameters of SITES_SQL that decide every site's figures: the reference year and the settings."""
    return {"year": year, "margin": settings.analysis_approach_margin,
            "hex_r": settings.analysis_housing_habitat_radius_m, "guide": GUIDE_JSON,
            "max_guide": max(GUIDE_DISTANCES_M.values())}


def refresh_sites_sync(settings: Settings, *, year: int | None = None) -> dict[str, Any] | None:
    """Store the rows of every site for the current data (default: this year's), e.g. right after a load, so that
    the first request finds them; see :func:`refresh_sites`."""
    import asyncio

    return asyncio.run(refresh_sites(settings, sites_params(settings, year if year is not None else today(None).year)))


def housing_nitrogen_sync(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """:func:`housing_nitrogen` from plain Python (a notebook): opens its own reader connection."""
    return run_sync(settings, housing_nitrogen, settings, **kwargs)


CSV_COLUMNS = ("site_id", "name", "municipality_code", "municipalities", "planned_dwellings", "phase", "planned_year",
               "area_ha", "verdict", "verdict_label", "indicative", "drivers", "deposition_year", "deposition_mean",
               "deposition_max", "hexagon_year", "nearest_overloaded_m", "nearest_approaching_m", "worst_exceedance",
               "headroom", "habitat", "establishments_within_guide", "nearest_establishment_m", "criteria", "reasons",
               "lon", "lat")


def _positions(c: Any) -> list[tuple[float, float]]:
    if c and isinstance(c[0], int | float):
        return [(float(c[0]), float(c[1]))]
    return [p for part in c for p in _positions(part)]


def housing_csv(result: dict[str, Any]) -> str:
    """The sites of a :func:`housing_nitrogen` answer as CSV (one row per site; the criteria and reasons joined
    with ' | '; lon/lat: a point on the site's bounding box centre, WGS84), for spreadsheets."""
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for f in result["features"]:
        p = f["properties"]
        hx = p["habitats"]
        coords = _positions(f["geometry"]["coordinates"])
        lon = round((min(c[0] for c in coords) + max(c[0] for c in coords)) / 2, 7) if coords else None
        lat = round((min(c[1] for c in coords) + max(c[1] for c in coords)) / 2, 7) if coords else None
        criteria = " | ".join(
            f"{c['criterion']}: {'-' if c['value'] is None else c['value']} {c['unit']} "
            f"({c['threshold_text']}) -> {c['effect'] or 'none'}" for c in p.get("criteria") or [])
        w.writerow([
            p["site_id"], p["name"], p["municipality_code"], ";".join(m["code"] for m in p["municipalities"]),
            p["planned_dwellings"], p["phase"], p["planned_year"], p["area_ha"], p["verdict"], p.get("verdict_label"),
            "true", ";".join(p.get("drivers") or []), p["deposition"]["year"], p["deposition"]["mean"],
            p["deposition"]["max"], hx["year"], hx["nearest_overloaded_m"], hx["nearest_approaching_m"],
            hx["worst_exceedance"], None if hx.get("max_exceedance") is None else -hx["max_exceedance"],
            habitat_label(hx), len(p["establishments"]),
            min((e["distance_m"] for e in p["establishments"]), default=None), criteria, " | ".join(p["reasons"]),
            lon, lat,
        ])
    return out.getvalue()
