"""The loader: read -> validate -> stage (COPY) -> check -> merge, in one transaction, recorded as a run.

Flow of :func:`load` for a vector layer:

1. Open the source, map its columns to the layer's fields, find its geometry and CRS (a file without a
   CRS, or with lat/lon given as x/y, is refused before anything is read).
2. Start a run in ``twin.ingest_runs`` (committed at once, status ``running``).
3. In ONE transaction as ``twin_writer``: lock the layer's table against other loads (readers are not
   blocked), stream the source in batches; validate each batch on whole Arrow arrays; COPY the good rows
   into a TEMP staging table. Checks that need the database (an inspection's establishment exists) run on
   the staging table. Then, unless the reject rate exceeds ``max_reject_rate``, merge: upsert by natural
   key with ``ON CONFLICT DO UPDATE ... WHERE row IS DISTINCT FROM`` (unchanged rows are not rewritten);
   ``replace`` also deletes the rows that the file no longer holds. The run's counts and the rejects are
   written in the same transaction, then COMMIT.

When the layer's table is empty and the layer needs no database checks, the validated rows are copied
straight into the table inside the same transaction (no staging round trip); the guarantees are the same:
nothing is visible before COMMIT and a refused or killed load leaves nothing behind. On a server with
``wal_level = minimal`` (the local cluster) that first load also truncates the empty table inside its
transaction, so that its COPY and index builds skip the WAL; readers of the empty table then wait for the
COMMIT (migration 0008).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from pyproj import CRS

from ingest import geometry as geo
from ingest.sources import ChecksumThread, VectorSource, open_source, split_layer
from ingest.validation import ARROW_TYPES, Mapping, Reject, map_columns, require_columns, validate
from layers.registry import COVERAGES, LAYERS, SCHEMA, LayerSpec, get_layer
from twin.database import connect, url_for
from twin.errors import IngestError
from twin.settings import Settings

MODES = ("upsert", "replace")
# 16,384 rows a batch: the COPY writer thread feeds the server one batch while this thread validates the
# next, so the server starts sooner and waits less. In-process loads into empty tables (best of 3-4,
# interleaved, load average ~3): 50,000 establishments 0.77 s with 65,536 (one batch: read, validate,
# then the server's COPY, nothing overlaps) -> 0.69 s; 500,000 buildings 2.54 -> 2.42 s; 8,192 was no better.
BATCH_SIZE = 16384
# From this many rows on, a load into an empty table sets the secondary indexes aside and rebuilds them
# at the end, and the keys and foreign keys with them (set_aside): below it the rebuild costs more than it
# saves.
DEFER_INDEXES_MIN_ROWS = 50_000
# Test hook: TWIN_INGEST_PAUSE_AT=copy|commit with TWIN_INGEST_PAUSE_FILE=path makes the loader write that
# file and sleep after the first COPYed batch or just before COMMIT (after the merge), so that a test can
# kill it there. Never set in production.
PAUSE_AT_ENV, PAUSE_FILE_ENV = "TWIN_INGEST_PAUSE_AT", "TWIN_INGEST_PAUSE_FILE"


def _pause(phase: str) -> None:
    if os.environ.get(PAUSE_AT_ENV) == phase and os.environ.get(PAUSE_FILE_ENV):
        Path(os.environ[PAUSE_FILE_ENV]).write_text(str(os.getpid()))
        time.sleep(120)

ProgressFn = Callable[[int, int | None], None]


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
    summer: ChecksumThread | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "unchanged")

    @property
    def rows_loaded(self) -> int:
        return self.rows_inserted + self.rows_updated

    @property
    def seconds(self) -> float:
        return self.timings.get("total", 0.0)


def _t(table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(table))


# --- runs -------------------------------------------------------------------------------------------------


def start_run(conn: psycopg.Connection, layer: str, source: str, mode: str, options: dict[str, Any]) -> int:
    """Record a new run (status running) and return its id. Runs of dead processes are marked failed."""
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
               finished_at = now(), timings = %s, message = %s
           WHERE id = %s""",
        (
            result.status, result.checksum or None, result.rows_read, result.rows_inserted, result.rows_updated,
            result.rows_unchanged, result.rows_deleted, result.rows_rejected, result.warnings,
            json.dumps({k: round(v, 4) for k, v in result.timings.items()}), result.message, result.run_id,
        ),
    )


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


# --- the vector load ----------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything decided before reading: mapping, geometry source, CRS, columns to write."""

    spec: LayerSpec
    source: VectorSource
    mapping: Mapping
    geometry: geo.GeometryPlan
    crs: CRS | None
    crs_given: bool
    fill_geometry_from: LayerSpec | None
    references: list[LayerSpec]


