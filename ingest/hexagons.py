"""``deposition-hexagons``: the deposition raster summarised on hexagons, per year.

Two resolutions:

- ``1ha``: the AERIUS receptor grid (DESIGN.md): flat-topped hexagons of exactly one hectare, numbered
  from 1, 1,529 per row; every receptor whose hexagon shares area with a Natura 2000 habitat polygon.
  Keyed by the receptor id, so AERIUS results (IMAER ``receptorPointId``) join on it.
- ``national``: coarse hexagons (2 km across the flats by default) of the same layout over the land (the
  municipalities), for the small-scale map.

Per hexagon and year: the area-weighted mean deposition (each raster cell weighted by the area it shares
with the hexagon, cells without data left out), the lowest KDW of the habitats inside, the exceedance
(deposition - lowest KDW), ``overloaded`` (deposition > KDW) and ``approaching`` (deposition > KDW - 70).

The result is merged like any load (one transaction, unchanged rows untouched, a run in ingest_runs), so a
recomputation over unchanged inputs records ``unchanged``.
"""

from __future__ import annotations

import io
import math
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import sql

from ingest import geometry as geo
from ingest.merge import DEFER_INDEXES_MIN_ROWS, merge_staged, set_aside
from ingest.runs import RunResult, finish_run, recorded_run
from layers.registry import DEPOSITION_HEXAGONS
from twin.database import connect, url_for
from twin.errors import ConfigurationError, IngestError
from twin.settings import Settings

# The AERIUS receptor grid.
RECEPTOR_R = math.sqrt(20000 / (3 * math.sqrt(3)))  # circumradius of a 1 ha hexagon: 62.0403 m
RECEPTOR_H = math.sqrt(3) * RECEPTOR_R  # across the flats: 107.4570 m
RECEPTORS_PER_ROW = 1529
RECEPTOR_ROWS = 6189
GRID_X0, GRID_Y0 = 3604.0, 296800.0
APPROACHING_MARGIN = 70.0  # mol N/ha/yr below the KDW
NATIONAL_SIZE_M = 2000.0


