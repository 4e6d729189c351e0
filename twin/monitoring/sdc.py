"""The disclosure control of public KPI figures: :func:`twin.disclosure.publish` on each figure's records
(primary suppression), then secondary suppression so that no published total minus published parts reveals a
suppressed figure: in every partition (a period's total against its municipalities, sectors, categories,
interventions or LHS cells; a year against its quarters) the suppressed parts together must form a publishable
cell, else the smallest published part is suppressed too (or, with nothing left, the total)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from datetime import date
from typing import Any

from twin.disclosure import Contribution, publish, publishable

__all__ = ["Contribution", "protect"]
Key = tuple[Any, ...]  # (period type, period start, dimension, value)


def _partitions(keys: Sequence[Key]) -> list[tuple[Key, list[Key]]]:
    """(total, parts) of every additive relation among the cells."""
    present = set(keys)
    by_period: dict[tuple[str, date], dict[str, list[Key]]] = defaultdict(lambda: defaultdict(list))
    by_series: dict[tuple[str, str], list[Key]] = defaultdict(list)
    for key in keys:
        ptype, pstart, dim, val = key
        if dim != "all":
            by_period[(ptype, pstart)][dim].append(key)
        if ptype == "quarter":
            by_series[(dim, val)].append(key)
    out: list[tuple[Key, list[Key]]] = []
    for (ptype, pstart), dims in by_period.items():
        total = (ptype, pstart, "all", "all")
        if total in present:
            out.extend((total, parts) for parts in dims.values())
    for (dim, val), quarters in by_series.items():
        years: dict[int, list[Key]] = defaultdict(list)
        for q in quarters:
            years[q[1].year].append(q)
        for year, parts in years.items():
            total = ("year", date(year, 1, 1), dim, val)
            if total in present:
                out.append((total, parts))
    return out


def protect(cells: Mapping[Key, list[Contribution]], k: int, max_rounds: int = 10) -> set[Hashable]:
    """The keys of the cells that may be published: primary suppression by :func:`publish`, then secondary
    suppression over :func:`_partitions` until nothing changes."""
    published = set(publish(cells, k))
    relations = _partitions(list(cells))
    for _ in range(max_rounds):
        changed = False
        for total, parts in relations:
            if total not in published:
                continue
            while True:
                hidden = [p for p in parts if p not in published]
                if not hidden:
                    break
                pooled = [c for p in hidden for c in cells[p]]
                if publishable(pooled, k):
                    break
                shown = [p for p in parts if p in published]
                if not shown:
                    published.discard(total)
                    changed = True
                    break
                smallest = min(shown, key=lambda p: (sum(c.records for c in cells[p]), str(p)))
                published.discard(smallest)
                changed = True
        if not changed:
            break
    return published
