"""The nitrogen-deposition raster of the demo data: total N deposition in mol N/ha/yr, one band per year,
as a tiled, compressed float32 GeoTIFF in RD New.

The field is the sum of a regional background that rises from the coast to the east and south-east,
a modest urban (traffic) contribution, the regional agricultural contribution of the livestock
concentrations and local hotspots that decay with distance around livestock farms (a kernel convolved
with the farms' NH3 emissions by FFT). It is computed on a coarse grid (at most 100 m) and written in
horizontal strips, bilinearly refined where the output is finer, so memory stays flat at every scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from shapely import STRtree

from demo import catalog as cat
from demo.geo import GEO_SEED, FloatArray, Geography, livestock_intensity

UNITS = "mol N/ha/yr"
NODATA = -9999.0
STRIP_ROWS = 512
NATIONAL_EQUIVALENT = 300_000  # establishments the national scale holds; hotspots are scaled to it



def _origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    """A north-up geotransform (as rasterio's from_origin, without its deprecated Affine product)."""
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)

def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT sizes)."""
    best = 1 << (n - 1).bit_length()
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            p = f35
            while p < n:
                p *= 2
            best = min(best, p)
            f35 *= 3
        f5 *= 5
    return best


def _convolve(grid: FloatArray, kernel: FloatArray) -> FloatArray:
    r = kernel.shape[0] // 2
    h, w = grid.shape
    fh, fw = _fast_len(h + 2 * r), _fast_len(w + 2 * r)
    out = np.fft.irfft2(np.fft.rfft2(grid, (fh, fw)) * np.fft.rfft2(kernel, (fh, fw)), (fh, fw))
    return out[r:r + h, r:r + w]


def _kernel(res: float) -> FloatArray:
    r = int(math.ceil(6000 / res))
    d = np.hypot(*np.meshgrid(np.arange(-r, r + 1) * res, np.arange(-r, r + 1) * res, indexing="ij"))
    k = np.exp(-d / 450.0) + 0.25 * np.exp(-d / 2200.0)
    k[d > 6000] = 0.0
    return k / k.max()


class DepositionModel:
    """The deposition field on a coarse grid over the region, per year."""

    def __init__(self, geo: Geography, est: pd.DataFrame, res_out: float) -> None:
        self.res_out = res_out
        self.res_c = res_out if res_out >= 100 else 100.0
        if self.res_c % res_out:
            raise ValueError("the output resolution must divide 100 m")
        rc = self.res_c
        x0, y0, x1, y1 = geo.region_bounds
        self.x0 = math.floor(x0 / rc) * rc
        self.y1 = math.ceil(y1 / rc) * rc
        self.wc = int(math.ceil((x1 - self.x0) / rc))
        self.hc = int(math.ceil((self.y1 - y0) / rc))
        self.factor = int(round(rc / res_out))
        self.width, self.height = self.wc * self.factor, self.hc * self.factor
        xs = self.x0 + (np.arange(self.wc) + 0.5) * rc
        ys = self.y1 - (np.arange(self.hc) + 0.5) * rc
        gx, gy = np.meshgrid(xs, ys)
        self.background = self._background(gx, gy)
        self.urban = self._urban(geo, xs, ys)
        self.agriculture = 340.0 * (livestock_intensity(gx, gy) - cat.LIVESTOCK_BACKGROUND) + 80.0
        self.agriculture += self._hotspots(geo, est, xs, ys)

    @staticmethod
    def _background(gx: FloatArray, gy: FloatArray) -> FloatArray:
        s = np.clip(0.6 * (gx - 30000) / 250000 + 0.4 * (600000 - gy) / 300000, 0.0, 1.0)
        rng = np.random.default_rng([GEO_SEED, 9])
        noise = np.zeros_like(gx)
        for _ in range(6):
            wl = rng.uniform(25000, 90000)
            th = rng.uniform(0, math.pi)
            noise += rng.uniform(10, 25) * np.cos(2 * math.pi * (gx * math.cos(th) + gy * math.sin(th)) / wl
                                                  + rng.uniform(0, 2 * math.pi))
        return 800.0 + 620.0 * s + noise

    def _urban(self, geo: Geography, xs: FloatArray, ys: FloatArray) -> FloatArray:
        out = np.zeros((len(ys), len(xs)))
        s = geo.settlements
        rc = self.res_c
        for k in np.flatnonzero(s.population >= 15000):
            sig = 1.5 * s.sigma[k] + 1500.0
            amp = 240.0 * min(1.0, math.sqrt(s.population[k] / 250000.0))
            c0 = max(0, int((s.x[k] - 4 * sig - self.x0) / rc))
            c1 = min(len(xs), int((s.x[k] + 4 * sig - self.x0) / rc) + 1)
            r0 = max(0, int((self.y1 - s.y[k] - 4 * sig) / rc))
            r1 = min(len(ys), int((self.y1 - s.y[k] + 4 * sig) / rc) + 1)
            if c0 >= c1 or r0 >= r1:
                continue
            dx = xs[c0:c1][None, :] - s.x[k]
            dy = ys[r0:r1][:, None] - s.y[k]
            out[r0:r1, c0:c1] += amp * np.exp(-(dx * dx + dy * dy) / (2 * sig * sig))
        return 320.0 * np.tanh(out / 320.0)

    def _hotspots(self, geo: Geography, est: pd.DataFrame, xs: FloatArray, ys: FloatArray) -> FloatArray:
        src = est[(est["h_nh3"] > 0) & (est["h_sector"] == "livestock")]
        land_share = float(shapely.area(geo.municipalities.geometry.values[geo.in_region]).sum()
                           / shapely.area(geo.municipalities.geometry.values).sum())
        # each generated farm stands for `rep` real ones, so the emitted mass (and the mean) does not
        # depend on the scale; only the lumpiness does
        rep = NATIONAL_EQUIVALENT * land_share / max(len(est), 1)
        amp = 0.0125 * src["h_nh3"].to_numpy() * max(rep, 1.0)
        col = ((src["h_x"].to_numpy() - self.x0) / self.res_c).astype(np.int64)
        row = ((self.y1 - src["h_y"].to_numpy()) / self.res_c).astype(np.int64)
        ok = (col >= 0) & (col < len(xs)) & (row >= 0) & (row < len(ys))
        grid = np.zeros((len(ys), len(xs)))
        np.add.at(grid, (row[ok], col[ok]), amp[ok])
        return _convolve(grid, _kernel(self.res_c))

    def year(self, year: int) -> FloatArray:
        """Total deposition on the coarse grid in a year: all parts decline slowly, agriculture fastest."""
        back = 2025 - year
        v = (self.background * (1 + 0.010 * back) + self.urban * (1 + 0.015 * back)
             + self.agriculture * (1 + 0.028 * back))
        return np.where(v > 3600.0, 3600.0 + 600.0 * np.tanh((v - 3600.0) / 600.0), v)


def _refine(a: FloatArray, f: int, r0: int, r1: int) -> FloatArray:
    """Rows r0..r1 of `a` bilinearly refined by an integer factor (cell centres aligned, edges held)."""
    if f == 1:
        return a[r0:r1]
    h, w = a.shape
    u = (np.arange(r0, r1) + 0.5) / f - 0.5
    i0 = np.floor(u).astype(np.int64)
    t = (u - i0)[:, None]
    rows = a[np.clip(i0, 0, h - 1)] * (1 - t) + a[np.clip(i0 + 1, 0, h - 1)] * t
    v = (np.arange(w * f) + 0.5) / f - 0.5
    j0 = np.floor(v).astype(np.int64)
    s = (v - j0)[None, :]
    return rows[:, np.clip(j0, 0, w - 1)] * (1 - s) + rows[:, np.clip(j0 + 1, 0, w - 1)] * s


def write_deposition(
    path: Path, geo: Geography, est: pd.DataFrame, res: float,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the deposition GeoTIFF (one band per year of DEPOSITION_YEARS); returns the band count."""
    model = DepositionModel(geo, est, res)
    fields = {y: model.year(y) for y in cat.DEPOSITION_YEARS}
    geoms = geo.municipalities.geometry.values[geo.in_region]
    tree = STRtree(geoms)
    transform = _origin(model.x0, model.y1, res, res)
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": len(fields), "width": model.width,
        "height": model.height, "crs": "EPSG:28992", "transform": transform, "nodata": NODATA,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3,
        "zlevel": 6, "interleave": "band",
    }
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.open(path, "w", **profile) as dst:
            dst.update_tags(UNITS=UNITS, QUANTITY="total nitrogen deposition (NHx + NOy)",
                            SOURCE="vth-twin demo-data (synthetic, not RIVM data)",
                            YEARS=",".join(str(y) for y in fields))
            dst.units = tuple(UNITS for _ in fields)
            for b, y in enumerate(fields, start=1):
                dst.set_band_description(b, str(y))
                dst.update_tags(b, YEAR=str(y), UNITS=UNITS)
            total = int(math.ceil(model.height / STRIP_ROWS))
            for k, r0 in enumerate(range(0, model.height, STRIP_ROWS)):
                r1 = min(model.height, r0 + STRIP_ROWS)
                top = model.y1 - r0 * res
                bbox = shapely.box(model.x0, model.y1 - r1 * res, model.x0 + model.width * res, top)
                shapes = [(g, 1) for g in geoms[tree.query(bbox, predicate="intersects")]]
                land = rasterize(shapes, out_shape=(r1 - r0, model.width), transform=_origin(
                    model.x0, top, res, res), fill=0, dtype="uint8") if shapes else \
                    np.zeros((r1 - r0, model.width), dtype=np.uint8)
                window = Window(0, r0, model.width, r1 - r0)
                for b, field in enumerate(fields.values(), start=1):
                    values = np.round(_refine(field, model.factor, r0, r1), 1)
                    data = np.where(land == 1, values, NODATA).astype(np.float32)
                    dst.write(data, b, window=window)
                if progress:
                    progress(k + 1, total)
    return len(fields)
