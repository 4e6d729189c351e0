"""Bulk downloads: a whole layer as one GeoPackage, GeoParquet or CSV file, made once per layer version.

A file is written by a worker thread on its own read-only connection, in one REPEATABLE READ snapshot that
also reads the layer's version (``twin.layer_versions``), so the version in its name is exactly the data
inside. It acts as the caller's audience (database role, API role, organisation: what row-level security
and the field masking decide by) and selects the fields with the same masked expressions as the items
(:class:`api.columns.Columns`), so a file shows each audience what its items show. Files are kept per
layer, audience and version under ``TWIN_DOWNLOAD_DIR`` (default ``data_dir/downloads``); one audience's
file is never served to another. A file is written to a temporary name and renamed into place (atomic), so
two processes making the same file at once cannot corrupt it; within a process, concurrent first requests
wait for one job. Rows are fetched in batches from a server-side cursor and written batch by batch, so
memory stays bounded whatever the layer's size.

A GeoParquet or CSV file that is not made within :data:`STREAM_AFTER_S` is sent while it is written (both
formats are written front to back): the first bytes of the national buildings' GeoParquet come after a second
instead of after the 50-90 s the whole file takes. Such a first answer has no length, ``ETag`` or
``OGC-NumberMatched`` (not known yet); a write that fails cuts the answer off, so the client sees an incomplete
transfer, never a short file that looks whole. A GeoPackage (SQLite writes all over its file) and a
restricted layer (whose access record needs the count) are sent once made, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from api.columns import Binder, Columns, columns_for
from api.params import ItemsQuery
from api.query import count_sql, rows_sql
from layers.registry import LayerSpec
from twin import database
from twin.access import REQUEST_SETTINGS_SQL, Principal, request_settings
from twin.crs import CRS84
from twin.settings import Settings

log = logging.getLogger("twin.api.downloads")

# extension -> (media type, title)
FORMATS: dict[str, tuple[str, str]] = {
    "gpkg": ("application/geopackage+sqlite3", "GeoPackage"),
    "parquet": ("application/vnd.apache.parquet", "GeoParquet"),
    "csv": ("text/csv; charset=utf-8", "CSV"),
}
BATCH_ROWS = 20_000
GENERATION_TIMEOUT = "30min"  # statement_timeout of a file's fetches (the API's own is for interactive requests)
_GEOMETRY_TYPES = {"Point": "Point", "Polygon": "Polygon", "MultiPolygon": "MultiPolygon"}
STREAMABLE = ("parquet", "csv")  # written front to back: can be sent while written
STREAM_AFTER_S = 0.5  # a file not made within this is sent while it is written (if STREAMABLE)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Download:
    """A made file: where, of which layer version (None: the database keeps no versions; then the file is
    temporary and removed after it was sent), when that version was written, how many features it holds."""

    path: Path
    version: int | None
    changed_at: datetime | None
    count: int


def audience(principal: Principal) -> str:
    """A file-name-safe name of what decides a file's content for a caller (role, API role, organisation)."""
    return hashlib.sha256("|".join(request_settings(principal)).encode()).hexdigest()[:16]


def cache_dir(settings: Settings) -> Path:
    return Path(settings.download_dir or Path(settings.data_dir) / "downloads")


Version = tuple[int, datetime]  # a table's (version, changed_at) in twin.layer_versions


def _stamp(version: Version) -> str:
    """The version and when it was written (to the microsecond): unique across databases too, whose version
    numbers all start at 1 (a test database, the demo twin and the bench twin may share a data folder)."""
    number, changed_at = version
    return f"v{number}-{round(changed_at.timestamp() * 1_000_000)}"


def file_path(settings: Settings, spec: LayerSpec, principal: Principal, version: Version, fmt: str) -> Path:
    return cache_dir(settings) / spec.id / audience(principal) / f"{spec.id}-{_stamp(version)}.{fmt}"


def etag(spec: LayerSpec, principal: Principal, version: Version, fmt: str) -> str:
    """The entity tag of a layer version's file for an audience (strong: the bytes are made once)."""
    text = f"{spec.id}|{_stamp(version)}|{audience(principal)}|{fmt}"
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:24]}"'