def plan_load(spec: LayerSpec, source: VectorSource, crs_text: str | None) -> Plan:
    """Decide how a source maps onto a layer; IngestError (nothing read yet) when it cannot load."""
    gplan = geo.plan_geometry(source.columns, source.has_geometry)
    mapping = map_columns(spec, source.columns, reserved=gplan.columns,
                          truncate=10 if source.format == "shp" else None)
    references = [LAYERS[d] for d in spec.depends_on if LAYERS[d].key in spec.field_names]
    fill_from = next((r for r in references if r.geometry_type == "Point"), None)
    require_columns(spec, mapping, source.label)
    if gplan.kind == "none" and fill_from is None:
        raise IngestError(
            f"{source.label}: no geometry: the file has no geometry, no x/y or lon/lat columns and no WKT "
            f"column (looked for {', '.join(a + '/' + b for a, b in geo.XY_NAMES[:3])}, lon/lat, wkt)"
        )
    crs: CRS | None
    if crs_text:
        crs = geo.parse_crs(crs_text)
        if source.crs is not None and not source.crs.equals(crs, ignore_axis_order=True):
            source.notes.append(
                f"--crs {geo.crs_label(crs)} overrides the CRS {geo.crs_label(source.crs)} declared by the file"
            )
    elif source.crs is not None:
        crs = source.crs
    elif gplan.kind == "lonlat":
        crs = CRS.from_epsg(4326)
    else:
        crs = None
    if crs is None and gplan.kind != "none":
        raise IngestError(
            f"{source.label}: the file does not say in which coordinate system its coordinates are; "
            "give it with --crs (EPSG:28992 for RD New metres, EPSG:4326 for longitude/latitude)",
            parameter="crs",
        )
    return Plan(spec, source, mapping, gplan, crs, bool(crs_text), fill_from, references)


