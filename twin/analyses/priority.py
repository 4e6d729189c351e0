"""Risk-based inspection priority: establishments ranked by a transparent score, factor by factor, with
the coordinators' overrides (``twin priority override``) shown in the ranking.

Factors (weights in ``twin/priority.yaml``, overridable by ``TWIN_PRIORITY_WEIGHTS``):
environmental relevance, compliance history, overdue-ness and sensitive surroundings. The model is
documented in docs/analyses.md in the manner of the Dutch algorithm register.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from layers.registry import GUIDE_DISTANCES_M
from twin import history
from twin import sql as twin_sql
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
    run_sync,
    today,
)
from twin.analyses.context import ACTIVE_PERMIT_SQL
from twin.errors import ConfigurationError, InvalidParameter, Unauthorized
from twin.settings import Settings

NATURAL_PERSON = natural_person_sql("e")  # sole proprietors and partnerships of natural persons

FACTORS = ("relevance", "compliance", "overdue", "surroundings")
DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
DAYS_PER_YEAR = 365.25

# Inputs of every establishment in the selection. Inspections and permits are aggregated per establishment
# in one pass (a full national run is a few hash joins, not 50,000 index probes); the hexagons are those of
# the current year (the latest 1 ha year not after the reference year). No CTE around the establishments,
# so that PostgreSQL may run the per-establishment lookups in parallel workers.
INPUTS_SQL = """
WITH ins AS (
  SELECT i.establishment_id, max(i.inspected_on) AS last_on,
         json_agg(json_build_array(i.inspection_id, i.inspected_on, coalesce(i.gedrag, left(i.lhs_cell, 1)),
                                   coalesce(i.gevolg, right(i.lhs_cell, 1)))
                  ORDER BY i.inspected_on, i.inspection_id)
           FILTER (WHERE i.result = 'voorschriften overtreden') AS violations{own_inspections}
  FROM twin.inspections i JOIN twin.establishments e ON e.establishment_id = i.establishment_id
  WHERE i.inspected_on <= %(as_of)s AND {inspections} AND {in_area} AND {establishments}
  GROUP BY i.establishment_id
),
nh3 AS (
  SELECT p.establishment_id, sum(p.nh3_kg_per_year) AS kg
  FROM twin.permits p JOIN twin.establishments e ON e.establishment_id = p.establishment_id
  WHERE p.nh3_kg_per_year > 0 AND {active_permit} AND {in_area} AND {establishments}
  GROUP BY p.establishment_id
),
hs AS (  -- from the few housing sites to the establishments around them, not the other way round
  SELECT e.establishment_id, count(*) AS n
  FROM twin.housing_sites s
  JOIN twin.establishments e ON ST_DWithin(e.geom, s.geom, %(max_guide)s)
   AND ST_Distance(e.geom, s.geom) < (%(guide)s::jsonb ->> e.environmental_category)::float
  WHERE {in_area} AND {establishments}  -- (a page of ids: from those establishments to the sites instead)
  GROUP BY e.establishment_id
)
SELECT e.establishment_id, e.environmental_category, e.activiteitenbesluit_type, e.brzo, e.visit_frequency_years,
       (%(guide)s::jsonb ->> e.environmental_category)::float AS guide,
       ins.last_on, ins.violations, nh3.kg AS nh3_kg, hab.n AS overloaded_hexagons,
       dw.n AS dwellings, hs.n AS housing_sites{own_columns}
