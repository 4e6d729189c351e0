"""The geography of the demo Netherlands: real municipality and province boundaries (the land mask),
towns and villages, industrial estates, omgevingsdienst regions, postcode ranges and the Natura 2000
outlines, plus the samplers that place features on land inside a municipality.

The geography is built from a fixed seed, so it is the same for every `--seed`: the seed varies what
is placed in it, not the country itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from demo import catalog as cat

FloatArray = npt.NDArray[Any]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

GEO_SEED = 2023_11_01
RD_CRS = "EPSG:28992"


DATA_DIR = Path(__file__).resolve().parents[1] / "twin" / "data"


def boundary_path(name: str) -> Path:
    """Path of a boundary GeoPackage shipped in `twin/data/` (CBS/Kadaster, CC-BY 4.0). Found next to this
    package (`demo` and `twin` are installed side by side) rather than through `importlib.resources`,
    which a `tests/twin` folder on the test path would shadow."""
    return DATA_DIR / name


@dataclass(frozen=True)
class Settlements:
    """Towns and villages: centre, population, spread (sigma of the Gaussian their buildings and
    businesses follow, metres) and the index of their municipality."""

    name: tuple[str, ...]
    x: FloatArray
    y: FloatArray
    population: FloatArray
    sigma: FloatArray
    municipality: IntArray
    is_main: BoolArray


@dataclass(frozen=True)
class Estates:
    """Industrial estates (bedrijventerreinen) at the edge of towns and the harbour/chemical clusters."""

    x: FloatArray
    y: FloatArray
    sigma: FloatArray
    weight: FloatArray
    municipality: IntArray
    cluster: BoolArray


@dataclass(frozen=True)
class NatureOutline:
    """A Natura 2000 area clipped to land, with the settlement cores cut out."""

    area: cat.NatureArea
    geometry: BaseGeometry


@dataclass
class Geography:
    """Everything the generators place features in. Municipality indices refer to `municipalities`
    (all 342, sorted by code); `in_region` marks those the current scale fills."""

    municipalities: gpd.GeoDataFrame
    in_region: BoolArray
    region_bounds: tuple[float, float, float, float]
    settlements: Settlements
    estates: Estates
    od_codes: tuple[str, ...]
    postcode_ranges: IntArray
    grid_angles: FloatArray
    nature: tuple[NatureOutline, ...]

    def __post_init__(self) -> None:
        geoms = self.municipalities.geometry.values
        self._region_idx = np.flatnonzero(self.in_region).astype(np.int64)
        self._region_tree = STRtree(geoms[self._region_idx])
        self._nature_tree = STRtree([n.geometry for n in self.nature]) if self.nature else None
        s = self.settlements
        cores = shapely.buffer(shapely.points(s.x, s.y), 1.0 * s.sigma, quad_segs=8)
        self._core_tree = STRtree(cores)
        self._core_sigma = s.sigma

    @property
    def codes(self) -> npt.NDArray[np.object_]:
        return np.asarray(self.municipalities["code"].to_numpy(), dtype=object)

    def locate(self, x: FloatArray, y: FloatArray) -> IntArray:
        """Index of the region municipality each point lies in, -1 where none (sea, abroad, elsewhere)."""
        out = np.full(len(x), -1, dtype=np.int64)
        if len(x) == 0:
            return out
        pts, munis = self._region_tree.query(shapely.points(x, y), predicate="within")
        out[pts] = self._region_idx[munis]
        return out

    def in_nature(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """True where a point lies inside a Natura 2000 outline."""
        out = np.zeros(len(x), dtype=bool)
        if self._nature_tree is None or len(x) == 0:
            return out
        pts, _ = self._nature_tree.query(shapely.points(x, y), predicate="within")
        out[pts] = True
        return out

    def in_town_core(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """True where a point lies within one sigma of a settlement centre (its built-up core)."""
        out = np.zeros(len(x), dtype=bool)
        if len(x) == 0:
            return out
        pts, _ = self._core_tree.query(shapely.points(x, y), predicate="within")
        out[pts] = True
        return out

    def region_geometry(self) -> BaseGeometry:
        return shapely.union_all(self.municipalities.geometry.values[self.in_region])


def livestock_intensity(x: FloatArray, y: FloatArray) -> FloatArray:
    """Relative density of livestock farms: a rural background plus the concentrations of the Gelderse
    Vallei, De Peel, the Achterhoek, Friesland and others (broadcasts over x and y)."""
    out = np.full(np.broadcast_shapes(np.shape(x), np.shape(y)), cat.LIVESTOCK_BACKGROUND, dtype=np.float64)
    for _, cx, cy, s, a in cat.LIVESTOCK_CONCENTRATIONS:
        out += a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return out


def greenhouse_intensity(x: FloatArray, y: FloatArray) -> FloatArray:
    """Relative density of greenhouse horticulture (Westland, Oostland, Aalsmeer, Venlo, Emmen)."""
    out = np.full(np.broadcast_shapes(np.shape(x), np.shape(y)), cat.GREENHOUSE_BACKGROUND, dtype=np.float64)
    for cx, cy, s, a in cat.GREENHOUSE_CONCENTRATIONS:
        out += a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    return out


def _load_municipalities() -> gpd.GeoDataFrame:
    gem = gpd.read_file(boundary_path("nl_gemeenten_2023.gpkg"))
    prov = gpd.read_file(boundary_path("nl_provincies_2023.gpkg"))
    gem = gem.sort_values("code", kind="stable").reset_index(drop=True)
    g_geoms = gem.geometry.values
    p_geoms = prov.geometry.values
    gi, pi = STRtree(p_geoms).query(g_geoms, predicate="intersects")
    overlap = shapely.area(shapely.intersection(g_geoms[gi], p_geoms[pi]))
    best = np.full(len(gem), -1, dtype=np.int64)
    best_area = np.zeros(len(gem))
    for g, p, a in zip(gi, pi, overlap, strict=True):
        if a > best_area[g]:
            best[g], best_area[g] = p, a
    if (best < 0).any():
        raise RuntimeError("a municipality overlaps no province")
    gem["province_name"] = prov["name"].to_numpy()[best]
    gem = gem[["code", "name", "province_name", "geometry"]]
    return gpd.GeoDataFrame(gem, geometry="geometry", crs=RD_CRS)


def _snap_inside(poly: BaseGeometry, x: float, y: float, margin: float) -> tuple[float, float]:
    inner = poly.buffer(-margin)
    if inner.is_empty:
        inner = poly
    p = shapely.Point(x, y)
    if inner.contains(p):
        return x, y
    q = shapely.ops.nearest_points(inner, p)[0]
    return float(q.x), float(q.y)


def _largest_part(geom: BaseGeometry) -> BaseGeometry:
    parts = shapely.get_parts(geom)
    return parts[int(np.argmax(shapely.area(parts)))]


def largest_part_or_self(geom: BaseGeometry) -> BaseGeometry:
    """The largest polygon of a (multi)polygon or collection; an empty polygon when there is none."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return max(parts, key=lambda p: p.area)


