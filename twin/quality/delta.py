"""The quality measurement over changed rows only (issue 24; migration 0027, docs/quality.md).

A row-local rule (twin.quality.sql.row_local: a record's verdict depends on that record and on other tables
only) can be counted over a few records, and the counts of a table are the sums of the counts of its records.
So when a load changes some records of a layer whose rules were measured, the loader counts those rules over
the records it is about to update or delete (before its writes, in its transaction) and over the same records
and the ones it inserted (after them), and records the difference in twin.quality_deltas, from the rule's
fingerprint before the load to its fingerprint after it (twin.quality.sql.fingerprint: the rule's query, the
reference date of a rule that reads the clock, the versions of every table it reads). A measurement that finds
a recorded count whose fingerprint leads to the current one through such differences adds them up instead of
counting every record again (twin.quality.evaluate).

Why this is exact: both sides are counted over the same set of records, which holds every record the load
wrote, so the records it did not touch cancel out. The other tables a rule reads are the same on both sides
(the versions are read around the counting, and a difference is recorded only where they did not move), and
the chain from a recorded count is followed only through differences whose fingerprints meet exactly, so no
change in between is missed: a write that records no difference (another tool, a derived table, a load into an
empty table) breaks the chain and the rule is counted in full again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import psycopg
from psycopg import sql

from layers.quality_spec import QualityRule
from layers.registry import LayerSpec, get_layer
from twin.quality.audience import PUBLIC, public_counts_apply
from twin.quality.registry import all_rules
from twin.quality.sql import count_sql, examples_sql, fingerprint, row_joins, row_local, rule_tables, shared_count_sql
from twin.settings import Settings

# How many recorded differences a measurement follows back from the current state to a recorded count (a chain
# of deliveries without a measurement in between); further back it counts in full.
MAX_CHAIN = 50
# The TEMP tables of the ids of the records a load changes and of a copy of the records counted (both dropped at
# the COMMIT of the load or the measurement).
IDS = "quality_delta_ids"
ROWS = "quality_delta_rows"
ROWS_OF_GROUP = "quality_delta_group_rows"  # those of them a group of rules counts
# A load that changes more than this share of its table's records records no difference: counting the changed
# records twice (before and after the writes) would cost about as much as the full count the next measurement
# then does, and the load would carry it (a whole new delivery in replace mode changes every record).
MAX_SHARE = 0.25


@dataclass
class Known:
    """A rule's count reached from a recorded measurement (``result_id``) through recorded differences."""

    checked: int
    failed: int
    public: tuple[int, int] | None
    examples: list[dict[str, str]]
    result_id: int
    recorded_failed: int  # the failed count of the recorded measurement
    runs: list[int] = field(default_factory=list)  # the loads whose differences were added, newest first


def _versions(conn: psycopg.Connection) -> tuple[date, dict[str, int]]:
    today = conn.execute("SELECT current_date").fetchone()
    rows = conn.execute("SELECT table_name, version FROM twin.layer_versions").fetchall()
    assert today is not None
    return today[0], {r[0]: int(r[1]) for r in rows}