FROM twin.establishments e
LEFT JOIN ins ON ins.establishment_id = e.establishment_id
LEFT JOIN nh3 ON nh3.establishment_id = e.establishment_id
LEFT JOIN LATERAL (
  SELECT count(*) AS n FROM twin.deposition_hexagons h
  WHERE nh3.kg > 0 AND h.resolution = '1ha' AND h.year = {hex_year}
    AND ST_DWithin(h.geom, e.geom, %(nh3_r)s) AND h.deposition > h.lowest_kdw
) hab ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n FROM twin.buildings b
  WHERE b.use ILIKE '%%woon%%'
    AND ST_DWithin(b.geom, e.geom, (%(guide)s::jsonb ->> e.environmental_category)::float)
    AND ST_Distance(b.geom, e.geom) < (%(guide)s::jsonb ->> e.environmental_category)::float
) dw ON true
LEFT JOIN hs ON hs.establishment_id = e.establishment_id
WHERE {in_area} AND {establishments}
""".replace("{hex_year}", HEX_YEAR_SQL)

# For a stored ranking (every establishment, read as an admin): also the inputs as an inspector of the
# establishment's own organisation sees them (only the inspections of that organisation), and what decides
# who may see the score.
OWN_INSPECTIONS_SQL = """,
         max(i.inspected_on) FILTER (WHERE i.org_code = e.org_code) AS last_on_own,
         json_agg(json_build_array(i.inspection_id, i.inspected_on, coalesce(i.gedrag, left(i.lhs_cell, 1)),
                                   coalesce(i.gevolg, right(i.lhs_cell, 1)))
                  ORDER BY i.inspected_on, i.inspection_id)
           FILTER (WHERE i.result = 'voorschriften overtreden' AND i.org_code = e.org_code) AS violations_own"""
OWN_COLUMNS_SQL = (", ins.last_on_own, ins.violations_own, e.org_code, "
                   + NATURAL_PERSON + " AS natural_person")

# What the ranking shows of an establishment besides its score (only for the ones returned).
DETAILS_SQL = """
SELECT e.establishment_id, e.name, e.kvk_number,
       {natural_person} AS sole_proprietor,
       e.org_code, e.sbi_code, e.municipality_code,
       ST_X(e.geom) AS x, ST_Y(e.geom) AS y
