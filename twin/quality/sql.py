"""The SQL of the rules: the failing records, the counts, one shared scan for the simple rules of a layer, and
the latest recorded results. Everything here is plain SELECT over twin tables, so it runs unchanged on a
sync or async connection and under any role (row-level security decides which rows count)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from psycopg import sql

from layers.quality_rules import ROW_JOINS
from layers.quality_spec import QualityRule
from layers.registry import get_layer
from twin.access import Principal
from twin.quality.audience import VISIBLE, scope_sql, visible_sql
from twin.settings import Settings

_PLACEHOLDER = re.compile(r"@(quality_[a-z0-9_]+|today)")


def _defaults() -> dict[str, Any]:
    """The defaults of the TWIN_QUALITY_ settings (used when no Settings object is passed)."""
    return {name: f.default for name, f in Settings.model_fields.items() if name.startswith("quality_")}


def _values(settings: Settings | None) -> dict[str, Any]:
    if settings is None:
        return _defaults()
    return {name: getattr(settings, name) for name in Settings.model_fields if name.startswith("quality_")}


def fragment(text: str, values: dict[str, Any], visible: Any = None) -> sql.Composed:
    """An SQL fragment with its ``@quality_...`` thresholds bound as literals and ``@visible(x)`` replaced by
    ``visible(x)`` (default: true, every record visible)."""
    if VISIBLE.search(text):
        pieces: list[sql.Composable] = []
        pos = 0
        for m in VISIBLE.finditer(text):
            pieces.append(fragment(text[pos:m.start()], values))
            pieces.append(sql.SQL("({})").format(visible(m.group(1)) if visible else sql.SQL("true")))
            pos = m.end()
        pieces.append(fragment(text[pos:], values))
        return sql.Composed(pieces)
    parts: list[sql.Composable] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        parts.append(sql.SQL(text[pos:m.start()]))
        name = m.group(1)
        if name == "today":  # the reference date: TWIN_QUALITY_AS_OF, else the database's current_date
            as_of = values.get("quality_as_of")
            parts.append(sql.SQL("current_date") if as_of is None else
                         sql.SQL("{}::date").format(sql.Literal(as_of.isoformat())))
            pos = m.end()
            continue
        if name not in values:
            raise KeyError(f"unknown setting @{name} in a data-quality rule")
        parts.append(sql.SQL("({})").format(sql.Literal(values[name])))
        pos = m.end()
    parts.append(sql.SQL(text[pos:]))
    return sql.Composed(parts)


def _table(rule: QualityRule, rows_of: str | None = None) -> sql.Composed:
    """The FROM of a rule's query: its layer table as ``t``, or the TEMP table ``rows_of``."""
    if rows_of is not None:
        return sql.SQL("{} t").format(sql.Identifier(rows_of))
    spec = get_layer(rule.layer)
    return sql.SQL("twin.{} t").format(sql.Identifier(spec.table))


def row_joins(rule: QualityRule) -> str:
    """The rule's ``joins`` in the form for a few records (ROW_JOINS, layers.quality_rules; the generic
    inside-the-Netherlands rules, twin.quality.generic.row_joins), else its ``joins``."""
    from twin.quality import generic

    return ROW_JOINS.get(rule.id) or generic.row_joins(rule) or rule.sql.joins


