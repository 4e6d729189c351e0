"""Run bookkeeping shared by every load (vector files, the deposition raster, the derived hexagons): a run
in ``twin.ingest_runs`` with its status, counts and timings, its rejects and warnings in
``twin.ingest_rejects``, and the rejects report next to the source."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ingest.sources import ChecksumThread
from ingest.validation import Reject
from twin.database import connect, url_for
from twin.errors import IngestError
from twin.settings import Settings

ProgressFn = Callable[[int, int | None], None]
"""Progress callback of a load: (done, total or None when unknown)."""


@dataclass
class RunResult:
    """What a load did: the run's id and status, its counts and timings, where the rejects went."""

    run_id: int | None
    layer: str
    source: str
    mode: str
    status: str = "running"
    checksum: str = ""
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    rows_rejected: int = 0
    warnings: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    rejects: list[Reject] = field(default_factory=list)
    report: Path | None = None
    notes: list[str] = field(default_factory=list)
    nulled: dict[str, int] = field(default_factory=dict)  # "column: why" -> values read as NULL
    separator_lines: int = 0  # lines of only separators (Excel's ';;;;') that were skipped
    summer: ChecksumThread | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "unchanged")

    @property
    def rows_loaded(self) -> int:
        return self.rows_inserted + self.rows_updated

    @property
    def rows_nulled(self) -> int:
        """Values read as NULL: no-value words (n.v.t., onbekend, ...) and a source's 'unknown' codes."""
        return sum(self.nulled.values())

    @property
    def seconds(self) -> float:
        return self.timings.get("total", 0.0)


def require_schema(conn: psycopg.Connection) -> None:
    """An IngestError that names the database and says what to run, when it lacks the twin's schema."""
    found = conn.execute("SELECT to_regclass('twin.ingest_runs') IS NOT NULL").fetchone()
    if not (found and found[0]):
        db = conn.info.dbname
        raise IngestError(f"the database {db!r} has no twin schema yet: run 'twin db migrate' (with the same "
                          "TWIN_ settings) first; nothing was loaded")


