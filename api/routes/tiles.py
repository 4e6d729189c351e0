"""Vector tiles (MVT) of every layer on the WebMercatorQuad grid, and their TileJSON.

Tiles are cut by PostGIS (``ST_TileEnvelope`` + ``ST_AsMVTGeom`` + ``ST_AsMVT``) with only the layer's
public fields, less those fixed by the request's equality filters (``?year=2025``: every feature has it);
``?properties=a,b`` keeps only the named ones; ``?digits=0`` rounds decimal fields to that many digits and
``?ids=false`` leaves the feature ids out (the map's hexagon tiles: less than half the bytes).
Polygons are simplified to about half a pixel first. Outside
a layer's zoom range, and where a tile holds nothing, the answer is an empty 204. Tiles carry an ETag (a
hash of the tile) and Cache-Control; ``If-None-Match`` gets a 304.

Cut tiles are kept in memory (:class:`api.cache.VersionedCache`, ``TWIN_TILE_CACHE_MB``) under the version of
their table (twin.layer_versions, raised by a trigger on every change) and the caller's database role and
organisation (what row-level security decides by), so a cached tile is never stale and never shown to another
audience.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from psycopg import sql

from api import downloads, params
from api.auth import PrincipalDep, require_read
from api.cache import lookup
from api.columns import Binder, table_sql
from api.deps import ConnDep, LayerDep
from api.extent import cached_extent
from api.links import base_url
from api.params import MAX_ZOOM, parse_tile
from layers.registry import FieldSpec, LayerSpec
from twin.access import ANONYMOUS, column_sql
from twin.errors import InvalidParameter
from twin.sql import fetch

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
TMS = "WebMercatorQuad"
EXTENT = 4096
BUFFER = 64
WORLD_M = 40_075_016.685578488  # width of the Web Mercator world in metres
NL_BOUNDS = [3.2, 50.7, 7.3, 53.6]
CACHE_SECONDS = 300
PROPERTIES = "properties"  # query parameter: the fields a tile carries
DIGITS = "digits"  # query parameter: decimal fields rounded to this many digits (equal values share one entry)
IDS = "ids"  # query parameter: false leaves the feature ids out (a client that keys features by a property)
MAX_DIGITS = 6
_MVT_TYPES = {"text": "String", "int": "Number", "float": "Number", "bool": "Boolean", "date": "String"}


def tile_fields(spec: LayerSpec) -> tuple[FieldSpec, ...]:
    """The fields a tile carries: the layer's public ones (no personal data, nothing marked non-public)."""
    return spec.public_fields


def _tile_filters(request: Request, spec: LayerSpec) -> tuple[tuple[str, Any], ...]:
    """Property equality filters on tiles (e.g. ``?year=2023`` on deposition-hexagons)."""
    fields = {f.name: f for f in tile_fields(spec)}
    qp = request.query_params
    params.check_known(qp, [*fields, PROPERTIES, DIGITS, IDS])
    return tuple((name, params.parse_value(fields[name], str(qp.get(name)), name)) for name in fields if name in qp)


def _tile_properties(request: Request, spec: LayerSpec) -> tuple[str, ...] | None:
    """``?properties=a,b``: only these fields in the tile (a lighter tile for a map that needs few); None: all."""
    value = request.query_params.get(PROPERTIES)
    if value is None:
        return None
    allowed = [f.name for f in tile_fields(spec)]
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise InvalidParameter(f"properties: unknown or non-public field(s) {', '.join(unknown)}; "
                               f"choose from: {', '.join(allowed)}.", parameter=PROPERTIES)
    return names


def _tile_digits(request: Request) -> int | None:
    """``?digits=N``: decimal fields rounded to N digits (0: whole numbers); None: as stored."""
    value = request.query_params.get(DIGITS)
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_DIGITS:
        raise InvalidParameter(f"digits: a whole number from 0 to {MAX_DIGITS}, not {value!r}.", parameter=DIGITS)
    return int(value)


def _tile_ids(request: Request) -> bool:
    """``?ids=false``: no feature ids in the tile."""
    value = request.query_params.get(IDS, "true").lower()
    if value not in ("true", "false"):
        raise InvalidParameter(f"ids: true or false, not {value!r}.", parameter=IDS)
    return value == "true"


