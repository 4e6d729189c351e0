"""OGC API Features: ``/collections/{id}/items``, ``/items/{featureId}``, ``/queryables``, and exports.

GeoJSON is built by PostgreSQL (see :mod:`api.query`); CSV is streamed from ``COPY ... TO STDOUT``;
a GeoPackage is written by pyogrio in a worker thread and streamed from a temporary file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from psycopg import sql
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api import cql, params
from api.auth import PrincipalDep, require_read
from api.cache import VersionedCache, table_versions
from api.columns import Binder, Columns, columns_for
from api.deps import ConnDep, LayerDep
from api.downloads import version_tables
from api.geojson import GEOJSON, features, geojson_response, number_matched, paging_links, timestamp
from api.links import base_url, url_with
from api.paging import Cursors, load_secret, query_hash
from api.params import ITEM_OPENAPI, ITEMS_OPENAPI, ItemsQuery
from api.query import boundary_sql, count_sql, one_sql, page_sql, rows_sql, selected_fields, where_sql
from twin import history
from twin.errors import NotFound
from twin.sql import database_errors, fetch

log = logging.getLogger("twin.api.features")
router = APIRouter(tags=["features"])

EXPORT_TIMEOUT = "the export took too long; narrow it with bbox or filter, or lower limit."
GPKG = "application/geopackage+sqlite3"
CSV = "text/csv; charset=utf-8"

_GEOMETRY_SCHEMAS = {
    "Point": "https://geojson.org/schema/Point.json",
    "Polygon": "https://geojson.org/schema/Polygon.json",
    "MultiPolygon": "https://geojson.org/schema/MultiPolygon.json",
    "Geometry": "https://geojson.org/schema/Geometry.json",
}


def _links(request: Request, spec_id: str, q: ItemsQuery, returned: int, matched: int | None,
           next_cursor: str | None, prev_cursor: str | None) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON, "title": "This page"},
        {"href": url_with(request, f="csv"), "rel": "alternate", "type": "text/csv", "title": "This query as CSV"},
        {"href": url_with(request, f="gpkg"), "rel": "alternate", "type": GPKG, "title": "This query as GeoPackage"},
        {"href": f"{base_url(request)}/collections/{spec_id}", "rel": "collection",
         "type": "application/json", "title": "The collection"},
    ]
    return links + paging_links(request, q, returned, matched, next_cursor, prev_cursor)


def _cursors(request: Request, spec: Any, principal: Any) -> Cursors:
    """The cursor signer of this query (the server's key is read once per process)."""
    state = request.app.state
    secret = getattr(state, "cursor_secret", None)
    if secret is None:
        secret = state.cursor_secret = load_secret(state.settings)
    return Cursors(secret, query_hash(spec, principal, request.query_params))


def _next_cursor(q: ItemsQuery, row: Any, backward: bool = False) -> str | None:
    """The cursor after (``backward``: before) ``row`` (key first, the sortby values last), if the query
    pages by cursor."""
    if q.cursors is None:
        return None
    n = len(q.sortby)
    return q.cursors.encode([*row[len(row) - n:], row[0]] if n else [row[0]], backward)


async def _count(request: Request, conn: psycopg.AsyncConnection, columns: Columns, q: ItemsQuery, binder: Binder,
                 where: sql.Composable) -> int:
    """``numberMatched``, remembered per table version and query (cursor pages of one walk count once)."""
    cache: VersionedCache | None = getattr(request.app.state, "count_cache", None)
    if cache is None:
        cache = request.app.state.count_cache = VersionedCache(1 << 20)
    key = None
    if q.cursors is not None:  # the query hash holds geldigOp/beschikbaarOp too
        versions = await table_versions(conn, cache, list(version_tables(columns.spec)))
        key = None if versions is None else (versions, q.cursors.query)
    if key is not None and (hit := cache.get(key)) is not None:
        return int(hit)
    matched = int((await fetch(conn, count_sql(columns, where), binder.params, isolated=True))[0][0])
    if key is not None:
        cache.put(key, str(matched).encode())
    return matched


def _prepare(request: Request, spec: Any, principal: Any) -> tuple[Columns, ItemsQuery, Binder, sql.Composable]:
    require_read(principal, spec)
    columns = columns_for(spec, principal)
    settings = request.app.state.settings
    q = params.parse_items(request.query_params, columns, settings.max_offset, _cursors(request, spec, principal))
    binder = Binder()
    filter_sql = None
    if q.filter is not None:
        assert q.filter_crs is not None
        filter_sql = cql.to_sql(q.filter, columns, binder, q.filter_crs)
    return columns, q, binder, where_sql(columns, q, binder, filter_sql)


# -- routes ------------------------------------------------------------------------------------------------
@router.get("/collections/{collection_id}/items", summary="Features of a layer (GeoJSON, CSV or GeoPackage)",
            response_class=Response, openapi_extra=ITEMS_OPENAPI,
            responses={200: {"content": {GEOJSON: {}, "text/csv": {}, GPKG: {}}}})
async def items(request: Request, spec: LayerDep, principal: PrincipalDep, conn: ConnDep) -> Response:
    columns, q, binder, where = _prepare(request, spec, principal)
    async with history.as_of(conn, q.as_of):  # geldigOp / beschikbaarOp: the same query on the as-of views
        return await _items(request, spec, conn, columns, q, binder, where)


async def _items(request: Request, spec: Any, conn: psycopg.AsyncConnection, columns: Columns, q: ItemsQuery,
                 binder: Binder, where: sql.Composable) -> Response:
    if q.format == "csv":
        return await _csv(request, conn, columns, q, binder, where)
    if q.format == "gpkg":
        return await _gpkg(request, conn, columns, q, binder, where)
    rows = await fetch(conn, page_sql(columns, q, binder, where), binder.params, isolated=True)
    returned = len(rows)
    matched = number_matched(returned, q)
    if matched is None:
        matched = await _count(request, conn, columns, q, binder, where)
    if q.backward:
        rows.reverse()
    next_cursor = _next_cursor(q, rows[-1]) if rows else None
    prev_cursor = _next_cursor(q, rows[0], backward=True) if rows and q.after is not None else None
    if q.sortby:
        rows = [r[:len(r) - len(q.sortby)] for r in rows]
    doc = {
        "type": "FeatureCollection",
        "numberMatched": matched,
        "numberReturned": returned,
        "timeStamp": timestamp(),
        "links": _links(request, spec.id, q, returned, matched, next_cursor, prev_cursor),
        "features": features(rows, selected_fields(columns, q)),
    }
    return geojson_response(doc, q)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature by its natural key",
            response_class=Response, openapi_extra=ITEM_OPENAPI, responses={200: {"content": {GEOJSON: {}}}})