def read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta: dict[str, Any] = json.loads(path.with_name(path.name + ".json").read_text())
        return meta
    except (OSError, ValueError):
        return None


async def layer_versions(conn: psycopg.AsyncConnection) -> dict[str, Version]:
    """Every table's (version, changed_at) from ``twin.layer_versions``; empty before migration 0007."""
    cur = await conn.execute("SELECT to_regclass('twin.layer_versions') IS NOT NULL")
    row = await cur.fetchone()
    if not (row and row[0]):
        return {}
    cur = await conn.execute("SELECT table_name, version, changed_at FROM twin.layer_versions")
    return {name: (int(version), changed) for name, version, changed in await cur.fetchall()}


def version_tables(spec: LayerSpec) -> tuple[str, ...]:
    """The tables whose changes change a layer's answers: its own, and those its row-level security or masking
    reads (``depends_on``: an inspection's visibility for an advisor follows its establishment)."""
    return (spec.table, *(t for t in spec.depends_on if t != spec.table))


def combined_version(versions: dict[str, Version], spec: LayerSpec) -> Version | None:
    """One version for :func:`version_tables` (the sum of their counters, which only grow; the latest change),
    or None when the layer's own table has none."""
    if spec.table not in versions:
        return None
    parts = [versions[t] for t in version_tables(spec) if t in versions]
    return sum(v for v, _ in parts), max(c for _, c in parts)


def enclosure_links(base: str, settings: Settings, spec: LayerSpec, principal: Principal,
                    version: Version | None) -> list[dict[str, Any]]:
    """``rel=enclosure`` links of a layer's downloads, with the length of files already made."""
    links = []
    for fmt, (media, title) in FORMATS.items():
        link: dict[str, Any] = {"href": f"{base}/collections/{spec.id}/download.{fmt}", "rel": "enclosure",
                                "type": media.split(";")[0], "title": f"The whole layer ({title})"}
        if version is not None:
            with contextlib.suppress(OSError):
                link["length"] = file_path(settings, spec, principal, version, fmt).stat().st_size
        links.append(link)
    return links


# -- making a file (in a worker thread) ------------------------------------------------------------------------
_ARROW_TYPES = {"text": "string", "int": "int64", "float": "float64", "bool": "bool_", "date": "date32"}


def _query(columns: Columns, geometry: Literal["wkt", "wkb"]) -> tuple[sql.Composed, dict[str, Any], list[str]]:
    """All of the layer's rows as the items serve them (masked, CRS84), in key order."""
    q = ItemsQuery(limit=2**62, crs=CRS84)
    binder = Binder()
    query = rows_sql(columns, q, binder, sql.SQL("TRUE"), geometry)
    key = columns.spec.key
    names = [key] + [n for n in columns.names if n != key]
    return query, binder.params, names


def _arrow_schema(columns: Columns, names: list[str]) -> Any:
    import pyarrow as pa

    fields = []
    for n in names:
        f = columns.field(n)
        kind = f.type if f is not None else "text"
        fields.append(pa.field(n, getattr(pa, _ARROW_TYPES[kind])()))
    fields.append(pa.field("geometry", pa.binary()))
    return pa.schema(fields)


def _batches(cur: psycopg.Cursor[Any], schema: Any, counter: list[int]) -> Iterator[Any]:
    import pyarrow as pa

    while rows := cur.fetchmany(BATCH_ROWS):
        counter[0] += len(rows)
        cols = list(zip(*rows, strict=True))
        yield pa.record_batch([pa.array(list(c), type=t) for c, t in zip(cols, schema.types, strict=True)],
                              schema=schema)


def _geo_metadata(spec: LayerSpec) -> bytes:
    kind = _GEOMETRY_TYPES.get(spec.geometry_type)
    meta = {"version": "1.1.0", "primary_column": "geometry",
            "columns": {"geometry": {"encoding": "WKB", "geometry_types": [kind] if kind else []}}}
    return json.dumps(meta).encode()  # no "crs": GeoParquet's default, OGC:CRS84, is what the file holds