def _parts(rule: QualityRule, settings: Settings | None,
           principal: Principal | None = None, rows: bool = False,
           rows_of: str | None = None, few: bool = False) -> tuple[sql.Composable, ...]:
    """joins, applies, fails, reason; for a ``principal``, applies limited to the records the rule may count
    for them and ``@visible(x)`` to the records whose personal fields they may see (twin.quality.audience).
    ``rows``: for a query of failing records, with the rule's ROW_JOINS (layers.quality_rules) if it has them;
    ``rows_of``: over the records in this TEMP table (a copy of some rows of the layer table; a
    :func:`row_local` rule only), in the form for a few records (:func:`row_joins`) with every other
    occurrence of the layer table (a join on the record's id) reading the copy too; ``few``: in that form, for
    a query that asks for a few ids of the layer table."""
    v = _values(settings)
    s = rule.sql
    joins = row_joins(rule) if rows_of or few else ROW_JOINS.get(rule.id, s.joins) if rows else s.joins
    if rows_of:
        assert re.fullmatch(r"[a-z_]+", rows_of)
        joins = re.sub(rf"\btwin\.{get_layer(rule.layer).table}\b", rows_of, joins)

    def visible(alias: str) -> sql.Composable:
        return visible_sql(rule, principal, alias)

    applies: sql.Composable = fragment(s.applies, v, visible)
    scope = scope_sql(rule, principal)
    if scope is not None:
        applies = sql.SQL("({}) AND {}").format(applies, scope)
    return (fragment(joins, v, visible), applies, fragment(s.fails, v, visible), fragment(s.reason, v, visible))


def failing_sql(rule: QualityRule, settings: Settings | None = None,
                principal: Principal | None = None, rows_of: str | None = None, few: bool = False) -> sql.Composed:
    """SELECT of the failing records: columns ``id`` (the layer table's id) and ``reason`` (plain words). No
    ORDER or LIMIT: the caller joins the layer table, pages and masks. Thresholds from ``settings`` (default:
    the defaults of the TWIN_QUALITY_ settings); for a ``principal``, only what that caller may be told.
    ``rows_of``: over the records of this TEMP table only (for a :func:`row_local` rule; see _parts); ``few``:
    for a caller that asks for a few ids (``WHERE id = ANY(...)``), in the form that the planner narrows to them.
    """
    joins, applies, fails, reason = _parts(rule, settings, principal, rows=True, rows_of=rows_of, few=few)
    return sql.SQL(
        "SELECT t.id, ({reason})::text AS reason FROM {table} {joins} WHERE ({applies}) AND coalesce(({fails}), false)"
    ).format(reason=reason, table=_table(rule, rows_of), joins=joins, applies=applies, fails=fails)


def count_sql(rule: QualityRule, settings: Settings | None = None,
              principal: Principal | None = None, rows_of: str | None = None) -> sql.Composed:
    """SELECT of one row: ``checked`` (records the rule applies to) and ``failed``. ``rows_of``: counted over
    the records of this TEMP table only (for a :func:`row_local` rule; see _parts)."""
    joins, applies, fails, _ = _parts(rule, settings, principal, rows_of=rows_of)
    return sql.SQL(
        "SELECT count(*) FILTER (WHERE ({applies}))::bigint AS checked, "
        "count(*) FILTER (WHERE ({applies}) AND coalesce(({fails}), false))::bigint AS failed FROM {table} {joins}"
    ).format(applies=applies, fails=fails, table=_table(rule, rows_of), joins=joins)


def rule_tables(rule: QualityRule) -> tuple[str, ...]:
    """The tables a rule reads: its layer's and those of the layers it depends on."""
    return tuple(sorted({get_layer(x).table for x in (rule.layer, *rule.depends_on)}))


# Tables that triggers keep in step with a layer table, in the same statement that changes it, and that no API or
# loader role may write: its version stands for theirs. twin.quality_land holds the municipalities' land
# (migrations 0005/0006: rebuilt by a statement trigger on twin.municipalities).
_KEPT_BY = {"quality_land": "municipalities"}


# What makes a query's answer depend on the day it runs (a rule's SQL with an as-of date holds that date instead).
_CLOCK = re.compile(r"current_date|current_time|localtime|now\(|clock_timestamp|statement_timestamp|"
                    r"transaction_timestamp|'today'|'now'|\bage\(", re.IGNORECASE)