async def item(request: Request, feature_id: str, spec: LayerDep, principal: PrincipalDep,
               conn: ConnDep) -> Response:
    require_read(principal, spec)
    columns = columns_for(spec, principal)
    q = params.parse_item(request.query_params, columns)
    binder = Binder()
    async with history.as_of(conn, q.as_of):
        rows = await fetch(conn, one_sql(columns, q, binder, feature_id), binder.params, isolated=True)
    if not rows:
        raise NotFound(f"collection {spec.id!r} has no feature {feature_id!r}.")
    base = base_url(request)
    links = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON, "title": "This feature"},
        {"href": f"{base}/collections/{spec.id}", "rel": "collection", "type": "application/json",
         "title": "The collection"},
    ]
    feature = features(rows, selected_fields(columns, q))[0]
    feature["links"] = links
    return geojson_response(feature, q)


_JSON_TYPES = {"text": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "string"}


@router.get("/collections/{collection_id}/queryables", summary="The properties a filter may use (JSON Schema)",
            response_class=JSONResponse, responses={200: {"content": {"application/schema+json": {}}}})
async def queryables(request: Request, spec: LayerDep, principal: PrincipalDep) -> JSONResponse:
    params.check_known(request.query_params, ("f",))
    columns = columns_for(spec, principal)
    props: dict[str, Any] = {
        "geometry": {"title": "Geometry", "description": f"The feature's {spec.geometry_type} (in filters: "
                     "S_INTERSECTS, S_WITHIN, S_DWITHIN ...; WKT in CRS84 unless filter-crs).",
                     "format": f"geometry-{spec.geometry_type.lower()}" if spec.geometry_type != "Geometry"
                     else "geometry-any",
                     "$ref": _GEOMETRY_SCHEMAS[spec.geometry_type], "x-ogc-role": "primary-geometry"},
    }
    for f in columns.fields:
        schema: dict[str, Any] = {"title": f.name, "description": f.description, "type": _JSON_TYPES[f.type]}
        if f.type == "date":
            schema["format"] = "date"
        if f.enum:
            schema["enum"] = [int(v) for v in f.enum] if f.type == "int" else list(f.enum)
        if f.unit:
            schema["x-unit"] = f.unit
        if f.name == spec.key:
            schema["x-ogc-role"] = "id"
        elif f.name == spec.time_field:
            schema["x-ogc-role"] = "primary-instant"
        props[f.name] = schema
    base = base_url(request)
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{spec.id}/queryables",
        "type": "object",
        "title": spec.title,
        "properties": props,
        "additionalProperties": False,
    }
    return JSONResponse(doc, media_type="application/schema+json")


# -- exports -----------------------------------------------------------------------------------------------
def _filename(columns: Columns, ext: str) -> str:
    return f'attachment; filename="{columns.spec.id}.{ext}"'