class _Load:
    """State of one vector load (one transaction)."""

    def __init__(self, plan: Plan, result: RunResult, land: geo.LandMask | None, helper: psycopg.Connection,
                 progress: ProgressFn | None) -> None:
        self.plan, self.result, self.land, self.helper, self.progress = plan, result, land, helper, progress
        self.spec = plan.spec
        self.rejects: list[Reject] = []
        self.rejected_rows: set[int] = set()
        self.rejected_keys: list[str] = []
        self.seen: set[int] = set()
        self.key_width: int | None = None
        self.dupes: list[tuple[int, int, str]] = []  # (hash, row, key)
        self.key_hashes: list[np.ndarray] = []
        self.key_rows: list[np.ndarray] = []
        self.columns: list[str] | None = None
        self.checked_crs = False
        self.staged = 0
        self.timing = {"read": 0.0, "validate": 0.0, "geometry": 0.0, "copy": 0.0}
        cols = plan.geometry.columns
        # Geometry problems are reported under the column the user knows: x_coord, wkt, or the file's
        # geometry column (geom).
        self.gfield = cols[0] if cols else (plan.source.geometry_name or "geometry")
        self.columns_now: pa.Table | None = None
        self.pg_types: list[str] | None = None  # set: binary COPY with these column types; None: CSV

    # one batch -> good rows as an Arrow table (columns: [row_number], fields..., geom)
    def prepare(self, columns: pa.Table, wkb: pa.Array | None, rows: np.ndarray) -> pa.Table | None:
        t0 = time.perf_counter()
        vb = validate(self.spec, self.plan.mapping, columns, rows)
        self.rejects.extend(vb.rejects)
        bad = vb.rejected
        t1 = time.perf_counter()
        self.timing["validate"] += t1 - t0
        ewkb = self._geometry(columns, wkb, rows, bad)
        self.timing["geometry"] += time.perf_counter() - t1
        self._duplicates(vb.columns[self.spec.key], rows, bad)
        good = ~bad
        if self.columns is None:
            self.columns = [f.name for f in self.spec.fields if f.name in vb.columns]
        data: dict[str, pa.Array] = {"row_number": pa.array(rows)}
        for name in self.columns:
            data[name] = vb.columns[name].cast(ARROW_TYPES[self.spec.field(name).type])
        if bad.any():
            if self.spec.key in vb.columns:
                keys = vb.columns[self.spec.key].filter(pa.array(bad)).drop_null().to_pylist()
                self.rejected_keys.extend(keys)
            self.rejected_rows.update(rows[bad].tolist())
        data["geom"] = ewkb
        table = pa.table(data)
        if bad.any():
            table = table.filter(pa.array(good))
        return table if table.num_rows else None

    def _geometry(self, columns: pa.Table, wkb: pa.Array | None, rows: np.ndarray, bad: np.ndarray) -> pa.Array:
        """Build, transform and check the batch's geometry; EWKB (SRID 28992) for the COPY."""
        plan = self.plan
        self.columns_now = columns
        if plan.geometry.kind == "none":
            return pa.nulls(len(rows), pa.binary())
        if self.spec.geometry_type == "Point":
            xy = self._point_xy(columns, wkb, rows, bad)
            if xy is not None:
                return self._points(*xy, rows, bad)
        return self._shapes(columns, wkb, rows, bad)

    def _point_xy(self, columns: pa.Table, wkb: pa.Array | None, rows: np.ndarray,
                  bad: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Coordinates of a point layer straight from x/y columns or plain WKB points, without building
        geometry objects; None when the batch needs the general path."""
        kind = self.plan.geometry.kind
        if kind == "native" and wkb is not None:
            return geo.point_wkb_xy(wkb)
        if kind in ("xy", "lonlat"):
            cx, cy = self.plan.geometry.columns
            x, xbad = geo.numbers(columns.column(cx).combine_chunks())
            y, ybad = geo.numbers(columns.column(cy).combine_chunks())
            if xbad.any() or ybad.any() or (np.isnan(x) ^ np.isnan(y)).any():
                return None  # the general path names each bad coordinate
            return x, y
        return None

    def _check_crs(self, x: np.ndarray, y: np.ndarray) -> None:
        plan = self.plan
        if not self.checked_crs and (~np.isnan(x)).any():
            self.checked_crs = True
            assert plan.crs is not None
            diagnosis = geo.diagnose_crs(x, y, plan.crs, plan.crs_given)
            if diagnosis:
                raise IngestError(f"{plan.source.label}: {diagnosis}", parameter="crs")

    def _outside(self, placed: np.ndarray, x: np.ndarray, y: np.ndarray, raw_x: np.ndarray, raw_y: np.ndarray,
                 rows: np.ndarray, bad: np.ndarray, geoms: np.ndarray | None = None) -> np.ndarray:
        """Reject what lies outside the Netherlands (RD New extent, then near a municipality)."""
        plan = self.plan
        assert plan.crs is not None
        outside = placed & ~geo.rd_mask(x, y)
        if self.land is not None:
            inside = placed & ~outside
            if geoms is None:
                near = np.ones(len(x), dtype=bool)
                near[inside] = shapely.contains_xy(self.land.points, x[inside], y[inside])
            else:
                near = self.land.on_land(geoms, x, y)
            outside |= inside & ~near
        for i in np.nonzero(outside)[0]:
            hint = geo.diagnose_crs(raw_x[i:i + 1], raw_y[i:i + 1], plan.crs, plan.crs_given)
            self._reject(rows, bad, int(i), self.gfield, self._raw_value(int(i), raw_x[i], raw_y[i]),
                         f"the location lies outside the Netherlands (x {raw_x[i]:.6g}, y {raw_y[i]:.6g} in "
                         f"{geo.crs_label(plan.crs)}" + (f"; {hint.split(' (')[0]}" if hint else "") + ")")
        return outside

    def _points(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, bad: np.ndarray) -> pa.Array:
        plan = self.plan
        assert plan.crs is not None
        self._check_crs(x, y)
        raw_x, raw_y = x, y
        if not geo.is_rd(plan.crs):
            x, y = geo.xy_to_rd(x, y, plan.crs)
        present = ~np.isnan(x) & ~np.isnan(y)
        if plan.fill_geometry_from is None:
            for i in np.nonzero(~present)[0]:
                self._reject(rows, bad, int(i), self.gfield, "", self._no_geometry())
        self._outside(present, x, y, raw_x, raw_y, rows, bad)
        return geo.points_ewkb(x, y)

    def _shapes(self, columns: pa.Table, wkb: pa.Array | None, rows: np.ndarray, bad: np.ndarray) -> pa.Array:
        plan = self.plan
        assert plan.crs is not None
        geoms, problems = geo.build(plan.geometry, columns, wkb)
        for k, col, value, reason in problems:
            self._reject(rows, bad, k, col, value, f"{col} {value!r} {reason}" if value else f"{col}: {reason}")
        changed = plan.geometry.kind != "native" or not geo.is_rd(plan.crs)
        empty = shapely.is_empty(geoms)
        if empty.any():
            geoms = _blank(geoms, empty)
        if shapely.has_z(geoms).any():
            geoms = shapely.force_2d(geoms)
            changed = True
        raw_x, raw_y = geo.representative_xy(geoms)
        self._check_crs(raw_x, raw_y)
        x, y = raw_x, raw_y
        if not geo.is_rd(plan.crs):
            geoms = geo.to_rd(geoms, plan.crs)
            x, y = geo.representative_xy(geoms)
        before = shapely.get_type_id(geoms)
        geoms, wrong = geo.coerce_type(geoms, self.spec.geometry_type)
        types = shapely.get_type_id(geoms)
        changed = changed or bool((types != before).any())
        for i in np.nonzero(wrong)[0]:
            got = geo.TYPE_NAMES.get(int(types[i]), "unknown")
            self._reject(rows, bad, int(i), self.gfield, got,
                         f"{self.gfield}: a {got} cannot be stored in this layer, which holds "
                         f"{self.spec.geometry_type}")
        present = ~shapely.is_missing(geoms)
        if plan.fill_geometry_from is None:
            for i in np.nonzero(~present & ~wrong)[0]:
                self._reject(rows, bad, int(i), self.gfield, "", self._no_geometry())
        placed = present & ~wrong
        outside = self._outside(placed, x, y, raw_x, raw_y, rows, bad, geoms)
        polygonal = placed & ~outside & np.isin(types, (geo.POLYGON, geo.MULTIPOLYGON))
        if polygonal.any():
            idx = np.nonzero(polygonal)[0]
            invalid = idx[~geo.is_valid(geoms[idx])]
            if len(invalid):
                geoms = self._repair(geoms, invalid, rows, bad, types)
                changed = True
        if not changed and wkb is not None and not empty.any():
            fast = geo.wkb_to_ewkb(wkb)
            if fast is not None:
                return fast
        return geo.to_ewkb(_blank(geoms, bad))

    def _repair(self, geoms: np.ndarray, idx: np.ndarray, rows: np.ndarray, bad: np.ndarray,
                types: np.ndarray) -> np.ndarray:
        """Repair invalid geometries with PostGIS ST_MakeValid; keep a repair only when the type holds."""
        reasons = shapely.is_valid_reason(geoms[idx])
        blobs = [shapely.to_wkb(g) for g in geoms[idx]]
        fixed = self.helper.execute(
            "SELECT ST_AsBinary(ST_MakeValid(ST_GeomFromWKB(g))) FROM unnest(%s::bytea[]) WITH ORDINALITY AS u(g, n) "
            "ORDER BY n",
            (blobs,),
        ).fetchall()
        out = geoms.copy()
        for i, why, (blob,) in zip(idx, reasons, fixed, strict=True):
            repaired = shapely.from_wkb(blob) if blob is not None else None
            if repaired is not None and geo.fits(repaired, self.spec.geometry_type, int(types[i])):
                repaired, _ = geo.coerce_type(np.array([repaired], dtype=object), self.spec.geometry_type)
                out[i] = repaired[0]
                self.rejects.append(Reject(int(rows[i]), self.gfield, why,
                                           f"{self.gfield}: the geometry was invalid ({why}) and was repaired "
                                           "with ST_MakeValid", "warning"))
            else:
                got = geo.TYPE_NAMES.get(int(shapely.get_type_id(repaired)), "nothing") if repaired else "nothing"
                self._reject(rows, bad, int(i), self.gfield, why,
                             f"{self.gfield}: the geometry is invalid ({why}) and ST_MakeValid cannot repair it "
                             f"without changing its type (the repair gives a {got})")
        return out

    def _no_geometry(self) -> str:
        cols = self.plan.geometry.columns
        if len(cols) == 2:
            return f"{cols[0]} and {cols[1]} are empty: the row has no location"
        return f"{self.gfield} is empty: the row has no geometry"

    def _raw_value(self, i: int, x: float, y: float) -> str:
        """The location as the file wrote it: the x (or WKT) text, else the coordinates."""
        cols = self.plan.geometry.columns
        if cols and self.columns_now is not None:
            v = self.columns_now.column(cols[0])[i].as_py()
            if v is not None:
                text = str(v)
                return text if len(text) <= 80 else text[:77] + "..."
        return f"{x:.6g} {y:.6g}"

    def _reject(self, rows: np.ndarray, bad: np.ndarray, i: int, col: str, value: str, reason: str) -> None:
        bad[i] = True
        self.rejects.append(Reject(int(rows[i]), col, value, reason))

    def _duplicates(self, keys: pa.Array, rows: np.ndarray, bad: np.ndarray) -> None:
        """A key seen before in the file is a reject (the first row with it stays); hashes keep memory small."""
        present = pc.is_valid(keys).to_numpy(zero_copy_only=False)
        h = np.zeros(len(keys), dtype=np.uint64)
        # Keys of up to 18 digits (BAG ids have 16) of the file's one width are their own exact hash: no
        # collisions and no hashing cost. Other keys get a 64-bit hash.
        lengths = pc.utf8_length(keys)
        if self.key_width is None and len(keys) and keys.null_count == 0 and \
                pc.min(lengths).as_py() == pc.max(lengths).as_py() <= 18:
            self.key_width = int(pc.min(lengths).as_py())
        numeric = np.zeros(len(keys), dtype=bool)
        if self.key_width:
            numeric = _mask(pc.and_(pc.equal(lengths, self.key_width), pc.match_substring_regex(keys, r"^[0-9]+$")))
            if numeric.any():
                h[numeric] = pc.cast(keys.filter(pa.array(numeric)), pa.int64()).to_numpy().astype(np.uint64)
        other = present & ~numeric
        if other.any():
            # Python's own 64-bit string hash (SipHash, seeded per process): the set lives for one load.
            others = keys.filter(pa.array(other)).to_pylist()
            h[other] = np.fromiter(map(hash, others), dtype=np.int64, count=len(others)).view(np.uint64)
        self.key_hashes.append(h[present])
        self.key_rows.append(rows[present])
        seen = self.seen
        hp = h[present].tolist()
        if len(set(hp)) == len(hp) and seen.isdisjoint(hp):  # the common case, at C speed
            seen.update(hp)
            return
        for i in np.nonzero(present)[0]:
            v = int(h[i])
            if v in seen:
                self.dupes.append((v, int(rows[i]), str(keys[int(i)].as_py())))
                bad[i] = True
            else:
                seen.add(v)

    def resolve_duplicates(self) -> None:
        """Name the first row of every duplicated key in its rejects."""
        if not self.dupes:
            return
        hashes = np.concatenate(self.key_hashes)
        rows = np.concatenate(self.key_rows)
        wanted = np.array(sorted({d[0] for d in self.dupes}), dtype=np.uint64)
        hit = np.isin(hashes, wanted)
        first: dict[int, int] = {}
        for hv, r in zip(hashes[hit].tolist(), rows[hit].tolist(), strict=True):
            first.setdefault(int(hv), int(r))
        col = self.plan.mapping.fields[self.spec.key]
        for hv, row, key in self.dupes:
            self.rejects.append(Reject(row, col, key,
                                       f"{col} {key!r} is a duplicate: row {first.get(hv, '?')} has the same key"))
            self.rejected_rows.add(row)
            self.rejected_keys.append(key)

    def emit(self, copy: psycopg.Copy, batch: tuple[pa.Table, pa.Array | None, np.ndarray], direct: bool,
             run_id: int) -> None:
        """Validate one batch and COPY its good rows (into the staging table, or the layer when direct)."""
        columns, wkb, rows = batch
        self.result.rows_read += len(rows)
        table = self.prepare(columns, wkb, rows)
        if table is not None:
            if direct:
                table = table.drop_columns(["row_number"]).append_column(
                    "run_id", pa.array(np.full(table.num_rows, run_id, dtype=np.int64)))
            t0 = time.perf_counter()
            if self.pg_types is not None:
                copy.write(binary_copy_rows(table, self.pg_types))
            else:
                buf = io.BytesIO()
                table = table.set_column(table.column_names.index("geom"), "geom", geo.ewkb_hex(table["geom"]))
                pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getbuffer())
            self.timing["copy"] += time.perf_counter() - t0
            self.staged += table.num_rows
        if self.progress:
            self.progress(self.result.rows_read, self.plan.source.total_rows)


# --- binary COPY ------------------------------------------------------------------------------------------
# The server parses binary COPY ~30% faster than CSV with hex geometry (500,000 buildings: 1.0 s against
# 1.4 s), and in a large load the server is the bottleneck. Rows are assembled with Arrow's element-wise
# binary join (no Python loop per row). Column types without an encoder here keep the CSV path.

PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
PGCOPY_TRAILER = b"\xff\xff"
_FIXED = {"integer": ">i4", "bigint": ">i8", "smallint": ">i2", "double precision": ">f8", "real": ">f4",
          "boolean": "u1", "date": ">i4"}
BINARY_TYPES = frozenset({*_FIXED, "text", "geometry"})
_DAYS_1970_TO_2000 = 10957
_EMPTY = pa.scalar(b"", pa.binary())


def _binary_field(arr: pa.Array, pg_type: str) -> tuple[pa.Array, pa.Array]:
    """(4-byte big-endian length prefix, payload) of one column for binary COPY; a null is length -1 and no
    payload. ``geometry`` arrives and is sent as EWKB bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    valid = _mask(pc.is_valid(arr))
    if pg_type in _FIXED:
        width = np.dtype(_FIXED[pg_type]).itemsize
        if pg_type == "boolean":
            values = _mask(arr).astype(np.uint8)
        elif pg_type == "date":
            days = pc.fill_null(pc.cast(arr, pa.int32()), 0).to_numpy(zero_copy_only=False)
            values = (days.astype(np.int64) - _DAYS_1970_TO_2000).astype(_FIXED[pg_type])
        else:
            zero = 0.0 if pg_type in ("double precision", "real") else 0
            values = pc.fill_null(arr, zero).to_numpy(zero_copy_only=False).astype(_FIXED[pg_type])
        fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(values.tobytes())])
        payload = pc.if_else(pa.array(valid), fixed.cast(pa.binary()), _EMPTY)
        lengths = np.full(n, width, dtype=np.int64)
    else:  # text (its UTF-8 bytes) and geometry (EWKB bytes, never hex: binary COPY takes the bytes)
        payload = pc.fill_null(arr.cast(pa.binary()), _EMPTY)
        lengths = pc.binary_length(payload).to_numpy(zero_copy_only=False).astype(np.int64)
    prefix = np.where(valid, lengths, -1).astype(">i4")
    prefix_arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), n, [None, pa.py_buffer(prefix.tobytes())])
    return prefix_arr.cast(pa.binary()), payload


