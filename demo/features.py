"""Natura 2000 habitat polygons, planned housing sites and BAG-like building footprints for the demo
data.

Habitats are Voronoi cells inside the outlines of real Natura 2000 areas. Housing sites sit at the edge
of growing towns; a few are placed on purpose next to livestock farms, heavy industry and Natura 2000
areas so that the housing-versus-nitrogen analysis has conflicts to show. Buildings are laid out per
municipality on a rotated lattice of 16 m cells (blocks of 1, 2 or 4 cells), so footprints never overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from demo import catalog as cat
from demo.geo import GEO_SEED, RD_CRS, BoolArray, FloatArray, Geography, IntArray, largest_part_or_self
from demo.tables import largest_remainder

HABITAT_COLUMNS = ("identificatie", "naamN2K", "nr", "beschermin", "Habtype1", "Perc1", "Kwal1", "kdw")
HOUSING_COLUMNS = ("locatie_id", "plannaam", "gemeentecode", "gemeente", "aantal_woningen", "fase",
                   "opleverjaar")
BUILDING_COLUMNS = ("identificatie", "bouwjaar", "status", "gebruiksdoel", "hoogte")


# --- Natura 2000 habitats ----------------------------------------------------------------------------

def make_habitats(geo: Geography) -> gpd.GeoDataFrame:
    """Habitat-type polygons (BIJ12 column names) inside the Natura 2000 outlines of the region. They
    do not depend on the seed: they belong to the fixed geography."""
    rng = np.random.default_rng([GEO_SEED, 5])
    region = geo.region_geometry()
    records: list[dict[str, object]] = []
    geoms: list[BaseGeometry] = []
    for outline in geo.nature:
        area = outline.area
        shape = outline.geometry
        shape = shapely.intersection(shape, region) if not geo.in_region.all() else shape
        if shape.is_empty or shape.area < 1e4:
            continue
        n_cells = max(8, round(shape.area / 1e4 / area.cell_ha))
        x0, y0, x1, y1 = shape.bounds
        px = rng.uniform(x0, x1, n_cells * 20)
        py = rng.uniform(y0, y1, n_cells * 20)
        inside = shapely.contains_xy(shape, px, py)
        px, py = px[inside][:n_cells], py[inside][:n_cells]
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(np.column_stack([px, py])),
                                                           extend_to=shape.envelope.buffer(1000)))
        cells = shapely.intersection(cells, shape)
        cells = cells[~shapely.is_empty(cells) & (shapely.area(cells) > 100.0)]
        codes = [c for c, _ in area.habitats]
        w = np.array([wt for _, wt in area.habitats])
        for cell in cells:
            cell = shapely.set_precision(cell, 0.01)
            polys = [p for p in shapely.get_parts(cell) if p.geom_type == "Polygon" and p.area > 10.0]
            if not polys:
                continue
            code = codes[int(rng.choice(len(codes), p=w / w.sum()))]
            perc = 100 if code == "H0000" else int(rng.integers(10, 21)) * 5
            records.append({
                "naamN2K": area.name, "nr": area.number, "beschermin": area.protection, "Habtype1": code,
                "Perc1": perc,
                "Kwal1": "X" if code == "H0000" else str(rng.choice(["G", "M", "X"], p=[0.45, 0.4, 0.15])),
                "kdw": cat.KDW[code],
            })
            geoms.append(shapely.MultiPolygon(polys))
    gdf = gpd.GeoDataFrame(pd.DataFrame(records), geometry=geoms, crs=RD_CRS)
    cent = gdf.geometry.representative_point()
    gdf = gdf.assign(_y=-cent.y.round(1), _x=cent.x.round(1)).sort_values(["nr", "_y", "_x"], kind="stable")
    gdf = gdf.drop(columns=["_x", "_y"]).reset_index(drop=True)
    gdf.insert(0, "identificatie", [f"N2K{nr:03d}-{k + 1:05d}" for k, nr in enumerate(gdf["nr"])])
    return gdf


# --- housing sites -----------------------------------------------------------------------------------

PHASES = (("idee", 0.28), ("planvorming", 0.34), ("vastgesteld", 0.22), ("in aanbouw", 0.16))
PHASE_YEARS = {"idee": (2030, 2040), "planvorming": (2028, 2034), "vastgesteld": (2027, 2031),
               "in aanbouw": (2026, 2029)}


def _site_polygon(rng: np.random.Generator, x: float, y: float, dwellings: int) -> tuple[BaseGeometry, float]:
    density = rng.uniform(25, 60)  # dwellings per hectare
    area = dwellings / density * 1e4
    radius = math.sqrt(area / math.pi)
    t = np.linspace(0, 2 * math.pi, 41)[:-1]
    r = radius * (1 + 0.12 * np.cos(2 * t + rng.uniform(0, 6.3)) + 0.06 * np.cos(3 * t + rng.uniform(0, 6.3)))
    sx = rng.uniform(0.75, 1.3)
    poly = shapely.Polygon(np.column_stack([x + sx * r * np.cos(t), y + r / sx * np.sin(t)]))
    return poly, radius


def make_housing(geo: Geography, est: pd.DataFrame, n: int, seed: int) -> gpd.GeoDataFrame:
    """`n` planned housing sites in RD New (the writer transforms them to WGS84)."""
    rng = np.random.default_rng([seed, 6])
    s = geo.settlements
    munis = geo.municipalities
    geoms_m = munis.geometry.values
    towns = np.flatnonzero(geo.in_region[s.municipality] & (s.population >= 12000))
    if len(towns) == 0:
        towns = np.flatnonzero(geo.in_region[s.municipality])
    tw = s.population[towns] ** 0.7
    nature = shapely.union_all([o.geometry for o in geo.nature]) if geo.nature else shapely.Polygon()
    nature_buf = nature.buffer(100)
    inner_cache: dict[int, BaseGeometry] = {}

    livestock = est[est["h_sector"] == "livestock"]
    industry = est[est["h_sector"].isin(["heavy", "industry", "waste"])
                   & est["milieucategorie"].isin(["4.1", "4.2", "5.1", "5.2", "5.3", "6"])]
    n_live = max(3, round(0.04 * n)) if len(livestock) else 0
    n_ind = max(2, round(0.02 * n)) if len(industry) else 0
    n_nat = max(3, round(0.04 * n)) if geo.nature else 0
    kinds = ["livestock"] * n_live + ["industry"] * n_ind + ["nature"] * n_nat
    kinds += ["town"] * max(0, n - len(kinds))

    near_nature = []
    if geo.nature:
        d = shapely.distance(shapely.points(s.x[towns], s.y[towns]), nature)
        near_nature = list(towns[(d > 0) & (d < 8000)])

    placed: list[BaseGeometry] = []
    boxes: list[tuple[float, float, float, float]] = []
    records: list[dict[str, object]] = []
    for kind in kinds:
        for _ in range(200):
            dwellings = int(np.clip(round(rng.lognormal(math.log(350), 0.95) / 5) * 5, 50, 5000))
            if kind in ("livestock", "industry"):
                src = livestock if kind == "livestock" else industry
                e = src.iloc[int(rng.integers(len(src)))]
                dwellings = min(dwellings, 600)
                poly, radius = _site_polygon(rng, 0.0, 0.0, dwellings)
                ang = rng.uniform(0, 2 * math.pi)
                dist = radius + rng.uniform(150, 400)
                cx, cy = e["h_x"] + dist * math.cos(ang), e["h_y"] + dist * math.sin(ang)
            elif kind == "nature" and near_nature:
                k = int(near_nature[int(rng.integers(len(near_nature)))])
                poly, radius = _site_polygon(rng, 0.0, 0.0, min(dwellings, 1500))
                p = shapely.ops.nearest_points(nature, shapely.Point(s.x[k], s.y[k]))[0]
                vx, vy = s.x[k] - p.x, s.y[k] - p.y
                norm = math.hypot(vx, vy) or 1.0
                dist = radius + rng.uniform(250, 900)
                cx, cy = p.x + vx / norm * dist, p.y + vy / norm * dist
            else:
                k = int(towns[int(rng.choice(len(towns), p=tw / tw.sum()))])
                poly, radius = _site_polygon(rng, 0.0, 0.0, dwellings)
                ang = rng.uniform(0, 2 * math.pi)
                dist = (0.9 + 0.9 * rng.random()) * s.sigma[k] + radius
                cx, cy = s.x[k] + dist * math.cos(ang), s.y[k] + dist * math.sin(ang)
            poly = shapely.affinity.translate(poly, cx, cy)
            m = int(geo.locate(np.array([cx]), np.array([cy]))[0])
            if m < 0:
                continue
            if m not in inner_cache:
                inner = geoms_m[m].buffer(-20)
                inner_cache[m] = inner if not inner.is_empty else geoms_m[m]
            site = shapely.difference(shapely.intersection(poly, inner_cache[m]), nature_buf)
            site = largest_part_or_self(shapely.set_precision(site, 0.01))
            if site.is_empty or site.area < 0.6 * poly.area:
                continue
            sx0, sy0, sx1, sy1 = site.bounds
            near = [j for j, (bx0, by0, bx1, by1) in enumerate(boxes)
                    if bx0 <= sx1 and sx0 <= bx1 and by0 <= sy1 and sy0 <= by1]
            if any(site.intersects(placed[j]) for j in near):
                continue
            if kind == "nature" and site.distance(nature) > 1500:
                continue
            phase = str(rng.choice([p for p, _ in PHASES], p=[w for _, w in PHASES]))
            lo, hi = PHASE_YEARS[phase]
            nearest = int(np.argmin((s.x - cx) ** 2 + (s.y - cy) ** 2))
            placed.append(site)
            boxes.append(site.bounds)
            records.append({
                "plannaam": f"{s.name[nearest]} {rng.choice(cat.HOUSING_SUFFIXES)}",
                "gemeentecode": str(munis["code"].iloc[m]), "gemeente": str(munis["name"].iloc[m]),
                "aantal_woningen": dwellings, "fase": phase, "opleverjaar": int(rng.integers(lo, hi + 1)),
                "_x": round(cx, 1), "_y": round(cy, 1),
            })
            break
    gdf = gpd.GeoDataFrame(pd.DataFrame(records), geometry=[shapely.MultiPolygon([p]) for p in placed],
                           crs=RD_CRS)
    gdf = gdf.sort_values(["gemeentecode", "_y", "_x"], kind="stable").drop(columns=["_x", "_y"])
    gdf = gdf.reset_index(drop=True)
    counters: dict[str, int] = {}
    ids = []
    for code in gdf["gemeentecode"]:
        counters[code] = counters.get(code, 0) + 1
        ids.append(f"WBL-{code}-{counters[code]:03d}")
    gdf.insert(0, "locatie_id", ids)
    return gdf


# --- buildings ---------------------------------------------------------------------------------------

CELL = 16.0


@dataclass
class BuildingChunk:
    """Buildings of one municipality: footprint polygons and BAG attributes."""

    geometry: npt.NDArray[np.object_]
    columns: dict[str, np.ndarray]


class _Lattice:
    """A rotated lattice of 16 m cells over one municipality that hands out non-overlapping blocks."""

    def __init__(self, x0: float, y0: float, angle_deg: float, inner: dict[int, BaseGeometry],
                 exclude: Callable[[FloatArray, FloatArray], BoolArray]) -> None:
        self.x0, self.y0 = x0, y0
        self.exclude = exclude
        th = math.radians(angle_deg)
        self.c, self.s = math.cos(th), math.sin(th)
        self.inner = inner
        self.occupied = np.empty(0, dtype=np.int64)

    def take(self, x: FloatArray, y: FloatArray, k: int, limit: int) -> tuple[FloatArray, FloatArray, IntArray]:
        """Snap candidates to free k x k blocks inside the municipality; returns up to `limit` block
        centres (frame coordinates u, v) and the candidate index each came from."""
        dx, dy = x - self.x0, y - self.y0
        u = dx * self.c + dy * self.s
        v = -dx * self.s + dy * self.c
        size = CELL * k
        bi = np.floor(u / size).astype(np.int64)
        bj = np.floor(v / size).astype(np.int64)
        key = (bi * k + 200_000) * 1_000_000 + (bj * k + 200_000)
        _, first = np.unique(key, return_index=True)
        first = np.sort(first)
        bi, bj = bi[first], bj[first]
        cu, cv = (bi + 0.5) * size, (bj + 0.5) * size
        cx = self.x0 + cu * self.c - cv * self.s
        cy = self.y0 + cu * self.s + cv * self.c
        ok = shapely.contains_xy(self.inner[k], cx, cy)
        ok[ok] = ~self.exclude(cx[ok], cy[ok])
        cells = self._cells(bi[ok], bj[ok], k)
        free = ~np.isin(cells, self.occupied).reshape(-1, k * k).any(axis=1)
        sel = np.flatnonzero(ok)[free][:limit]
        self.occupied = np.union1d(self.occupied, self._cells(bi[sel], bj[sel], k))
        return cu[sel], cv[sel], first[sel]

    @staticmethod
    def _cells(bi: IntArray, bj: IntArray, k: int) -> IntArray:
        di, dj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        i = (bi[:, None] * k + di.ravel()[None, :]) + 200_000
        j = (bj[:, None] * k + dj.ravel()[None, :]) + 200_000
        return (i * 1_000_000 + j).ravel()

    def footprints(self, cu: FloatArray, cv: FloatArray, w: FloatArray, d: FloatArray,
                   ju: FloatArray, jv: FloatArray) -> npt.NDArray[np.object_]:
        """Rectangles of width w (along u) and depth d (along v) around the block centres, shifted by
        (ju, jv), as polygons in RD New."""
        su = np.array([-0.5, 0.5, 0.5, -0.5, -0.5])
        sv = np.array([-0.5, -0.5, 0.5, 0.5, -0.5])
        pu = (cu + ju)[:, None] + w[:, None] * su[None, :]
        pv = (cv + jv)[:, None] + d[:, None] * sv[None, :]
        px = np.round(self.x0 + pu * self.c - pv * self.s, 2)
        py = np.round(self.y0 + pu * self.s + pv * self.c, 2)
        return shapely.polygons(np.stack([px, py], axis=-1))


def _draw_settlements(rng: np.random.Generator, x: FloatArray, y: FloatArray, sig: FloatArray,
                      w: FloatArray, m: int, spread: float) -> tuple[FloatArray, FloatArray, IntArray]:
    k = rng.choice(len(w), size=m, p=w / w.sum())
    return x[k] + rng.normal(0, 1, m) * sig[k] * spread, y[k] + rng.normal(0, 1, m) * sig[k] * spread, k


Draw = Callable[[np.random.Generator, int, float], tuple[FloatArray, FloatArray, IntArray]]
"""Draw candidates: (rng, how many, widen) -> x, y, origin. `widen` grows each round so that a saturated
town centre spills over into free cells further out."""


def _mixture(x: FloatArray, y: FloatArray, sig: FloatArray, w: FloatArray, spread: float,
             scatter: tuple[float, float, float, float] | None = None, scatter_share: float = 0.05) -> Draw:
    """Candidates from Gaussians around centres (towns, estates, farms), optionally with a share
    scattered uniformly over a box (houses along country roads; origin -1)."""

    def draw(rng: np.random.Generator, m: int, widen: float) -> tuple[FloatArray, FloatArray, IntArray]:
        px, py, src = _draw_settlements(rng, x, y, sig, w, m, spread * widen)
        if scatter is not None:
            loose = rng.random(m) < scatter_share
            nl = int(loose.sum())
            px[loose] = rng.uniform(scatter[0], scatter[2], nl)
            py[loose] = rng.uniform(scatter[1], scatter[3], nl)
            src = np.where(loose, -1, src)
        return px, py, src

    return draw


def _fill_blocks(lat: _Lattice, rng: np.random.Generator, n: int, k: int, draw: Draw,
                 max_rounds: int = 16) -> tuple[FloatArray, FloatArray, IntArray]:
    us: list[FloatArray] = []
    vs: list[FloatArray] = []
    src: list[IntArray] = []
    have = 0
    for round_ in range(max_rounds):
        if have >= n:
            break
        x, y, origin = draw(rng, int((n - have) * 1.8) + 16, 1.0 + 0.12 * round_)
        cu, cv, idx = lat.take(x, y, k, n - have)
        us.append(cu)
        vs.append(cv)
        src.append(origin[idx])
        have += len(cu)
    if not us:
        return np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
    return np.concatenate(us), np.concatenate(vs), np.concatenate(src)


def _year_from_distance(rng: np.random.Generator, r: FloatArray) -> IntArray:
    """Construction years: old in the core, post-war in the middle ring, recent at the edge."""
    n = len(r)
    old = np.where(rng.random(n) < 0.6, rng.uniform(1880, 1944, n), rng.uniform(1600, 1944, n))
    post = rng.uniform(1946, 1985, n)
    recent = rng.uniform(1985, 2025.99, n)
    p_old = np.clip(0.65 - 0.6 * r, 0.02, 0.65)
    p_recent = np.clip(0.15 + 0.35 * (r - 0.6), 0.1, 0.75)
    u = rng.random(n)
    year = np.where(u < p_old, old, np.where(u < p_old + p_recent, recent, post))
    return year.astype(np.int64)


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    vals = np.array([o for o, _ in options], dtype=object)
    w = np.array([p for _, p in options])
    return vals[rng.choice(len(vals), size=n, p=w / w.sum())]


USE_SMALL = (("woonfunctie", 0.93), ("woonfunctie,winkelfunctie", 0.02), ("kantoorfunctie", 0.02),
             ("bijeenkomstfunctie", 0.01), ("overige gebruiksfunctie", 0.02))
USE_MEDIUM = (("woonfunctie", 0.5), ("winkelfunctie", 0.12), ("woonfunctie,winkelfunctie", 0.09),
              ("kantoorfunctie", 0.1), ("onderwijsfunctie", 0.05), ("gezondheidszorgfunctie", 0.04),
              ("bijeenkomstfunctie", 0.05), ("sportfunctie", 0.02), ("logiesfunctie", 0.02),
              ("celfunctie", 0.002))
USE_INDUSTRY = (("industriefunctie", 0.68), ("industriefunctie,kantoorfunctie", 0.16), ("kantoorfunctie", 0.08),
                ("overige gebruiksfunctie", 0.08))
STATUSES = (("Pand in gebruik", 0.955), ("Pand in gebruik (niet ingemeten)", 0.025), ("Verbouwing pand", 0.01),
            ("Sloopvergunning verleend", 0.005), ("Bouwvergunning verleend", 0.005))


def building_counts(geo: Geography, total: int) -> dict[int, int]:
    """Buildings per region municipality, by population (less than proportionally: big cities build in
    height); sums to `total`."""
    s = geo.settlements
    munis = np.flatnonzero(geo.in_region)
    pop = np.array([s.population[s.municipality == m].sum() for m in munis])
    return dict(zip((int(m) for m in munis), largest_remainder(total, (pop**0.9).tolist()), strict=True))


def iter_buildings(geo: Geography, est: pd.DataFrame, total: int,
                   seed: int) -> Iterator[tuple[int, BuildingChunk]]:
    """Building footprints per municipality (in code order), about `total` in all, each chunk with the index
    of its municipality."""
    s = geo.settlements
    e = geo.estates
    munis = geo.municipalities
    counts = building_counts(geo, total)
    farms = est[est["h_sector"] == "livestock"]
    farm_by_muni = {int(m): g for m, g in farms.groupby("h_muni")}
    carry = 0  # buildings a full municipality could not place go to the next one
    for m, quota in counts.items():
        n_m = quota + carry
        carry = n_m
        if n_m == 0:
            continue
        rng = np.random.default_rng([seed, 7, m])
        poly = munis.geometry.values[m]
        inner = {k: poly.buffer(-(CELL * k * 0.75)) for k in (1, 2, 4)}
        if inner[1].is_empty:
            continue
        rp = poly.representative_point()
        lat = _Lattice(rp.x, rp.y, float(geo.grid_angles[m]), inner, geo.in_nature)
        code = str(munis["code"].iloc[m])
        geoms: list[npt.NDArray[np.object_]] = []
        years: list[IntArray] = []
        uses: list[np.ndarray] = []
        heights: list[FloatArray] = []
        # farms: a house and two to four barns next to each livestock establishment
        fm = farm_by_muni.get(m)
        if fm is not None and len(fm):
            n_barns = min(int(0.3 * n_m), 3 * len(fm))
            fx, fy = fm["h_x"].to_numpy(), fm["h_y"].to_numpy()
            farm_draw = _mixture(fx, fy, np.full(len(fx), 45.0), np.ones(len(fx)), 1.0)
            cu, cv, _ = _fill_blocks(lat, rng, n_barns, 4, farm_draw)
            nb = len(cu)
            flip = rng.random(nb) < 0.5
            w, d = rng.uniform(14, 24, nb), rng.uniform(36, 60, nb)
            w, d = np.where(flip, d, w), np.where(flip, w, d)
            geoms.append(lat.footprints(cu, cv, w, d, rng.uniform(-1, 1, nb), rng.uniform(-1, 1, nb)))
            years.append(rng.integers(1955, 2024, nb))
            uses.append(np.full(nb, "overige gebruiksfunctie", dtype=object))
            heights.append(np.round(rng.uniform(5.5, 11.0, nb), 1))
            n_m -= nb
        # industrial estates
        ek = np.flatnonzero(e.municipality == m)
        n_ind = int(round(0.07 * n_m)) if len(ek) else 0
        if n_ind:
            estate_draw = _mixture(e.x[ek], e.y[ek], e.sigma[ek], e.weight[ek], 1.0)
            cu, cv, _ = _fill_blocks(lat, rng, n_ind, 4, estate_draw)
            ni = len(cu)
            w, d = rng.uniform(18, 58, ni), rng.uniform(18, 58, ni)
            geoms.append(lat.footprints(cu, cv, w, d, rng.uniform(-1, 1, ni), rng.uniform(-1, 1, ni)))
            years.append(rng.integers(1960, 2026, ni))
            uses.append(_pick(rng, USE_INDUSTRY, ni))
            heights.append(np.round(rng.uniform(6.0, 16.0, ni), 1))
            n_m -= ni
        sk = np.flatnonzero(s.municipality == m)
        sx, sy, ss, sp = s.x[sk], s.y[sk], s.sigma[sk], s.population[sk]
        # apartment blocks, shops, schools near the centres
        n_med = int(round(0.06 * n_m))
        if n_med:
            cu, cv, src = _fill_blocks(lat, rng, n_med, 2, _mixture(sx, sy, ss, sp, 0.6))
            nmd = len(cu)
            w, d = rng.uniform(12, 29, nmd), rng.uniform(12, 29, nmd)
            geoms.append(lat.footprints(cu, cv, w, d, rng.uniform(-1, 1, nmd), rng.uniform(-1, 1, nmd)))
            bx, by = lat.x0 + cu * lat.c - cv * lat.s, lat.y0 + cu * lat.s + cv * lat.c
            r = np.hypot(bx - sx[src], by - sy[src]) / ss[src]
            years.append(_year_from_distance(rng, r))
            use = _pick(rng, USE_MEDIUM, nmd)
            uses.append(use)
            floors = 1 + rng.poisson(np.clip(2.5 + 3.0 * np.log10(sp[src] / 5e4 + 1) - r, 0.5, 12.0))
            heights.append(np.round(floors * rng.uniform(2.9, 3.4, nmd) + 1.0, 1))
            n_m -= nmd
        # houses: mostly around the settlements, some scattered along country roads
        n_small = max(0, n_m)
        if n_small:
            house_draw = _mixture(sx, sy, ss, sp, 1.0, scatter=poly.bounds)
            cu, cv, src = _fill_blocks(lat, rng, n_small, 1, house_draw)
            nh = len(cu)
            w, d = rng.uniform(5.5, 9.5, nh), rng.uniform(7.5, 13.0, nh)
            geoms.append(lat.footprints(cu, cv, w, d, rng.uniform(-0.8, 0.8, nh), rng.uniform(-0.8, 0.8, nh)))
            bx, by = lat.x0 + cu * lat.c - cv * lat.s, lat.y0 + cu * lat.s + cv * lat.c
            srcc = np.where(src < 0, 0, src)
            r = np.where(src < 0, 2.0, np.hypot(bx - sx[srcc], by - sy[srcc]) / ss[srcc])
            years.append(_year_from_distance(rng, r))
            uses.append(_pick(rng, USE_SMALL, nh))
            heights.append(np.round(np.where(rng.random(nh) < 0.2, rng.uniform(3.0, 5.0, nh),
                                             rng.uniform(6.0, 10.5, nh)), 1))
        geom = np.concatenate(geoms)
        if len(geom) == 0:
            continue
        year = np.concatenate(years)
        use_all = np.concatenate(uses)
        height = np.concatenate(heights)
        cent = shapely.centroid(geom)
        order = np.lexsort((np.round(shapely.get_x(cent), 1), -np.round(shapely.get_y(cent), 1)))
        geom, year, use_all, height = geom[order], year[order], use_all[order], height[order]
        nb = len(geom)
        status = _pick(rng, STATUSES, nb)
        new = rng.random(nb) < 0.01
        year = np.where(new, rng.integers(2026, 2028, nb), year)
        status = np.where(new, "Bouw gestart", status)
        carry -= nb
        first = int(rng.integers(100_000, 900_000))
        ids = np.array([f"{code[2:]}10{first + i * 7:010d}" for i in range(nb)], dtype=object)
        yield m, BuildingChunk(geom, {"identificatie": ids, "bouwjaar": year, "status": status,
                                   "gebruiksdoel": use_all, "hoogte": height})