def tile_sql(spec: LayerSpec, z: int, x: int, y: int, filters: tuple[tuple[str, Any], ...],
             binder: Binder, properties: tuple[str, ...] | None = None, digits: int | None = None,
             ids: bool = True) -> sql.Composed:
    """The MVT of one tile of one layer (with only the fields in ``properties`` when given, decimals rounded
    to ``digits``, without feature ids unless ``ids``)."""
    tile_m = WORLD_M / (1 << z)
    # half a pixel, in RD metres (Mercator metres shrink by cos(latitude); ~0.62 over the Netherlands)
    tolerance = 0.5 * tile_m / EXTENT * 0.62
    geom: sql.Composable = sql.SQL("t.geom")
    if spec.geometry_type != "Point":
        geom = sql.SQL("ST_Simplify(t.geom, {}, true)").format(binder.bind(tolerance))
    props: list[sql.Composable] = []
    fixed = {name for name, _ in filters}  # the same for every feature: the caller knows them already
    for f in tile_fields(spec):
        if f.name in fixed or (properties is not None and f.name not in properties):
            continue
        # masked as for an anonymous caller (the postcode of a natural person cut to PC4): a tile is public
        col = column_sql(ANONYMOUS, spec, f.name, "t")
        if f.type == "date":
            col = sql.SQL("{}::text").format(col)
        elif f.type == "float" and digits is not None:
            # whole numbers as integers (a varint), others as float4: fewer bytes and fewer distinct values
            col = (sql.SQL("round({}::numeric)::bigint").format(col) if digits == 0
                   else sql.SQL("round({}::numeric, {})::float4").format(col, sql.Literal(digits)))
        props.append(sql.SQL("{} AS {}").format(col, sql.Identifier(f.name)))
    conds: list[sql.Composable] = [sql.SQL("t.geom && b.env_rd")]
    for name, value in filters:
        conds.append(sql.SQL("{} = {}").format(column_sql(ANONYMOUS, spec, name, "t"), binder.bind(value)))
    zp, xp, yp = binder.bind(z), binder.bind(x), binder.bind(y)
    return sql.SQL(
        "WITH b AS (SELECT ST_TileEnvelope({z}, {x}, {y}) AS env, "
        "ST_Transform(ST_Segmentize(ST_TileEnvelope({z}, {x}, {y}, margin => {margin}), {seg}), 28992) AS env_rd) "
        "SELECT ST_AsMVT(q, {layer}, {extent}, 'geom'{fid_name}) FROM ("
        "SELECT {fid}ST_AsMVTGeom(ST_Transform({geom}, 3857), b.env, {extent}, {buffer}, true) AS geom"
        "{props} FROM {table} t, b WHERE {where}) q WHERE q.geom IS NOT NULL"
    ).format(
        z=zp, x=xp, y=yp,
        margin=sql.Literal(BUFFER / EXTENT),
        seg=binder.bind(tile_m / 16),
        layer=sql.Literal(spec.id),
        fid_name=sql.SQL(", 'fid'" if ids else ""),
        fid=sql.SQL("t.id AS fid, " if ids else ""),
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        geom=geom,
        props=sql.SQL("").join(sql.SQL(", {}").format(p) for p in props),
        table=table_sql(spec),
        where=sql.SQL(" AND ").join(conds),
    )


def _cache_headers(spec: LayerSpec) -> dict[str, str]:
    if spec.access == "public":
        return {"Cache-Control": f"public, max-age={CACHE_SECONDS}"}
    return {"Cache-Control": f"private, max-age={CACHE_SECONDS}", "Vary": "Authorization, X-API-Key"}


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


@router.get("/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}",
            summary="A vector tile (MVT) of a layer", response_class=Response,
            responses={200: {"content": {MVT: {}}}, 204: {"description": "Empty tile"},
                       304: {"description": "Not modified"}})
async def tile(request: Request, spec: LayerDep, principal: PrincipalDep, conn: ConnDep, z: str, x: str,
               y: str) -> Response:
    require_read(principal, spec)
    zi, xi, yi = parse_tile(z, x, y)
    filters = _tile_filters(request, spec)
    properties = _tile_properties(request, spec)
    digits, ids = _tile_digits(request), _tile_ids(request)
    headers = _cache_headers(spec)
    if not spec.min_zoom <= zi <= spec.max_zoom:
        return Response(status_code=204, headers=headers)
    cached = await lookup(request, conn, "tile_cache_mb", downloads.version_tables(spec), principal,
                          spec.id, zi, xi, yi, filters, properties, digits, ids)
    if cached.status:
        headers["X-Tile-Cache"] = cached.status
    data = cached.data
    if data is None:
        binder = Binder()
        rows = await fetch(conn, tile_sql(spec, zi, xi, yi, filters, binder, properties, digits, ids),
                           binder.params,
                           isolated=True)
        data = bytes(rows[0][0]) if rows and rows[0][0] is not None else b""
        cached.store(data)
    if not data:
        return Response(status_code=204, headers=headers)
    etag = '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'
    headers["ETag"] = etag
    if _etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MVT, headers=headers)


@router.get("/collections/{collection_id}/tiles/WebMercatorQuad/tilejson.json",
            summary="TileJSON of a layer's vector tiles")
async def tilejson(request: Request, spec: LayerDep, conn: ConnDep, principal: PrincipalDep) -> JSONResponse:
    filters = _tile_filters(request, spec)
    properties = _tile_properties(request, spec)
    bbox, _ = await cached_extent(request, conn, spec, principal)
    bounds = bbox or NL_BOUNDS
    base = base_url(request)
    query = str(request.url.query)
    url = f"{base}/collections/{spec.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.mvt"  # GDAL's MVT driver needs the .mvt
    url += f"?{query}" if filters or properties is not None else ""
    max_zoom = min(spec.max_zoom, MAX_ZOOM)
    width = max(bounds[2] - bounds[0], 1e-6)
    center_zoom = max(spec.min_zoom, min(max_zoom, int(math.log2(360 / width))))
    doc = {
        "tilejson": "3.0.0",
        "name": spec.id,
        "description": spec.title,
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": spec.min_zoom,
        "maxzoom": max_zoom,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, center_zoom],
        "attribution": "vth-twin",
        "vector_layers": [{
            "id": spec.id,
            "description": spec.description,
            "minzoom": spec.min_zoom,
            "maxzoom": max_zoom,
            "fields": {f.name: _MVT_TYPES[f.type] for f in tile_fields(spec)
                       if f.name not in dict(filters) and (properties is None or f.name in properties)},
        }],
    }
    return JSONResponse(doc)