def _village_name(rng: np.random.Generator, used: set[str]) -> str:
    for _ in range(50):
        name = str(rng.choice(cat.VILLAGE_PREFIXES)) + str(rng.choice(cat.VILLAGE_SUFFIXES))
        name = name[0].upper() + name[1:]
        if name not in used:
            used.add(name)
            return name
    name = f"{name} {len(used)}"
    used.add(name)
    return name


def _settlements(munis: gpd.GeoDataFrame, rng: np.random.Generator) -> Settlements:
    geoms = munis.geometry.values
    idx_of = {n: i for i, n in enumerate(munis["name"])}
    n = len(munis)
    areas_km2 = shapely.area(geoms) / 1e6
    known: dict[int, tuple[str, float, float, float]] = {}
    for t in sorted(cat.TOWNS, key=lambda t: -t.population):
        i = idx_of[cat.TOWN_MUNICIPALITY.get(t.name, t.name)]
        if i in known:
            continue
        x, y = _snap_inside(geoms[i], t.x, t.y, 600.0)
        known[i] = (t.name, x, y, float(t.population))
    pop = np.zeros(n)
    draws = rng.lognormal(0.0, 0.25, n)
    for i in range(n):
        pop[i] = known[i][3] if i in known else 24000.0 * (areas_km2[i] / 60.0) ** 0.35 * draws[i]
    unknown = np.array([i not in known for i in range(n)])
    rest = cat.NL_POPULATION - pop[~unknown].sum()
    pop[unknown] *= rest / pop[unknown].sum()

    names: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    pops: list[float] = []
    muni: list[int] = []
    main: list[bool] = []
    used = {str(m) for m in munis["name"]} | {t.name for t in cat.TOWNS}
    for i in range(n):
        geom = geoms[i]
        density = pop[i] / max(areas_km2[i], 1.0)
        n_vil = int(min(12, areas_km2[i] / 28.0 * (1.0 if density < 900 else 0.3)))
        if i in known:
            tname, tx, ty, _ = known[i]
        else:
            rp = _largest_part(geom).buffer(-400).representative_point()
            if rp.is_empty:
                rp = _largest_part(geom).representative_point()
            tname, tx, ty = str(munis["name"].iloc[i]), float(rp.x), float(rp.y)
        main_share = 1.0 if n_vil == 0 else (0.82 if i in known else 0.6)
        names.append(tname)
        xs.append(tx)
        ys.append(ty)
        pops.append(pop[i] * main_share)
        muni.append(i)
        main.append(True)
        if n_vil == 0:
            continue
        inner = geom.buffer(-300)
        if inner.is_empty:
            continue
        minx, miny, maxx, maxy = inner.bounds
        cx = rng.uniform(minx, maxx, 60 * n_vil)
        cy = rng.uniform(miny, maxy, 60 * n_vil)
        ok = shapely.contains_xy(inner, cx, cy)
        placed = [(tx, ty)]
        vil: list[tuple[float, float]] = []
        for px, py in zip(cx[ok], cy[ok], strict=True):
            if len(vil) == n_vil:
                break
            if all((px - qx) ** 2 + (py - qy) ** 2 > 2500.0**2 for qx, qy in placed):
                placed.append((float(px), float(py)))
                vil.append((float(px), float(py)))
        if not vil:
            pops[-1] = pop[i]
            continue
        shares = rng.lognormal(0.0, 0.6, len(vil))
        shares = shares / shares.sum() * pop[i] * (1.0 - main_share)
        for (vx, vy), vp in zip(vil, shares, strict=True):
            names.append(_village_name(rng, used))
            xs.append(vx)
            ys.append(vy)
            pops.append(float(vp))
            muni.append(i)
            main.append(False)
    p = np.asarray(pops)
    return Settlements(
        name=tuple(names), x=np.asarray(xs), y=np.asarray(ys), population=p,
        sigma=np.maximum(150.0, np.sqrt(p * 55.0 / math.pi)),
        municipality=np.asarray(muni, dtype=np.int64), is_main=np.asarray(main, dtype=bool),
    )


