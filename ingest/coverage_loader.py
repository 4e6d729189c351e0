"""The ``nitrogen-deposition`` coverage: a GeoTIFF/COG (or an ESRI ASCII grid) with one band per year or
scenario, checked, put on the RD New grid and stored as PostGIS raster tiles, one row per tile per year.

Checks before anything is written: the file must be readable to the last tile (a truncated GeoTIFF is
refused), have a CRS (or ``--crs``), lie in the Netherlands (lat/lon mix-ups are diagnosed as for vector
files), say which year each band holds (band description, ``--year`` or a year in the file name), carry a
unit we know (mol N/ha/yr, or kg N/ha/yr which is converted), and hold no negative deposition.

Storage: rasters in another CRS are warped to RD New on a grid of round cell sizes (``rasterio.warp``,
bilinear). Tiles of ``TILE`` x ``TILE`` cells (float32, nodata -9999) are written as PostGIS raster WKB by
COPY, which needs neither GDAL drivers in the server (``ST_FromGDALRaster`` is off by default) nor a
round trip per tile (``ST_SetValues``); docs/ingest.md has the measurements behind both choices. Tiles
that hold only nodata are not stored. Overviews averaged over 4 x 4 and 16 x 16 cells go to
``nitrogen_deposition_o4`` / ``_o16``. A year whose grid is byte-identical to the stored one is left as it
is, so loading the same file twice changes nothing.
"""

from __future__ import annotations

import binascii
import hashlib
import math
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import rasterio
from affine import Affine
from psycopg import sql
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window

from ingest import geometry as geo
from ingest.runs import ProgressFn, RunResult, finish_run, recorded_run
from layers.registry import COVERAGES, STORAGE_SRID
from twin.database import connect, url_for
from twin.errors import IngestError
from twin.settings import Settings

# Tile side in cells, chosen by measurement (bench/ingest.py raster-tiles; docs/ingest.md): 100 x 100 gave
# the fastest zonal statistics over the 342 municipalities and point queries on a national 100 m grid, and
# loads as fast as larger tiles; 50 doubles the per-tile overhead, 256 makes every clip read 6.5x the cells.
TILE = 100
NODATA = -9999.0
OVERVIEWS = (4, 16)
RASTER_CACHE_BYTES = 128 * 1024 * 1024  # GDAL's block cache during a load (see load)
LEVEL_TABLE = {1: "nitrogen_deposition", 4: "nitrogen_deposition_o4", 16: "nitrogen_deposition_o16"}
MOL_N_PER_KG_N = 1000.0 / 14.0067
NICE_CELL_SIZES = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
_UNIT_WORDS = re.compile(r"[\s\-_.·*/^()]+")
MOL_UNITS = {"molnhayr", "molhayr", "molnhajr", "molhajr", "molnha1yr1", "molha1yr1", "molnha1jr1", "molha1a1",
             "molnhaa", "molhaa", "molnperhaperyr", "molperhaperyr", "molnhectareyear", "molhayear"}
KG_UNITS = {"kgnhayr", "kghayr", "kgnhajr", "kghajr", "kgnha1yr1", "kgnha1jr1", "kgnhaa", "kgnperhaperyr"}
YEAR = re.compile(r"(?<!\d)(19\d\d|20\d\d|21\d\d)(?!\d)")


@dataclass
class Band:
    """One band of the source: its index, the year it holds, its label and its unit factor."""

    index: int
    year: int
    label: str
    factor: float
    nodata: float | None


def unit_factor(unit: str | None) -> float | None:
    """The factor to mol N/ha/yr for a unit text (1 for mol forms, 71.39 for kg N), None when unknown; a
    missing unit counts as mol N/ha/yr (the unit of every Dutch deposition product)."""
    if unit is None or not unit.strip():
        return 1.0
    key = _UNIT_WORDS.sub("", unit.strip().lower())
    if key in MOL_UNITS:
        return 1.0
    if key in KG_UNITS:
        return MOL_N_PER_KG_N
    return None


def wkb_raster(values: np.ndarray, x0: float, y0: float, cell: float, srid: int = STORAGE_SRID) -> bytes:
    """PostGIS raster WKB (RFC2, little endian) of one float32 band with nodata -9999, north-up."""
    h, w = values.shape
    head = struct.pack("<BHHddddddiHH", 1, 0, 1, cell, -cell, x0, y0, 0.0, 0.0, srid, w, h)
    band = struct.pack("<Bf", 10 | 0x40, NODATA)  # 32BF with a nodata value
    return head + band + np.ascontiguousarray(values, dtype="<f4").tobytes()


