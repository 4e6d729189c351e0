"""The disclosure control of public KPI figures, built on :mod:`twin.disclosure`.

Primary suppression: a figure is published when its records form a cell :func:`twin.disclosure.publishable`
accepts (at least ``k`` records of at least ``k`` enterprises, the (2, 85%) dominance rule, and the same for the
part each audience cannot list). The test runs on per-cell summaries computed in the database
(:class:`CellStats`: records and contributors of the cell and of every audience's hidden part, and the two
largest contributors), which decide it exactly; where the summaries cannot settle a hidden part's dominance the
cell's contributions are read and :func:`twin.disclosure.safe` decides (:func:`decide`).

Secondary suppression (:func:`protect`): in every additive relation (a period's total against its
municipalities, sectors, categories, interventions or LHS cells; a year against its quarters) the suppressed
parts together must form a publishable cell (tested exactly on their records), else the smallest published part
is suppressed too (with nothing left to suppress, the total).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from twin.disclosure import DOMINANCE_N, DOMINANCE_SHARE, Contribution, safe

__all__ = ["DOMINANCE_N", "CellStats", "Contribution", "OrgPart", "decide", "fast_publishable", "partitions", "protect",
           "stats_of"]
Key = tuple[Any, ...]  # (period type, period start, dimension, value)


@dataclass
class OrgPart:
    records: int = 0  # records of the organisation
    only: int = 0  # contributors all of whose records are the organisation's
    sole_records: int = 0  # sole proprietors' records of the organisation
    sole_only: int = 0  # contributors all of whose sole-proprietor records are the organisation's


@dataclass
class CellStats:
    """What the disclosure rule needs to know of a cell. ``exact``: counted from the records (else bounds)."""

    records: int
    contributors: int
    top: int  # records of the DOMINANCE_N largest contributors
    sole_records: int
    sole_contributors: int
    orgs: dict[str | None, OrgPart] = field(default_factory=dict)
    exact: bool = True


def stats_of(cell: Iterable[Contribution]) -> CellStats:
    """The summaries of a cell, from its contributions (as the database computes them)."""
    per: dict[str, int] = defaultdict(int)
    orgs: dict[str, set[str | None]] = defaultdict(set)
    sole_orgs: dict[str, set[str | None]] = defaultdict(set)
    parts: dict[str | None, OrgPart] = defaultdict(OrgPart)
    for c in cell:
        per[c.contributor] += c.records
        orgs[c.contributor].add(c.org_code)
        parts[c.org_code].records += c.records
        if c.sole_proprietor:
            sole_orgs[c.contributor].add(c.org_code)
            parts[c.org_code].sole_records += c.records
    for s in orgs.values():
        if len(s) == 1:
            parts[next(iter(s))].only += 1
    for s in sole_orgs.values():
        if len(s) == 1:
            parts[next(iter(s))].sole_only += 1
    return CellStats(sum(per.values()), len(per), sum(sorted(per.values(), reverse=True)[:DOMINANCE_N]),
                     sum(p.sole_records for p in parts.values()), len(sole_orgs), dict(parts))


def decide(s: CellStats, k: int, contributions: Callable[[], Sequence[Contribution]] | None = None) -> bool:
    """:func:`twin.disclosure.publishable` from summaries; ``contributions`` reads the cell's records when a
    hidden part's dominance is undecided (without it, or for bounds, undecided counts as unsafe)."""
    if k < 2:
        raise ValueError("k must be at least 2")
    if s.records < k or s.contributors < k or s.top > DOMINANCE_SHARE * s.records:
        return False
    cache: list[Sequence[Contribution]] = []

    def part_ok(n: int, contributors: int, hidden: Callable[[Contribution], bool]) -> bool:
        if n == 0:
            return True
        if n < k or contributors < k:
            return False
        if s.top <= DOMINANCE_SHARE * n:  # a part's largest contributors hold no more than the whole's
            return True
        if not s.exact or contributions is None:
            return False
        if not cache:
            cache.append(contributions())
        return safe([c for c in cache[0] if hidden(c)], k)

    if not part_ok(s.sole_records, s.sole_contributors, lambda c: c.sole_proprietor):
        return False
    for o in sorted(o for o in s.orgs if o is not None):
        p = s.orgs[o]
        def not_o(c: Contribution, o: str = o) -> bool:
            return c.org_code != o

        def sole_not_o(c: Contribution, o: str = o) -> bool:
            return c.sole_proprietor and c.org_code != o

        if not part_ok(s.records - p.records, s.contributors - p.only, not_o):
            return False
        if not part_ok(s.sole_records - p.sole_records, s.sole_contributors - p.sole_only, sole_not_o):
            return False
    return True


def fast_publishable(cell: Sequence[Contribution], k: int) -> bool:
    """Exactly :func:`twin.disclosure.publishable` (a test compares them on random cells)."""
    return decide(stats_of(cell), k, lambda: cell)


def partitions(keys: Sequence[Key]) -> list[tuple[Key, list[Key]]]:
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


def protect(cells: Mapping[Key, CellStats], k: int,
            contributions_of: Callable[[Sequence[Key]], Mapping[Key, Sequence[Contribution]]],
            primary: Mapping[Key, bool] | None = None, max_rounds: int = 10) -> set[Key]:
    """The keys of the cells that may be published: primary suppression (``primary``, else :func:`decide` on
    the summaries), then secondary suppression over the additive relations until nothing changes. The
    suppressed parts of a relation are pooled from their records (``contributions_of`` reads them, all
    primary-suppressed cells at once, later ones as they are suppressed) and tested exactly."""
    published = {key for key, s in cells.items() if (primary[key] if primary is not None else decide(s, k))}
    relations = [(t, parts) for t, parts in partitions(list(cells)) if t in published]
    known: dict[Key, Sequence[Contribution]] = dict(contributions_of(
        sorted({p for t, parts in relations for p in parts if p not in published}, key=str)))

    def records(p: Key) -> Sequence[Contribution]:
        if p not in known:
            known.update(contributions_of([p]))
        return known.get(p, ())

    # A relation whose suppressed parts are the same as at its last test gets the same answer: the rounds after
    # the first mostly re-test unchanged relations (tens of thousands of pooled cells on the medium twin).
    tested: dict[tuple[Key, ...], bool] = {}

    def pooled_ok(hidden: list[Key]) -> bool:
        key = tuple(hidden)
        ok = tested.get(key)
        if ok is None:
            ok = tested[key] = fast_publishable([c for p in hidden for c in records(p)], k)
        return ok

    for _ in range(max_rounds):
        changed = False
        for total, parts in relations:
            if total not in published:
                continue
            while True:
                hidden = [p for p in parts if p not in published]
                if not hidden or pooled_ok(hidden):
                    break
                shown = [p for p in parts if p in published]
                if not shown:
                    published.discard(total)
                    changed = True
                    break
                published.discard(min(shown, key=lambda p: (cells[p].records, str(p))))
                changed = True
        if not changed:
            break
    return published