def _estates(munis: gpd.GeoDataFrame, s: Settlements, rng: np.random.Generator) -> Estates:
    geoms = munis.geometry.values
    xs: list[float] = []
    ys: list[float] = []
    sig: list[float] = []
    w: list[float] = []
    mi: list[int] = []
    cl: list[bool] = []
    inner_cache: dict[int, BaseGeometry] = {}
    for k in range(len(s.name)):
        if not s.is_main[k] and s.population[k] < 8000:
            continue
        m = int(s.municipality[k])
        if m not in inner_cache:
            inner = geoms[m].buffer(-250)
            inner_cache[m] = inner if not inner.is_empty else geoms[m]
        inner = inner_cache[m]
        pop = s.population[k]
        n_e = 1 + int(pop > 40000) + int(pop > 150000)
        angles = rng.uniform(0, 2 * math.pi, 16 * n_e)
        dists = (1.3 + 0.6 * rng.random(16 * n_e)) * s.sigma[k] + 400.0
        ex = s.x[k] + dists * np.cos(angles)
        ey = s.y[k] + dists * np.sin(angles)
        ok = np.flatnonzero(shapely.contains_xy(inner, ex, ey))[:n_e]
        for j in ok:
            xs.append(float(ex[j]))
            ys.append(float(ey[j]))
            sig.append(0.22 * float(s.sigma[k]) + 200.0)
            w.append(float(pop) ** 0.9 / n_e)
            mi.append(m)
            cl.append(False)
    tree = STRtree(geoms)
    for _, cx, cy, sg, wt in cat.INDUSTRIAL_CLUSTERS:
        hits = tree.query(shapely.Point(cx, cy), predicate="within")
        if len(hits) == 0:
            d = shapely.distance(geoms, shapely.Point(cx, cy))
            m = int(np.argmin(d))
            cx, cy = _snap_inside(geoms[m], cx, cy, 300.0)
        else:
            m = int(hits[0])
        xs.append(cx)
        ys.append(cy)
        sig.append(sg)
        w.append(wt)
        mi.append(m)
        cl.append(True)
    return Estates(np.asarray(xs), np.asarray(ys), np.asarray(sig), np.asarray(w),
                   np.asarray(mi, dtype=np.int64), np.asarray(cl, dtype=bool))