def has_table(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('twin.quality_deltas') IS NOT NULL").fetchone()
    return bool(row and row[0])


def reach(conn: psycopg.Connection, rule: QualityRule, fp: str, public: bool) -> Known | None:
    """The count of ``rule`` at the state of fingerprint ``fp``: the latest recorded measurement of that state,
    else of an earlier one plus the differences that lead from it to ``fp``. None when there is none (or the
    recorded measurement lacks the public counts that ``public`` asks for)."""
    runs: list[int] = []
    sums = [0, 0, 0, 0]
    has_public = True
    for _ in range(MAX_CHAIN + 1):
        row = conn.execute(
            "SELECT id, checked, failed, public_checked, public_failed, examples FROM twin.quality_results "
            "WHERE rule_id = %s AND fingerprint = %s ORDER BY measured_at DESC, id DESC LIMIT 1",
            (rule.id, fp)).fetchone()
        if row is not None:
            if public and (row[3] is None or not has_public):
                return None
            pub = (int(row[3]) + sums[2], int(row[4]) + sums[3]) if public else None
            examples = list(row[5] or []) if isinstance(row[5], list) else []
            return Known(int(row[1]) + sums[0], int(row[2]) + sums[1], pub, examples, int(row[0]), int(row[2]),
                         runs)
        step = conn.execute(
            "SELECT fingerprint_from, checked, failed, public_checked, public_failed, run_id FROM twin.quality_deltas "
            "WHERE rule_id = %s AND fingerprint_to = %s AND fingerprint_from <> fingerprint_to "
            "ORDER BY id DESC LIMIT 1", (rule.id, fp)).fetchone()
        if step is None:
            return None
        fp = step[0]
        sums[0] += int(step[1])
        sums[1] += int(step[2])
        if step[3] is None:
            has_public = False
        else:
            sums[2] += int(step[3])
            sums[3] += int(step[4])
        runs.append(int(step[5]))
    return None


def _groups(rules: Sequence[QualityRule]) -> list[list[QualityRule]]:
    """The rules with the same joins (the simple ones: none), counted in one query as the full measurement does."""
    groups: dict[tuple[str, str], list[QualityRule]] = {}
    for rule in rules:
        groups.setdefault((rule.sql.joins.strip(), row_joins(rule)), []).append(rule)
    return list(groups.values())


def _counts(conn: psycopg.Connection, group: Sequence[QualityRule], settings: Settings,
            rows_of: str) -> dict[str, tuple[int, int, int | None, int | None]]:
    """Per rule of ``group`` (:func:`_groups`): checked, failed and the public's checked, failed (None where the
    rule keeps none) over the records of the TEMP table ``rows_of``."""
    public = [r for r in group if public_counts_apply(r)]
    shared = [r for r in public if "@visible" not in r.sql.joins]
    row = conn.execute(shared_count_sql(group, settings, also=[(r, PUBLIC) for r in shared],
                                        rows_of=rows_of)).fetchone()
    assert row is not None
    pub: dict[str, tuple[int, int]] = {r.id: (int(row[2 * j]), int(row[2 * j + 1]))
                                       for j, r in enumerate(shared, start=len(group))}
    for r in public:
        if r.id not in pub:
            own = conn.execute(count_sql(r, settings, PUBLIC, rows_of=rows_of)).fetchone()
            assert own is not None
            pub[r.id] = (int(own[0]), int(own[1]))
    out: dict[str, tuple[int, int, int | None, int | None]] = {}
    for i, r in enumerate(group):
        p = pub.get(r.id)
        out[r.id] = (int(row[2 * i]), int(row[2 * i + 1]), *(p if p else (None, None)))
    return out


_DEFINED = re.compile(r'(?:\btwin\.[a-z_0-9]+|"?' + ROWS + r'"?)\s+(?:AS\s+)?([a-z_][a-z0-9_]*)\b', re.IGNORECASE)


def columns_read(rule: QualityRule, settings: Settings) -> frozenset[str] | None:
    """The columns of its own record that ``rule`` reads, in its form for a few records and for every audience it
    is counted for: the columns of ``t`` and of the other aliases of its own table (the joins on the record's
    id). None when that can't be told (an alias used whole). A record whose update leaves these columns as they
    were keeps its verdict, so it need not be counted on either side of a difference."""
    texts = [count_sql(rule, settings, rows_of=ROWS).as_string(None)]
    if public_counts_apply(rule):
        texts.append(count_sql(rule, settings, PUBLIC, rows_of=ROWS).as_string(None))
    text = "\n".join(texts)
    own = {m.group(1) for m in _DEFINED.finditer(text) if ROWS in m.group(0)}
    bare = _DEFINED.sub(" ", text)  # without the definitions of aliases
    cols: set[str] = set()
    for alias in own:
        cols |= {a or b for a, b in re.findall(rf'\b{alias}"?\.(?:"([a-z_0-9]+)"|([a-z_0-9]+))', bare)}
        if re.search(rf'\b{alias}\b(?!"?\.)', bare):
            return None
    return frozenset(cols)


def _copy(conn: psycopg.Connection, select: sql.Composable) -> None:
    """(Re)fill the TEMP table :data:`ROWS` with the records of ``select`` (every column of the layer table)."""
    rows = sql.Identifier(ROWS)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rows))
    conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS {}").format(rows, select))
    conn.execute(sql.SQL("ANALYZE {}").format(rows))


