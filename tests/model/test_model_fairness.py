"""The fairness audit's pre-registered policy (docs/algorithm-register.md, "Fairness audit"): a model that
is fair (predicted = true chance in every group) passes even with hundreds of groups judged at once
(family-wise error rate over the whole audit); a group that is miscalibrated by more than the material
gap, or whose hit rate is below four fifths of the overall one, fails it; the policy is a setting
(``TWIN_FAIRNESS_*``) recorded with the report, and a deviation from the pre-registered one is flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.model import fairness

N = 120_000


def world(seed: int, *, miscalibrated: str | None = None, low_hit: str | None = None) -> dict[str, np.ndarray]:
    """300 municipalities, 20 sectors, 4 organisations and 6 legal forms; a calibrated model (the
    prediction is the true chance) unless a group is planted."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "sbi_division": rng.integers(1, 21, N).astype(float),
        "municipality_code": [f"GM{m:04d}" for m in rng.integers(0, 300, N)],
        "org_code": rng.choice(["OD1", "OD2", "OD3", "OD4"], N),
        "legal_form": rng.choice(["BV", "NV", "VOF", "Eenmanszaak", "Stichting", "CV"], N),
    })
    prob = rng.beta(2, 8, N)  # mean 0.2
    true = prob.copy()
    if miscalibrated is not None:
        true[frame["municipality_code"].to_numpy() == miscalibrated] += 0.2
    selected = np.zeros(N, bool)
    selected[np.argsort(-prob)[:12_000]] = True
    if low_hit is not None:
        m = (frame["legal_form"].to_numpy() == low_hit) & selected
        true[m] = 0.5 * prob[m]
    inspected = rng.random(N) < 0.4
    y = (rng.random(N) < np.clip(true, 0, 1)).astype(int)
    return {"frame": frame, "prob": prob, "selected": selected, "inspected": inspected, "y": y,
            "weight": np.ones(N)}


def test_a_fair_model_passes_with_many_groups() -> None:
    failures = 0
    for seed in range(5):
        report = fairness.audit(**world(seed))  # type: ignore[arg-type]
        failures += bool(report["failures"])
        th = report["thresholds"]
        assert th["tests"] > 300 and th["family_alpha"] == 0.05 and th["deviates_from_preregistered"] == {}
        assert th["per_test_alpha"] == pytest.approx(0.05 / th["tests"])
    assert failures == 0
    # The report keeps every group, judged or not, with its selection rate (reported, not judged).
    groups = report["groups"]
    assert len(groups["municipality"]) == 300 and {"selection_rate", "hit_rate_ci95"} <= set(groups["sector"][0])


def test_a_miscalibrated_group_fails() -> None:
    report = fairness.audit(**world(1, miscalibrated="GM0007"))  # type: ignore[arg-type]
    assert [f for f in report["failures"] if "municipality GM0007" in f and "observed" in f]
    assert not [f for f in report["failures"] if "GM0007" not in f]


def test_a_group_with_a_low_hit_rate_fails() -> None:
    report = fairness.audit(**world(2, low_hit="VOF"))  # type: ignore[arg-type]
    assert any(f.startswith("legal_form VOF: hit rate") for f in report["failures"])


def test_the_policy_is_a_recorded_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_FAIRNESS_CALIBRATION_GAP", "0.5")
    policy = fairness.FairnessPolicy()
    assert policy.calibration_gap == 0.5 and policy.deviations() == {"calibration_gap": 0.5}
    report = fairness.audit(**world(1, miscalibrated="GM0007"), policy=policy)  # type: ignore[arg-type]
    assert report["failures"] == []
    assert report["thresholds"]["deviates_from_preregistered"] == {"calibration_gap": 0.5}
    assert fairness.PREREGISTERED.calibration_gap == fairness.CALIBRATION_GAP == 0.05