def _od_codes(munis: gpd.GeoDataFrame) -> tuple[str, ...]:
    cent = shapely.centroid(munis.geometry.values)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    out: list[str] = []
    pc = {p: (cx[munis["province_name"] == p].mean(), cy[munis["province_name"] == p].mean())
          for p in cat.PROVINCE_OD}
    for i, prov in enumerate(munis["province_name"]):
        prefix, split = cat.PROVINCE_OD[prov]
        dx, dy = cx[i] - pc[prov][0], cy[i] - pc[prov][1]
        if split == "":
            out.append(prefix)
        elif split == "NZ":
            out.append(f"{prefix}-{'N' if dy >= 0 else 'Z'}")
        elif split == "WO":
            out.append(f"{prefix}-{'O' if dx >= 0 else 'W'}")
        else:
            ang = math.degrees(math.atan2(dy, dx)) % 360
            out.append(f"{prefix}-{'ONWZ'[int(((ang + 45) % 360) // 90)]}")
    return tuple(out)


def _postcode_ranges(munis: gpd.GeoDataFrame) -> IntArray:
    cent = shapely.centroid(munis.geometry.values)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    out = np.zeros((len(munis), 2), dtype=np.int64)
    prov = munis["province_name"].to_numpy()
    for p, (lo, hi) in cat.PROVINCE_POSTCODES.items():
        idx = np.flatnonzero(prov == p)
        idx = idx[np.lexsort((cx[idx], -cy[idx]))]
        edges = np.linspace(lo, hi + 1, len(idx) + 1).astype(np.int64)
        for k, i in enumerate(idx):
            out[i] = (edges[k], max(edges[k] + 1, edges[k + 1]))
    return out


def _blob(rng: np.random.Generator, x: float, y: float, a: float, b: float, angle: float) -> BaseGeometry:
    """An irregular ellipse-like outline: radius modulated by a few low-frequency harmonics."""
    t = np.linspace(0, 2 * math.pi, 97)[:-1]
    r = np.ones_like(t)
    for k in (2, 3, 5, 8):
        r += rng.uniform(0.03, 0.12) / math.sqrt(k) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    px, py = a * r * np.cos(t), b * r * np.sin(t)
    th = math.radians(angle)
    qx = x + px * math.cos(th) - py * math.sin(th)
    qy = y + px * math.sin(th) + py * math.cos(th)
    return shapely.Polygon(np.column_stack([qx, qy]))


def _nature(munis: gpd.GeoDataFrame, s: Settlements, rng: np.random.Generator) -> tuple[NatureOutline, ...]:
    geoms = munis.geometry.values
    tree = STRtree(geoms)
    radius = 1.3 * s.sigma + 300.0
    cores = np.array([_blob(rng, float(x), float(y), float(r), float(r), 0.0)
                      for x, y, r in zip(s.x, s.y, radius, strict=True)], dtype=object)
    core_tree = STRtree(cores)
    out: list[NatureOutline] = []
    for area in cat.NATURA2000_AREAS:
        outline = shapely.union_all([_blob(rng, *lobe) for lobe in area.lobes]).buffer(0)
        land = shapely.union_all(geoms[tree.query(outline, predicate="intersects")])
        outline = shapely.intersection(outline, land.buffer(-50))
        near = cores[core_tree.query(outline, predicate="intersects")]
        if len(near):
            outline = shapely.difference(outline, shapely.union_all(near))
        outline = shapely.make_valid(shapely.set_precision(outline, 0.01))
        out.append(NatureOutline(area, outline))
    return tuple(out)