async def _export_headers(request: Request, conn: psycopg.AsyncConnection, columns: Columns, q: ItemsQuery,
                          binder: Binder, where: sql.Composable, ext: str) -> dict[str, str]:
    matched = await _count(request, conn, columns, q, binder, where)
    assert q.crs is not None
    headers = {"Content-Disposition": _filename(columns, ext), "Content-Crs": q.crs.header,
               "OGC-NumberMatched": str(matched)}
    if q.cursors is not None:
        edge = await fetch(conn, boundary_sql(columns, q, binder, where), binder.params, isolated=True)
        cursor = _next_cursor(q, edge[0]) if len(edge) == 2 else None
        if cursor is not None:
            href = request.url.remove_query_params("offset").include_query_params(cursor=cursor, limit=q.limit)
            headers["Link"] = f'<{href}>; rel="next"'
    elif q.offset + q.limit < matched:
        headers["Link"] = f'<{url_with(request, offset=q.offset + q.limit, limit=q.limit)}>; rel="next"'
    return headers


async def _csv(request: Request, conn: psycopg.AsyncConnection, columns: Columns, q: ItemsQuery, binder: Binder,
               where: sql.Composable) -> Response:
    headers = await _export_headers(request, conn, columns, q, binder, where, "csv")
    query = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
        rows_sql(columns, q, binder, where, "wkt"))
    # Start the COPY before answering, so that a database error is still a proper error response.
    cur = conn.cursor()
    copy_cm = cur.copy(history.render_composed(conn, query), binder.params)
    async with database_errors(EXPORT_TIMEOUT):
        copy = await copy_cm.__aenter__()
        chunks = copy.__aiter__()
        first = await anext(chunks, b"")

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield bytes(first)
            async for chunk in chunks:
                yield bytes(chunk)
        finally:
            await copy_cm.__aexit__(None, None, None)

    return StreamingResponse(stream(), media_type=CSV, headers=headers)


_OGR_TYPES = {"text": "str", "int": "int64", "float": "float64", "bool": "bool", "date": "datetime64[D]"}


def _write_gpkg(path: str, layer: str, names: list[str], types: list[str], rows: list[tuple[Any, ...]],
                srs: str, geometry_type: str) -> None:
    """Write rows (fields..., WKB) to a GeoPackage; runs in a worker thread."""
    from pyogrio.raw import write

    geometry = np.array([r[-1] for r in rows], dtype=object)
    field_data = []
    masks = []
    for i, t in enumerate(types):
        col = [r[i] for r in rows]
        mask = np.array([v is None for v in col], dtype=bool)
        if t == "str":
            arr = np.array(["" if v is None else v for v in col], dtype=object)
        elif t == "bool":
            arr = np.array([bool(v) for v in col], dtype=bool)
        elif t == "datetime64[D]":
            arr = np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "D") for v in col],
                           dtype="datetime64[D]")
        elif t == "int64":
            arr = np.array([0 if v is None else v for v in col], dtype=np.int64)
        else:
            arr = np.array([np.nan if v is None else v for v in col], dtype=np.float64)
        field_data.append(arr)
        masks.append(mask)
    write(path, geometry, field_data, names, field_mask=masks, layer=layer, driver="GPKG",
          geometry_type=geometry_type, crs=srs)


async def _gpkg(request: Request, conn: psycopg.AsyncConnection, columns: Columns, q: ItemsQuery, binder: Binder,
                where: sql.Composable) -> Response:
    headers = await _export_headers(request, conn, columns, q, binder, where, "gpkg")
    rows = await fetch(conn, rows_sql(columns, q, binder, where, "wkb"), binder.params, isolated=True)
    key = columns.spec.key
    names = [key] + [n for n in selected_fields(columns, q) if n != key]
    types = []
    for n in names:
        f = columns.field(n)
        types.append(_OGR_TYPES[f.type] if f is not None else "str")
    assert q.crs is not None
    srs = "OGC:CRS84" if q.crs.uri.endswith("CRS84") else f"EPSG:{q.crs.srid}"
    geometry_type = {"Point": "Point", "Polygon": "Polygon", "MultiPolygon": "MultiPolygon"}.get(
        columns.spec.geometry_type, "Unknown")
    fd, path = tempfile.mkstemp(suffix=".gpkg", prefix="twin-export-")
    os.close(fd)
    os.unlink(path)  # pyogrio creates the file
    try:
        await run_in_threadpool(_write_gpkg, path, columns.spec.id, names, types, rows, srs, geometry_type)
    except Exception:
        _remove(path)
        raise

    def chunks() -> Any:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    headers["Content-Length"] = str(os.path.getsize(path))
    return StreamingResponse(chunks(), media_type=GPKG, headers=headers, background=BackgroundTask(_remove, path))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
