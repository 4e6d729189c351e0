"""The public KPI figures' disclosure control equals twin.disclosure.publishable, and secondary suppression
stops differencing."""

from __future__ import annotations

import random
from datetime import date

from twin.disclosure import Contribution, publishable
from twin.monitoring import sdc


def _cell(rng: random.Random) -> list[Contribution]:
    out = []
    for _ in range(rng.randint(0, 14)):
        c = rng.randint(0, 9)
        out.append(Contribution(f"kvk:{c}", rng.random() < 0.3, rng.choice(["A", "B", "C", None]), rng.randint(1, 6)))
    return out


def test_fast_publishable_equals_disclosure_publishable() -> None:
    rng = random.Random(1)
    for _ in range(5000):
        cell = _cell(rng)
        k = rng.choice([2, 3, 5])
        assert sdc.fast_publishable(cell, k) == publishable(cell, k), cell


def test_secondary_suppression_hides_a_lone_suppressed_part() -> None:
    def many(prefix: str, n: int, org: str = "A") -> list[Contribution]:
        return [Contribution(f"{prefix}{i}", False, org, 1) for i in range(n)]

    q = ("year", date(2024, 1, 1))
    cells = {(*q, "sector", "01"): many("a", 2), (*q, "sector", "10"): many("b", 20),
             (*q, "sector", "20"): many("c", 30)}
    cells[(*q, "all", "all")] = [c for v in list(cells.values()) for c in v]
    stats = {key: sdc.stats_of(v) for key, v in cells.items()}
    published = sdc.protect(stats, 5, lambda keys: {key: cells[key] for key in keys})
    assert (*q, "sector", "01") not in published  # primary
    assert (*q, "sector", "10") not in published  # secondary: total - 20 - 30 would give sector 01
    assert (*q, "sector", "20") in published and (*q, "all", "all") in published
