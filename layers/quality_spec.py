"""What a data-quality rule is: a plain-words description (:class:`QualityRule`) and the SQL that finds the
records that fail it (:class:`RuleSQL`); and what a layer's block of rules holds (:class:`LayerQuality`).
Pure data, like the layer specs: the declared rules are in :mod:`layers.quality_rules`, the generic rules
and the measuring in :mod:`twin.quality`.

A rule's SQL is written as fragments over the alias ``t`` (a row of its layer's table): ``fails`` (a boolean),
``reason`` (text in plain words), optionally ``applies`` (which records the rule checks) and ``joins`` (extra
FROM items, each yielding at most one row per ``t``: LATERAL ... LIMIT 1, aggregates, or a join on a key).
Thresholds are written ``@setting_name`` (a field of :class:`twin.settings.Settings`) and bound as literals.
The fragments never contain ``%`` (callers may pass an empty parameter dict, which makes psycopg parse ``%``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["completeness", "validity", "consistency", "linkage", "timeliness", "signal"]
Severity = Literal["info", "warning", "error"]
KINDS: tuple[str, ...] = ("completeness", "validity", "consistency", "linkage", "timeliness", "signal")


@dataclass(frozen=True)
class RuleSQL:
    """The SQL of a rule as fragments over the alias ``t`` of the layer table (see the module docstring)."""

    fails: str
    reason: str
    applies: str = "true"
    joins: str = ""

    @property
    def simple(self) -> bool:
        """No joins: the rule can share one scan of its table with the other simple rules of the layer."""
        return not self.joins.strip()


@dataclass(frozen=True)
class QualityRule:
    """One data-quality rule of a layer (the interface of /work/notes/quality-interface.md)."""

    id: str  # url-safe, stable, e.g. "establishments.kvk_number-filled", "signal.livestock-without-permit"
    layer: str  # layer id whose records fail the rule
    kind: Kind
    title: str
    explanation: str
    severity: Severity
    depends_on: tuple[str, ...] = ()  # other layers read; "not applicable" while one of them is empty
    sql: RuleSQL = field(default=RuleSQL("false", "''"), compare=False, repr=False)
    # Columns ("table.column") and tables ("table") the SQL reads beyond the layer's own fields: a database
    # whose schema lacks one (an older migration) gets "not applicable" instead of an error.
    requires: tuple[str, ...] = ()

    @property
    def title_key(self) -> str:
        """The catalogue key of the title in the user's language (layers/data/messages; ``title`` is the
        English one the API and the command line keep)."""
        return f"quality.rule.{self.id}.title"


def flagged(table: str, alias: str, condition: str) -> str:
    """A ``joins`` fragment: the records of ``twin.{table}`` (alias ``x`` in ``condition``) that meet
    ``condition``, joined back to ``t`` as ``alias``, so that ``{alias}.id IS NOT NULL`` marks them.

    For a condition that probes another large table for every record (``NOT EXISTS (...)``): in a derived table
    PostgreSQL runs the probe as an anti- or semi-join in parallel workers, while inside a count's FILTER it
    is a correlated SubPlan, which runs in the leader only (docs/quality.md, Speed). For the examples (ORDER
    BY id LIMIT n) the planner turns the join back into a few probes."""
    return f"LEFT JOIN (SELECT x.id FROM twin.{table} x WHERE {condition}) {alias} ON {alias}.id = t.id"


@dataclass(frozen=True)
class LayerQuality:
    """What a layer adds to the generic rules."""

    expected: tuple[str, ...] = ()  # fields that should be filled though a record is valid without them
    future_dates: tuple[str, ...] = ()  # date fields that may lie in the future (expiry, deadlines)
    inside_netherlands: bool = True  # the generic inside-the-Netherlands check applies
    delivery: bool = True  # the generic delivery-age check applies (derived layers have no deliveries)
    rules: tuple[QualityRule, ...] = ()
