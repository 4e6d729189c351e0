"""The statistics of the KPIs, worked out by hand: Wilson intervals, the two-proportion z-test, BH."""

from __future__ import annotations

import math
import random

from twin.monitoring import stats
from twin.monitoring.compute import periods, previous_start


def test_wilson_against_the_formula() -> None:
    # 8 of 10: p = 0.8, z = 1.96: centre (0.8 + 1.96²/20) / (1 + 1.96²/10), half-width per the formula
    z = 1.959963984540054
    n, x = 10, 8
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = stats.wilson(x, n)  # type: ignore[misc]
    assert math.isclose(lo, centre - half) and math.isclose(hi, centre + half)
    assert math.isclose(lo, 0.4901624, abs_tol=1e-6) and math.isclose(hi, 0.9433178, abs_tol=1e-6)
    assert stats.wilson(0, 0) is None
    lo0, hi0 = stats.wilson(0, 5)  # type: ignore[misc]
    assert lo0 == 0.0 and 0 < hi0 < 1


def test_z_test_by_hand() -> None:
    # 50/100 -> 70/100: pooled 0.6, se = sqrt(0.6*0.4*(2/100)) = 0.069282; z = 0.2 / se = 2.886751
    z, p = stats.two_proportion_z(50, 100, 70, 100)  # type: ignore[misc]
    assert math.isclose(z, 0.2 / math.sqrt(0.6 * 0.4 * 0.02))
    assert math.isclose(p, math.erfc(abs(z) / math.sqrt(2)))
    assert stats.two_proportion_z(0, 10, 0, 10) is None


def test_bh_flags_a_planted_change_and_not_noise() -> None:
    rng = random.Random(7)
    p_values = []
    for _ in range(200):  # noise: the same rate 0.8 in both periods
        a = sum(rng.random() < 0.8 for _ in range(200))
        b = sum(rng.random() < 0.8 for _ in range(200))
        p_values.append(stats.two_proportion_z(a, 200, b, 200)[1])  # type: ignore[index]
    planted = stats.two_proportion_z(160, 200, 120, 200)  # 0.8 -> 0.6
    assert planted is not None
    q = stats.benjamini_hochberg([*p_values, planted[1]])
    assert q[-1] < 0.05
    assert sum(x < 0.05 for x in q[:-1]) == 0


def test_bh_by_hand() -> None:
    # p = 0.01, 0.04, 0.03 (m = 3): sorted 0.01*3/1 = 0.03, 0.03*3/2 = 0.045, 0.04*3/3 = 0.04 -> min from the top
    assert [round(x, 6) for x in stats.benjamini_hochberg([0.01, 0.04, 0.03])] == [0.03, 0.04, 0.04]


def test_periods() -> None:
    from datetime import date

    ps = periods(date(2024, 2, 10), date(2024, 5, 15))
    months = [p for p in ps if p[0] == "month"]
    assert months[0] == ("month", date(2024, 2, 1), date(2024, 2, 29)) and months[-1][2] == date(2024, 5, 15)
    assert [p[1] for p in ps if p[0] == "quarter"] == [date(2024, 1, 1), date(2024, 4, 1)]
    assert previous_start("quarter", date(2024, 1, 1)) == date(2023, 10, 1)
    assert previous_start("month", date(2024, 1, 1)) == date(2023, 12, 1)


def test_bh_keeps_a_p_value_that_underflowed_to_zero() -> None:
    """A change of |z| > 38 has a two-sided p of exactly 0.0 in floating point: it is the most significant test of
    the run, not the least (the run's correction once read 0.0 as "no p-value" and never flagged it)."""
    from twin.monitoring.compute import Part, correct

    z, p = stats.two_proportion_z(0, 5000, 5000, 5000)  # type: ignore[misc]
    assert p == 0.0 and z > 38
    part = Part([], [("a", z, p), ("b", 0.5, 0.6), ("c", -4.0, 6e-5)], 0, 0, {})
    lines, flagged = correct([part])
    assert flagged == 2
    assert lines[0] == "a\t0.0\tup" and lines[1].endswith("\t\\N") and lines[2].endswith("\tdown")
    # same q-values as the formula, in any order of the tests
    assert [float(x.split("\t")[1]) for x in lines] == stats.benjamini_hochberg([0.0, 0.6, 6e-5])
    assert stats.benjamini_hochberg([0.0, 0.6, 6e-5]) == [0.0, 0.6, 6e-5 * 3 / 2]


def test_bh_equals_the_step_up_procedure_with_ties() -> None:
    """The numpy correction against the textbook step-up loop, on random p-values with ties, zeros and ones."""
    def step_up(p: list[float]) -> list[float]:
        m = len(p)
        order = sorted(range(m), key=lambda i: p[i])
        q, running = [0.0] * m, 1.0
        for rank in range(m, 0, -1):
            running = min(running, p[order[rank - 1]] * m / rank)
            q[order[rank - 1]] = running
        return q

    rng = random.Random(11)
    for m in (0, 1, 2, 7, 500):
        p = [rng.choice([0.0, 1.0, 0.5, 0.01, rng.random(), rng.random() ** 6]) for _ in range(m)]
        assert stats.benjamini_hochberg(p) == step_up(p)
