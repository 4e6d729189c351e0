"""Measuring the rules: which apply, their counts and examples, the comparison with the measurement of the
previous delivery, and recording them in twin.quality_results."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from layers.quality_spec import QualityRule
from layers.registry import LAYERS, get_layer
from twin.database import snapshot_sessions
from twin.quality import audience, delta
from twin.quality.audience import PUBLIC, public_counts_apply
from twin.quality.registry import all_rules, rules_reading
from twin.quality.sql import count_sql, examples_sql, fingerprint, row_local, shared_count_sql
from twin.settings import Settings

JSON_FORMAT = "vth-twin-quality/1"


@dataclass(frozen=True)
class Previous:
    """The measurement a result is compared with: the latest one made on an earlier delivery."""

    checked: int
    failed: int
    score: float
    run_id: int | None
    measured_at: datetime


@dataclass
class RuleResult:
    """One rule measured: counts, score, examples (key + reason), where the data came from, the previous."""

    rule: QualityRule
    applicable: bool
    note: str | None = None  # why the rule does not apply
    checked: int = 0
    failed: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    run_id: int | None = None
    source: str | None = None
    input_runs: tuple[int, ...] = ()
    seconds: float = 0.0
    previous: Previous | None = None
    public: tuple[int, int] | None = None  # (checked, failed) as the public gets them: see public_counts_apply
    fingerprint: str | None = None  # what the counts were measured on (twin.quality.sql.fingerprint)
    # counted over changed rows only (twin.quality.delta): the recorded measurement and the loads added to it (not
    # in the JSON: its keys stay those of vth-twin-quality/1; the seconds show it)
    incremental: tuple[int, tuple[int, ...]] | None = None

    @property
    def score(self) -> float:
        """1 - failed/checked; 1.0 when nothing was checked."""
        return 1.0 - self.failed / self.checked if self.checked else 1.0

    def as_json(self) -> dict[str, Any]:
        r = self.rule
        prev = self.previous
        change = None
        if prev is not None and self.applicable:
            change = {"failed": self.failed - prev.failed, "checked": self.checked - prev.checked,
                      "score": round(self.score - prev.score, 6)}
        return {
            "id": r.id, "layer": r.layer, "kind": r.kind, "title": r.title, "explanation": r.explanation,
            "severity": r.severity, "depends_on": list(r.depends_on), "applicable": self.applicable,
            "note": self.note, "checked": self.checked, "failed": self.failed,
            "score": round(self.score, 6) if self.applicable else None,
            "run_id": self.run_id, "source": self.source,
            "previous": None if prev is None else {
                "checked": prev.checked, "failed": prev.failed, "score": round(prev.score, 6),
                "run_id": prev.run_id, "measured_at": prev.measured_at.isoformat()},
            "change": change, "examples": self.examples, "seconds": round(self.seconds, 3),
        }


@dataclass
class LayerSummary:
    """A layer's score: the mean score of its applicable rules, from its latest delivery (source)."""

    layer: str
    source: str | None
    run_id: int | None
    rules: int
    applicable: int
    failed: int
    score: float | None
    previous_score: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer, "title": get_layer(self.layer).title, "source": self.source, "run_id": self.run_id,
            "rules": self.rules, "applicable": self.applicable, "failed": self.failed,
            "score": None if self.score is None else round(self.score, 6),
            "previous_score": None if self.previous_score is None else round(self.previous_score, 6),
            "change": None if self.score is None or self.previous_score is None
            else round(self.score - self.previous_score, 6),
        }


@dataclass
class QualityReport:
    """A measurement of a set of rules."""

    measured_at: datetime
    results: list[RuleResult]
    settings: dict[str, Any]
    seconds: float = 0.0

    def layers(self) -> list[LayerSummary]:
        out = []
        for layer in dict.fromkeys(r.rule.layer for r in self.results):
            rs = [r for r in self.results if r.rule.layer == layer]
            app = [r for r in rs if r.applicable]
            prev = [r.previous.score for r in app if r.previous is not None]
            src = next((r for r in rs if r.run_id is not None), None)
            out.append(LayerSummary(
                layer=layer, source=src.source if src else None, run_id=src.run_id if src else None,
                rules=len(rs), applicable=len(app), failed=sum(r.failed for r in app),
                score=sum(r.score for r in app) / len(app) if app else None,
                # the previous layer score over the rules that have a previous measurement, so that the change
                # compares like with like
                previous_score=sum(prev) / len(prev) if prev and len(prev) == len(app) else None,
            ))
        return out

    def as_json(self) -> dict[str, Any]:
        app = [r for r in self.results if r.applicable]
        return {
            "format": JSON_FORMAT,
            "measured_at": self.measured_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "settings": self.settings,
            "summary": {
                "rules": len(self.results), "applicable": len(app),
                "failing_rules": sum(1 for r in app if r.failed),
                "score": round(sum(r.score for r in app) / len(app), 6) if app else None,
            },
            "layers": [s.as_json() for s in self.layers()],
            "rules": [r.as_json() for r in self.results],
        }