def _bands(ds: Any, path: Path, year: int | None, years: list[int] | None) -> list[Band]:
    out: list[Band] = []
    file_year = YEAR.findall(path.stem)
    for b in range(1, ds.count + 1):
        desc = (ds.descriptions[b - 1] or "").strip()
        tags = {k.lower(): v for k, v in ds.tags(b).items()}
        label = desc or tags.get("year") or tags.get("label") or ""
        found = YEAR.findall(label)
        if found:
            y = int(found[0])
        elif years and len(years) >= b:
            y, label = int(years[b - 1]), label or str(years[b - 1])
        elif ds.count == 1 and year is not None:
            y, label = year, label or str(year)
        elif ds.count == 1 and len(file_year) == 1:
            y, label = int(file_year[0]), label or file_year[0]
        else:
            raise IngestError(
                f"{path}: band {b} does not say which year it holds: write the year in the band description "
                "(e.g. '2023'), or load a single-band file with --year"
            )
        unit = ds.units[b - 1] if ds.units and ds.units[b - 1] else tags.get("units") or tags.get("unit") or \
            ds.tags().get("units") or ds.tags().get("UNITS")
        factor = unit_factor(unit)
        if factor is None:
            raise IngestError(f"{path}: band {b} ({label}) is in {unit!r}; the coverage takes mol N/ha/yr "
                              "(or kg N/ha/yr, which is converted)")
        out.append(Band(b, y, label, factor, ds.nodatavals[b - 1]))
    dupes = sorted({b.year for b in out if [o.year for o in out].count(b.year) > 1})
    if dupes:
        raise IngestError(f"{path}: more than one band holds year(s) {', '.join(map(str, dupes))}")
    return out


def _nice(cell: float) -> float:
    return min(NICE_CELL_SIZES, key=lambda c: abs(math.log(c / cell)))


def _target_grid(ds: Any, crs: CRS) -> tuple[Affine, int, int, bool]:
    """(transform, width, height, warp needed) of the stored grid: the file's own grid when it is RD New
    and north-up, else an RD New grid of round cell size aligned to multiples of it."""
    t = ds.transform
    if geo.is_rd(crs) and t.b == 0 and t.d == 0 and t.e < 0 and abs(abs(t.a) - abs(t.e)) < 1e-9 * abs(t.a):
        return t, ds.width, ds.height, False
    src = rasterio.crs.CRS.from_wkt(crs.to_wkt())
    dt, w, h = calculate_default_transform(src, f"EPSG:{STORAGE_SRID}", ds.width, ds.height, *ds.bounds)
    cell = _nice(abs(dt.a))
    left, top = dt.c, dt.f
    right, bottom = left + w * dt.a, top + h * dt.e
    x0, y1 = math.floor(left / cell) * cell, math.ceil(top / cell) * cell
    width, height = math.ceil((right - x0) / cell), math.ceil((y1 - bottom) / cell)
    return Affine(cell, 0, x0, 0, -cell, y1), width, height, True


def _check_location(ds: Any, crs: CRS, crs_given: bool, path: Path) -> None:
    b = ds.bounds
    xs = np.array([b.left, b.right, b.left, b.right, (b.left + b.right) / 2])
    ys = np.array([b.bottom, b.bottom, b.top, b.top, (b.bottom + b.top) / 2])
    diagnosis = geo.diagnose_crs(xs, ys, crs, crs_given)
    if diagnosis:
        raise IngestError(f"{path}: {diagnosis}", parameter="crs")
    rx, ry = geo.xy_to_rd(xs, ys, crs)
    if not geo.rd_mask(rx, ry).any():
        raise IngestError(f"{path}: the raster lies outside the Netherlands (RD x {rx.min():.0f}-{rx.max():.0f}, "
                          f"y {ry.min():.0f}-{ry.max():.0f}); check its CRS")


