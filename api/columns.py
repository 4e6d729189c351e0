"""Which columns a caller sees of a layer, and the pieces every query is built from: bound values,
the layer's table, client geometries in, feature geometries out.

Identifiers come only from the layer registry; every value is bound through a :class:`Binder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from api.auth import Principal, column_sql, visible_fields
from layers.registry import SCHEMA, FieldSpec, LayerSpec
from twin.crs import Crs


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
    """The layer's table for a FROM clause (to be aliased); for a virtual collection (``spec.subset``) its rows
    as a subquery, which PostgreSQL inlines (indexes apply as on the table)."""
    table = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(spec.table))
    if not spec.subset:
        return table
    where = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier(name), sql.Literal(value))
                                  for name, value in spec.subset)
    return sql.SQL("(SELECT * FROM {} WHERE {})").format(table, where)


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