# --- the database's state ------------------------------------------------------------------------------------


def _schema(conn: psycopg.Connection) -> set[str]:
    """The tables ("table") and columns ("table.column") of the twin schema."""
    rows = conn.execute(
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = 'twin' AND c.relkind IN ('r', 'p', 'v', 'm')").fetchall()
    return {r[0] for r in rows} | {f"{r[0]}.{r[1]}" for r in rows}


def _latest_runs(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """Per layer its latest successful ingest run: (run id, source)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (layer) layer, id, source FROM twin.ingest_runs WHERE status = 'succeeded' "
        "ORDER BY layer, id DESC").fetchall()
    return {r[0]: (int(r[1]), r[2]) for r in rows}


def _inputs(conn: psycopg.Connection, schema: set[str]) -> tuple[date, dict[str, int]] | None:
    """The database's current_date and the version of every table (twin.layer_versions), read at a fresh
    snapshot; None before migration 0025 (nowhere to record a fingerprint)."""
    if "quality_results.fingerprint" not in schema or "layer_versions" not in schema:
        return None
    today = conn.execute("SELECT current_date").fetchone()
    rows = conn.execute("SELECT table_name, version FROM twin.layer_versions").fetchall()
    assert today is not None
    return today[0], {r[0]: int(r[1]) for r in rows}


def _previous(conn: psycopg.Connection, rule_ids: Sequence[str]) -> dict[tuple[str, tuple[int, ...]], Previous]:
    """The latest recorded measurement per rule and set of input runs."""
    rows = conn.execute(
        "SELECT DISTINCT ON (rule_id, input_runs) rule_id, input_runs, checked, failed, score, run_id, measured_at "
        "FROM twin.quality_results WHERE rule_id = ANY(%s) ORDER BY rule_id, input_runs, measured_at DESC, id DESC",
        (list(rule_ids),)).fetchall()
    return {(r[0], tuple(r[1])): Previous(int(r[2]), int(r[3]), float(r[4]), r[5], r[6]) for r in rows}


def _pick_previous(found: dict[tuple[str, tuple[int, ...]], Previous], rule_id: str,
                   inputs: tuple[int, ...]) -> Previous | None:
    candidates = [p for (rid, ins), p in found.items() if rid == rule_id and ins != inputs]
    return max(candidates, key=lambda p: p.measured_at, default=None)


def _missing(rule: QualityRule, schema: set[str]) -> list[str]:
    needed = [get_layer(x).table for x in (rule.layer, *rule.depends_on)]
    needed += list(rule.requires)
    return [n for n in needed if n not in schema]


def _rows(conn: psycopg.Connection) -> dict[str, float]:
    """The planner's row estimate of each twin table (pg_class.reltuples; -1 before the first ANALYZE)."""
    rows = conn.execute("SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'twin' AND c.relkind IN ('r', 'p')").fetchall()
    return {r[0]: float(r[1]) for r in rows}


# --- measuring ------------------------------------------------------------------------------------------------

_SUBQUERY = re.compile(r"\bselect\b", re.IGNORECASE)


def _cost(group: Sequence[RuleResult], rows: dict[str, float]) -> float:
    """A rough cost of a group's query, to start the longest first: the table's rows times one plus the
    subqueries (each a probe or a join per row) in its joins and in the conditions of its rules."""
    n = max(rows.get(get_layer(group[0].rule.layer).table, 0.0), 1.0)
    s = group[0].rule.sql
    probes = len(_SUBQUERY.findall(s.joins)) + sum(len(_SUBQUERY.findall(r.rule.sql.applies + r.rule.sql.fails))
                                                  for r in group)
    return n * (1 + probes)


def _measure_group(conn: psycopg.Connection, group: Sequence[RuleResult], settings: Settings,
                   n_examples: int) -> None:
    """Count the rules of ``group`` (one layer, the same joins) in one query, with the public counts of the rules
    that have them as more columns of it (or, where the joins depend on the audience, a query of their own), then
    fetch the examples of those that fail. Each rule's seconds: its share of the counts plus its own examples."""
    t0 = time.perf_counter()
    public = [r for r in group if public_counts_apply(r.rule)]
    shared = [r for r in public if not audience.VISIBLE.search(r.rule.sql.joins)]
    row = conn.execute(shared_count_sql([r.rule for r in group], settings,
                                        also=[(r.rule, PUBLIC) for r in shared])).fetchone()
    assert row is not None
    for j, r in enumerate(shared, start=len(group)):
        r.public = (int(row[2 * j]), int(row[2 * j + 1]))
    for r in public:
        if r.public is None:
            own = conn.execute(count_sql(r.rule, settings, PUBLIC)).fetchone()
            assert own is not None
            r.public = (int(own[0]), int(own[1]))
    share = (time.perf_counter() - t0) / len(group)
    for i, r in enumerate(group):
        r.checked, r.failed, r.seconds = int(row[2 * i]), int(row[2 * i + 1]), share
    if n_examples <= 0:
        return
    for r in group:
        if r.failed:
            t0 = time.perf_counter()
            rows = conn.execute(examples_sql(r.rule, n_examples, settings)).fetchall()
            r.examples = [{"key": k, "reason": reason} for _, k, reason in rows]
            r.seconds += time.perf_counter() - t0


def _run_jobs(conn: psycopg.Connection, jobs: Sequence[list[RuleResult]],
              run: Callable[[psycopg.Connection, list[RuleResult]], None]) -> None:
    """``run`` each job (in the given order) on two sessions sharing a snapshot, each taking the next job when
    it is done, so that one long query (addresses.in-building) and the many short ones use both cores; on
    ``conn`` one after the other when that can't be done."""
    sessions = snapshot_sessions(conn, 2) if len(jobs) > 1 else None
    if sessions is None:
        for job in jobs:
            run(conn, job)
        return
    queue = deque(jobs)
    lock = threading.Lock()

    def work(c: psycopg.Connection) -> None:
        while True:
            with lock:
                if not queue:
                    return
                job = queue.popleft()
            try:
                run(c, job)
            except BaseException:
                with lock:
                    queue.clear()  # the other session stops after its current job
                raise

    a, b = sessions
    for c in (a, b):
        # hash joins of the national tables (addresses.unique) in memory instead of in batches on disk; the
        # leader of a parallel query only gathers: when it probes too, the join and the counts above the Gather
        # wait for it and the workers stall (addresses.in-building)
        c.execute("SET LOCAL work_mem = '128MB'")
        c.execute("SET LOCAL parallel_leader_participation = off")
    with a, b, ThreadPoolExecutor(2) as pool:  # psycopg lets go of the GIL while the server works
        done = [pool.submit(work, c) for c in (a, b)]
        for f in done:
            f.result()
        for c in (a, b):
            c.rollback()



def _added_up(conn: psycopg.Connection, results: Sequence[RuleResult], settings: Settings, today: date,
              versions: dict[str, int], n_examples: int) -> list[RuleResult]:
    """Set the counts of those of ``results`` whose rule is row-local and whose count at the state of ``today``
    and ``versions`` is reached from a recorded measurement through at least one recorded difference, with their
    examples (twin.quality.delta.examples). Returns the results so measured; the caller counts the others."""
    if not delta.has_table(conn):
        return []
    done = []
    for r in results:
        if not row_local(r.rule):
            continue
        t0 = time.perf_counter()
        known = delta.reach(conn, r.rule, fingerprint(r.rule, settings, today, versions), public_counts_apply(r.rule))
        if known is None or not known.runs:
            continue
        r.checked, r.failed, r.public = known.checked, known.failed, known.public
        r.incremental = (known.result_id, tuple(known.runs))
        if n_examples > 0 and r.failed:
            r.examples = delta.examples(conn, r.rule, settings, known, n_examples)
        r.seconds = time.perf_counter() - t0
        done.append(r)
    return done


def evaluate(conn: psycopg.Connection, settings: Settings, rules: Iterable[QualityRule] | None = None,
             examples: int | None = None, compare: bool = True,
             progress: Callable[[int, int], None] | None = None, incremental: bool = False) -> QualityReport:
    """Measure ``rules`` (default: all) on ``conn`` under its role: counts, examples and, when ``compare``,
    the previous measurement of each rule from twin.quality_results (when the table exists). ``progress(done,
    total)``: called with the rules measured so far as each query ends (from the measuring threads).
    ``incremental``: a row-local rule whose count is reached from a recorded measurement through the differences
    the loads since recorded is not counted again (twin.quality.delta; the writer's view of the current state
    only: not for another role, nor as of another date)."""
    started = time.perf_counter()
    chosen = list(all_rules() if rules is None else rules)
    n_examples = settings.quality_examples if examples is None else examples
    schema = _schema(conn)
    latest = _latest_runs(conn)
    tables_needed = {x for r in chosen for x in (r.layer, *r.depends_on) if get_layer(x).table in schema}
    schema_rows = _rows(conn)
    filled = {}
    for layer in sorted(tables_needed):
        row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM twin.{get_layer(layer).table})").fetchone()  # noqa: S608
        filled[layer] = bool(row and row[0])

    results: list[RuleResult] = []
    for rule in chosen:
        res = RuleResult(rule, applicable=True)
        run = latest.get(rule.layer)
        res.run_id, res.source = (run[0], run[1]) if run else (None, None)
        res.input_runs = tuple(sorted({latest[x][0] for x in (rule.layer, *rule.depends_on) if x in latest}))
        missing = _missing(rule, schema)
        if missing:
            res.applicable = False
            res.note = f"the database lacks {', '.join(missing)} (an older schema: run 'twin db migrate')"
        elif not filled.get(rule.layer):
            res.applicable, res.note = False, f"{rule.layer} holds no records"
        else:
            empty = [d for d in rule.depends_on if not filled.get(d)]
            if empty:
                res.applicable, res.note = False, f"needs {', '.join(empty)}, which holds no records"
        results.append(res)

    todo = [r for r in results if r.applicable]
    before = _inputs(conn, schema)
    measured = [0]
    counted = todo
    if incremental and before is not None:
        done = _added_up(conn, todo, settings, *before, n_examples)
        counted = [r for r in todo if all(r is not d for d in done)]
        measured[0] = len(done)
        if done and progress is not None:
            progress(len(done), len(todo))
    # Rules of a layer with the same joins (the simple rules: none) share one query; the queries run on two
    # sessions at once where the connection allows it.
    groups: dict[tuple[str, str], list[RuleResult]] = {}
    for r in counted:
        groups.setdefault((r.rule.layer, r.rule.sql.joins.strip()), []).append(r)
    jobs = sorted(groups.values(), key=lambda g: _cost(g, schema_rows), reverse=True)
    lock = threading.Lock()

    def measure(c: psycopg.Connection, group: list[RuleResult]) -> None:
        _measure_group(c, group, settings, n_examples)
        if progress is not None:
            with lock:
                measured[0] += len(group)
                progress(measured[0], len(todo))

    _run_jobs(conn, jobs, measure)
    # The sessions' snapshot was taken between the two reads. Versions only grow, with every committed change: if
    # the versions of the tables a rule reads (and the date) are the same after, no change to those tables
    # committed in between, so its counts are of that state. Per rule: 'twin ingest-all' measures the rules of
    # the loaded layers while the hexagons are still being derived (and their version moves).
    after = _inputs(conn, schema)
    if before is not None and after is not None:
        for r in todo:
            fp = fingerprint(r.rule, settings, *before)
            if fp == fingerprint(r.rule, settings, *after):
                r.fingerprint = fp

    if compare and "quality_results.input_runs" in schema:
        found = _previous(conn, [r.rule.id for r in results])
        for r in results:
            r.previous = _pick_previous(found, r.rule.id, r.input_runs)
    values = {name: getattr(settings, name) for name in Settings.model_fields if name.startswith("quality_")}
    values = {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
    return QualityReport(datetime.now(UTC), results, values, time.perf_counter() - started)


def record(conn: psycopg.Connection, report: QualityReport) -> int:
    """Write the applicable results of ``report`` into twin.quality_results (the caller commits). Returns the
    number of rows written. Rules that do not apply are not recorded: they have no score."""
    rows = [(r.rule.id, r.rule.layer, r.rule.kind, r.run_id, list(r.input_runs), r.source, r.checked, r.failed,
             r.score, json.dumps(r.examples), r.seconds, report.measured_at,
             *(r.public if r.public is not None else (None, None)), r.fingerprint)
            for r in report.results if r.applicable]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO twin.quality_results (rule_id, layer, kind, run_id, input_runs, source, checked, failed, "
            "score, examples, seconds, measured_at, public_checked, public_failed, fingerprint) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return len(rows)


def measure_and_record(settings: Settings, rules: Iterable[QualityRule] | None = None,
                       progress: Callable[[int, int], None] | None = None,
                       incremental: bool = True) -> tuple[QualityReport, int]:
    """Measure ``rules`` (default: all) as the writer, who reads every row, and record them in one transaction:
    the report and the number of results written. No statement timeout applies to the writer. ``incremental``:
    see :func:`evaluate`."""
    from twin import database

    with database.connect(database.url_for(settings, "writer")) as conn:
        report = evaluate(conn, settings, rules, progress=progress, incremental=incremental)
        n = record(conn, report)
        conn.commit()
    return report, n


def measure_after_ingest(settings: Settings, layers: Iterable[str],
                         which: Callable[[QualityRule], bool] | None = None) -> QualityReport | None:
    """After a successful ingest of ``layers``: measure their rules and the rules that read them (those of them
    for which ``which`` holds, when given), as the writer, and record them. None when no rule is left."""
    changed = frozenset(x for x in layers if x in LAYERS)
    rules = tuple(r for r in rules_reading(changed) if which is None or which(r))
    if not rules:
        return None
    return measure_and_record(settings, rules)[0]
