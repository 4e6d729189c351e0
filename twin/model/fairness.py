"""The fairness audit: per group of sector (SBI division), municipality, organisation and legal form, the
selection rate (share placed in the top k), the calibration (mean predicted chance against the observed
violation rate of the inspected) and the hit rate (violations found among the selected and inspected).

Risk targeting means selection rates differ by design; they are reported, not judged. Training fails
(:class:`FairnessError`) when, for a group with enough data (at least ``MIN_INSPECTED`` inspected and
``MIN_SELECTED`` selected-and-inspected establishments in the held-out year):
- calibration: the observed rate differs from the mean predicted chance by more than ``CALIBRATION_GAP``
  (absolute, 0.05 = 5 percentage points) AND the prediction is outside the group's interval; or
- hit rate: the group's hit rate is below ``HIT_RATE_RATIO`` (0.8, after the four-fifths rule) times the
  hit rate over all groups AND the group's upper bound is below it too: the model then sends
  inspectors to that group more than its violations warrant.
The judging intervals are Bonferroni-corrected over the judged groups of each audit group (family-wise
95%); the intervals in the report are the plain 95% ones.
docs/algorithm-register.md documents these thresholds.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import TwinError

GROUPS = {"sector": "sbi_division", "municipality": "municipality_code", "organisation": "org_code",
          "legal_form": "legal_form"}
CALIBRATION_GAP = 0.05
HIT_RATE_RATIO = 0.8
MIN_INSPECTED = 100
MIN_SELECTED = 30


class FairnessError(TwinError):
    """The model treats a group beyond the documented thresholds: it is not stored."""

    status_code = 422
    code = "FairnessCheckFailed"


def _rate_ci(y: np.ndarray, w: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    """Weighted rate with a normal-approximation interval (Kish effective sample size; ``z`` 1.96: 95%)."""
    if len(y) == 0 or w.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    rate = float((w * y).sum() / w.sum())
    n_eff = w.sum() ** 2 / (w ** 2).sum()
    half = z * np.sqrt(max(rate * (1 - rate), 1e-9) / n_eff)
    return rate, max(0.0, rate - half), min(1.0, rate + half)


def audit(frame: pd.DataFrame, prob: np.ndarray, selected: np.ndarray, inspected: np.ndarray, y: np.ndarray,
          weight: np.ndarray) -> dict[str, Any]:
    """The report per audit group and the list of violations of the thresholds (empty: passes)."""
    overall_hit, _, _ = _rate_ci(y[selected & inspected], weight[selected & inspected])
    report: dict[str, Any] = {"thresholds": {"calibration_gap": CALIBRATION_GAP, "hit_rate_ratio": HIT_RATE_RATIO,
                                             "min_inspected": MIN_INSPECTED, "min_selected": MIN_SELECTED},
                              "overall": {"selection_rate": round(float(selected.mean()), 4),
                                          "hit_rate": round(overall_hit, 4)},
                              "groups": {}, "failures": []}
    for group, column in GROUPS.items():
        values = frame[column].astype("string").fillna("(onbekend)").to_numpy()
        rows = []
        # Many groups are tested at once (342 municipalities): the intervals that judge are Bonferroni-
        # corrected per audit group (family-wise 95%), so that chance alone fails no training.
        judged = sum(1 for g in set(values) if ((values == g) & inspected).sum() >= MIN_INSPECTED)
        z = NormalDist().inv_cdf(1 - 0.025 / max(judged, 1))
        for g in sorted(set(values)):
            m = values == g
            mi = m & inspected
            ms = m & selected & inspected
            obs, lo, hi = _rate_ci(y[mi], weight[mi])
            pred = float((weight[mi] * prob[mi]).sum() / weight[mi].sum()) if mi.any() else float("nan")
            hit, hit_lo, hit_hi = _rate_ci(y[ms], weight[ms])
            row = {"group": g, "establishments": int(m.sum()), "selection_rate": round(float(selected[m].mean()), 4),
                   "inspected": int(mi.sum()), "predicted": round(pred, 4), "observed": round(obs, 4),
                   "observed_ci95": [round(lo, 4), round(hi, 4)], "selected_inspected": int(ms.sum()),
                   "hit_rate": round(hit, 4), "hit_rate_ci95": [round(hit_lo, 4), round(hit_hi, 4)],
                   "judged": bool(mi.sum() >= MIN_INSPECTED)}
            rows.append(row)
            _, lo_f, hi_f = _rate_ci(y[mi], weight[mi], z)
            _, _, hit_hi_f = _rate_ci(y[ms], weight[ms], z)
            if mi.sum() >= MIN_INSPECTED and abs(obs - pred) > CALIBRATION_GAP and not lo_f <= pred <= hi_f:
                report["failures"].append(f"{group} {g}: observed {obs:.3f} vs predicted {pred:.3f} "
                                          f"(gap > {CALIBRATION_GAP})")
            if (ms.sum() >= MIN_SELECTED and hit < HIT_RATE_RATIO * overall_hit
                    and hit_hi_f < HIT_RATE_RATIO * overall_hit):
                report["failures"].append(f"{group} {g}: hit rate {hit:.3f} < {HIT_RATE_RATIO} x {overall_hit:.3f}")
        report["groups"][group] = rows
    return report