@dataclass(frozen=True)
class HexGrid:
    """A flat-topped hexagon layout: circumradius r, ids numbered row by row from 1 with ``per_row``
    hexagons per row; odd rows shifted by 1.5 r east and h/2 north (the AERIUS layout when r is the 1 ha
    radius)."""

    r: float
    per_row: int
    rows: int
    x0: float = GRID_X0
    y0: float = GRID_Y0

    @property
    def h(self) -> float:
        return math.sqrt(3) * self.r

    def centres(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centres (x, y) of hexagons by id."""
        i = np.asarray(ids, dtype=np.int64) - 1
        row, col = i // self.per_row, i % self.per_row
        odd = (row % 2).astype(float)
        return self.x0 + col * 3 * self.r + odd * 1.5 * self.r, self.y0 + (row // 2) * self.h + odd * self.h / 2

    def ids_in_box(self, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
        """Ids of every hexagon whose centre lies within r of the box (so every hexagon touching it)."""
        r, h = self.r, self.h
        rmin = max(int(math.floor((ymin - r - self.y0) / (h / 2))) - 1, 0)
        rmax = min(int(math.ceil((ymax + r - self.y0) / (h / 2))) + 1, self.rows - 1)
        if rmax < rmin:
            return np.empty(0, dtype=np.int64)
        rows = np.arange(rmin, rmax + 1)
        out = []
        for row in rows:
            shift = 1.5 * r if row % 2 else 0.0
            cmin = max(int(math.floor((xmin - r - self.x0 - shift) / (3 * r))), 0)
            cmax = min(int(math.ceil((xmax + r - self.x0 - shift) / (3 * r))), self.per_row - 1)
            if cmax >= cmin:
                out.append(row * self.per_row + np.arange(cmin, cmax + 1) + 1)
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    def polygons(self, ids: np.ndarray) -> np.ndarray:
        """The hexagons as shapely polygons (vertices at 0, 60, ..., 300 degrees: flat side up)."""
        cx, cy = self.centres(ids)
        angles = np.radians(np.arange(0, 360, 60))
        xs = cx[:, None] + self.r * np.cos(angles)[None, :]
        ys = cy[:, None] + self.r * np.sin(angles)[None, :]
        ring = np.stack([xs, ys], axis=-1)
        ring = np.concatenate([ring, ring[:, :1]], axis=1)
        return shapely.polygons(ring)


RECEPTORS = HexGrid(RECEPTOR_R, RECEPTORS_PER_ROW, RECEPTOR_ROWS)


def national_grid(size_m: float = NATIONAL_SIZE_M) -> HexGrid:
    """Coarse hexagons ``size_m`` across the flats, same origin and layout as the receptor grid."""
    r = size_m / math.sqrt(3)
    per_row = int(math.ceil((geo.RD_BOUNDS[2] - GRID_X0) / (3 * r))) + 2
    rows = int(math.ceil((geo.RD_BOUNDS[3] - GRID_Y0) / (size_m / 2))) + 2
    return HexGrid(r, per_row, rows)


# --- raster access -------------------------------------------------------------------------------------------


Box = tuple[float, float, float, float]


@dataclass
class Mosaic:
    """One year of the deposition raster over a window: values (NaN = no data) on a north-up grid."""

    x0: float
    y0: float
    cell: float
    values: np.ndarray


def read_raster_wkb(blob: bytes) -> tuple[float, float, float, np.ndarray]:
    """(upper-left x, upper-left y, cell size, float64 values with NaN for nodata) of a one-band PostGIS
    raster WKB as the loader writes it (north-up, little endian)."""
    (endian, _version, nbands, sx, sy, ux, uy, kx, ky, _srid, w, h) = struct.unpack_from("<BHHddddddiHH", blob, 0)
    if endian != 1 or nbands < 1 or kx or ky or abs(abs(sx) - abs(sy)) > 1e-9 * abs(sx):
        raise IngestError("a deposition tile is not a north-up little-endian raster; reload the raster")
    offset = struct.calcsize("<BHHddddddiHH")
    flags = blob[offset]
    pixtype = flags & 0x0F
    dtypes = {1: "<u1", 3: "<i1", 4: "<u1", 5: "<i2", 6: "<u2", 7: "<i4", 8: "<u4", 10: "<f4", 11: "<f8"}
    if pixtype not in dtypes:
        raise IngestError(f"a deposition tile has pixel type {pixtype}, which this reader does not take")
    dt = np.dtype(dtypes[pixtype])
    nodata = np.frombuffer(blob, dtype=dt, count=1, offset=offset + 1)[0]
    values = np.frombuffer(blob, dtype=dt, count=w * h, offset=offset + 1 + dt.itemsize).reshape(h, w)
    out = values.astype(np.float64)
    if flags & 0x40:
        out[values == nodata] = np.nan
    return ux, uy, abs(sx), out


def mosaic(conn: psycopg.Connection, year: int, box: Box) -> Mosaic | None:
    """The raster of one year over a box (RD New), assembled from its tiles; None when none overlaps."""
    rows = conn.execute(
        "SELECT rast::bytea FROM twin.nitrogen_deposition WHERE year = %s AND "
        "ST_ConvexHull(rast) && ST_MakeEnvelope(%s, %s, %s, %s, 28992)",
        (year, *box),
    ).fetchall()
    if not rows:
        return None
    tiles = [read_raster_wkb(bytes(r[0])) for r in rows]
    cell = tiles[0][2]
    x0 = min(t[0] for t in tiles)
    y0 = max(t[1] for t in tiles)
    x1 = max(t[0] + t[3].shape[1] * cell for t in tiles)
    y1 = min(t[1] - t[3].shape[0] * cell for t in tiles)
    values = np.full((round((y0 - y1) / cell), round((x1 - x0) / cell)), np.nan)
    for ux, uy, _c, v in tiles:
        r, c = round((y0 - uy) / cell), round((ux - x0) / cell)
        values[r:r + v.shape[0], c:c + v.shape[1]] = v
    return Mosaic(x0, y0, cell, values)


_NORMALS = np.array([(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in range(30, 360, 60)])


def box_hexagon_area(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, cx: np.ndarray,
                     cy: np.ndarray, r: float) -> np.ndarray:
    """Exact areas of the intersections of boxes with flat-topped hexagons (circumradius r, centres cx, cy):
    each box is clipped by the hexagon's six half-planes (Sutherland-Hodgman, vectorised over the boxes
    that a half-plane actually cuts) and measured with the shoelace formula."""
    n, cap = len(x0), 10  # a box clipped by 6 half-planes has at most 10 vertices
    px = np.zeros((n, cap))
    py = np.zeros((n, cap))
    px[:, :4] = np.stack([x0, x1, x1, x0], axis=1) - cx[:, None]
    py[:, :4] = np.stack([y0, y0, y1, y1], axis=1) - cy[:, None]
    k = np.full(n, 4)
    apothem = math.sqrt(3) * r / 2
    idx = np.arange(cap)[None, :]
    for nx, ny in _NORMALS:
        d = px * nx + py * ny - apothem
        live = idx < k[:, None]
        out = (d > 0) & live
        cut = np.nonzero(out.any(axis=1))[0]
        if not len(cut):
            continue
        sx, sy, sd, sk = px[cut], py[cut], d[cut], k[cut]
        m = len(cut)
        rows = np.arange(m)[:, None]
        slive = idx < sk[:, None]
        nxt = np.where(idx + 1 < sk[:, None], idx + 1, 0)
        qx, qy, qd = sx[rows, nxt], sy[rows, nxt], sd[rows, nxt]
        keep = slive & (sd <= 0)
        cross = slive & ((sd <= 0) != (qd <= 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(cross, sd / (sd - qd), 0.0)
        ix, iy = sx + t * (qx - sx), sy + t * (qy - sy)
        # Each input vertex emits itself (when inside) then the crossing (when its edge crosses).
        counts = keep.astype(np.int64) + cross.astype(np.int64)
        first = np.cumsum(counts, axis=1) - counts
        ox_, oy_ = np.zeros((m, cap)), np.zeros((m, cap))
        r_k, c_k = np.nonzero(keep)
        ox_[r_k, first[r_k, c_k]], oy_[r_k, first[r_k, c_k]] = sx[r_k, c_k], sy[r_k, c_k]
        r_c, c_c = np.nonzero(cross)
        pos = first[r_c, c_c] + keep[r_c, c_c]
        ox_[r_c, pos], oy_[r_c, pos] = ix[r_c, c_c], iy[r_c, c_c]
        px[cut], py[cut], k[cut] = ox_, oy_, counts.sum(axis=1)
    rows = np.arange(n)[:, None]
    live = idx < k[:, None]
    nxt = np.where(idx + 1 < k[:, None], idx + 1, 0)
    cross2 = np.where(live, px * py[rows, nxt] - px[rows, nxt] * py, 0.0)
    return np.abs(cross2.sum(axis=1)) / 2


CELLS_PER_CHUNK = 1_000_000  # candidate cells handled at once: bounds memory whatever the sizes


Weights = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def cell_weights(grid: HexGrid, ids: np.ndarray, cell: float, ox: float, oy: float) -> Iterator[Weights]:
    """Exact overlap areas (m2) of hexagons and raster cells, in chunks of (hexagon index, cell column, cell
    row, area). Cells are numbered on the raster's lattice (column = floor((x - ox) / cell), row =
    floor((oy - y) / cell)). A cell inside all six half-planes counts in full, a cell wholly beyond one
    counts nothing, and only the cells the edge passes through are clipped (:func:`box_hexagon_area`)."""
    kw = int(math.ceil(2 * grid.r / cell)) + 1
    kh = int(math.ceil(grid.h / cell)) + 1
    step = max(1, CELLS_PER_CHUNK // (kw * kh))
    half = cell / 2
    apothem = grid.h / 2
    for s in range(0, len(ids), step):
        part = ids[s:s + step]
        cx, cy = grid.centres(part)
        c0 = np.floor((cx - grid.r - ox) / cell).astype(np.int64)
        c1 = np.floor((cx + grid.r - ox) / cell).astype(np.int64)
        r0 = np.floor((oy - (cy + grid.h / 2)) / cell).astype(np.int64)
        r1 = np.floor((oy - (cy - grid.h / 2)) / cell).astype(np.int64)
        cols = c0[:, None] + np.tile(np.arange(kw), kh)[None, :]
        rows = r0[:, None] + np.repeat(np.arange(kh), kw)[None, :]
        hi, ci = np.nonzero((cols <= c1[:, None]) & (rows <= r1[:, None]))
        col, row = cols[hi, ci], rows[hi, ci]
        del cols, rows
        # Cell centres relative to their hexagon's centre.
        mx = ox + (col + 0.5) * cell - cx[hi]
        my = oy - (row + 0.5) * cell - cy[hi]
        hi_max = np.full(len(hi), -np.inf)
        lo_max = np.full(len(hi), -np.inf)
        for nx, ny in _NORMALS:
            proj = mx * nx + my * ny
            reach = half * (abs(nx) + abs(ny))
            hi_max = np.maximum(hi_max, proj + reach)
            lo_max = np.maximum(lo_max, proj - reach)
        inside = hi_max <= apothem + 1e-9
        edge = ~inside & (lo_max < apothem)
        area = np.where(inside, cell * cell, 0.0)
        if edge.any():
            x, y = ox + col[edge] * cell, oy - row[edge] * cell
            area[edge] = box_hexagon_area(x, y - cell, x + cell, y, cx[hi[edge]], cy[hi[edge]], grid.r)
        keep = area > 1e-9
        yield hi[keep] + s, col[keep], row[keep], area[keep]


def lattice(m: Mosaic) -> tuple[float, float, float]:
    """(cell, ox, oy): the cell size and the lattice origin of a mosaic (its corner modulo the cell)."""
    return m.cell, round(m.x0 % m.cell, 6), round(m.y0 % m.cell, 6)


def weighted_means(grid: HexGrid, ids: np.ndarray, mosaics: list[Mosaic]) -> np.ndarray:
    """The area-weighted mean of each raster (all on one lattice) over each hexagon: every cell weighted by
    the area it shares with the hexagon, cells without data left out; NaN where a hexagon has no data.
    Returns an array of shape (len(mosaics), len(ids))."""
    cell, ox, oy = lattice(mosaics[0])
    wsum = np.zeros((len(mosaics), len(ids)))
    vsum = np.zeros((len(mosaics), len(ids)))
    for hexagon, gcol, grow, weight in cell_weights(grid, ids, cell, ox, oy):
        for k, m in enumerate(mosaics):
            col = gcol - round((m.x0 - ox) / cell)
            row = grow - round((oy - m.y0) / cell)
            nr, nc = m.values.shape
            inside = (row >= 0) & (row < nr) & (col >= 0) & (col < nc)
            vals = np.full(len(weight), np.nan)
            vals[inside] = m.values[row[inside], col[inside]]
            has = ~np.isnan(vals)
            wsum[k] += np.bincount(hexagon[has], weights=weight[has], minlength=len(ids))
            vsum[k] += np.bincount(hexagon[has], weights=weight[has] * vals[has], minlength=len(ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 0, vsum / np.where(wsum > 0, wsum, 1.0), np.nan)


# --- habitats ---------------------------------------------------------------------------------------------


@dataclass
class Habitats:
    geoms: np.ndarray
    kdw: np.ndarray  # NaN where unknown
    tree: shapely.STRtree

    @classmethod
    def load(cls, conn: psycopg.Connection, box: Box | None = None) -> Habitats:
        """Every habitat polygon, or those whose bounding box meets ``box`` (enough for the hexagons inside it)."""
        if box is None:
            rows = conn.execute("SELECT ST_AsBinary(geom), kdw FROM twin.natura2000_habitats").fetchall()
        else:
            rows = conn.execute("SELECT ST_AsBinary(geom), kdw FROM twin.natura2000_habitats "
                                "WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 28992)", box).fetchall()
        geoms = shapely.from_wkb([r[0] for r in rows]) if rows else np.empty(0, dtype=object)
        kdw = np.array([np.nan if r[1] is None else float(r[1]) for r in rows], dtype=float)
        return cls(np.asarray(geoms, dtype=object), kdw, shapely.STRtree(geoms))

    def overlapping(self, hexes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hexagon index, habitat index) pairs that share area (touching at an edge does not count)."""
        pairs = self.tree.query(hexes, predicate="intersects")
        if pairs.shape[1] == 0:
            return pairs[0], pairs[1]
        touch = shapely.touches(hexes[pairs[0]], self.geoms[pairs[1]])
        return pairs[0][~touch], pairs[1][~touch]

    def lowest_kdw(self, hexes: np.ndarray) -> np.ndarray:
        """The lowest KDW of the habitats sharing area with each hexagon (NaN when none has one)."""
        out = np.full(len(hexes), np.inf)
        hi, bi = self.overlapping(hexes)
        k = self.kdw[bi]
        known = ~np.isnan(k)
        np.minimum.at(out, hi[known], k[known])
        out[np.isinf(out)] = np.nan
        return out