def start_run(conn: psycopg.Connection, layer: str, source: str, mode: str, options: dict[str, Any]) -> int:
    """Record a new run (status running) and return its id. Runs of dead processes are marked failed. A database
    without the twin's schema (created by hand, never migrated) is an IngestError that says what to run."""
    require_schema(conn)
    _expire_stale_runs(conn)
    row = conn.execute(
        "INSERT INTO twin.ingest_runs (layer, source, mode, options) VALUES (%s, %s, %s, %s) RETURNING id",
        (layer, source, mode, json.dumps({**options, "pid": os.getpid(), "host": os.uname().nodename})),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _expire_stale_runs(conn: psycopg.Connection) -> None:
    """A run left 'running' by a process that no longer exists was interrupted: say so."""
    host = os.uname().nodename
    stale = conn.execute(
        "SELECT id, (options->>'pid')::int FROM twin.ingest_runs WHERE status = 'running' AND options->>'host' = %s",
        (host,),
    ).fetchall()
    for run_id, pid in stale:
        if pid and not _alive(pid):
            conn.execute(
                "UPDATE twin.ingest_runs SET status = 'failed', finished_at = coalesce(finished_at, now()), "
                "message = 'interrupted: the loading process ended before it finished; nothing was loaded' "
                "WHERE id = %s AND status = 'running'",
                (run_id,),
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish_run(conn: psycopg.Connection, result: RunResult) -> None:
    """Write the run's final status, counts and timings."""
    conn.execute(
        """UPDATE twin.ingest_runs SET status = %s, checksum = %s, rows_read = %s, rows_inserted = %s,
               rows_updated = %s, rows_unchanged = %s, rows_deleted = %s, rows_rejected = %s, warnings = %s,
               finished_at = now(), timings = %s, message = %s, options = options || %s
           WHERE id = %s""",
        (
            result.status, result.checksum or None, result.rows_read, result.rows_inserted, result.rows_updated,
            result.rows_unchanged, result.rows_deleted, result.rows_rejected, result.warnings,
            json.dumps({k: round(v, 4) for k, v in result.timings.items()}), result.message,
            json.dumps(_repairs(result)), result.run_id,
        ),
    )


def _repairs(result: RunResult) -> dict[str, Any]:
    """What the load read as NULL or skipped as export damage, kept in the run's options."""
    out: dict[str, Any] = {}
    if result.nulled:
        out["nulled"] = result.nulled
    if result.separator_lines:
        out["separator_lines"] = result.separator_lines
    return out


def save_rejects(conn: psycopg.Connection, run_id: int, source: str, rejects: list[Reject]) -> None:
    """All rejects and warnings of a run into twin.ingest_rejects (by COPY: there may be many)."""
    if not rejects:
        return
    with conn.cursor().copy(
        "COPY twin.ingest_rejects (run_id, source, row_number, field, value, reason, severity) FROM STDIN"
    ) as cp:
        for r in rejects:
            cp.write_row((run_id, source, r.row, r.field, r.value, r.reason, r.severity))


def write_report(source_path: Path, rejects: list[Reject], settings: Settings, label: str) -> tuple[Path | None, str]:
    """``<source>.rejects.csv`` next to the source (or in the data dir when that folder is read-only):
    file, row, field, value, reason, severity. Returns (path, note). A stale report is removed when a
    run has nothing to report."""
    target = source_path.with_name(source_path.name + ".rejects.csv")
    if not rejects:
        try:
            target.unlink(missing_ok=True)
        except OSError:
            pass
        return None, ""
    note = ""
    for candidate in (target, settings.data_dir.resolve() / "rejects" / target.name):
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            with candidate.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["file", "row", "field", "value", "reason", "severity"])
                for r in rejects:
                    w.writerow([label, "" if r.row is None else r.row, r.field or "", r.value or "", r.reason,
                                r.severity])
            if candidate != target:
                note = f"{target} cannot be written: the rejects report went to {candidate}"
            return candidate, note
        except OSError:
            continue
    return None, f"could not write the rejects report next to {source_path} nor in {settings.data_dir}"


@contextmanager
def recorded_run(settings: Settings, layer: str, label: str, mode: str,
                 options: dict[str, Any]) -> Iterator[tuple[psycopg.Connection, RunResult]]:
    """A run in twin.ingest_runs around a load: yields (an autocommit helper connection as the writer, the
    result to fill). An IngestError inside becomes status ``refused`` (with its rejects), anything else
    ``failed`` (and is raised); the body sets the final status and counts itself on success."""
    started = time.perf_counter()
    result = RunResult(None, layer, label, mode)
    with connect(url_for(settings, "writer"), autocommit=True) as helper:
        result.run_id = start_run(helper, layer, label, mode, options)
        try:
            yield helper, result
        except IngestError as exc:
            result.status, result.message = "refused", exc.message
            result.checksum = result.checksum or _safe_checksum(result.summer)
            result.timings["total"] = time.perf_counter() - started
            finish_run(helper, result)
            save_rejects(helper, result.run_id, label, result.rejects)
        except BaseException as exc:
            result.status = "failed"
            result.message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            result.timings["total"] = time.perf_counter() - started
            try:
                finish_run(helper, result)
            finally:
                raise


def _safe_checksum(summer: ChecksumThread | None) -> str:
    if summer is None:
        return ""
    try:
        return summer.result()
    except OSError:
        return ""


def recent_runs(settings: Settings, limit: int = 20, layer: str | None = None) -> list[dict[str, Any]]:
    """The latest runs (newest first), as dicts with the columns of twin.ingest_runs."""
    with connect(url_for(settings, "writer"), autocommit=True) as conn:
        _expire_stale_runs(conn)
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(
            "SELECT * FROM twin.ingest_runs WHERE (%(layer)s::text IS NULL OR layer = %(layer)s) "
            "ORDER BY id DESC LIMIT %(limit)s",
            {"layer": layer, "limit": limit},
        ).fetchall()


def run_rejects(settings: Settings, run_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The rejects and warnings of one run, in row order."""
    with connect(url_for(settings, "writer"), autocommit=True) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(
            "SELECT row_number, field, value, reason, severity FROM twin.ingest_rejects WHERE run_id = %s "
            "ORDER BY row_number NULLS FIRST, id LIMIT %s",
            (run_id, limit),
        ).fetchall()