FROM twin.establishments e WHERE e.establishment_id = ANY(%(ids)s)
""".replace("{natural_person}", NATURAL_PERSON)

OVERRIDES_SQL = """
SELECT o.establishment_id, o.rank, o.reason, o.author, o.created_at
FROM twin.priority_overrides o WHERE o.active AND o.establishment_id = ANY(%(ids)s)
ORDER BY o.rank, o.created_at
"""


# --- The weights -------------------------------------------------------------------------------------------
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "priority.yaml"  # package data of twin


def _default_weights() -> dict[str, Any]:
    text = DEFAULT_WEIGHTS.read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any], path: str, source: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in base:
            raise ConfigurationError(f"{source}: unknown key {where!r}; known here: {', '.join(map(str, base))}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigurationError(f"{source}: {where} must be a mapping like in twin/priority.yaml")
            out[key] = _merge(base[key], value, where, source)
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"{source}: {where} must be a number >= 0, not {value!r}")
            out[key] = value
    return out


def load_weights(settings: Settings) -> dict[str, Any]:
    """The priority weights: twin/priority.yaml, with the keys of ``TWIN_PRIORITY_WEIGHTS`` (a YAML
    file) laid over it. A bad file is a ConfigurationError naming the file and the key."""
    weights = _default_weights()
    weights["source"] = "twin/priority.yaml (default)"
    path = settings.priority_weights
    if path is None:
        return weights
    path = Path(path)
    try:
        extra = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigurationError(f"TWIN_PRIORITY_WEIGHTS={path}: cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"TWIN_PRIORITY_WEIGHTS={path}: not valid YAML ({exc})") from exc
    if not isinstance(extra, dict):
        raise ConfigurationError(f"TWIN_PRIORITY_WEIGHTS={path}: must be a mapping like twin/priority.yaml")
    merged = _merge({k: v for k, v in weights.items() if k != "source"}, extra, "", f"TWIN_PRIORITY_WEIGHTS={path}")
    merged["source"] = str(path)
    return merged


# --- The factors -------------------------------------------------------------------------------------------
def relevance(row: dict[str, Any], w: dict[str, Any], explain: bool = True) -> dict[str, Any]:
    """Environmental relevance: points for the VNG category, the Brzo and the Activiteitenbesluit type."""
    cat, ab = row["environmental_category"], row["activiteitenbesluit_type"]
    cat_pts = w["category_points"].get(cat, w["unknown_category_points"]) if cat else w["unknown_category_points"]
    brzo_pts = w["brzo_points"] if row["brzo"] else 0
    ab_pts = w["activiteitenbesluit_points"].get(ab, w["unknown_type_points"]) if ab else w["unknown_type_points"]
    if not explain:
        return {"points": float(cat_pts + brzo_pts + ab_pts)}
    return {
        "points": float(cat_pts + brzo_pts + ab_pts),
        "inputs": {"environmental_category": cat, "brzo": row["brzo"], "activiteitenbesluit_type": ab},
        "explanation": f"category {cat or 'unknown'}: {cat_pts}; Brzo: {brzo_pts}; "
                       f"Activiteitenbesluit type {ab or 'unknown'}: {ab_pts}",
    }


def compliance(violations: list[list[Any]], as_of: date, w: dict[str, Any], explain: bool = True) -> dict[str, Any]:
    """Compliance history: each violation ``[inspection id, date, gedrag, gevolg]`` in the lookback window
    weighs by its LHS cell, halves every half-life of age, and counts ``repeat_factor`` times when another
    violation preceded it within the repeat window."""
    total = 0.0
    counted = []
    dates = [date.fromisoformat(str(v[1])) for v in violations]
    for v, on in zip(violations, dates, strict=True):
        age_days = (as_of - on).days
        if age_days > w["lookback_years"] * DAYS_PER_YEAR:
            continue
        gedrag, gevolg = v[2], v[3]
        if gedrag in w["gedrag_factor"] and gevolg in w["gevolg_points"]:
            severity = w["gevolg_points"][gevolg] * w["gedrag_factor"][gedrag]
            cell = f"{gedrag}{gevolg}"
        else:
            severity, cell = w["unknown_cell_points"], None
        recency = 0.5 ** (age_days / (w["half_life_years"] * DAYS_PER_YEAR))
        repeat = any(0 < (on - other).days <= w["repeat_window_years"] * DAYS_PER_YEAR for other in dates)
        points = severity * recency * (w["repeat_factor"] if repeat else 1.0)
        total += points
        if explain:
            counted.append({"inspection_id": v[0], "date": on.isoformat(), "lhs_cell": cell,
                            "severity": severity, "recency": round(recency, 4), "repeat": repeat,
                            "points": round(points, 3)})
    capped = min(total, float(w["cap"]))
    if not explain:
        return {"points": capped}
    return {
        "points": capped,
        "inputs": {"violations": counted},
        "explanation": (f"{len(counted)} violation(s) in the last {w['lookback_years']} years: "
                        f"{total:.2f} points" + (f", capped at {w['cap']}" if capped < total else "")),
    }


def overdue(last_on: date | None, frequency: int | None, as_of: date, w: dict[str, Any],
            explain: bool = True) -> dict[str, Any]:
    """Overdue-ness: visit cycles past due since the last inspection (never inspected: a fixed number)."""
    freq = frequency or w["default_frequency_years"]
    if last_on is None:
        cycles = float(w["never_inspected_cycles"])
        why = f"never inspected: {cycles:g} cycles"
    else:
        elapsed = (as_of - last_on).days / (freq * DAYS_PER_YEAR)
        cycles = min(float(w["max_cycles"]), max(0.0, elapsed - 1.0))
        capped = f" (at most {w['max_cycles']})" if elapsed - 1 > w["max_cycles"] else ""
        why = (f"last inspection {last_on.isoformat()}, {elapsed:.2f} visit intervals of {freq} year(s) ago: "
               f"{cycles:.2f} cycles overdue{capped}") if explain else ""
    if not explain:
        return {"points": cycles * w["points_per_cycle"]}
    return {
        "points": cycles * w["points_per_cycle"],
        "inputs": {"last_inspection": last_on.isoformat() if last_on else None, "visit_frequency_years": freq,
                   "default_frequency": frequency is None, "overdue_cycles": round(cycles, 4)},
        "explanation": why,
    }


def surroundings(row: dict[str, Any], w: dict[str, Any], explain: bool = True) -> dict[str, Any]:
    """Sensitive surroundings: NH3 emitter near overloaded habitat, dwellings and housing sites within
    the guide distance."""
    nh3 = float(row["nh3_kg"] or 0)
    hexes = int(row["overloaded_hexagons"] or 0)
    nh3_pts = w["nh3_habitat_points"] if nh3 > 0 and hexes > 0 else 0
    dwellings = int(row["dwellings"] or 0)
    dw_pts = min(w["dwelling_points_max"], w["dwelling_points_each"] * dwellings)
    sites = int(row["housing_sites"] or 0)
    hs_pts = w["housing_site_points"] if sites > 0 else 0
    if not explain:
        return {"points": float(nh3_pts + dw_pts + hs_pts)}
    return {
        "points": float(nh3_pts + dw_pts + hs_pts),
        "inputs": {"nh3_kg_per_year": nh3, "overloaded_hexagons_nearby": hexes,
                   "nh3_habitat_radius_m": w["nh3_habitat_radius_m"], "guide_distance_m": row["guide"],
                   "dwellings_within_guide_distance": dwellings, "housing_sites_within_guide_distance": sites},
        "explanation": (f"NH3 {nh3:,.0f} kg/yr, {hexes} overloaded hexagon(s) within {w['nh3_habitat_radius_m']:,} m: "
                        f"{nh3_pts}; {dwellings} dwelling(s) within the guide distance: {dw_pts:g}; "
                        f"{sites} housing site(s) within it: {hs_pts}"),
    }


def score(row: dict[str, Any], as_of: date, weights: dict[str, Any],
          explain: bool = True) -> tuple[float, list[dict[str, Any]]]:
    """The score of one establishment and its factors, each with points, weight, weighted score and (when
    ``explain``) its inputs and an explanation in words."""
    violations = row["violations"]
    if isinstance(violations, str):
        violations = json.loads(violations)
    parts = {
        "relevance": relevance(row, weights["relevance"], explain),
        "compliance": compliance(violations or [], as_of, weights["compliance"], explain),
        "overdue": overdue(row["last_on"], row["visit_frequency_years"], as_of, weights["overdue"], explain),
        "surroundings": surroundings(row, weights["surroundings"], explain),
    }
    factors = []
    total = 0.0
    for name in FACTORS:
        weight = float(weights["factor_weights"][name])
        part = parts[name]
        weighted = weight * part["points"]
        total += weighted
        factor = {"factor": name, "points": round(part["points"], 3), "weight": weight, "score": round(weighted, 3)}
        if explain:
            factor |= {"explanation": part["explanation"], "inputs": part["inputs"]}
        factors.append(factor)
    return round(total, 3), factors


def total_points(row: dict[str, Any], as_of: date, weights: dict[str, Any]) -> float:
    """The score of :func:`score` without its explanations: the same factor functions, for ranking every
    establishment before the shown ones are explained."""
    return score(row, as_of, weights, explain=False)[0]


def apply_overrides(ranked: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place each overridden establishment at its chosen rank (in order of rank, then of recording); the
    others keep their computed order around them. A rank past the end puts it last."""
    by_id = {o["establishment_id"]: o for o in overrides}
    order = [item for item in ranked if item["establishment_id"] not in by_id]
    pinned = sorted((item for item in ranked if item["establishment_id"] in by_id),
                    key=lambda item: (by_id[item["establishment_id"]]["rank"],
                                      by_id[item["establishment_id"]]["created_at"]))
    for item in pinned:
        order.insert(min(by_id[item["establishment_id"]]["rank"] - 1, len(order)), item)
    return order