def receptor_ids(habitats: Habitats) -> np.ndarray:
    """Every receptor whose hexagon shares area with a habitat polygon."""
    if len(habitats.geoms) == 0:
        return np.empty(0, dtype=np.int64)
    candidates = np.unique(np.concatenate([RECEPTORS.ids_in_box(*b) for b in shapely.bounds(habitats.geoms)]))
    keep = np.zeros(len(candidates), dtype=bool)
    for s in range(0, len(candidates), 50_000):
        part = candidates[s:s + 50_000]
        hi, _ = habitats.overlapping(RECEPTORS.polygons(part))
        keep[s + np.unique(hi)] = True
    return candidates[keep]


def land_ids(conn: psycopg.Connection, grid: HexGrid) -> np.ndarray:
    """Coarse hexagons that share area with the land (the municipalities)."""
    rows = conn.execute("SELECT ST_AsBinary(ST_Union(ST_SimplifyPreserveTopology(geom, 25))) "
                        "FROM twin.municipalities").fetchone()
    if not rows or rows[0] is None:
        return np.empty(0, dtype=np.int64)
    land = shapely.from_wkb(rows[0])
    shapely.prepare(land)
    ids = grid.ids_in_box(*shapely.bounds(land))
    hexes = grid.polygons(ids)
    return ids[shapely.intersects(land, hexes) & ~shapely.touches(land, hexes)]


