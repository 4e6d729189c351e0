"""The SQL of item queries: which columns a caller sees, the WHERE clause, GeoJSON built in PostgreSQL.

Identifiers come only from the layer registry; every value is bound through a :class:`Binder`.
Geometries are written as GeoJSON by PostGIS (``ST_AsGeoJSON``) and embedded as they are; the rows are
serialised with orjson. (Building whole features in PostgreSQL with ``json_build_object`` measured about
twice as slow for a 1,000-feature page.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson
import psycopg
from psycopg import sql

from api.auth import Principal, column_sql, visible_fields
from layers.registry import SCHEMA, FieldSpec, LayerSpec
from twin.crs import Crs
from twin.errors import InvalidParameter, QueryTimeout

log = logging.getLogger("twin.api.query")

Format = Literal["json", "csv", "gpkg"]

class Binder:
    """Collects bound values under generated names (``p0``, ``p1`` ...) for one statement."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> sql.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)


@dataclass(frozen=True)
class Columns:
    """The fields of a layer one caller may see, and the SQL expression of each over the alias ``t``.

    Which fields and which masking (personal data of sole proprietors served as NULL) is decided by the
    access rules (:func:`api.auth.visible_fields`, :func:`api.auth.column_sql`); filters and sorting use
    the same masked expressions, so they cannot reveal what the response hides.
    """

    spec: LayerSpec
    fields: tuple[FieldSpec, ...]
    principal: Principal

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def expr(self, name: str) -> sql.Composable:
        return column_sql(self.principal, self.spec, name, "t")


def columns_for(spec: LayerSpec, principal: Principal) -> Columns:
    """The columns of ``spec`` that ``principal`` sees (see :class:`Columns`)."""
    return Columns(spec, tuple(spec.field(n) for n in visible_fields(principal, spec)), principal)


def table_sql(spec: LayerSpec) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(spec.table))


def geometry_sql(placeholder: sql.Composable, srid: int) -> sql.Composable:
    """SQL of a bound WKB geometry in ``srid``, transformed to storage (RD New)."""
    if srid == 28992:
        return sql.SQL("ST_GeomFromWKB({}, 28992)").format(placeholder)
    return sql.SQL("ST_Transform(ST_GeomFromWKB({}, {}), 28992)").format(placeholder, sql.Literal(srid))


def output_geometry_sql(crs: Crs, flip: bool = True) -> sql.Composable:
    """The feature geometry in the output CRS (lat/lon order for EPSG:4326 unless ``flip`` is False)."""
    if crs.srid == 28992:
        return sql.SQL("t.geom")
    geom = sql.SQL("ST_Transform(t.geom, {})").format(sql.Literal(crs.srid))
    if crs.lat_lon and flip:
        return sql.SQL("ST_FlipCoordinates({})").format(geom)
    return geom


@dataclass(frozen=True)
class DateRange:
    """A closed range of days (None: open end), from the ``datetime`` parameter."""

    start: date | None
    end: date | None


@dataclass(frozen=True)
class ItemsQuery:
    """The validated query parameters of ``/collections/{id}/items`` (see :mod:`api.params`)."""

    limit: int = 100
    offset: int = 0
    limit_given: bool = False
    bbox: tuple[bytes, int] | None = None  # WKB and SRID of the (densified, clipped) box
    crs: Crs | None = None
    datetime: DateRange | None = None
    properties: tuple[str, ...] | None = None  # None: all visible fields
    sortby: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    equals: tuple[tuple[str, Any], ...] = ()
    filter: Any = None  # parsed CQL2 AST
    filter_crs: Crs | None = None
    format: Format = "json"


def where_sql(columns: Columns, q: ItemsQuery, binder: Binder, filter_sql: sql.Composable | None) -> sql.Composable:
    """The WHERE condition of an item query (bbox, datetime, property equality, CQL2 filter)."""
    conds: list[sql.Composable] = []
    if q.bbox is not None:
        wkb, srid = q.bbox
        conds.append(sql.SQL("ST_Intersects(t.geom, {})").format(geometry_sql(binder.bind(wkb), srid)))
    time_field = columns.spec.time_field
    if q.datetime is not None and time_field and columns.field(time_field) is not None:
        expr = columns.expr(time_field)
        if q.datetime.start is not None:
            conds.append(sql.SQL("{} >= {}").format(expr, binder.bind(q.datetime.start)))
        if q.datetime.end is not None:
            conds.append(sql.SQL("{} <= {}").format(expr, binder.bind(q.datetime.end)))
    for name, value in q.equals:
        conds.append(sql.SQL("{} = {}").format(columns.expr(name), binder.bind(value)))
    if filter_sql is not None:
        conds.append(filter_sql)
    if not conds:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(conds)


def order_sql(columns: Columns, q: ItemsQuery) -> sql.Composable:
    """ORDER BY the requested fields, then the natural key (a total order, so paging is stable)."""
    parts = [
        sql.SQL("{} {}").format(columns.expr(name), sql.SQL("DESC NULLS LAST" if desc else "ASC NULLS FIRST"))
        for name, desc in q.sortby
    ]
    parts.append(sql.SQL("t.{}").format(sql.Identifier(columns.spec.key)))
    return sql.SQL(", ").join(parts)