# --- The ranking kept per data version (migration 0019) ------------------------------------------------------
# The tables the ranking reads (INPUTS_SQL): a stored ranking is keyed by their versions in twin.layer_versions.
# The overrides are not among them: they are laid over the ranking when it is read.
RANKING_TABLES = ("establishments", "inspections", "permits", "deposition_hexagons", "buildings", "housing_sites")
RANKING_FORMAT = "1"  # raised when the scoring code changes what a stored score means
# The kept ranking of one of ``keys``, the latest reference date first: one key, or the keys of the same data,
# weights and hexagon year on the days before, whose latest is what a request of today's ranking is served while
# today's is computed (a score counts the days since the last inspection, so every day has a ranking of its own).
# National: the first request of a day took 28 s.
STORED_SQL = """
SELECT r.ranking_id, r.computed_at, r.versions, r.seconds, r.as_of FROM twin.priority_rankings r
WHERE r.key = ANY(%(keys)s) ORDER BY r.as_of DESC LIMIT 1
"""
EARLIER_DAYS = 7  # a ranking older than a week is not served for today's: the request computes today's
_refreshing: set[tuple[str, date, int | None]] = set()
_refreshing_lock = threading.Lock()
log = logging.getLogger(__name__)


def _refresh_later(settings: Settings, ref: date, year: int | None) -> None:
    """Compute and keep the ranking of ``ref`` in a thread of its own (one per database, day and year in this
    process; other processes wait for it on the advisory lock of :func:`twin.analyses.common.keep`)."""
    from twin import database

    job = (database.url_for(settings, "reader"), ref, year)
    with _refreshing_lock:
        if job in _refreshing:
            return
        _refreshing.add(job)

    def work() -> None:
        try:
            refresh_ranking_sync(settings, as_of=ref, year=year)
        except Exception:  # the next request computes it itself
            log.exception("keeping the inspection-priority ranking of %s failed", ref)
        finally:
            with _refreshing_lock:
                _refreshing.discard(job)

    threading.Thread(target=work, name=f"ranking-{ref}", daemon=True).start()