def binary_copy_rows(table: pa.Table, pg_types: list[str]) -> memoryview:
    """The rows of ``table`` (columns in COPY order, of the given PostgreSQL types) as binary COPY tuples."""
    n = table.num_rows
    header = pa.scalar(len(pg_types).to_bytes(2, "big"), pa.binary())
    parts: list[Any] = [header]
    for column, pg_type in zip(table.columns, pg_types, strict=True):
        parts.extend(_binary_field(column, pg_type))
    rows = pc.binary_join_element_wise(*parts, _EMPTY)
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    if pa.types.is_large_binary(rows.type):
        rows = rows.cast(pa.binary())
    bufs = rows.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=rows.offset * 4)
    return memoryview(bufs[2])[int(offsets[0]):int(offsets[-1])]


def _pg_types(conn: psycopg.Connection, relation: str, columns: list[str]) -> list[str]:
    """The PostgreSQL type names (format_type, no typmod) of a relation's columns, in the given order."""
    found: dict[str, str] = dict(conn.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped", (relation,)).fetchall())
    return [str(found.get(c, "")) for c in columns]


Triple = tuple[pa.Table, pa.Array | None, np.ndarray]


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _blank(geoms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = geoms.copy()
    out[mask] = None
    return out


def _read(source: VectorSource, timing: dict[str, float], batch_size: int) -> Iterator[Triple]:
    it = source.batches(batch_size)
    while True:
        t0 = time.perf_counter()
        try:
            b = next(it)
        except StopIteration:
            return
        finally:
            timing["read"] += time.perf_counter() - t0
        yield b.columns, b.geometry, b.rows


_LAND_CACHE: dict[tuple[Any, ...], geo.LandMask | None] = {}


def land_mask(conn: psycopg.Connection) -> geo.LandMask | None:
    """The land mask from the loaded municipalities, or None when there are none yet (the RD New extent
    is then the only check). Kept per process while the municipalities do not change."""
    info = conn.info
    stamp = conn.execute("SELECT count(*), max(run_id), max(loaded_at) FROM twin.municipalities").fetchone()
    key = (info.host, info.port, info.dbname, *(stamp or ()))
    if key not in _LAND_CACHE:
        blobs = [r[0] for r in conn.execute("SELECT ST_AsBinary(geom) FROM twin.municipalities").fetchall()]
        _LAND_CACHE.clear()
        _LAND_CACHE[key] = geo.LandMask.from_wkb(blobs) if blobs else None
    return _LAND_CACHE[key]


@contextmanager
def _transaction(url: str) -> Iterator[psycopg.Connection]:
    conn = connect(url)
    try:
        yield conn
    finally:
        conn.close()


def load(
    settings: Settings,
    layer_id: str,
    path: str | Path,
    crs: str | None = None,
    mode: str = "upsert",
    max_reject_rate: float = 0.01,
    progress: ProgressFn | None = None,
    *,
    year: int | None = None,
    years: list[int] | None = None,
    batch_size: int = BATCH_SIZE,
) -> RunResult:
    """Load one file into one layer (or the deposition raster); see the module docstring for the steps.

    Returns the run's result; a refused load has status ``refused`` and a message, a failed one
    ``failed``. Arguments that cannot work (unknown layer, missing file, bad mode) raise IngestError."""
    if mode not in MODES:
        raise IngestError(f"--mode {mode!r} is not a mode: use upsert or replace", parameter="mode")
    if not 0 <= max_reject_rate <= 1:
        raise IngestError(f"--max-reject-rate {max_reject_rate} must lie between 0 and 1 (0.01 is 1%)",
                          parameter="max-reject-rate")
    if layer_id in COVERAGES:
        from ingest import raster

        return raster.load(settings, layer_id, path, crs=crs, mode=mode, year=year, years=years, progress=progress)
    if layer_id == "deposition-hexagons":
        raise IngestError("deposition-hexagons is derived from the deposition raster and the habitats: "
                          "run 'twin ingest derive-hexagons'", parameter="layer")
    try:
        spec = get_layer(layer_id)
    except KeyError:
        known = ", ".join([*LAYERS, *COVERAGES])
        raise IngestError(f"unknown layer {layer_id!r}; known layers: {known}", parameter="layer") from None
    return _load_vector(settings, spec, path, crs, mode, max_reject_rate, progress, batch_size)


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


def _load_vector(settings: Settings, spec: LayerSpec, path: str | Path, crs: str | None, mode: str,
                 max_reject_rate: float, progress: ProgressFn | None, batch_size: int) -> RunResult:
    """A recorded run: from here on every outcome, a refusal of an unreadable file included, is a run."""
    started = time.perf_counter()
    url = url_for(settings, "writer")
    label = str(path)
    options = {"crs": crs, "max_reject_rate": max_reject_rate}
    with recorded_run(settings, spec.id, label, mode, options) as (helper, result):
        source = open_source(path)
        result.summer = summer = ChecksumThread(source.files, source.layer or "")
        summer.start()
        plan = plan_load(spec, source, crs)
        result.notes.extend(source.notes)
        land = land_mask(helper) if spec.id != "municipalities" else None
        with _transaction(url) as conn:
            _run(conn, plan, result, land, helper, progress, max_reject_rate, batch_size, started, summer)
    file = split_layer(path)[0]
    if result.rejects:
        result.report, note = write_report(file, result.rejects, settings, label)
        if note:
            result.notes.append(note)
    elif file.is_file():
        write_report(file, [], settings, label)
    return result


def _safe_checksum(summer: ChecksumThread | None) -> str:
    if summer is None:
        return ""
    try:
        return summer.result()
    except OSError:
        return ""


def _run(conn: psycopg.Connection, plan: Plan, result: RunResult, land: geo.LandMask | None,
         helper: psycopg.Connection, progress: ProgressFn | None, max_reject_rate: float, batch_size: int,
         started: float, summer: ChecksumThread) -> None:
    spec = plan.spec
    target = _t(spec.table)
    assert result.run_id is not None
    run_id = result.run_id
    state = _Load(plan, result, land, helper, progress)
    conn.execute("SET LOCAL work_mem = '128MB'")
    # One load per layer at a time; SHARE ROW EXCLUSIVE does not block readers.
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
    empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(target)).fetchone()
    direct = bool(empty and empty[0]) and not plan.references
    deferred = 0
    expected = plan.source.total_rows
    if expected is None:  # a CSV: about 100 bytes a row
        expected = sum(f.stat().st_size for f in plan.source.files) // 100
    if direct:
        # With wal_level = minimal (the local cluster) the COPY and the index builds into an empty table then
        # write no WAL (migration 0008 says when and what it costs).
        conn.execute("SELECT twin.ingest_fresh_table(%s)", (spec.table,))
    if direct and expected >= DEFER_INDEXES_MIN_ROWS:
        deferred = set_aside(conn, spec.table)
    t_stage = time.perf_counter()
    batches = _read(plan.source, state.timing, batch_size)
    first = next(batches, None)
    if first is None:
        raise IngestError(f"{plan.source.label}: the file holds no rows")

    # The columns to write are known once the first batch is validated: validate it before the COPY opens.
    state.prepare(first[0].slice(0, 0), None if first[1] is None else first[1].slice(0, 0), first[2][:0])
    assert state.columns is not None
    cols = state.columns
    if direct:
        names, relation = [*cols, "geom", "run_id"], f"{SCHEMA}.{spec.table}"
        into: sql.Composable = target
    else:
        conn.execute(sql.SQL(
            "CREATE TEMP TABLE ingest_stage ON COMMIT DROP AS SELECT 0::integer AS row_number, {}, "
            "geom::geometry AS geom FROM {} WITH NO DATA").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)), target))
        names, relation = ["row_number", *cols, "geom"], "ingest_stage"
        into = sql.Identifier("ingest_stage")
    pg_types = _pg_types(conn, relation, names)
    binary = all(t in BINARY_TYPES for t in pg_types)
    state.pg_types = pg_types if binary else None
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        into, sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL("binary" if binary else "csv"))
    cursor = conn.cursor()
    # A writer thread feeds the server while this thread validates the next batch (two cores busy).
    with cursor.copy(copy_sql, writer=QueuedLibpqWriter(cursor)) as cp:
        if binary:
            cp.write(PGCOPY_SIGNATURE)
        state.emit(cp, first, direct, run_id)
        _pause("copy")
        for batch in batches:
            state.emit(cp, batch, direct, run_id)
        if binary:
            cp.write(PGCOPY_TRAILER)
    for line, reason in plan.source.invalid_rows:
        result.rejects.append(Reject(line, None, None, f"the row {reason}"))
        if line is not None:
            state.rejected_rows.add(line)
        result.rows_read += 1
    state.resolve_duplicates()
    t_checked = time.perf_counter()
    result.timings.update(state.timing)
    result.timings["stage"] = t_checked - t_stage
    if not direct:
        _check_in_database(conn, plan, state)
    result.timings["check"] = time.perf_counter() - t_checked
    result.rejects[:0] = state.rejects
    result.rejects.sort(key=lambda r: (r.row is not None, r.row or 0))
    errors = [r for r in result.rejects if r.severity == "error"]
    result.warnings = len(result.rejects) - len(errors)
    result.rows_rejected = len(state.rejected_rows)
    if plan.mapping.unused:
        result.notes.append(f"columns not used: {', '.join(plan.mapping.unused)}")
    if result.rows_read and result.rows_rejected / result.rows_read > max_reject_rate:
        conn.rollback()
        raise IngestError(
            f"{plan.source.label}: {result.rows_rejected} of {result.rows_read} rows rejected "
            f"({result.rows_rejected / result.rows_read:.1%}), more than the allowed {max_reject_rate:.1%} "
            "(--max-reject-rate): nothing was loaded; see the rejects report"
        )
    t_merge = time.perf_counter()
    if direct:
        result.rows_inserted = state.staged
        if deferred:
            conn.execute("SELECT twin.ingest_restore_indexes(%s)", (spec.table,))
            result.timings["indexes"] = time.perf_counter() - t_merge
    else:
        into_empty = bool(empty and empty[0])
        if into_empty:
            # As in the direct COPY: new storage (no WAL with wal_level = minimal), and for a bulk load the
            # indexes, keys and foreign keys set aside; a plain INSERT then moves the stage (nothing to
            # conflict with). 281,983 inspections: merge 2.98-3.04 s -> 1.16 s, the whole load 4.2-4.3 -> 2.4 s;
            # 157,424 permits 2.4 -> 1.4-1.6 s.
            conn.execute("SELECT twin.ingest_fresh_table(%s)", (spec.table,))
            if state.staged >= DEFER_INDEXES_MIN_ROWS:
                deferred = set_aside(conn, spec.table)
        _merge(conn, plan, state, result, into_empty=into_empty)
        if deferred:
            t_index = time.perf_counter()
            conn.execute("SELECT twin.ingest_restore_indexes(%s)", (spec.table,))
            result.timings["indexes"] = time.perf_counter() - t_index
    result.rows_unchanged = max(state.staged - result.rows_inserted - result.rows_updated, 0)
    result.timings["merge"] = time.perf_counter() - t_merge
    result.checksum = summer.result()
    changed = result.rows_inserted + result.rows_updated + result.rows_deleted
    result.status = "succeeded" if changed else "unchanged"
    result.timings["total"] = time.perf_counter() - started
    _pause("commit")
    finish_run(conn, result)
    save_rejects(conn, run_id, plan.source.label, result.rejects)
    t_commit = time.perf_counter()
    conn.commit()
    result.timings["commit"] = time.perf_counter() - t_commit
    result.timings["total"] = time.perf_counter() - started
    helper.execute("UPDATE twin.ingest_runs SET timings = %s WHERE id = %s",
                   (json.dumps({k: round(v, 4) for k, v in result.timings.items()}), run_id))