# --- derive -----------------------------------------------------------------------------------------------------


def ready(settings: Settings) -> bool:
    """Whether both inputs are there: a deposition raster and habitat polygons."""
    with connect(url_for(settings, "writer"), autocommit=True) as conn:
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM twin.nitrogen_deposition_years), "
                           "EXISTS (SELECT 1 FROM twin.natura2000_habitats)").fetchone()
    return bool(row and row[0] and row[1])


def _blocks(ids: np.ndarray, grid: HexGrid, size: float) -> Iterator[tuple[np.ndarray, Box]]:
    """Hexagon ids grouped by square blocks of ``size`` metres (by centre), with each block's box grown by
    one hexagon and one raster cell margin, so that a block's raster window stays small."""
    if not len(ids):
        return
    cx, cy = grid.centres(ids)
    bx, by = np.floor(cx / size).astype(np.int64), np.floor(cy / size).astype(np.int64)
    order = np.lexsort((bx, by))
    keys = np.stack([bx[order], by[order]], axis=1)
    starts = np.concatenate([[0], np.nonzero((np.diff(keys, axis=0) != 0).any(axis=1))[0] + 1, [len(ids)]])
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        sel = order[a:b]
        m = grid.r + 1000.0
        yield ids[sel], (float(cx[sel].min() - m), float(cy[sel].min() - m), float(cx[sel].max() + m),
                         float(cy[sel].max() + m))