# The stored scores the caller may see, best first (ties by id in code-point order, as Python sorts them):
# the first %(n)s, how many there are, and the computed rank of given ids (the overridden ones).
ITEMS_SQL = """
SELECT p.establishment_id, {score} AS score FROM twin.priority_ranking_items p
WHERE p.ranking_id = %(ranking)s AND {visible} AND {in_area}
ORDER BY {score} DESC, p.establishment_id COLLATE "C" LIMIT %(n)s
"""
COUNT_SQL = """
SELECT count(*) AS n FROM twin.priority_ranking_items p WHERE p.ranking_id = %(ranking)s AND {visible} AND {in_area}
"""
RANKS_SQL = """
SELECT o.establishment_id, o.score,
       (SELECT count(*) FROM twin.priority_ranking_items p
        WHERE p.ranking_id = %(ranking)s AND {visible} AND {in_area}
          AND ({score} > o.score OR ({score} = o.score AND p.establishment_id COLLATE "C" < o.establishment_id)))
         + 1 AS computed_rank
FROM (SELECT p.establishment_id, {score} AS score FROM twin.priority_ranking_items p
      WHERE p.ranking_id = %(ranking)s AND {visible} AND {in_area} AND p.establishment_id = ANY(%(ids)s)) o
"""
ACTIVE_OVERRIDES_SQL = """
SELECT o.establishment_id, o.rank, o.reason, o.author, o.created_at
FROM twin.priority_overrides o WHERE o.active ORDER BY o.rank, o.created_at
"""
STORE_SQL = """
SELECT twin.priority_ranking_store(%(key)s::text, %(as_of)s::date, %(year)s::integer, %(weights_hash)s::text,
                                   %(versions)s::jsonb, %(seconds)s::float8, %(ids)s::text[], %(orgs)s::text[],
                                   %(natural)s::boolean[], %(scores)s::float8[], %(own)s::float8[])
"""


def _weights_hash(weights: dict[str, Any]) -> str:
    plain = {k: v for k, v in weights.items() if k != "source"}
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]


def ranking_key(versions: dict[str, Any], as_of: date, year: int | None, weights: dict[str, Any]) -> str:
    """The key of a stored ranking: what decides every score (the tables' versions, the reference date, the
    hexagon year asked for, the weights, the guide distances and the scoring code)."""
    parts = [RANKING_FORMAT, ",".join(f"{t}={versions[t]}" for t in RANKING_TABLES), as_of.isoformat(),
             "" if year is None else str(year), _weights_hash(weights),
             hashlib.sha256(GUIDE_JSON.encode()).hexdigest()[:8]]
    return "|".join(parts)