def _write(conn: psycopg.Connection[Any], columns: Columns, fmt: str, tmp: Path) -> int:
    """Write the layer's rows to ``tmp`` in ``fmt``; the number of features."""
    spec = columns.spec
    if fmt == "csv":
        query, params, _ = _query(columns, "wkt")
        with tmp.open("wb") as fh, conn.cursor() as cur:
            copy_sql = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query)
            with cur.copy(copy_sql, params) as copy:
                for chunk in copy:
                    fh.write(chunk)
            row = cur.execute(count_sql(columns, sql.SQL("TRUE"))).fetchone()
        return int(row[0]) if row else 0
    query, params, names = _query(columns, "wkb")
    schema = _arrow_schema(columns, names)
    counter = [0]
    with conn.cursor(name=f"twin_download_{secrets.token_hex(4)}") as cur:
        cur.itersize = BATCH_ROWS
        cur.execute(query, params)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            schema = schema.with_metadata({b"geo": _geo_metadata(spec)})
            with pq.ParquetWriter(tmp, schema) as writer:
                for batch in _batches(cur, schema, counter):
                    writer.write_batch(batch)
        else:
            import pyarrow as pa
            from pyogrio.raw import write_arrow

            reader = pa.RecordBatchReader.from_batches(schema, _batches(cur, schema, counter))
            write_arrow(reader, str(tmp), layer=spec.id, driver="GPKG", geometry_name="geometry",
                        geometry_type=_GEOMETRY_TYPES.get(spec.geometry_type, "Unknown"), crs="OGC:CRS84")
    return counter[0]


def make_file(settings: Settings, spec: LayerSpec, principal: Principal, fmt: str,
              writing: Callable[[Path], None] | None = None) -> Download:
    """Make the file of the layer's current version for ``principal``'s audience (or find it made by another
    process meanwhile). Blocking: run it in a worker thread. ``writing`` is called with the temporary file
    (created, empty) just before the rows are written into it."""
    columns = columns_for(spec, principal)
    with psycopg.connect(database.url_for(settings, "reader"), connect_timeout=5,
                         application_name="vth-twin-download") as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            conn.execute(REQUEST_SETTINGS_SQL, request_settings(principal))
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(GENERATION_TIMEOUT)))
            conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            row = conn.execute("SELECT sum(version), max(changed_at) FROM twin.layer_versions "
                               "WHERE table_name = ANY(%s) HAVING bool_or(table_name = %s)",
                               (list(version_tables(spec)), spec.table)).fetchone() if _versioned(conn) else None
            if row is None:  # no versions: a file for this request only
                final = cache_dir(settings) / "tmp" / f"{spec.id}-{secrets.token_hex(8)}.{fmt}"
                version, changed_at = None, None
            else:
                version, changed_at = int(row[0]), row[1]
                final = file_path(settings, spec, principal, (version, changed_at), fmt)
                meta = read_meta(final)
                if final.exists() and meta is not None:
                    return Download(final, version, changed_at, int(meta["count"]))
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            try:
                if writing is not None:
                    tmp.touch(mode=0o600)  # the writers truncate it in place: a reader that opened it follows
                    writing(tmp)
                count = _write(conn, columns, fmt, tmp)
                if fmt == "gpkg":
                    _stamp_gpkg(tmp, changed_at)
                if version is not None:
                    meta_tmp = tmp.with_name(tmp.name + ".json")
                    meta_tmp.write_text(json.dumps({"version": version, "count": count,
                                                    "changed_at": changed_at.isoformat() if changed_at else None}))
                    os.replace(meta_tmp, final.with_name(final.name + ".json"))
                os.replace(tmp, final)
            finally:
                for leftover in (tmp, tmp.with_name(tmp.name + ".json")):
                    with contextlib.suppress(FileNotFoundError):
                        leftover.unlink()
    if version is not None:
        _remove_older(final, spec, version, fmt)
    log.info("made %s for version %s (%d features)", final.name, version, count)
    return Download(final, version, changed_at, count)


