"""Visit plans: next year's plan from the model, the rules or a blend, with a random share of the capacity
(so that future inspections keep teaching the model about establishments it would not pick), stored dated
and versioned in twin.visit_plans / twin.visit_plan_items; and reading the latest stored plan for the API."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from twin.analyses import priority as rules
from twin.errors import InvalidParameter
from twin.model import backtest, features
from twin.model.estimator import Model, reasons
from twin.settings import Settings

METHODS = ("model", "rules", "blend")


def rules_reasons(row: dict[str, Any], cutoff: date, weights: dict[str, Any]) -> list[dict[str, Any]]:
    """The rule-based factors with points, in words (the existing explanation of twin.analyses.priority)."""
    total, factors = rules.score(row, cutoff, weights)
    return [{"feature": f["factor"], "label": f["factor"], "value": f["points"], "contribution": f["score"],
             "text": f"{f['factor']}: {f['explanation']}"} for f in factors if f["score"] > 0]


def plan_year(cutoff: date) -> int:
    """The year a plan made with data before ``cutoff`` is for: that year when the cut-off is 1 January,
    else the next one (a plan made in November is next year's)."""
    return cutoff.year if (cutoff.month, cutoff.day) == (1, 1) else cutoff.year + 1


def select(score: np.ndarray, capacity: int, random_share: float, seed: int,
           tiebreak: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the plan (the risk part by score, then the random part drawn from the rest) and whether
    each was drawn at random. Equal scores are ordered by ``tiebreak`` (higher first), then by position."""
    n = len(score)
    capacity = min(capacity, n)
    n_random = int(round(capacity * random_share))
    n_risk = capacity - n_random
    second = np.zeros(n) if tiebreak is None else -np.asarray(tiebreak, dtype=float)
    order = np.lexsort((np.arange(n), second, -score))
    risk = order[:n_risk]
    rest = order[n_risk:]
    rng = np.random.default_rng(seed)
    drawn = rng.choice(rest, size=min(n_random, len(rest)), replace=False) if n_random else np.array([], int)
    drawn = drawn[np.argsort(-score[drawn], kind="stable")]
    idx = np.concatenate([risk, drawn]).astype(int)
    return idx, np.concatenate([np.zeros(len(risk), bool), np.ones(len(drawn), bool)])


def make_plan(conn: psycopg.Connection, settings: Settings, *, method: str, capacity: int, random_share: float,
              cutoff: date, model: Model | None, seed: int = 0, note: str | None = None) -> dict[str, Any]:
    """Build and store a plan; returns its header with the first items."""
    if method not in METHODS:
        raise InvalidParameter(f"--method must be one of {', '.join(METHODS)}, not {method!r}", parameter="method")
    if capacity < 1:
        raise InvalidParameter(f"--capacity must be 1 or more, not {capacity}", parameter="capacity")
    if not 0 <= random_share <= 1:
        raise InvalidParameter(f"--random-share must be between 0 and 1, not {random_share}", parameter="random_share")
    from twin.model.registry import cache_folder

    frame = features.features_at(conn, cutoff, cache_dir=cache_folder(settings.data_dir))
    weights = rules.load_weights(settings)
    rules_s = np.array([rules.total_points(r, cutoff, weights) for r in frame["_rules_row"]], dtype=float)
    prob = model.predict(frame) if model is not None and method != "rules" else None
    if method == "model":
        assert prob is not None
        score = prob
    elif method == "blend":
        assert prob is not None
        score = backtest.blend(prob, rules_s)
    else:
        score = rules_s
    # The isotonic calibration is a step function (some 80 distinct chances): establishments on one step are
    # ordered by the trees' own score (the calibration is monotone, so this never contradicts the chance),
    # not by their position in the table, which follows the establishment id (and so the municipality).
    tiebreak = model.booster.predict(features.matrix(frame), raw_score=True) if prob is not None and model else None
    idx, drawn = select(score, capacity, random_share, seed, tiebreak if method == "model" else None)
    chosen = frame.iloc[idx].reset_index(drop=True)
    why = reasons(model, chosen) if prob is not None and model is not None else [[] for _ in idx]
    rule_why = [rules_reasons(r, cutoff, weights) for r in chosen["_rules_row"]]
    meta = model.meta if model is not None and method != "rules" else {}
    with conn.transaction():
        plan_id = conn.execute(
            "INSERT INTO twin.visit_plans (method, plan_year, data_cutoff, model_id, model_version, capacity, "
            "random_share, seed, rules_source, n_candidates, note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING plan_id",
            (method, plan_year(cutoff), cutoff, meta.get("id"),
             json.dumps({"versions": meta.get("versions"), "training_data_sha256": meta.get("training_data_sha256"),
                         "cutoff": meta.get("cutoff")}) if meta else None,
             capacity, random_share, seed, weights["source"], len(frame), note),
        ).fetchone()[0]  # type: ignore[index]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO twin.visit_plan_items (plan_id, rank, establishment_id, org_code, selection, probability, "
                "rules_score, score, reasons) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(plan_id, n + 1, chosen.at[n, "establishment_id"], chosen.at[n, "org_code"],
                  "random" if drawn[n] else "risk", None if prob is None else float(prob[idx[n]]),
                  float(rules_s[idx[n]]), float(score[idx[n]]),
                  json.dumps({"model": why[n], "rules": rule_why[n]}))
                 for n in range(len(idx))])
    return {"plan_id": plan_id, "method": method, "data_cutoff": cutoff.isoformat(), "capacity": capacity,
            "random_share": random_share, "model_id": meta.get("id"), "candidates": len(frame),
            "items": [{"rank": n + 1, "establishment_id": chosen.at[n, "establishment_id"],
                       "selection": "random" if drawn[n] else "risk",
                       "probability": None if prob is None else round(float(prob[idx[n]]), 3),
                       "rules_score": round(float(rules_s[idx[n]]), 1), "reasons": why[n] or rule_why[n]}
                      for n in range(len(idx))]}


LATEST_PLAN_SQL = """
SELECT p.plan_id, p.created_at, p.created_by, p.method, p.plan_year, p.data_cutoff, p.model_id, p.model_version,
       p.capacity, p.random_share, p.seed, p.n_candidates
FROM twin.visit_plans p WHERE p.method = %(method)s ORDER BY p.created_at DESC, p.plan_id DESC LIMIT 1
"""

PLAN_ITEMS_SQL = """
SELECT i.rank, i.establishment_id, i.selection, i.probability, i.rules_score, i.score, i.reasons,
       e.name, e.kvk_number, e.sole_proprietor, e.sbi_code, e.environmental_category, e.municipality_code,
       e.org_code, ST_X(e.geom) AS x, ST_Y(e.geom) AS y
FROM twin.visit_plan_items i JOIN twin.establishments e ON e.establishment_id = i.establishment_id
WHERE i.plan_id = %(plan_id)s AND {in_area}
ORDER BY i.rank
"""


def frame_to_ids(frame: pd.DataFrame) -> list[str]:
    return [str(x) for x in frame["establishment_id"]]


async def stored_plan(conn: psycopg.AsyncConnection, *, method: str, disclosure: Any,
                      municipality_code: str | None = None, limit: int | None = 100) -> dict[str, Any] | None:
    """The latest stored plan of ``method`` as the caller may see it (row-level security on the items
    holds for the API's role; ``disclosure`` redacts personal fields), with the coordinators' active
    overrides laid over it; None when no plan of that method is stored."""
    from twin.analyses.common import fetch, municipality, redact_establishment

    if method not in METHODS:
        raise InvalidParameter(f"method must be one of {', '.join(METHODS)}, not {method!r}", parameter="method")
    head = await fetch(conn, LATEST_PLAN_SQL, {"method": method})
    if not head:
        return None
    plan = head[0]
    in_area, muni = "true", None
    if municipality_code is not None:
        muni = await municipality(conn, municipality_code)
        in_area = "ST_Intersects(e.geom, (SELECT m.geom FROM twin.municipalities m WHERE m.code = %(muni)s))"
    sql = PLAN_ITEMS_SQL.replace("{in_area}", in_area + " AND " + disclosure.establishment_sql("e"))
    items = await fetch(conn, sql, {"plan_id": plan["plan_id"], "muni": muni["code"] if muni else None,
                                    "disclosure_org": disclosure.org_code})
    overrides = await fetch(conn, rules.OVERRIDES_SQL, {"ids": [i["establishment_id"] for i in items]})
    by_id = {o["establishment_id"]: o for o in overrides}
    ranked = [{"establishment_id": i["establishment_id"], "computed_rank": i["rank"], "_row": i} for i in items]
    final = rules.apply_overrides(ranked, overrides)
    shown = final if limit is None else final[:limit]
    ranking = []
    for n, item in enumerate(shown, start=1):
        i = item["_row"]
        o = by_id.get(i["establishment_id"])
        why = i["reasons"] if isinstance(i["reasons"], dict) else json.loads(i["reasons"])
        ranking.append(redact_establishment({
            "rank": n, "computed_rank": i["rank"], "establishment_id": i["establishment_id"], "name": i["name"],
            "kvk_number": i["kvk_number"], "sole_proprietor": i["sole_proprietor"], "sbi_code": i["sbi_code"],
            "environmental_category": i["environmental_category"], "municipality_code": i["municipality_code"],
            "org_code": i["org_code"], "x": round(i["x"], 2), "y": round(i["y"], 2), "selection": i["selection"],
            "probability": None if i["probability"] is None else round(i["probability"], 3),
            "rules_score": round(i["rules_score"], 3), "score": round(i["score"], 4),
            "reasons": why.get("model") or why.get("rules") or [], "rules_reasons": why.get("rules") or [],
            "override": None if o is None else {"rank": o["rank"], "reason": o["reason"], "author": o["author"],
                                                "created_at": o["created_at"].isoformat()},
        }, disclosure, i["org_code"]))
    return {
        "method": method,
        "plan": {"plan_id": plan["plan_id"], "created_at": plan["created_at"].isoformat(),
                 "created_by": plan["created_by"], "plan_year": plan["plan_year"],
                 "data_cutoff": plan["data_cutoff"].isoformat(), "model_id": plan["model_id"],
                 "model_version": plan["model_version"], "capacity": plan["capacity"],
                 "random_share": plan["random_share"], "candidates": plan["n_candidates"]},
        "as_of": plan["data_cutoff"].isoformat(),
        "municipality": None if muni is None else {"code": muni["code"], "name": muni["name"]},
        "scope": disclosure.scope, "numberMatched": len(final), "numberReturned": len(shown),
        "ranking": ranking,
        "note": "advice to the coordinator: a human decides; overrides are recorded with 'twin priority override'",
    }