def _params(ref: date, year: int | None, weights: dict[str, Any], disclosure: Disclosure,
            muni: str | None = None) -> dict[str, Any]:
    return {"muni": muni, "as_of": ref, "year": year if year is not None else ref.year, "guide": GUIDE_JSON,
            "nh3_r": weights["surroundings"]["nh3_habitat_radius_m"], "disclosure_org": disclosure.org_code,
            "max_guide": max(GUIDE_DISTANCES_M.values())}


def _inputs_sql(in_area: str, disclosure: Disclosure, own: bool = False) -> str:
    return (INPUTS_SQL.replace("{in_area}", in_area)
            .replace("{inspections}", disclosure.inspection_sql("i", "e"))
            .replace("{establishments}", disclosure.establishment_sql("e"))
            .replace("{active_permit}", ACTIVE_PERMIT_SQL)
            .replace("{own_inspections}", OWN_INSPECTIONS_SQL if own else "")
            .replace("{own_columns}", OWN_COLUMNS_SQL if own else ""))


async def _versions(conn: psycopg.AsyncConnection) -> dict[str, Any] | None:
    return await kept_versions(conn, "twin.priority_rankings", RANKING_TABLES)


async def refresh_ranking(settings: Settings, *, as_of: date | None = None, year: int | None = None,
                          ) -> dict[str, Any] | None:
    """Compute the whole ranking (every establishment, as admins and as each establishment's own organisation's
    inspectors see it) for the current data and store it (twin.priority_rankings), unless it is stored already.
    Returns the stored ranking's row, or None on a database that cannot store it (:func:`twin.analyses.common.keep`).
    """
    weights = load_weights(settings)
    ref = today(as_of)

    async def find(c: psycopg.AsyncConnection, key: str) -> list[dict[str, Any]]:
        return await fetch(c, STORED_SQL, {"keys": [key]})

    async def inputs(c: psycopg.AsyncConnection) -> list[dict[str, Any]]:
        return await fetch(c, _inputs_sql("true", FULL, own=True), _params(ref, year, weights, FULL))

    def store_call(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        ids, orgs, natural, scores, own = [], [], [], [], []
        for row in rows:
            total = total_points(row, ref, weights)
            if row["last_on_own"] == row["last_on"] and row["violations_own"] == row["violations"]:
                mine = total
            else:
                mine = total_points({**row, "last_on": row["last_on_own"], "violations": row["violations_own"]},
                                    ref, weights)
            ids.append(row["establishment_id"])
            orgs.append(row["org_code"])
            natural.append(bool(row["natural_person"]))
            scores.append(total)
            own.append(mine)
        return STORE_SQL, {"as_of": ref, "year": year, "weights_hash": _weights_hash(weights), "ids": ids,
                           "orgs": orgs, "natural": natural, "scores": scores, "own": own}

    return await keep(settings, store="twin.priority_rankings", tables=RANKING_TABLES,
                      key_of=lambda v: ranking_key(v, ref, year, weights), find=find, inputs=inputs,
                      store_call=store_call)


def refresh_ranking_sync(settings: Settings, **kwargs: Any) -> dict[str, Any] | None:
    """:func:`refresh_ranking` from plain Python (after a load: the first request then finds it stored)."""
    import asyncio

    return asyncio.run(refresh_ranking(settings, **kwargs))


async def _stored_ranking(conn: psycopg.AsyncConnection, settings: Settings, ref: date, year: int | None,
                          weights: dict[str, Any], disclosure: Disclosure, in_area: str, muni: str | None,
                          limit: int | None, refresh: bool, earlier: bool = False) -> dict[str, Any] | None:
    """The caller's ranking read from the one stored for the current data (computed and stored first when
    ``refresh``): the items up to ``limit`` after the overrides (with their computed ranks), how many there are,
    and the overrides; None when there is none to read (then the ranking is computed live). ``earlier``: when
    none is kept for ``ref`` but one of the same data of a day before is, that one (its ``as_of`` in ``kept``)
    while the one of ``ref`` is computed in the background."""
    versions = await _versions(conn)
    if versions is None:
        return None
    key = ranking_key(versions, ref, year, weights)
    found = await fetch(conn, STORED_SQL, {"keys": [key]})
    if not found and refresh and earlier:
        found = await fetch(conn, STORED_SQL, {"keys": [ranking_key(versions, ref - timedelta(days=n), year, weights)
                                                         for n in range(1, EARLIER_DAYS + 1)]})
        if found:
            _refresh_later(settings, ref, year)
    if not found and refresh:
        try:
            stored = await refresh_ranking(settings, as_of=ref, year=year)
        except psycopg.OperationalError:  # the primary (where it is stored) is unreachable: computed live
            stored = None
        if stored is not None and stored["versions"] == versions:
            # Read back on the request's own connection: a replica that has not replayed the store yet would find
            # no items for it, so then it is computed live this once.
            found = await fetch(conn, STORED_SQL, {"keys": [key]})
    if not found:
        return None
    kept = found[0]
    if disclosure.role == "admin":
        score_sql, visible = "p.score", "true"
    elif disclosure.role == "inspector":
        score_sql, visible = "p.score_own", ("p.org_code = %(disclosure_org)s" if disclosure.org_code else "false")
    elif disclosure.role == "advisor":
        score_sql, visible = "p.score", "NOT p.natural_person"
    else:
        score_sql, visible = "p.score", "false"
    area = in_area if in_area == "true" else (
        f"p.establishment_id IN (SELECT e.establishment_id FROM twin.establishments e WHERE {in_area})")

    def sql(text: str) -> str:
        return text.replace("{score}", score_sql).replace("{visible}", visible).replace("{in_area}", area)

    params = {"ranking": kept["ranking_id"], "disclosure_org": disclosure.org_code, "muni": muni}
    overrides = await fetch(conn, ACTIVE_OVERRIDES_SQL)
    pinned = {r["establishment_id"]: r for r in await fetch(
        conn, sql(RANKS_SQL), params | {"ids": [o["establishment_id"] for o in overrides]})} if overrides else {}
    overrides = [o for o in overrides if o["establishment_id"] in pinned]  # those in the caller's ranking
    # Enough of the top for ``limit`` items besides the pinned ones: the overrides place those among them.
    n = None if limit is None else limit + len(pinned)
    top = await twin_sql.fetch(conn, sql(ITEMS_SQL), params | {"n": n}, timeout=twin_sql.ANALYSIS_TIMEOUT)
    total = len(top) if n is None or len(top) < n else (
        await twin_sql.fetch(conn, sql(COUNT_SQL), params, timeout=twin_sql.ANALYSIS_TIMEOUT))[0][0]
    items = [{"establishment_id": eid, "computed_rank": rank} for rank, (eid, _) in enumerate(top, start=1)]
    listed = {i["establishment_id"] for i in items}
    items += [{"establishment_id": eid, "computed_rank": r["computed_rank"]} for eid, r in pinned.items()
              if eid not in listed]
    return {"items": items, "total": int(total), "overrides": overrides, "kept": kept}


async def inspection_priority(
    conn: psycopg.AsyncConnection,
    settings: Settings,
    *,
    municipality_code: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    as_of: date | None = None,
    year: int | None = None,
    disclosure: Disclosure = FULL,
    stored: bool = True,
) -> dict[str, Any]:
    """The ranking of establishments (of a municipality, or all the caller may plan) by risk score,
    with the factors one by one and the coordinators' overrides. ``year``: the reference year of the
    deposition hexagons (default the year of ``as_of``).

    ``stored``: read the scores from the ranking kept for the current data (twin.priority_rankings, computed
    and stored on the first request of all establishments after the data changed); a municipality is read from
    it when it is there, else computed live. As of a past state (:func:`twin.history.as_of`) always live."""
    if not disclosure.inspections:
        raise Unauthorized(
            "the inspection priority is built on restricted inspection data: send an API key of an advisor, "
            "inspector or admin as 'Authorization: Bearer <key>' or 'X-API-Key'."
        )
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}, not {limit}", parameter="limit")
    weights = load_weights(settings)
    ref = today(as_of)
    muni = None
    in_area = "true"
    if municipality_code is not None:
        muni = await municipality(conn, municipality_code)
        in_area = ("ST_Intersects(e.geom, (SELECT m.geom FROM twin.municipalities m WHERE m.code = %(muni)s))")
    params = _params(ref, year, weights, disclosure, muni["code"] if muni else None)
    found = None
    if stored and history.active() is None:
        # today's ranking (no as_of asked for) may be served as of an earlier day while today's is computed
        found = await _stored_ranking(conn, settings, ref, year, weights, disclosure, in_area, params["muni"],
                                      limit, refresh=muni is None, earlier=as_of is None)
    rows_by_id: dict[str, dict[str, Any]] = {}
    if found is not None:
        items, matched, overrides, kept = found["items"], found["total"], found["overrides"], found["kept"]
        source = {"stored": True, "computed_at": kept["computed_at"].isoformat(), "data_versions": kept["versions"],
                  "compute_seconds": None if kept["seconds"] is None else round(kept["seconds"], 1)}
        if kept["as_of"] != ref:  # the ranking of an earlier day: shown as of that day, scores and all
            ref = kept["as_of"]
            params = _params(ref, year, weights, disclosure, params["muni"])
            source["refreshing"] = True
    else:
        rows = await fetch(conn, _inputs_sql(in_area, disclosure), params)
        # Score everything (numbers only), rank, then explain the establishments that are shown.
        scored = sorted(((total_points(row, ref, weights), row["establishment_id"]) for row in rows),
                        key=lambda t: (-t[0], t[1]))
        rows_by_id = {row["establishment_id"]: row for row in rows}
        source = {"stored": False, "computed_at": datetime.now(UTC).isoformat(), "data_versions": None,
                  "compute_seconds": None}
        items = [{"establishment_id": eid, "computed_rank": n} for n, (_, eid) in enumerate(scored, start=1)]
        matched = len(items)
        overrides = await fetch(conn, OVERRIDES_SQL, {"ids": [i["establishment_id"] for i in items]})
    by_id = {o["establishment_id"]: o for o in overrides}
    final = apply_overrides(items, overrides)
    for n, item in enumerate(final, start=1):
        item["rank"] = n
    shown = final if limit is None else final[:limit]
    shown_ids = [i["establishment_id"] for i in shown]
    if found is not None:  # the inputs of the shown establishments only, as the caller sees them
        rows_by_id = {row["establishment_id"]: row for row in await fetch(
            conn, _inputs_sql("e.establishment_id = ANY(%(ids)s)", disclosure), params | {"ids": shown_ids})}
    details = {d["establishment_id"]: d for d in await fetch(conn, DETAILS_SQL, {"ids": shown_ids})}
    ranking = []
    for item in shown:
        row = rows_by_id.get(item["establishment_id"])
        d = details.get(item["establishment_id"])
        if row is None or d is None:  # removed since the scores were read: not shown
            continue
        total, factors = score(row, ref, weights)
        o = by_id.get(item["establishment_id"])
        ranking.append(redact_establishment({
            "rank": item["rank"], "computed_rank": item["computed_rank"],
            "establishment_id": row["establishment_id"], "name": d["name"], "kvk_number": d["kvk_number"],
            "sole_proprietor": d["sole_proprietor"], "sbi_code": d["sbi_code"],
            "environmental_category": row["environmental_category"], "municipality_code": d["municipality_code"],
            "org_code": d["org_code"], "x": round(d["x"], 2), "y": round(d["y"], 2),
            "score": total, "factors": factors,
            "override": None if o is None else {"rank": o["rank"], "reason": o["reason"], "author": o["author"],
                                                "created_at": o["created_at"].isoformat()},
        }, disclosure, d["org_code"]))
    return {
        "as_of": ref.isoformat(),
        # when the scores were computed and from which data (a stored ranking: the versions of the tables it read)
        "ranking_as_of": source["computed_at"],
        "ranking_source": source,
        "municipality": None if muni is None else {"code": muni["code"], "name": muni["name"]},
        "scope": disclosure.scope,
        "numberMatched": matched,
        "numberReturned": len(ranking),
        "weights": weights,
        "guide_distances_m": GUIDE_DISTANCES_M,
        "ranking": ranking,
    }


def inspection_priority_sync(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """:func:`inspection_priority` from plain Python (a notebook): opens its own reader connection."""
    return run_sync(settings, inspection_priority, settings, **kwargs)