def _stamp_gpkg(path: Path, changed_at: datetime | None) -> None:
    """GDAL writes the time of writing into gpkg_contents.last_change; the layer version's time instead, so that
    every API process (and machine) makes the same bytes for the same strong ETag, and a shared cache may mix them.
    """
    import sqlite3

    when = (changed_at or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE gpkg_contents SET last_change = ?", (when,))


def _versioned(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('twin.layer_versions') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _remove_older(final: Path, spec: LayerSpec, version: int, fmt: str) -> None:
    """Files of earlier versions in the same audience's folder (a reader that has one open keeps reading)."""
    prefix = f"{spec.id}-v"
    for other in final.parent.glob(f"{prefix}*.{fmt}*"):
        number = other.name[len(prefix):].split(".", 1)[0].split("-", 1)[0]  # "v<number>-<microseconds>"
        if number.isdigit() and int(number) < version:
            with contextlib.suppress(OSError):
                other.unlink()


# -- the jobs of one process -------------------------------------------------------------------------------
@dataclass
class Making:
    """A file job: its result, and the temporary file it writes (once it writes)."""

    job: asyncio.Future[Download]
    writing: asyncio.Event = field(default_factory=asyncio.Event)
    tmp: Path | None = None


class Jobs:
    """Running file jobs of this process: concurrent first requests of one file wait for one job; at most
    ``parallel`` files are made at once (each holds a database connection and a worker thread)."""

    def __init__(self, parallel: int = 2) -> None:
        self._running: dict[tuple[str, str, str, int | None], Making] = {}
        self._slots = asyncio.Semaphore(parallel)

    def start(self, settings: Settings, spec: LayerSpec, principal: Principal, fmt: str,
              version: int | None) -> Making:
        """The job that makes the file (a running one for the same file, else a new one)."""
        key = (spec.id, audience(principal), fmt, version)
        making = self._running.get(key) if version is not None else None
        if making is None:
            loop = asyncio.get_running_loop()

            made: list[Making] = []

            def note(tmp: Path) -> None:
                made[0].tmp = tmp
                made[0].writing.set()

            def writing(tmp: Path) -> None:  # called in the worker thread, which starts after ``made`` is set
                loop.call_soon_threadsafe(note, tmp)

            making = Making(asyncio.ensure_future(self._run(settings, spec, principal, fmt, writing)))
            made.append(making)
            if version is not None:
                self._running[key] = making
                making.job.add_done_callback(lambda _: self._running.pop(key, None))
        return making

    async def _run(self, settings: Settings, spec: LayerSpec, principal: Principal, fmt: str,
                   writing: Callable[[Path], None]) -> Download:
        async with self._slots:
            return await asyncio.to_thread(make_file, settings, spec, principal, fmt, writing)


async def made_or_writing(making: Making, stream: bool) -> Download | Path:
    """The made file if it is made within :data:`STREAM_AFTER_S` or is not to be sent while written
    (``stream`` false); else the temporary file it is being written to, once writing began."""
    if stream:
        writing = asyncio.ensure_future(making.writing.wait())
        try:
            await asyncio.wait([making.job], timeout=STREAM_AFTER_S)
            if not making.job.done():
                either: set[asyncio.Future[Any]] = {making.job, writing}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            writing.cancel()
        if not making.job.done() and making.tmp is not None:
            return making.tmp
    return await asyncio.shield(making.job)


async def follow(fh: Any, job: asyncio.Future[Download], poll_s: float = 0.05) -> AsyncIterator[bytes]:
    """The bytes of a file while ``job`` writes it (front to back), to its end once the job is done; the job's
    error if it fails (the answer is then cut off). ``fh``: the file opened for reading before it was renamed
    into place (the open file stays the same file)."""
    try:
        while True:
            chunk = fh.read(CHUNK)
            if chunk:
                yield chunk
                continue
            if job.done():
                job.result()  # raises the job's error
                while chunk := fh.read(CHUNK):  # what was written between the last read and the end
                    yield chunk
                return
            await asyncio.sleep(poll_s)
    finally:
        fh.close()


def http_date(when: datetime) -> str:
    """``Last-Modified`` of a version: when it was written, in HTTP's date format."""
    return format_datetime(when.astimezone(UTC), usegmt=True)
