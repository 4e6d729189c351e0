"""``/collections`` and ``/collections/{id}``: the layers of the registry as OGC API collections."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from psycopg import sql

from api.auth import Principal, PrincipalDep, can_read
from api.deps import ConnDep, LayerDep
from api.landing import base_url
from api.params import check_known
from layers.registry import LAYERS, SCHEMA, LayerSpec
from twin.crs import CRS84, RD_NEW, SUPPORTED_URIS

router = APIRouter(tags=["collections"])

CRS_LIST = SUPPORTED_URIS


async def layer_extent(
    conn: psycopg.AsyncConnection, spec: LayerSpec
) -> tuple[list[float] | None, list[str | None] | None]:
    """The layer's bbox in CRS84 and, for layers with a time field, its first and last day."""
    time_sql: sql.Composable = sql.SQL("NULL::date AS t0, NULL::date AS t1")
    if spec.time_field:
        tf = sql.Identifier(spec.time_field)
        time_sql = sql.SQL("min({}) AS t0, max({}) AS t1").format(tf, tf)
    query = sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM ("
        "SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 28992), 4326) AS e, {time} "
        "FROM {schema}.{table}) s"
    ).format(time=time_sql, schema=sql.Identifier(SCHEMA), table=sql.Identifier(spec.table))
    async with conn.transaction():
        cur = await conn.execute(query)
        row = await cur.fetchone()
    if not row:
        return None, None
    bbox = None if row[0] is None else [round(float(v), 6) for v in row[:4]]
    interval = None
    if spec.time_field:
        interval = [None if v is None else f"{v.isoformat()}T00:00:00Z" for v in row[4:6]]
    return bbox, interval


EXTENT_TTL_S = 60.0


async def cached_extent(request: Request, conn: psycopg.AsyncConnection, spec: LayerSpec,
                        principal: Principal) -> tuple[list[float] | None, list[str | None] | None]:
    """:func:`layer_extent`, remembered for a minute per layer and caller role (row-level security can
    make restricted layers look different per role): a full scan of 500,000 buildings takes ~0.2 s, and
    clients read /collections whenever they open the service."""
    cache: dict[tuple[str, str, str | None], tuple[float, Any]] | None = getattr(
        request.app.state, "extent_cache", None)
    if cache is None:
        cache = request.app.state.extent_cache = {}
    key = (spec.id, principal.role, principal.org_code)
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < EXTENT_TTL_S:
        value: tuple[list[float] | None, list[str | None] | None] = hit[1]
        return value
    value = await layer_extent(conn, spec)
    cache[key] = (now, value)
    return value


def collection_doc(base: str, spec: LayerSpec, bbox: list[float] | None,
                   interval: list[str | None] | None = None) -> dict[str, Any]:
    """The OGC collection document of a layer."""
    href = f"{base}/collections/{spec.id}"
    doc: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "description": spec.description,
        "itemType": "feature",
        "crs": CRS_LIST,
        "storageCrs": RD_NEW.uri,
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": spec.title},
            {"href": f"{href}/items", "rel": "items", "type": "application/geo+json", "title": "Features (GeoJSON)"},
            {"href": f"{href}/items?f=csv", "rel": "items", "type": "text/csv", "title": "Features (CSV)"},
            {"href": f"{href}/items?f=gpkg", "rel": "items", "type": "application/geopackage+sqlite3",
             "title": "Features (GeoPackage)"},
            {"href": f"{href}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json", "title": "Queryables"},
            {"href": f"{href}/tiles/WebMercatorQuad/tilejson.json", "rel": "tiles", "type": "application/json",
             "title": "Vector tiles (TileJSON)"},
            {"href": f"{href}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}", "rel": "item",
             "type": "application/vnd.mapbox-vector-tile", "templated": True, "title": "Vector tiles (MVT)"},
        ],
        "access": spec.access,
        "keyField": spec.key,
        "minZoom": spec.min_zoom,
        "maxZoom": spec.max_zoom,
    }
    if spec.time_field:
        doc["timeField"] = spec.time_field
    extent: dict[str, Any] = {}
    if bbox:
        extent["spatial"] = {"bbox": [bbox], "crs": CRS84.uri}
    if interval:
        extent["temporal"] = {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    if extent:
        doc["extent"] = extent
    return doc


@router.get("/collections", summary="The twin's layers")
async def collections(request: Request, conn: ConnDep, principal: PrincipalDep) -> dict[str, Any]:
    check_known(request.query_params, ("f",))
    base = base_url(request)
    docs = []
    for spec in LAYERS.values():
        doc = collection_doc(base, spec, *await cached_extent(request, conn, spec, principal))
        # Restricted layers are listed (so clients know they exist) but flagged as not readable for callers
        # without the rights; their items and tiles answer 401 until the caller authenticates.
        doc["readable"] = can_read(principal, spec)
        docs.append(doc)
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
        "collections": docs,
    }


@router.get("/collections/{collection_id}", summary="One layer's metadata")
async def collection(request: Request, spec: LayerDep, conn: ConnDep, principal: PrincipalDep) -> dict[str, Any]:
    check_known(request.query_params, ("f",))
    doc = collection_doc(base_url(request), spec, *await cached_extent(request, conn, spec, principal))
    doc["readable"] = can_read(principal, spec)
    return doc