class Capture:
    """The differences one load makes to the counts of its layer's row-local rules (see the module docstring).
    :func:`start` before the load writes, :meth:`before_merge` once the records to change are known,
    :meth:`after_merge` after its writes and before its COMMIT."""

    def __init__(self, spec: LayerSpec, settings: Settings, rules: list[QualityRule], today: date,
                 versions: dict[str, int]) -> None:
        self.spec, self.settings, self.rules, self.today, self.versions = spec, settings, rules, today, versions
        self.old: dict[str, tuple[int, int, int | None, int | None]] = {}
        self.max_id = 0
        self.rows_old = 0
        self.seconds = 0.0
        self.timings: dict[str, float] = {}
        self.compared: frozenset[str] = frozenset()
        self.rows_table = 0
        self.skipped: str | None = None  # why no difference is recorded (too many records changed)
        # the groups counted in one query each, with the columns of its own record the group reads (None:
        # can't be told), the same before and after the writes
        self.groups: list[tuple[list[QualityRule], frozenset[str] | None]] = []
        for group in _groups(rules):
            reads = [columns_read(rule, settings) for rule in group]
            self.groups.append((group, None if any(r is None for r in reads)
                                else frozenset().union(*(r for r in reads if r is not None))))

    def _too_many(self, changed: int, rows: int) -> bool:
        if changed <= MAX_SHARE * max(rows, 1):
            return False
        self.skipped = (f"quality: this load changes more than {MAX_SHARE:.0%} of the {rows:,} records of "
                        f"{self.spec.id}, so it records no quality difference and the next measurement counts the "
                        "layer's rules over every record (cheaper than counting the changed ones twice)")
        return True

    def _count(self, conn: psycopg.Connection, inserted: bool) -> dict[str, tuple[int, int, int | None, int | None]]:
        """Count the rules over the records in :data:`ROWS`. A group of rules with joins (the costly ones) counts
        only the records whose update changed a column it reads (:func:`columns_read`; the column names in
        :data:`IDS`), the deleted ones and, if ``inserted``, the inserted ones: the others keep their verdict and
        would cancel out. The simple rules share one scan of them all."""
        out: dict[str, tuple[int, int, int | None, int | None]] = {}
        for group, cols in self.groups:
            rows_of = ROWS
            if group[0].sql.joins.strip() and cols is not None and cols <= self.compared | {"id", self.spec.key}:
                rows_of = ROWS_OF_GROUP
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(rows_of)))
                conn.execute(sql.SQL(
                    "CREATE TEMP TABLE {f} ON COMMIT DROP AS SELECT * FROM {rows} WHERE id IN (SELECT id FROM {ids} "
                    "WHERE quality_changed IS NULL OR quality_changed && {cols}){new}").format(
                    f=sql.Identifier(rows_of), rows=sql.Identifier(ROWS), ids=sql.Identifier(IDS),
                    cols=sql.Literal(sorted(cols)),
                    new=sql.SQL(" OR id > {}").format(sql.Literal(self.max_id)) if inserted else sql.SQL("")))
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(rows_of)))
            out.update(_counts(conn, group, self.settings, rows_of))
        return out

    def before_merge(self, conn: psycopg.Connection, changing: sql.Composable, compared: Sequence[str]) -> None:
        """``changing``: a SELECT of the records the merge will update or delete, as they are, with the names of
        the columns an update changes (ingest.merge.changing_rows); ``compared``: the columns the merge
        compares. Counts the rules over them."""
        t0 = time.perf_counter()
        self.compared = frozenset(compared)
        ids, table = sql.Identifier(IDS), sql.Identifier(self.spec.table)
        # the table's size from its statistics (a count would read it all), or counted where it has none yet
        row = conn.execute(sql.SQL("SELECT (SELECT coalesce(max(id), 0) FROM twin.{t}), "
                                   "(SELECT reltuples::bigint FROM pg_class WHERE oid = {reg}::regclass)").format(
            t=table, reg=sql.Literal(f"twin.{self.spec.table}"))).fetchone()
        assert row is not None
        self.max_id, self.rows_table = int(row[0]), int(row[1])
        if self.rows_table <= 0:
            total = conn.execute(sql.SQL("SELECT count(*) FROM twin.{}").format(table)).fetchone()
            self.rows_table = int(total[0]) if total else 0
        # One more than the share allowed: a load that changes more stops copying there (a whole new delivery
        # would otherwise be copied in full for nothing); one pass over the merge's comparison, no second one.
        limit = int(MAX_SHARE * max(self.rows_table, 1)) + 1
        _copy(conn, sql.SQL("SELECT * FROM ({}) c LIMIT {}").format(changing, sql.Literal(limit)))
        self.timings["select"] = time.perf_counter() - t0
        conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT id, quality_changed FROM {}").format(
            ids, sql.Identifier(ROWS)))
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(ids))
        n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ids)).fetchone()
        self.rows_old = int(n[0]) if n else 0
        if self._too_many(self.rows_old, self.rows_table):
            self.seconds += time.perf_counter() - t0
            return
        t1 = time.perf_counter()
        self.old = self._count(conn, inserted=False)
        self.timings["count_before"] = time.perf_counter() - t1
        self.seconds += time.perf_counter() - t0

    def after_merge(self, conn: psycopg.Connection, run_id: int, updated: int, deleted: int, inserted: int) -> int:
        """Count the rules over the same records and the inserted ones, and record the differences of the rules
        whose other tables did not change meanwhile. ``updated``, ``deleted``, ``inserted``: what the merge
        reports; nothing is recorded unless the records counted before are exactly the updated and deleted ones
        and the new ids exactly the inserted ones. Returns the number of differences recorded."""
        t0 = time.perf_counter()
        if self.skipped or self.rows_old != updated + deleted \
                or self._too_many(self.rows_old + inserted, self.rows_table - deleted + inserted):
            return 0
        # two index scans (with OR the planner reads the whole table)
        _copy(conn, sql.SQL("SELECT * FROM twin.{t} WHERE id IN (SELECT id FROM {ids}) UNION ALL "
                            "SELECT * FROM twin.{t} WHERE id > {max}").format(
            t=sql.Identifier(self.spec.table), ids=sql.Identifier(IDS), max=sql.Literal(self.max_id)))
        self.timings["select_after"] = time.perf_counter() - t0
        n_new = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE id > %s").format(sql.Identifier(ROWS)),
                             (self.max_id,)).fetchone()
        if n_new is None or int(n_new[0]) != inserted:
            return 0
        t1 = time.perf_counter()
        new = self._count(conn, inserted=True)
        self.timings["count_after"] = time.perf_counter() - t1
        today, after = _versions(conn)
        rows = []
        own = self.spec.table
        for rule in self.rules:
            others = [t for t in rule_tables(rule) if t != own]
            if today != self.today or any(after.get(t, 0) != self.versions.get(t, 0) for t in others):
                continue  # another table the rule reads changed while this load counted: no difference
            o, n = self.old[rule.id], new[rule.id]
            pub = (None, None) if o[2] is None or n[2] is None else (n[2] - o[2], n[3] - o[3])  # type: ignore[operator]
            rows.append((rule.id, run_id, fingerprint(rule, self.settings, self.today, self.versions),
                         fingerprint(rule, self.settings, today, after), n[0] - o[0], n[1] - o[1], *pub,
                         self.rows_old + inserted))
        with conn.cursor() as c:
            c.executemany(
                "INSERT INTO twin.quality_deltas (rule_id, run_id, fingerprint_from, fingerprint_to, checked, failed, "
                "public_checked, public_failed, rows_changed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
        self.seconds += time.perf_counter() - t0
        return len(rows)


def start(conn: psycopg.Connection, settings: Settings, spec: LayerSpec) -> Capture | None:
    """Before a load of ``spec`` writes (with its table locked against other writers): a :class:`Capture` for
    the row-local rules of the layer whose count at the current state is known (recorded, or reachable through
    recorded differences); None when there is none, and then the load does no extra work."""
    if spec.id not in {r.layer for r in all_rules()} or not has_table(conn):
        return None
    today, versions = _versions(conn)
    rules = [r for r in all_rules(layer=spec.id) if row_local(r)
             and reach(conn, r, fingerprint(r, settings, today, versions), public_counts_apply(r)) is not None]
    return Capture(spec, settings, rules, today, versions) if rules else None


def examples(conn: psycopg.Connection, rule: QualityRule, settings: Settings, known: Known,
              n: int) -> list[dict[str, str]]:
    """The first ``n`` failing records (by id), as a full measurement gives them. A record that fails now and
    was not written by one of the loads since the recorded measurement failed then too (its verdict depends on it
    and on tables that did not change), so the first ``n`` are among the recorded examples and the records those
    loads wrote, provided the recorded examples were all the records that failed then, or at least ``n`` of them
    and none written since. Else they are searched in the whole table."""
    spec = get_layer(rule.layer)
    keys = [str(e["key"]) for e in known.examples if e.get("key") is not None]
    table, key = sql.Identifier(spec.table), sql.Identifier(spec.key)
    exact = len(keys) == len(known.examples) and known.recorded_failed <= len(keys)
    if not exact and len(keys) == len(known.examples) and len(keys) >= n:
        row = conn.execute(sql.SQL("SELECT count(*) FROM twin.{} WHERE {}::text = ANY(%s) AND NOT run_id = ANY(%s)")
                           .format(table, key), (keys, known.runs)).fetchone()
        exact = row is not None and int(row[0]) == len(keys)
    if not exact:
        rows = conn.execute(examples_sql(rule, n, settings)).fetchall()
    else:
        _copy(conn, sql.SQL("SELECT * FROM twin.{} WHERE {}::text = ANY({}) OR run_id = ANY({})").format(
            table, key, sql.Literal(keys), sql.Literal(known.runs)))
        rows = conn.execute(examples_sql(rule, n, settings, ROWS)).fetchall()
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(ROWS)))
    return [{"key": k, "reason": reason} for _, k, reason in rows]