def fingerprint(rule: QualityRule, settings: Settings | None, today: date, versions: Mapping[str, int]) -> str:
    """What a measurement of ``rule`` depends on, as one md5: its count query as rendered with ``settings``
    (thresholds, the reference date), the database's ``today`` (for rules that read the clock) and the
    ``versions`` (twin.layer_versions; a table missing there counts as 0) of the tables it reads. Recorded with
    the measurement (migration 0025); equal later only if none of that changed, so the recorded count stands.
    Sound only for a rule that reads no table but these (rules over ingest_runs or quality_land read more):
    the API relies on it only where :func:`fingerprint_covers` holds (every signal does, which
    tests/quality/test_quality_rules.py checks)."""
    text = count_sql(rule, settings).as_string(None)
    inputs = ",".join(f"{t}={versions.get(t, 0)}" for t in rule_tables(rule))
    # The date only for a rule that reads the clock (27 of 127): the others' recorded counts stand past midnight.
    day = today.isoformat() if _CLOCK.search(text) else "any day"
    return hashlib.md5(f"{text}\n{day}\n{inputs}".encode(), usedforsecurity=False).hexdigest()


_TABLE_READ = re.compile(r'twin\."?([a-z_0-9]+)"?')
_COVERS: dict[str, bool] = {}


def fingerprint_covers(rule: QualityRule) -> bool:
    """Whether :func:`fingerprint` covers everything ``rule`` reads: its count and failing queries name no
    ``twin.`` table (or function) beyond :func:`rule_tables`. Then an equal fingerprint means an equal count; the
    API serves a recorded count only for such rules (not, e.g., for a delivery-age rule, which reads
    twin.ingest_runs, or a municipality check, which reads twin.quality_land)."""
    if rule.id not in _COVERS:
        text = count_sql(rule).as_string(None) + failing_sql(rule).as_string(None)
        tables = set(rule_tables(rule))
        read = {_KEPT_BY.get(t, t) for t in _TABLE_READ.findall(text)}
        _COVERS[rule.id] = read <= tables
    return _COVERS[rule.id]


def row_local(rule: QualityRule) -> bool:
    """Whether a record's verdict under ``rule`` depends on that record and on other tables only, never on the
    other records of its own layer, so that the rule can be counted over the records a load changed and the
    difference added to a recorded count (twin.quality.delta). Its fingerprint must cover what it reads; its
    query for a few records (:func:`row_joins`) may read its own table again only through a join on the
    record's id (``... ON alias.id = t.id``, as layers.quality_spec.flagged and ROW_JOINS write it), so every
    occurrence of the table beyond the FROM has to be such a join."""
    if not fingerprint_covers(rule):
        return False
    own = get_layer(rule.layer).table
    s = rule.sql
    text = "\n".join((row_joins(rule), s.applies, s.fails, s.reason))
    reads_own = _TABLE_READ.findall(text).count(own)
    keyed = len(re.findall(r"\) ([a-z_]+) ON \1\.id = t\.id\b", text))
    return reads_own <= keyed and not _ACROSS_ROWS.search(row_joins(rule))


# What makes a record's verdict depend on other records of the same table even inside a join on its id.
_ACROSS_ROWS = re.compile(r"group\s+by|\bover\s*\(|_agg\(|\bcount\(|distinct\s+on|\blimit\b|\boffset\b",
                          re.IGNORECASE)