def block_size(resolution: str) -> float:
    """Side (m) of the square blocks the hexagons are computed in: the unit of work and of raster reading."""
    return 20000.0 if resolution == "1ha" else 60000.0


def compute_block(conn: psycopg.Connection, grid: HexGrid, bids: np.ndarray, box: Box, resolution: str,
                  years: list[int], habitats: Habitats) -> pa.Table | None:
    """The hexagon rows of one block (hexagon ids ``bids`` within ``box``); None when the raster misses it."""
    found = {year: m for year in years if (m := mosaic(conn, year, box)) is not None}
    if not found:
        return None
    # Only hexagons that reach a raster of this block.
    cx, cy = grid.centres(bids)
    near = np.zeros(len(bids), dtype=bool)
    for m in found.values():
        near |= (cx + grid.r > m.x0) & (cx - grid.r < m.x0 + m.values.shape[1] * m.cell) & \
            (cy + grid.r > m.y0 - m.values.shape[0] * m.cell) & (cy - grid.r < m.y0)
    bids = bids[near]
    if not len(bids):
        return None
    hexes = grid.polygons(bids)
    kdw = habitats.lowest_kdw(hexes)
    ewkb = geo.to_ewkb_hex(hexes)
    by_lattice: dict[tuple[float, float, float], list[int]] = {}
    for year, m in found.items():
        by_lattice.setdefault(lattice(m), []).append(year)
    parts: list[pa.Table] = []
    for group in by_lattice.values():
        means = weighted_means(grid, bids, [found[y] for y in group])
        for year, dep in zip(group, means, strict=True):
            have = ~np.isnan(dep)
            if not have.any():
                continue
            exceed = (dep - kdw)[have]
            n = int(have.sum())
            parts.append(pa.table({
                "hexagon_id": pa.array([f"{resolution}-{i}-{year}" for i in bids[have].tolist()]),
                "resolution": pa.array([resolution] * n),
                "receptor_id": pa.array(bids[have], pa.int64()),
                "year": pa.array(np.full(n, year), pa.int64()),
                "deposition": pa.array(dep[have]),
                "lowest_kdw": pa.array(kdw[have], from_pandas=True),
                "exceedance": pa.array(exceed, from_pandas=True),
                "overloaded": pa.array(exceed > 0, mask=np.isnan(exceed)),
                "approaching": pa.array(exceed > -APPROACHING_MARGIN, mask=np.isnan(exceed)),
                "geom": ewkb.filter(pa.array(have)),
            }))
    return pa.concat_tables(parts) if parts else None


