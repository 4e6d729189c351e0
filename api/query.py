"""The SQL of item queries: the WHERE clause, the order, a page, a count, one feature, export rows.

Identifiers come only from the layer registry (:mod:`api.columns`); every value is bound through a
:class:`api.columns.Binder`. Geometries are written as GeoJSON by PostGIS (``ST_AsGeoJSON``) and
embedded as they are; the rows are serialised with orjson. (Building whole features in PostgreSQL with
``json_build_object`` measured about twice as slow for a 1,000-feature page.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from psycopg import sql

from api.columns import Binder, Columns, geometry_sql, output_geometry_sql, table_sql
from api.paging import after_sql
from api.params import ItemsQuery
from twin.crs import Crs


def where_sql(columns: Columns, q: ItemsQuery, binder: Binder, filter_sql: sql.Composable | None) -> sql.Composable:
    """The WHERE condition of an item query (bbox, datetime, property equality, CQL2 filter)."""
    conds: list[sql.Composable] = []
    if q.bbox is not None:
        conds.append(sql.SQL("ST_Intersects(t.geom, {})").format(geometry_sql(binder.bind(q.bbox.wkb), q.bbox.srid)))
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


def order_keys(columns: Columns, q: ItemsQuery) -> list[tuple[sql.Composable, bool]]:
    """The (masked) expressions of the order with their direction (descending?): the requested fields, then
    the natural key (a total order, so paging is stable)."""
    keys = [(columns.expr(name), desc) for name, desc in q.sortby]
    keys.append((sql.SQL("t.{}").format(sql.Identifier(columns.spec.key)), False))
    if q.backward:  # a prev page: the reverse order (ASC NULLS FIRST <-> DESC NULLS LAST), reversed again later
        keys = [(expr, not desc) for expr, desc in keys]
    return keys


def order_sql(columns: Columns, q: ItemsQuery) -> sql.Composable:
    """ORDER BY :func:`order_keys` (ascending NULLS FIRST, descending NULLS LAST)."""
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(expr, sql.SQL("DESC NULLS LAST" if desc else "ASC NULLS FIRST"))
        if i < len(q.sortby) or desc else expr
        for i, (expr, desc) in enumerate(order_keys(columns, q))
    )


def page_where(columns: Columns, q: ItemsQuery, binder: Binder, where: sql.Composable) -> sql.Composable:
    """The condition of one page: the query's, and after the cursor's row when there is one (keyset)."""
    if q.after is None:
        return where
    return sql.SQL("({}) AND {}").format(where, after_sql(order_keys(columns, q), q.after, binder.bind))


def sort_values_sql(columns: Columns, q: ItemsQuery) -> sql.Composable:
    """The sortby expressions as trailing columns of a page (the next cursor is made of the last row's)."""
    return sql.SQL("").join(sql.SQL(", {}").format(columns.expr(name)) for name, _ in q.sortby)


def selected_fields(columns: Columns, q: ItemsQuery) -> tuple[str, ...]:
    return columns.names if q.properties is None else q.properties


def feature_columns(columns: Columns, names: Sequence[str], crs: Crs) -> sql.Composable:
    """The key, the geometry as GeoJSON text (by PostGIS) and the chosen fields, in that order."""
    geojson = sql.SQL("ST_AsGeoJSON({}, {}, 0)").format(output_geometry_sql(crs), sql.Literal(crs.decimals))
    cols = [sql.SQL("t.{}").format(sql.Identifier(columns.spec.key)), geojson]
    cols += [sql.SQL("{} AS {}").format(columns.expr(n), sql.Identifier(n)) for n in names]
    return sql.SQL(", ").join(cols)


def page_sql(columns: Columns, q: ItemsQuery, binder: Binder, where: sql.Composable) -> sql.Composed:
    """One page of features as rows for :func:`api.geojson.features`."""
    crs = q.crs
    assert crs is not None
    return sql.SQL(
        "SELECT {cols}{sort} FROM {table} t WHERE {where} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    ).format(
        cols=feature_columns(columns, selected_fields(columns, q), crs),
        sort=sort_values_sql(columns, q),
        table=table_sql(columns.spec),
        where=page_where(columns, q, binder, where),
        order=order_sql(columns, q),
        limit=binder.bind(q.limit),
        offset=binder.bind(q.offset),
    )


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
        where=page_where(columns, q, binder, where),
        order=order_sql(columns, q),
        limit=binder.bind(q.limit),
        offset=binder.bind(q.offset),
    )


def boundary_sql(columns: Columns, q: ItemsQuery, binder: Binder, where: sql.Composable) -> sql.Composed:
    """The key and sort values of the page's last row and of the row after it (none: the last page), for the
    next link of an export, whose rows are streamed before they are seen."""
    return sql.SQL(
        "SELECT t.{key}{sort} FROM {table} t WHERE {where} ORDER BY {order} LIMIT 2 OFFSET {offset}"
    ).format(
        key=sql.Identifier(columns.spec.key),
        sort=sort_values_sql(columns, q),
        table=table_sql(columns.spec),
        where=page_where(columns, q, binder, where),
        order=order_sql(columns, q),
        offset=binder.bind(q.offset + q.limit - 1),
    )