def shared_count_sql(rules: Sequence[QualityRule], settings: Settings | None = None,
                     principal: Principal | None = None,
                     also: Sequence[tuple[QualityRule, Principal]] = (), rows_of: str | None = None) -> sql.Composed:
    """One query counting several rules of a layer with the same ``joins`` (none, for the simple rules) at once:
    columns c0, f0, c1, f1, ... (checked and failed per rule, in order). Same numbers as count_sql per rule (the
    same FROM, each rule's own FILTER), one pass over the rows and one evaluation of the joins. ``also``: then the
    counts of these rules as another audience would get them (their joins must not depend on the audience).
    ``rows_of``: over the records of this TEMP table only (see :func:`count_sql`)."""
    joins = rules[0].sql.joins.strip() if rules else ""
    assert rules and all(r.layer == rules[0].layer and r.sql.joins.strip() == joins for r in rules)
    assert all(r.layer == rules[0].layer and r.sql.joins.strip() == joins and "@visible" not in joins for r, _ in also)
    cols = []
    for i, (r, who) in enumerate([*((r, principal) for r in rules), *also]):
        _, applies, fails, _ = _parts(r, settings, who, rows_of=rows_of)
        cols.append(sql.SQL("count(*) FILTER (WHERE ({a}))::bigint AS {c}, "
                            "count(*) FILTER (WHERE ({a}) AND coalesce(({f}), false))::bigint AS {f_}").format(
            a=applies, f=fails, c=sql.Identifier(f"c{i}"), f_=sql.Identifier(f"f{i}")))
    return sql.SQL("SELECT {} FROM {} {}").format(sql.SQL(", ").join(cols), _table(rules[0], rows_of),
                                                  _parts(rules[0], settings, principal, rows_of=rows_of)[0])


def examples_sql(rule: QualityRule, limit: int, settings: Settings | None = None,
                 rows_of: str | None = None) -> sql.Composed:
    """The first ``limit`` failing records (by id) with the layer's natural key: columns id, key, reason.
    ``rows_of``: among the records of this TEMP table only (:func:`failing_sql`)."""
    spec = get_layer(rule.layer)
    return sql.SQL(
        "SELECT f.id, k.{key}::text AS key, f.reason FROM ({failing}) f JOIN twin.{table} k ON k.id = f.id "
        "ORDER BY f.id LIMIT {limit}"
    ).format(key=sql.Identifier(spec.key), failing=failing_sql(rule, settings, rows_of=rows_of),
             table=sql.Identifier(spec.table),
             limit=sql.Literal(limit))


# The previous measurement of a rule is the latest one made on other inputs: another set of latest runs of
# the rule's layer and the layers it reads (input_runs). Measuring again without a new delivery (a second
# report) therefore never hides the change a delivery made.
_LATEST = """
WITH q AS (
  SELECT id, rule_id, layer, kind, run_id, input_runs, checked, failed, score, measured_at, public_checked,
         public_failed, row_number() OVER (PARTITION BY rule_id ORDER BY measured_at DESC, id DESC) AS n
  FROM twin.quality_results
)
SELECT l.rule_id, l.layer, l.kind, l.checked, l.failed, l.score, l.run_id, l.measured_at,
       p.checked AS previous_checked, p.failed AS previous_failed, p.score AS previous_score,
       p.run_id AS previous_run_id, l.public_checked, l.public_failed
FROM q l
LEFT JOIN LATERAL (
  SELECT p.checked, p.failed, p.score, p.run_id FROM q p
  WHERE p.rule_id = l.rule_id AND p.input_runs IS DISTINCT FROM l.input_runs
  ORDER BY p.measured_at DESC, p.id DESC LIMIT 1
) p ON true
WHERE l.n = 1
"""


def latest_results_sql(known_on: datetime | None = None) -> sql.Composed:
    """SELECT over twin.quality_results: per rule the latest measurement and the previous one (the latest
    made on an earlier delivery): rule_id, layer, kind, checked, failed, score, run_id, measured_at,
    previous_checked, previous_failed, previous_score, previous_run_id, then public_checked, public_failed (the
    counts the public gets, for the audience-scoped rules: migration 0024). Reads no examples column, so the API
    roles may run it. ``known_on`` (beschikbaarOp, docs/history.md): the measurements made up to then only,
    i.e. the one that was current at that moment."""
    if known_on is None:
        return sql.Composed([sql.SQL(_LATEST)])
    text = _LATEST.replace("FROM twin.quality_results\n", "FROM twin.quality_results WHERE measured_at <= {}\n")
    return sql.SQL(text).format(sql.Literal(known_on))