def _region_mask(munis: gpd.GeoDataFrame, region: str) -> BoolArray:
    if region == "national":
        return np.ones(len(munis), dtype=bool)
    if region != "small":
        raise ValueError(f"unknown region {region!r}")
    rp = shapely.point_on_surface(munis.geometry.values)
    x0, y0, x1, y1 = cat.SMALL_REGION_BOX
    px, py = shapely.get_x(rp), shapely.get_y(rp)
    return np.asarray((px >= x0) & (px <= x1) & (py >= y0) & (py <= y1), dtype=bool)


@functools.lru_cache(maxsize=2)
def build_geography(region: str) -> Geography:
    """The geography for a scale's region ("small" or "national"); cached, it does not depend on the
    seed."""
    rng = np.random.default_rng(GEO_SEED)
    munis = _load_municipalities()
    settlements = _settlements(munis, rng)
    estates = _estates(munis, settlements, rng)
    nature = _nature(munis, settlements, rng)
    angles = rng.uniform(0.0, 90.0, len(munis))
    mask = _region_mask(munis, region)
    bounds = tuple(float(v) for v in shapely.total_bounds(munis.geometry.values[mask]))
    return Geography(
        municipalities=munis, in_region=mask, region_bounds=(bounds[0], bounds[1], bounds[2], bounds[3]),
        settlements=settlements, estates=estates, od_codes=_od_codes(munis),
        postcode_ranges=_postcode_ranges(munis), grid_angles=angles,
        nature=tuple(n for n in nature if not n.geometry.is_empty),
    )


Drawer = Callable[[np.random.Generator, int], tuple[FloatArray, FloatArray]]


def fill(
    rng: np.random.Generator,
    geo: Geography,
    n: int,
    draw: Drawer,
    *,
    avoid_cores: bool = False,
    max_rounds: int = 200,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Draw candidate points until `n` lie on land in a region municipality (outside Natura 2000 and,
    for rural features, outside town cores). Returns x, y and the municipality index."""
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    ms: list[IntArray] = []
    have = 0
    asked = 0
    for _ in range(max_rounds):
        if have >= n:
            break
        rate = max(have / asked, 0.002) if asked else 0.6
        m = min(4_000_000, max(64, int((n - have) / rate * 1.3)))
        asked += m
        x, y = draw(rng, m)
        muni = geo.locate(x, y)
        ok = muni >= 0
        ok[ok] = ~geo.in_nature(x[ok], y[ok])
        if avoid_cores:
            ok[ok] = ~geo.in_town_core(x[ok], y[ok])
        xs.append(x[ok])
        ys.append(y[ok])
        ms.append(muni[ok])
        have += int(ok.sum())
    if have < n:
        raise RuntimeError(f"could only place {have} of {n} features on land")
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n], np.concatenate(ms)[:n]


def gaussian_drawer(cx: FloatArray, cy: FloatArray, sigma: FloatArray, weight: FloatArray) -> Drawer:
    """Draw from a mixture of round Gaussians (towns, estates, clusters)."""
    p = weight / weight.sum()

    def draw(rng: np.random.Generator, m: int) -> tuple[FloatArray, FloatArray]:
        k = rng.choice(len(p), size=m, p=p)
        return cx[k] + rng.normal(0, 1, m) * sigma[k], cy[k] + rng.normal(0, 1, m) * sigma[k]

    return draw


def intensity_drawer(
    bounds: tuple[float, float, float, float], intensity: Callable[[FloatArray, FloatArray], FloatArray],
    max_intensity: float,
) -> Drawer:
    """Draw uniformly in the bounds and thin by a relative intensity field (rejection sampling)."""
    x0, y0, x1, y1 = bounds

    def draw(rng: np.random.Generator, m: int) -> tuple[FloatArray, FloatArray]:
        m = m * 4
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        keep = rng.random(m) * max_intensity < intensity(x, y)
        return x[keep], y[keep]

    return draw