def _concat(parts: list[pa.Table]) -> pa.Table:
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in COLUMNS})
    return pa.concat_tables(parts)


def compute(conn: psycopg.Connection, grid: HexGrid, ids: np.ndarray, resolution: str, years: list[int],
            habitats: Habitats) -> pa.Table:
    """The hexagon rows (as the layer's columns) for these hexagon ids and years; hexagons the raster does
    not cover in a year are left out of that year."""
    parts = [t for bids, box in _blocks(ids, grid, block_size(resolution))
             if (t := compute_block(conn, grid, bids, box, resolution, years, habitats)) is not None]
    return _concat(parts)


# --- the same on Dask distributed -------------------------------------------------------------------------------


def _block_task(url: str, snapshot: str | None, grid: HexGrid, bids: np.ndarray, box: Box, resolution: str,
                years: list[int]) -> pa.Table | None:
    """One block on a Dask worker: the worker reads its own raster tiles and habitats from the database (in
    the deriving transaction's snapshot when given, so every block sees the same data) and returns rows."""
    with connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if snapshot:
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        habitats = Habitats.load(conn, box)
        table = compute_block(conn, grid, bids, box, resolution, years, habitats)
        conn.rollback()
    return table


def compute_distributed(client: Any, url: str, snapshot: str | None, grid: HexGrid, ids: np.ndarray,
                        resolution: str, years: list[int]) -> pa.Table:
    """:func:`compute` with one Dask task per block (the blocks partition the hexagons in space); the rows
    are gathered here, so the merge stays one transaction. Equal to :func:`compute` up to row order."""
    blocks = sorted(_blocks(ids, grid, block_size(resolution)), key=lambda b: -len(b[0]))  # largest first
    futures = [client.submit(_block_task, url, snapshot, grid, bids, box, resolution, years, pure=False,
                             key=f"hexagons-{resolution}-{i}") for i, (bids, box) in enumerate(blocks)]
    parts = [t for t in client.gather(futures) if t is not None]
    return _concat(parts)


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None,
                processes: bool = True) -> Iterator[Any]:
    """A Dask client: connected to a running scheduler at ``scheduler`` (``tcp://host:8786``), else a local
    cluster of ``workers`` single-threaded worker processes on this machine."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise ConfigurationError(f"cannot reach the Dask scheduler at {scheduler} ({exc}): start one with "
                                     "'dask scheduler' and workers with 'dask worker ADDRESS'") from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=processes,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


COLUMNS = ["hexagon_id", "resolution", "receptor_id", "year", "deposition", "lowest_kdw", "exceedance",
           "overloaded", "approaching", "geom"]


def derive(settings: Settings, national_size_m: float = NATIONAL_SIZE_M, client: Any = None) -> RunResult:
    """Recompute deposition-hexagons (both resolutions, every year of the raster) and merge them; the run
    is ``unchanged`` when the inputs did not change. With a Dask ``client`` the blocks are computed on its
    workers (see :func:`dask_client`); the result and the single merge transaction are the same."""
    spec = DEPOSITION_HEXAGONS
    started = time.perf_counter()
    with recorded_run(settings, spec.id, "twin.nitrogen_deposition + twin.natura2000_habitats", "replace",
                      {"national_size_m": national_size_m}) as (_helper, result):
        with connect(url_for(settings, "writer")) as conn:
            years = [r[0] for r in conn.execute("SELECT year FROM twin.nitrogen_deposition_years ORDER BY year")]
            if not years:
                raise IngestError("no deposition raster is loaded: load one with 'twin ingest nitrogen-deposition "
                                  "FILE' first")
            conn.execute(sql.SQL("LOCK TABLE twin.{} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(spec.table)))
            t0 = time.perf_counter()
            habitats = Habitats.load(conn)
            fine = receptor_ids(habitats)
            national = national_grid(national_size_m)
            coarse = land_ids(conn, national)
            result.timings["grid"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            if client is None:
                tables = [compute(conn, RECEPTORS, fine, "1ha", years, habitats),
                          compute(conn, national, coarse, "national", years, habitats)]
            else:
                row = conn.execute("SELECT pg_export_snapshot()").fetchone()
                snapshot = row[0] if row else None
                url = url_for(settings, "writer")
                tables = [compute_distributed(client, url, snapshot, RECEPTORS, fine, "1ha", years),
                          compute_distributed(client, url, snapshot, national, coarse, "national", years)]
                result.notes.append(f"computed on Dask ({len(client.scheduler_info().get('workers', {}))} "
                                    "worker(s))")
            result.timings["compute"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            conn.execute(sql.SQL(
                "CREATE TEMP TABLE ingest_stage ON COMMIT DROP AS SELECT {} FROM twin.{} WITH NO DATA").format(
                    sql.SQL(", ").join(map(sql.Identifier, COLUMNS)), sql.Identifier(spec.table)))
            with conn.cursor().copy(sql.SQL("COPY ingest_stage ({}) FROM STDIN (FORMAT csv)").format(
                    sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))) as cp:
                for table in tables:
                    result.rows_read += table.num_rows
                    for batch in table.select(COLUMNS).to_batches(50_000):
                        buf = io.BytesIO()
                        pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
                        cp.write(buf.getbuffer())
            empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM twin.deposition_hexagons)").fetchone()
            into_empty = bool(empty and empty[0])
            deferred = into_empty and result.rows_read >= DEFER_INDEXES_MIN_ROWS
            if into_empty:  # as a first load in ingest/loader.py: new storage, then a plain INSERT
                conn.execute("SELECT twin.ingest_fresh_table('deposition_hexagons')")
            if deferred:
                set_aside(conn, "deposition_hexagons")
            merge_staged(conn, spec, COLUMNS, result, into_empty=into_empty)
            if deferred:
                conn.execute("SELECT twin.ingest_restore_indexes('deposition_hexagons')")
            result.rows_unchanged = result.rows_read - result.rows_inserted - result.rows_updated
            result.timings["merge"] = time.perf_counter() - t2
            result.status = "succeeded" if result.rows_inserted + result.rows_updated + result.rows_deleted else \
                "unchanged"
            result.timings["total"] = time.perf_counter() - started
            result.notes.append(f"{len(fine):,} receptor hexagons over the habitats and {len(coarse):,} national "
                                f"hexagons ({national_size_m:g} m) for {len(years)} year(s)")
            finish_run(conn, result)
            conn.commit()
    return result
