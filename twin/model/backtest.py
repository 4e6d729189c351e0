"""The backtest: rolling time splits over every year the data allows. For each test year Y the model is
trained on the cut-offs 1 January of earlier years (features before the cut-off, label = the first
inspection in the year after it, complete before 1 January Y), ranks every establishment active on
1 January Y, and is scored on the inspections of Y; the rule-based ranking (twin.analyses.priority, the
same records) and a random ranking are scored alike.

Selection bias: labels exist only for establishments that were inspected, and who is inspected depends on
the visit-frequency class (every year for class 1, once in ten years for class 10). Training rows and
every metric are weighted by the inverse of the share of active establishments of the same class that was
inspected in that year (inverse-propensity weighting), so a metric estimates what the ranking would find
if every establishment of the top k were visited, under the assumption that within a class the visit is
as good as random (routine visits are; complaint visits are not, which this weighting does not remove).
The plan keeps a random share of its capacity so that future labels stay unbiased.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from twin.analyses import priority as rules
from twin.model import estimator
from twin.model.features import FEATURES

BOOTSTRAP = 300


@dataclass
class Year:
    """One cut-off: every active establishment's features, and what its first inspection in the year
    after the cut-off found (``inspected`` false: not inspected that year)."""

    cutoff: date
    frame: pd.DataFrame
    inspected: np.ndarray
    y: np.ndarray
    weight: np.ndarray  # inverse propensity of being inspected that year, by visit-frequency class
    rules_score: np.ndarray


def propensity_weights(frame: pd.DataFrame, inspected: np.ndarray) -> np.ndarray:
    """1 / (share of the establishment's visit-frequency class that was inspected that year)."""
    cls = frame["visit_frequency_years"].fillna(0).to_numpy()
    w = np.ones(len(frame))
    for c in np.unique(cls):
        m = cls == c
        share = inspected[m].mean() if m.any() else 1.0
        w[m] = 1.0 / max(share, 1e-3)
    return w


def rules_scores(frame: pd.DataFrame, cutoff: date) -> np.ndarray:
    """The rule-based score (twin/priority.yaml's default weights) of every row, as of the cut-off."""
    w = rules._default_weights()
    return np.array([rules.total_points(r, cutoff, w) for r in frame["_rules_row"]], dtype=float)


def make_year(frame: pd.DataFrame, lab: pd.DataFrame, cutoff: date) -> Year:
    """A :class:`Year` from the features at ``cutoff`` and the labels of the year after it."""
    merged = frame[["establishment_id"]].merge(lab[["establishment_id", "y"]], on="establishment_id", how="left")
    inspected = merged["y"].notna().to_numpy()
    y = merged["y"].fillna(False).astype(bool).to_numpy().astype(int)
    rules_score = rules_scores(frame, cutoff)
    # The rule inputs (a dict per row) are not needed once scored: dropped, so that the years of a national
    # twin fit in memory.
    frame = frame.drop(columns="_rules_row")
    return Year(cutoff, frame, inspected, y, propensity_weights(frame, inspected), rules_score)


def _rank_pct(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank(pct=True, method="average").to_numpy()


def blend(model_p: np.ndarray, rules_s: np.ndarray) -> np.ndarray:
    """The blend: the mean of the two percentile ranks (each method counts equally whatever its scale)."""
    return 0.5 * _rank_pct(model_p) + 0.5 * _rank_pct(rules_s)


def train_on(years: list[Year], seed: int = 0, **kw: Any) -> estimator.Model:
    """The model trained on the inspected rows of ``years`` with their propensity weights."""
    # Only the feature columns are stacked (not the ids and audit columns): the national years stay small.
    frame = pd.concat([yr.frame.loc[yr.inspected, list(FEATURES)] for yr in years], ignore_index=True)
    y = np.concatenate([yr.y[yr.inspected] for yr in years])
    w = np.concatenate([yr.weight[yr.inspected] for yr in years])
    return estimator.fit(frame, y, w / w.mean(), seed=seed, **kw)


@dataclass
class Scored:
    """One test year, scored: the rankings' scores over every active establishment."""

    cutoff: date
    scores: dict[str, np.ndarray]  # method -> score (higher first)
    prob: np.ndarray  # the model's calibrated probability
    inspected: np.ndarray
    y: np.ndarray
    weight: np.ndarray


def _top(score: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the k highest scores (ties broken at random, the same way for every replicate)."""
    jitter = rng.random(len(score)) * 1e-9
    order = np.lexsort((jitter, -score))
    mask = np.zeros(len(score), dtype=bool)
    mask[order[:k]] = True
    return mask


def _ap(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """Weighted average precision (PR-AUC)."""
    order = np.argsort(-p, kind="stable")
    y, w = y[order], w[order]
    tp = np.cumsum(w * y)
    fp = np.cumsum(w * (1 - y))
    total = tp[-1]
    if total <= 0:
        return float("nan")
    prec = tp / np.maximum(tp + fp, 1e-12)
    return float(np.sum(prec * w * y) / total)


def evaluate(scored: list[Scored], *, k_fixed: int, bootstrap: int = BOOTSTRAP, seed: int = 0,
             bins: int = 10) -> dict[str, Any]:
    """Metrics pooled over the test years with bootstrap 95% intervals (establishments resampled within
    each year by Poisson weights): precision at k (k = establishments inspected that year, and k_fixed),
    lift over the rules and over random, PR-AUC, Brier score and a calibration table."""
    rng = np.random.default_rng(seed)
    methods = list(scored[0].scores)
    # Per year the inspected units only carry information; their membership of each method's top k is fixed.
    parts = []
    for s in scored:
        ins = s.inspected
        n_k = int(ins.sum())
        tops = {}
        for m in methods:
            tops[(m, "k_inspected")] = _top(s.scores[m], n_k, rng)[ins]
            tops[(m, "k_fixed")] = _top(s.scores[m], min(k_fixed, len(ins)), rng)[ins]
        parts.append({"y": s.y[ins].astype(float), "w": s.weight[ins], "p": s.prob[ins], "tops": tops,
                      "cutoff": s.cutoff, "n_active": len(ins), "n_inspected": n_k})
    reps = [np.ones((1, len(pt["y"]))) for pt in parts]
    boot = [rng.poisson(1.0, size=(bootstrap, len(pt["y"]))).astype(float) for pt in parts]

    def stats(mult: list[np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        base_num = sum((m * pt["w"] * pt["y"]).sum(axis=1) for m, pt in zip(mult, parts, strict=True))
        base_den = sum((m * pt["w"]).sum(axis=1) for m, pt in zip(mult, parts, strict=True))
        out["random"] = base_num / base_den
        for kk in ("k_inspected", "k_fixed"):
            for meth in methods:
                num = sum((m * pt["w"] * pt["y"] * pt["tops"][(meth, kk)]).sum(axis=1)
                          for m, pt in zip(mult, parts, strict=True))
                den = sum((m * pt["w"] * pt["tops"][(meth, kk)]).sum(axis=1) for m, pt in zip(mult, parts, strict=True))
                out[f"precision_{kk}_{meth}"] = num / np.maximum(den, 1e-12)
            out[f"lift_vs_rules_{kk}"] = out[f"precision_{kk}_model"] / out[f"precision_{kk}_rules"]
            out[f"lift_vs_random_{kk}"] = out[f"precision_{kk}_model"] / out["random"]
            out[f"rules_lift_vs_random_{kk}"] = out[f"precision_{kk}_rules"] / out["random"]
            if "blend" in methods:
                out[f"blend_lift_vs_rules_{kk}"] = out[f"precision_{kk}_blend"] / out[f"precision_{kk}_rules"]
            for meth in methods:
                if meth not in ("model", "rules", "blend"):  # a reference ranking (e.g. bench/model.py --oracle)
                    out[f"{meth}_lift_vs_random_{kk}"] = out[f"precision_{kk}_{meth}"] / out["random"]
        bs = sum((m * pt["w"] * (pt["p"] - pt["y"]) ** 2).sum(axis=1) for m, pt in zip(mult, parts, strict=True))
        out["brier"] = bs / base_den
        return out

    point = {k: float(v[0]) for k, v in stats(reps).items()}
    bst = stats(boot)
    # PR-AUC per replicate (pooled rows): fewer replicates suffice for an interval of this width.
    y_all = np.concatenate([pt["y"] for pt in parts])
    w_all = np.concatenate([pt["w"] for pt in parts])
    p_all = np.concatenate([pt["p"] for pt in parts])
    b_all = np.concatenate(boot, axis=1)
    point["pr_auc"] = _ap(y_all, p_all, w_all)
    point["pr_auc_random"] = float((w_all * y_all).sum() / w_all.sum())
    bst["pr_auc"] = np.array([_ap(y_all, p_all, w_all * b_all[b]) for b in range(min(bootstrap, 100))])
    metrics = {}
    for name, value in point.items():
        arr = bst.get(name)
        lo, hi = (np.nanpercentile(arr, [2.5, 97.5]) if arr is not None else (np.nan, np.nan))
        metrics[name] = {"value": round(value, 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}
    # Calibration table: deciles of the predicted probability (pooled), observed rate with its interval.
    edges = np.unique(np.quantile(p_all, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p_all, side="right") - 1, 0, len(edges) - 2)
    table = []
    for b in range(len(edges) - 1):
        m = which == b
        if not m.any():
            continue
        obs = (w_all[m] * y_all[m]).sum() / w_all[m].sum()
        ob = ((b_all[:, m] * w_all[m] * y_all[m]).sum(axis=1) / np.maximum((b_all[:, m] * w_all[m]).sum(axis=1),
                                                                            1e-12))
        table.append({"bin": b + 1, "predicted": round(float((w_all[m] * p_all[m]).sum() / w_all[m].sum()), 4),
                      "observed": round(float(obs), 4),
                      "ci95": [round(float(x), 4) for x in np.percentile(ob, [2.5, 97.5])], "n": int(m.sum())})
    years = [{"cutoff": pt["cutoff"].isoformat(), "active": pt["n_active"], "inspected": pt["n_inspected"],
              "violations": int(pt["y"].sum())} for pt in parts]
    return {"metrics": metrics, "calibration": table, "years": years, "k_fixed": k_fixed,
            "bootstrap": bootstrap}


def run(years: list[Year], *, first_test: int = 1, k_fixed: int = 1000, bootstrap: int = BOOTSTRAP,
        seed: int = 0, progress: Callable[[str], None] | None = None,
        reference: Callable[[Year], dict[str, np.ndarray]] | None = None, **fit_kw: Any) -> dict[str, Any]:
    """Rolling splits: for every year index i >= first_test, train on years[:i], test on years[i].
    ``reference`` adds rankings scored alike (name -> score per row of the test year), e.g. the ceiling
    of a ranking by the demo generator's true chances; the model never sees them."""
    scored = []
    importances = []
    started = time.perf_counter()
    for i in range(first_test, len(years)):
        model = train_on(years[:i], seed=seed, **fit_kw)
        test = years[i]
        p = model.predict(test.frame)
        imp = model.importances(test.frame[test.inspected]) if test.inspected.any() else None
        if imp is not None:
            importances.append(imp)
        scores = {"model": p, "rules": test.rules_score, "blend": blend(p, test.rules_score)}
        if reference is not None:
            scores |= reference(test)
        scored.append(Scored(test.cutoff, scores, p, test.inspected, test.y, test.weight))
        if progress:
            progress(f"test year {test.cutoff.year}: trained on {i} cut-off(s)")
    result = evaluate(scored, k_fixed=k_fixed, bootstrap=bootstrap, seed=seed)
    if importances:
        mean_imp = pd.concat(importances, axis=1).mean(axis=1).sort_values(ascending=False)
        result["importances"] = {k: round(float(v), 4) for k, v in mean_imp.items()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


DATA_SPAN_SQL = "SELECT min(inspected_on), max(inspected_on) FROM twin.inspections"


def cutoffs(conn: Any) -> tuple[list[date], date]:
    """The cut-offs 1 January of every year with at least one full year of inspections before it, and the
    end of the data (the day after the last inspection; the last window may be a part of a year)."""
    from datetime import timedelta

    first, last = conn.execute(DATA_SPAN_SQL).fetchone()
    if first is None:
        return [], date.today()
    end = last + timedelta(days=1)
    start_year = first.year + (2 if (first.month, first.day) != (1, 1) else 1)
    return [date(y, 1, 1) for y in range(start_year, end.year + 1) if date(y, 1, 1) < end], end


def load_years(conn: Any, progress: Callable[[str], None] | None = None, cache_dir: Any = None) -> list[Year]:
    """Features and labels at every cut-off of :func:`cutoffs` (the location context read once, from
    ``cache_dir`` when it is cached there: twin.model.features.context)."""
    from twin.model import features as F

    cuts, end = cutoffs(conn)
    ctx = F.context(conn, cache_dir)
    years = []
    for n, c in enumerate(cuts):
        horizon = cuts[n + 1] if n + 1 < len(cuts) else end
        frame = F.features_at(conn, c, ctx)
        years.append(make_year(frame, F.labels(conn, c, horizon), c))
        if progress:
            progress(f"features at {c.isoformat()}: {len(frame):,} establishments")
    return years
