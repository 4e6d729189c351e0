"""Coverages: the ``nitrogen-deposition`` raster — metadata, the value at a point, statistics inside a
posted geometry, and PNG map tiles coloured with the ramp the map legend uses (:mod:`layers.styles`).
The domain work is in :mod:`twin.coverage`, the parameters are parsed by :mod:`api.params`."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import numpy as np
import psycopg
import shapely
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api import params
from api.deps import ConnDep
from api.links import base_url
from layers.registry import COVERAGES, CoverageSpec
from layers.styles import DEPOSITION_RAMP, ColourRamp
from twin import coverage as twin_coverage
from twin.crs import CRS84, RD_NEW, to_storage, transformer
from twin.errors import NotFound

router = APIRouter(tags=["coverages"])

PNG = "image/png"
WORLD_M = 40_075_016.685578488
TILE = 256
CACHE_SECONDS = 300
RAMPS: dict[str, ColourRamp] = {"nitrogen-deposition": DEPOSITION_RAMP}


def get_coverage(coverage_id: str) -> CoverageSpec:
    try:
        return COVERAGES[coverage_id]
    except KeyError:
        raise NotFound(f"coverage {coverage_id!r} does not exist; see /coverages.") from None


async def _known_years(conn: psycopg.AsyncConnection) -> list[int]:
    return [y["year"] for y in await twin_coverage.years(conn)]


def coverage_doc(base: str, spec: CoverageSpec, years: list[dict[str, Any]],
                 extent_rd: tuple[float, float, float, float] | None) -> dict[str, Any]:
    href = f"{base}/coverages/{spec.id}"
    doc: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "description": spec.description,
        "unit": spec.unit,
        "storageCrs": RD_NEW.uri,
        "years": years,
        "legend": RAMPS[spec.id].legend() if spec.id in RAMPS else None,
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": spec.title},
            {"href": f"{href}/point?lon={{lon}}&lat={{lat}}", "rel": "data", "templated": True,
             "type": "application/json", "title": "Value at a point, per year"},
            {"href": f"{href}/statistics", "rel": "data", "type": "application/json",
             "title": "Statistics inside a geometry (POST GeoJSON)"},
            {"href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png", "rel": "item", "templated": True,
             "type": PNG, "title": "Map tiles (PNG)"},
        ],
    }
    if extent_rd:
        t = transformer(RD_NEW.srid, 4326)
        xs = [extent_rd[0], extent_rd[2], extent_rd[0], extent_rd[2]]
        ys = [extent_rd[1], extent_rd[1], extent_rd[3], extent_rd[3]]
        lons, lats = t.transform(xs, ys)
        doc["extent"] = {
            "spatial": {"bbox": [[round(min(lons), 6), round(min(lats), 6), round(max(lons), 6), round(max(lats), 6)]],
                        "crs": CRS84.uri},
            "rd": {"bbox": [round(v, 3) for v in extent_rd], "crs": RD_NEW.uri},
        }
    return doc


@router.get("/coverages", summary="The twin's raster coverages")
async def coverages(request: Request, conn: ConnDep) -> dict[str, Any]:
    params.check_known(request.query_params, ("f",))
    base = base_url(request)
    docs = [coverage_doc(base, spec, await twin_coverage.years(conn), await twin_coverage.extent(conn))
            for spec in COVERAGES.values()]
    return {"links": [{"href": f"{base}/coverages", "rel": "self", "type": "application/json"}], "coverages": docs}


@router.get("/coverages/{coverage_id}", summary="A coverage's metadata: years, unit, extent, legend")
async def coverage(request: Request, coverage_id: str, conn: ConnDep) -> dict[str, Any]:
    params.check_known(request.query_params, ("f",))
    spec = get_coverage(coverage_id)
    return coverage_doc(base_url(request), spec, await twin_coverage.years(conn), await twin_coverage.extent(conn))


@router.get("/coverages/{coverage_id}/point", summary="The deposition at a point, per year")
async def point(request: Request, coverage_id: str, conn: ConnDep) -> dict[str, Any]:
    spec = get_coverage(coverage_id)
    qp = request.query_params
    params.check_known(qp, ("lon", "lat", "year", "f"))
    lon = params.parse_float(qp.get("lon"), "lon", -180, 180)
    lat = params.parse_float(qp.get("lat"), "lat", -90, 90)
    year = params.parse_year(qp.get("year"), await _known_years(conn))
    west, south, east, north = CRS84.domain
    values: list[twin_coverage.PointValue] = []
    x = y = None
    if west <= lon <= east and south <= lat <= north:
        x, y = transformer(4326, RD_NEW.srid).transform(lon, lat)
        async with conn.transaction():
            values = await twin_coverage.point_values(conn, x, y, year)
    return {
        "coverage": spec.id,
        "unit": spec.unit,
        "lon": lon,
        "lat": lat,
        "rd": None if x is None or y is None else [round(x, 3), round(y, 3)],
        "values": [{"year": v.year, "label": v.label, "value": v.value} for v in values],
    }


STATISTICS_OPENAPI = {
    "parameters": [
        {"name": "year", "in": "query", "required": False, "schema": {"type": "integer"},
         "description": "One year; all years when absent."},
        {"name": "crs", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "CRS of the posted geometry: CRS84 (default, lon/lat) or EPSG:28992."},
    ],
    "requestBody": {
        "required": True,
        "content": {"application/geo+json": {"schema": {"type": "object"}}, "application/json": {
            "schema": {"type": "object"},
            "example": {"type": "Polygon",
                        "coordinates": [[[5.1, 52.0], [5.2, 52.0], [5.2, 52.1], [5.1, 52.1], [5.1, 52.0]]]}}},
        "description": "A GeoJSON Polygon or MultiPolygon (or a Feature with one), at most 10,000 vertices and 1 MB.",
    },
}


@router.post("/coverages/{coverage_id}/statistics", summary="Statistics of the deposition inside a geometry",
             openapi_extra=STATISTICS_OPENAPI)
async def statistics(request: Request, coverage_id: str, conn: ConnDep) -> dict[str, Any]:
    spec = get_coverage(coverage_id)
    qp = request.query_params
    params.check_known(qp, ("year", "crs"))
    crs = params.parse_geometry_crs(qp.get("crs"))
    year = params.parse_year(qp.get("year"), await _known_years(conn))
    geom = params.polygon_body(await params.read_json_body(request))
    rd = to_storage(geom, crs, "body")
    async with conn.transaction():
        area_ha, stats = await twin_coverage.zonal_statistics(conn, shapely.to_wkb(rd), year)
    return {
        "coverage": spec.id,
        "unit": spec.unit,
        "area_ha": round(area_ha, 4),
        "years": [
            {"year": s.year, "label": s.label, "count": s.count, "min": s.min, "max": s.max, "mean": s.mean,
             "weighted_mean": s.weighted_mean, "covered_ha": round(s.covered_ha, 4)}
            for s in stats
        ],
    }


# -- PNG tiles ---------------------------------------------------------------------------------------------
def _png(rgba: np.ndarray) -> bytes:
    """A minimal PNG encoder (RGBA, 8 bit): no imaging library needed for a 256 x 256 tile."""
    h, w, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


EMPTY_PNG = _png(np.zeros((TILE, TILE, 4), dtype=np.uint8))


def tile_grid(z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """RD New coordinates of the centres of a tile's 256 x 256 pixels (projected on a 33 x 33 grid and
    interpolated bilinearly: exact to well under a pixel at every zoom where the Netherlands fills a tile)."""
    size = WORLD_M / (1 << z)
    left, top = -WORLD_M / 2 + x * size, WORLD_M / 2 - y * size
    steps = np.linspace(0, 1, 33)
    gx, gy = np.meshgrid(left + steps * size, top - steps * size)
    t = transformer(3857, RD_NEW.srid)
    rx, ry = t.transform(gx.ravel(), gy.ravel())
    rx, ry = np.asarray(rx).reshape(33, 33), np.asarray(ry).reshape(33, 33)
    centres = (np.arange(TILE) + 0.5) / TILE * 32  # position of pixel centres on the control grid
    i0 = np.minimum(np.floor(centres).astype(int), 31)
    f = centres - i0

    def interpolate(grid: np.ndarray) -> np.ndarray:
        rows = grid[i0, :] * (1 - f)[:, None] + grid[i0 + 1, :] * f[:, None]  # along y
        return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]  # along x

    return interpolate(rx), interpolate(ry)


def render(pieces: list[twin_coverage.Piece], xs: np.ndarray, ys: np.ndarray, ramp: ColourRamp) -> bytes:
    return _png(ramp.apply(twin_coverage.sample(pieces, xs, ys)))


@router.get("/coverages/{coverage_id}/tiles/WebMercatorQuad/{z}/{x}/{y}.png", summary="A PNG map tile",
            response_class=Response, responses={200: {"content": {PNG: {}}}})
async def png_tile(request: Request, coverage_id: str, z: str, x: str, y: str, conn: ConnDep) -> Response:
    spec = get_coverage(coverage_id)
    params.check_known(request.query_params, ("year",))
    zi, xi, yi = params.parse_tile(z, x, y)
    year = params.parse_year(request.query_params.get("year"), await _known_years(conn), required=True)
    assert year is not None
    headers = {"Cache-Control": f"public, max-age={CACHE_SECONDS}"}
    xs, ys = await run_in_threadpool(tile_grid, zi, xi, yi)
    resolution = float(xs[0, -1] - xs[0, 0]) / (TILE - 1)
    margin = 2 * abs(resolution)
    bounds = (float(xs.min()) - margin, float(ys.min()) - margin, float(xs.max()) + margin, float(ys.max()) + margin)
    async with conn.transaction():
        pieces = await twin_coverage.pieces(conn, bounds, year, abs(resolution))
    data = EMPTY_PNG if not pieces else await run_in_threadpool(render, pieces, xs, ys, RAMPS[spec.id])
    etag = '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'
    headers["ETag"] = etag
    inm = request.headers.get("if-none-match")
    if inm and etag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=PNG, headers=headers)


@router.get("/coverages/{coverage_id}/legend", summary="The colour ramp of the coverage's map tiles")
async def legend(coverage_id: str) -> JSONResponse:
    spec = get_coverage(coverage_id)
    return JSONResponse(RAMPS[spec.id].legend())