def set_aside(conn: psycopg.Connection, table: str) -> int:
    """Before a bulk write into an empty layer table that needs no ON CONFLICT: set its secondary indexes aside
    (twin.ingest_defer_indexes), and the keys and foreign keys that the loader checks itself
    (twin.ingest_defer_constraints, migration 0008: 786,906 addresses 4.51-4.66 -> 4.21-4.34 s wall, 2 runs
    each; 500,000 buildings the same, 2.95-3.00 against 2.92-3.05 s). twin.ingest_restore_indexes adds them
    all back before COMMIT. Returns how many were set aside."""
    row = conn.execute("SELECT twin.ingest_defer_indexes(%(t)s) + twin.ingest_defer_constraints(%(t)s)",
                       {"t": table}).fetchone()
    return int(row[0]) if row else 0


def _check_in_database(conn: psycopg.Connection, plan: Plan, state: _Load) -> None:
    """Checks that need the twin: references to other layers, and the establishment's location as the
    geometry of rows without one. Failing rows are recorded and removed from the staging table."""
    for ref in plan.references:
        key = ref.key
        col = plan.mapping.fields.get(key, key)
        missing = conn.execute(sql.SQL(
            "SELECT s.row_number, s.{k} FROM ingest_stage s WHERE NOT EXISTS "
            "(SELECT 1 FROM {t} r WHERE r.{k} = s.{k}) ORDER BY s.row_number").format(
                k=sql.Identifier(key), t=_t(ref.table))).fetchall()
        for row, value in missing:
            state.rejects.append(Reject(row, col, value,
                                        f"{col} {value!r} does not exist: no {ref.id} row with this "
                                        f"{key} in the twin (load {ref.id} first)"))
            state.rejected_rows.add(row)
            state.rejected_keys.append(value)
        if missing:
            conn.execute("DELETE FROM ingest_stage WHERE row_number = ANY(%s)", ([r for r, _ in missing],))
    src = plan.fill_geometry_from
    if src is not None:
        conn.execute(sql.SQL(
            "UPDATE ingest_stage s SET geom = r.geom FROM {t} r WHERE s.geom IS NULL AND r.{k} = s.{k}").format(
                t=_t(src.table), k=sql.Identifier(src.key)))