def selected_fields(columns: Columns, q: ItemsQuery) -> tuple[str, ...]:
    return columns.names if q.properties is None else q.properties


def feature_columns(columns: Columns, names: Sequence[str], crs: Crs) -> sql.Composable:
    """The key, the geometry as GeoJSON text (by PostGIS) and the chosen fields, in that order."""
    geojson = sql.SQL("ST_AsGeoJSON({}, {}, 0)").format(output_geometry_sql(crs), sql.Literal(crs.decimals))
    cols = [sql.SQL("t.{}").format(sql.Identifier(columns.spec.key)), geojson]
    cols += [sql.SQL("{} AS {}").format(columns.expr(n), sql.Identifier(n)) for n in names]
    return sql.SQL(", ").join(cols)


def page_sql(columns: Columns, q: ItemsQuery, binder: Binder, where: sql.Composable) -> sql.Composed:
    """One page of features as rows for :func:`features`."""
    crs = q.crs
    assert crs is not None
    return sql.SQL(
        "SELECT {cols} FROM {table} t WHERE {where} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    ).format(
        cols=feature_columns(columns, selected_fields(columns, q), crs),
        table=table_sql(columns.spec),
        where=where,
        order=order_sql(columns, q),
        limit=binder.bind(q.limit),
        offset=binder.bind(q.offset),
    )


def features(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """GeoJSON features (for orjson) from rows of :func:`page_sql` / :func:`one_sql`; the geometry is
    embedded as the GeoJSON text PostGIS wrote."""
    return [
        {"type": "Feature", "id": r[0], "geometry": orjson.Fragment(r[1]),
         "properties": dict(zip(names, r[2:], strict=True))}
        for r in rows
    ]


def count_sql(columns: Columns, where: sql.Composable) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {table} t WHERE {where}").format(table=table_sql(columns.spec), where=where)


def one_sql(columns: Columns, q: ItemsQuery, binder: Binder, feature_id: str) -> sql.Composed:
    crs = q.crs
    assert crs is not None
    return sql.SQL("SELECT {cols} FROM {table} t WHERE t.{key} = {id}").format(
        cols=feature_columns(columns, selected_fields(columns, q), crs),
        table=table_sql(columns.spec),
        key=sql.Identifier(columns.spec.key),
        id=binder.bind(feature_id),
    )


def rows_sql(columns: Columns, q: ItemsQuery, binder: Binder, where: sql.Composable,
             geometry: Literal["wkt", "wkb"]) -> sql.Composed:
    """Plain rows for exports: the key, the chosen fields, the geometry as WKT (CSV) or WKB (GeoPackage)."""
    crs = q.crs
    assert crs is not None
    key = columns.spec.key
    names = [n for n in selected_fields(columns, q) if n != key]
    cols = [sql.SQL("t.{}").format(sql.Identifier(key))]
    for n in names:
        expr = columns.expr(n)
        f = columns.field(n)
        if geometry == "wkt" and f is not None and f.type == "bool":  # CSV: true/false rather than t/f
            expr = sql.SQL("CASE WHEN {e} THEN 'true' WHEN NOT {e} THEN 'false' END").format(e=expr)
        cols.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(n)))
    if geometry == "wkt":
        wkt = sql.SQL("ST_AsText({}, {}) AS geometry")
        cols.append(wkt.format(output_geometry_sql(crs), sql.Literal(crs.decimals)))
    else:
        # GeoPackage stores x/y (lon/lat) whatever the CRS's axis order
        cols.append(sql.SQL("ST_AsBinary({}) AS geometry").format(output_geometry_sql(crs, flip=False)))
    return sql.SQL(
        "SELECT {cols} FROM {table} t WHERE {where} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    ).format(
        cols=sql.SQL(", ").join(cols),
        table=table_sql(columns.spec),
        where=where,
        order=order_sql(columns, q),
        limit=binder.bind(q.limit),
        offset=binder.bind(q.offset),
    )


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Database complaints about values in a query become 400s (a timeout 503), never 500s."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise QueryTimeout("the query took too long; narrow it (bbox, filter, a smaller geometry) or lower "
                           "limit.") from exc
    except psycopg.errors.DataException as exc:
        raise InvalidParameter(f"a value in the query could not be used: {exc.diag.message_primary}.") from exc
    except psycopg.errors.InternalError_ as exc:
        log.warning("query failed: %s", exc)
        raise InvalidParameter("a geometry in the query could not be evaluated; check that it is valid.") from exc


async def fetch(conn: psycopg.AsyncConnection, query: sql.Composed, values: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run a read query in its own (sub)transaction; see :func:`database_errors`.

    Never as a server-side prepared statement: a generic plan cannot see the bbox or filter values and
    picks walking the key index for ``ORDER BY key LIMIT n`` (a 1,000-feature city page took ~1 s instead
    of ~30 ms). Parallel workers are off: starting them costs more than these queries take.
    """
    async with database_errors(), conn.transaction():
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cur = await conn.execute(query, values, prepare=False)
        return await cur.fetchall()