def _strips(src: Any, band: Band, level: int, width: int, height: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, values) strips of TILE rows of the stored grid at an overview level (cells averaged over
    level x level, ignoring nodata), in mol N/ha/yr with NaN where there is no data."""
    step = TILE * level
    lw = math.ceil(width / level)
    for r0 in range(0, height, step):
        rows = min(step, height - r0)
        data = src.read(band.index, window=Window(0, r0, width, rows), masked=True)
        masked = np.ma.masked_array(data).astype(np.float32)
        values = np.ma.filled(masked, np.nan)
        if band.nodata is not None and not math.isnan(band.nodata):
            values[values == np.float32(band.nodata)] = np.nan
        if level > 1:
            lr = math.ceil(rows / level)
            padded = np.full((lr * level, lw * level), np.nan, dtype=np.float32)
            padded[:rows, :width] = values
            blocks = padded.reshape(lr, level, lw, level)
            with np.errstate(invalid="ignore"):
                counts = np.sum(~np.isnan(blocks), axis=(1, 3))
                sums = np.nansum(blocks, axis=(1, 3), dtype=np.float64)
                values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).astype(np.float32)
        yield r0 // level, values * np.float32(band.factor) if band.factor != 1.0 else values


def load(settings: Settings, coverage_id: str, path: str | Path, crs: str | None = None, mode: str = "upsert",
         year: int | None = None, years: list[int] | None = None, progress: ProgressFn | None = None,
         **_: Any) -> RunResult:
    """Load a deposition raster: checked, tiled (with overviews) and merged per year in one transaction."""
    spec = COVERAGES[coverage_id]
    file = Path(path)
    options = {"crs": crs, "year": year}
    started = time.perf_counter()
    with recorded_run(settings, spec.id, str(file), mode, options) as (_helper, result):
        if not file.exists():
            raise IngestError(f"{file}: file not found")
        with file.open("rb") as fh:  # streamed: read_bytes() held the whole file (204 MB national) at once
            result.checksum = hashlib.file_digest(fh, "sha256").hexdigest()
        # GDAL's block cache defaults to 5% of RAM (1.2 GB here): the national raster (3 bands of 10,564 x 12,492
        # float32 cells) then sat in it whole next to the strips, and the load peaked at 1.9 GB (2.6 GB in
        # 'twin ingest-all', beside the inspections). The strips read each band in order, so a few block rows
        # are all the cache needs to hold; each level's pass decompresses the band again instead (read 21-25 s
        # -> 28 s), for a peak of 0.8 GB.
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_CACHEMAX=RASTER_CACHE_BYTES):
            try:
                ds = rasterio.open(file)
            except RasterioError as exc:
                raise IngestError(f"{file}: cannot be read as a raster ({exc})") from exc
            with ds:
                _load(settings, spec.table, file, ds, crs, mode, year, years, progress, result, started)
    return result


def _check_complete(ds: Any, file: Path) -> None:
    """Refuse a GeoTIFF whose blocks point past the end of the file (cut off in a download or copy): the
    block table at the start survives, the data it points to does not."""
    if ds.driver != "GTiff":
        return
    size = file.stat().st_size
    for b in range(1, ds.count + 1):
        for (row, col), _ in ds.block_windows(b):
            off = ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=b)
            n = ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=b)
            if off and n and int(off) + int(n) > size:
                raise IngestError(
                    f"{file}: cannot be read to the end: the file is damaged or cut off (band {b}, block "
                    f"{row},{col} lies at bytes {int(off):,}-{int(off) + int(n):,} of a {size:,}-byte file)"
                )


def _load(settings: Settings, table: str, file: Path, ds: Any, crs_text: str | None, mode: str, year: int | None,
          years: list[int] | None, progress: ProgressFn | None, result: RunResult, started: float) -> None:
    _check_complete(ds, file)
    if crs_text:
        crs = geo.source_crs(crs_text)
        if ds.crs and not CRS.from_wkt(ds.crs.to_wkt()).equals(crs, ignore_axis_order=True):
            result.notes.append(f"--crs {geo.crs_label(crs)} overrides the CRS of the file")
    elif ds.crs:
        crs = CRS.from_wkt(ds.crs.to_wkt())
    else:
        raise IngestError(f"{file}: the raster does not say in which coordinate system it is; give it with --crs "
                          "(EPSG:28992 for RD New)", parameter="crs")
    _check_location(ds, crs, bool(crs_text), file)
    bands = _bands(ds, file, year, years)
    transform, width, height, warp = _target_grid(ds, crs)
    cell = transform.a
    if warp:
        result.notes.append(f"reprojected from {geo.crs_label(crs)} to RD New, {cell:g} m cells")
    src: Any = ds
    if warp:
        src = WarpedVRT(ds, crs=f"EPSG:{STORAGE_SRID}", transform=transform, width=width, height=height,
                        resampling=Resampling.bilinear, src_crs=rasterio.crs.CRS.from_wkt(crs.to_wkt()),
                        dtype="float32", nodata=NODATA)
    total_tiles = len(bands) * math.ceil(width / TILE) * math.ceil(height / TILE)
    timings = {"read": 0.0, "encode": 0.0, "copy": 0.0}
    hashes: dict[int, str] = {}
    negative: dict[int, int] = {}
    done = 0
    with connect(url_for(settings, "writer")) as conn:
        conn.execute("SET LOCAL work_mem = '128MB'")
        for t in LEVEL_TABLE.values():
            conn.execute(sql.SQL("LOCK TABLE twin.{} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(t)))
        conn.execute("CREATE TEMP TABLE raster_stage (level integer, year integer, label text, rast raster) "
                     "ON COMMIT DROP")
        with conn.cursor().copy("COPY raster_stage (level, year, label, rast) FROM STDIN") as cp:
            for band in bands:
                h = hashlib.sha256(struct.pack("<6d", *transform[:6]))
                for level in (1, *OVERVIEWS):
                    lcell = cell * level
                    strips = _strips(src, band, level, width, height)
                    while True:
                        t0 = time.perf_counter()
                        try:
                            item = next(strips, None)
                        except RasterioError as exc:
                            raise _damaged(file, exc) from exc
                        timings["read"] += time.perf_counter() - t0
                        if item is None:
                            break
                        r0, values = item
                        t1 = time.perf_counter()
                        if level == 1:
                            negative[band.year] = negative.get(band.year, 0) + int(np.sum(values < 0))
                        stored = np.where(np.isnan(values), np.float32(NODATA), values).astype("<f4")
                        if level == 1:
                            h.update(stored.tobytes())
                        y0 = transform.f - r0 * lcell
                        buf = bytearray()
                        for c0 in range(0, stored.shape[1], TILE):
                            tile = stored[:, c0:c0 + TILE]
                            if level == 1:
                                done += 1
                            if (tile == NODATA).all():
                                continue
                            blob = wkb_raster(tile, transform.c + c0 * lcell, y0, lcell)
                            buf += f"{level}\t{band.year}\t{_copy_text(band.label)}\t".encode()
                            buf += binascii.hexlify(blob) + b"\n"
                            if level == 1:
                                result.rows_read += 1
                        timings["encode"] += time.perf_counter() - t1
                        t2 = time.perf_counter()
                        cp.write(bytes(buf))
                        timings["copy"] += time.perf_counter() - t2
                        if progress and level == 1:
                            progress(done, total_tiles)
                hashes[band.year] = h.hexdigest()
        bad = {y: n for y, n in negative.items() if n}
        if bad:
            raise IngestError(f"{file}: " + "; ".join(f"{n:,} cells of {y} are below 0" for y, n in bad.items()) +
                              ": deposition cannot be negative (is the nodata value declared?)")
        result.timings.update(timings)
        t3 = time.perf_counter()
        _merge(conn, bands, hashes, result, mode, cell, file)
        result.timings["merge"] = time.perf_counter() - t3
        result.status = "succeeded" if result.rows_inserted or result.rows_deleted else "unchanged"
        result.timings["total"] = time.perf_counter() - started
        finish_run(conn, result)
        conn.commit()


def _damaged(file: Path, exc: Exception) -> IngestError:
    return IngestError(f"{file}: cannot be read to the end: the file is damaged or cut off ({exc})")


def _copy_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def _merge(conn: psycopg.Connection, bands: list[Band], hashes: dict[int, str], result: RunResult, mode: str,
           cell: float, file: Path) -> None:
    """Per year: keep it when the stored grid is identical, else swap its tiles (all levels); replace mode
    also removes the years the file does not hold."""
    stored: dict[int, str | None] = dict(
        conn.execute("SELECT year, checksum FROM twin.nitrogen_deposition_years").fetchall())
    loaded = [b.year for b in bands]
    drop = [y for y in stored if y not in loaded] if mode == "replace" else []
    for band in bands:
        y = band.year
        n = conn.execute("SELECT count(*) FROM raster_stage WHERE level = 1 AND year = %s", (y,)).fetchone()
        tiles = int(n[0]) if n else 0
        if stored.get(y) == hashes[y]:
            result.rows_unchanged += tiles
            continue
        for level, table in LEVEL_TABLE.items():
            t = sql.Identifier(table)
            cur = conn.execute(sql.SQL("DELETE FROM twin.{} WHERE year = %s").format(t), (y,))
            if level == 1:
                result.rows_deleted += cur.rowcount
            cur = conn.execute(sql.SQL(
                "INSERT INTO twin.{} (year, label, rast, run_id) SELECT year, label, rast, %s FROM raster_stage "
                "WHERE level = %s AND year = %s").format(t), (result.run_id, level, y))
            if level == 1:
                result.rows_inserted += cur.rowcount
        conn.execute(
            """INSERT INTO twin.nitrogen_deposition_years
                 (year, label, unit, pixel_size, nodata, source, run_id, checksum, tile_size)
               VALUES (%s, %s, 'mol N/ha/yr', %s, %s, %s, %s, %s, %s)
               ON CONFLICT (year) DO UPDATE SET label = excluded.label, unit = excluded.unit,
                 pixel_size = excluded.pixel_size, nodata = excluded.nodata, source = excluded.source,
                 run_id = excluded.run_id, checksum = excluded.checksum, tile_size = excluded.tile_size""",
            (y, band.label, cell, NODATA, str(file), result.run_id, hashes[y], TILE),
        )
    for y in drop:
        for level, table in LEVEL_TABLE.items():
            cur = conn.execute(sql.SQL("DELETE FROM twin.{} WHERE year = %s").format(sql.Identifier(table)), (y,))
            if level == 1:
                result.rows_deleted += cur.rowcount
        conn.execute("DELETE FROM twin.nitrogen_deposition_years WHERE year = %s", (y,))
