"""The batches of one vector load: each is validated on whole Arrow arrays, its geometry built, moved to
RD New and checked (on land, the right type, valid or repaired), its keys checked for duplicates, and its
good rows COPYed into the staging table (or straight into an empty layer)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely

from ingest import geometry as geo
from ingest.pgcopy import binary_copy_rows
from ingest.plan import Plan
from ingest.runs import ProgressFn, RunResult
from ingest.sources import VectorSource
from ingest.validation import ARROW_TYPES, Reject, bool_mask, validate
from twin.errors import IngestError

# 16,384 rows a batch: the COPY writer thread feeds the server one batch while this thread validates the
# next, so the server starts sooner and waits less. In-process loads into empty tables (best of 3-4,
# interleaved, load average ~3): 50,000 establishments 0.77 s with 65,536 (one batch: read, validate,
# then the server's COPY, nothing overlaps) -> 0.69 s; 500,000 buildings 2.54 -> 2.42 s; 8,192 was no better.
BATCH_SIZE = 16384

Triple = tuple[pa.Table, pa.Array | None, np.ndarray]


def _blank(geoms: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = geoms.copy()
    out[mask] = None
    return out


def read_batches(source: VectorSource, timing: dict[str, float], batch_size: int) -> Iterator[Triple]:
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


class Batches:
    """The batches of one vector load (one transaction) and what they left: rejects, duplicate keys, rows staged."""

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
        self.nulled: dict[str, int] = {}  # "column: why" -> values read as NULL (no-value words, BAG 1005)
        self.skipped: dict[str, int] = {}  # why -> rows read but not stored (a habitat map's H0000 polygons)
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
        vb = validate(self.spec, self.plan.mapping, columns, rows, self.plan.reading)
        self.rejects.extend(vb.rejects)
        for what, count in vb.nulled.items():
            self.nulled[what] = self.nulled.get(what, 0) + count
        bad = vb.rejected
        for what, count in vb.skipped_why.items():
            self.skipped[what] = self.skipped.get(what, 0) + count
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
        failed = bad if vb.skipped is None else bad & ~vb.skipped  # skipped rows are no rejects
        if failed.any():
            if self.spec.key in vb.columns:
                keys = vb.columns[self.spec.key].filter(pa.array(failed)).drop_null().to_pylist()
                self.rejected_keys.extend(keys)
            self.rejected_rows.update(rows[failed].tolist())
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
            numeric = bool_mask(pc.and_(pc.equal(lengths, self.key_width), pc.match_substring_regex(keys, r"^[0-9]+$")))
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