def _merge(conn: psycopg.Connection, plan: Plan, state: _Load, result: RunResult, into_empty: bool = False) -> None:
    """Upsert the staging table into the layer; rows whose content did not change are not touched."""
    assert state.columns is not None and result.run_id is not None
    merge_staged(conn, plan.spec, [*state.columns, "geom"], result, state.rejected_keys, into_empty=into_empty)
    staged = conn.execute("SELECT count(*) FROM ingest_stage").fetchone()
    state.staged = int(staged[0]) if staged else 0


def merge_staged(conn: psycopg.Connection, spec: LayerSpec, cols: list[str], result: RunResult,
                 keep: list[str] | None = None, *, into_empty: bool = False) -> None:
    """Merge the TEMP table ``ingest_stage`` into a layer by its natural key: insert new keys, update rows
    whose content differs (IS DISTINCT FROM: unchanged rows are not rewritten and keep their run), and in
    replace mode delete the keys the stage does not hold (except ``keep``, the keys of rejected rows).
    ``into_empty``: the layer is empty (and locked), so every staged row is new: a plain INSERT, which needs
    no unique key (a bulk load may have set it aside). Sets rows_inserted/updated/deleted of ``result``."""
    key = sql.Identifier(spec.key)
    target = _t(spec.table)
    if into_empty:
        cur = conn.execute(sql.SQL("INSERT INTO {t} ({cols}, run_id) SELECT {cols}, %s FROM ingest_stage").format(
            t=target, cols=sql.SQL(", ").join(map(sql.Identifier, cols))), (result.run_id,))
        result.rows_inserted, result.rows_updated, result.rows_deleted = cur.rowcount, 0, 0
        return
    if result.mode == "replace":
        cur = conn.execute(sql.SQL(
            "DELETE FROM {t} t WHERE NOT EXISTS (SELECT 1 FROM ingest_stage s WHERE s.{k} = t.{k}) "
            "AND NOT (t.{k} = ANY(%s))").format(t=target, k=key), (keep or [],))
        result.rows_deleted = cur.rowcount
    non_key = [c for c in cols if c != spec.key]
    ident = [sql.Identifier(c) for c in cols]
    stmt = sql.SQL(
        """WITH m AS (
             INSERT INTO {t} AS t ({cols}, run_id)
             SELECT {cols}, %(run)s FROM ingest_stage
             ON CONFLICT ({k}) DO UPDATE SET {sets}, run_id = excluded.run_id, loaded_at = now()
             WHERE ({old}) IS DISTINCT FROM ({new})
             RETURNING (xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m"""
    ).format(
        t=target, cols=sql.SQL(", ").join(ident), k=key,
        sets=sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in non_key),
        old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in non_key),
        new=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in non_key),
    )
    row = conn.execute(stmt, {"run": result.run_id}).fetchone()
    assert row is not None
    result.rows_inserted, result.rows_updated = int(row[0]), int(row[1])


# --- runs table -------------------------------------------------------------------------------------------


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
