"""CQL2 text filters (OGC API Features Part 3) to SQL.

Parsing uses pygeofilter's CQL2 text grammar with a few overrides where pygeofilter 0.4 departs from
the standard (temporal functions in function form ``T_BEFORE(a, b)``, ``DATE`` bounds and open ``'..'``
ends in ``INTERVAL``, one-letter property names, ``S_DWITHIN``). The translation to SQL is our own and
deliberately small: property names only from the layer's visible fields (never from the filter text),
every literal bound as a parameter, an allowlist of functions, and limits on size, depth and node count.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry
from lark import Lark, v_args
from lark import logger as lark_logger
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError
from psycopg import sql
from pygeofilter import ast, values
from pygeofilter.parsers import cql2_text
from pygeofilter.parsers.cql2_text.parser import CQLTransformer

from api.bbox import Bbox
from api.columns import Binder, Columns, geometry_sql
from twin.crs import Crs, prepare_geometry
from twin.errors import InvalidParameter

PARAMETER = "filter"
MAX_LENGTH = 50_000  # characters of filter text (a polygon of a few thousand vertices fits)
MAX_DEPTH = 40  # nesting of conditions and expressions
MAX_NODES = 2_000  # conditions, expressions and literals in one filter
MAX_IN = 1_000  # values in one IN list
FUNCTIONS = ("CASEI", "BBOX")  # functions usable inside expressions (besides the S_ and T_ predicates)
SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_equals": "ST_Equals",
    "s_disjoint": "ST_Disjoint",
    "s_touches": "ST_Touches",
    "s_within": "ST_Within",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
    "s_contains": "ST_Contains",
}
TEMPORAL_SUPPORTED = ("T_AFTER", "T_BEFORE", "T_DISJOINT", "T_EQUALS", "T_INTERSECTS")
TEMPORAL_ALL = (
    "T_AFTER", "T_BEFORE", "T_CONTAINS", "T_DISJOINT", "T_DURING", "T_EQUALS", "T_FINISHEDBY", "T_FINISHES",
    "T_INTERSECTS", "T_MEETS", "T_METBY", "T_OVERLAPPEDBY", "T_OVERLAPS", "T_STARTEDBY", "T_STARTS",
)
DISTANCE_UNITS = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
                  "km": 1000.0, "kilometer": 1000.0, "kilometers": 1000.0, "kilometre": 1000.0,
                  "kilometres": 1000.0}
GEOMETRY_NAMES = ("geometry", "geom")

_TEMPORAL_NAMES = "|".join(name.removeprefix("T_") for name in TEMPORAL_ALL)
_GRAMMAR_PATCH = (
    r"""
%override ?condition_1: predicate
            | "NOT"i condition_1                                         -> not_
            | "(" condition ")"

%override attribute: /[a-zA-Z_][a-zA-Z_:0-9.]*/
                   | DOUBLE_QUOTED

%override ?temporal_predicate: TEMPORAL_FUNC "(" expression "," expression ")" -> temporal_call
"""
    + "TEMPORAL_FUNC.3: /T_(" + _TEMPORAL_NAMES + r")(?=\s*\()/i"
    + r"""

%extend spatial_predicate: DWITHIN_FUNC "(" expression "," expression "," full_number dwithin_units ")" -> dwithin
DWITHIN_FUNC.3: /S_DWITHIN(?=\s*\()/i
dwithin_units: ("," distance_units)?
distance_units: /[a-zA-Z]+/ | SINGLE_QUOTED

%override ?timestamp: "TIMESTAMP"i "(" "'" DATETIME "'" ")"
%override ?date: "DATE"i "(" "'" DATE "'" ")"
%override ?interval: "INTERVAL"i "(" interval_bound "," interval_bound ")" -> interval
interval_bound: "'" DATETIME "'" | "'" DATE "'" | "'" OPEN_END "'"
OPEN_END: ".."
"""
)


@dataclass
class TemporalCall:
    """A CQL2 temporal function ``T_xxx(a, b)`` (pygeofilter's AST maps T_INTERSECTS to overlaps)."""

    op: str
    lhs: Any
    rhs: Any


@dataclass
class DWithin:
    """``S_DWITHIN(a, b, distance, units)``."""

    lhs: Any
    rhs: Any
    distance: float
    units: str = "meters"


@v_args(meta=False, inline=True)
class _Transformer(CQLTransformer):
    """pygeofilter's transformer, plus our rules; coordinate lists built in linear time, no prints."""

    def temporal_call(self, op: Any, lhs: Any, rhs: Any) -> TemporalCall:
        return TemporalCall(str(op).upper(), lhs, rhs)

    def dwithin(self, _op: Any, lhs: Any, rhs: Any, distance: Any, units: Any) -> DWithin:
        return DWithin(lhs, rhs, float(distance), units)

    def dwithin_units(self, units: Any = "meters") -> str:
        return str(units)

    def distance_units(self, value: Any) -> str:
        text = str(value)
        return text[1:-1] if text.startswith("'") else text

    def interval_bound(self, value: Any) -> Any:
        return None if str(value) == ".." else value

    def interval(self, start: Any, end: Any) -> values.Interval:
        return values.Interval(start, end)

    def neg(self, value: Any) -> Any:
        if not isinstance(value, int | float):
            raise _FilterError("a minus sign may only precede a number.")
        return -value

    def wkt__geometry_with_srid(self, srid: Any, geometry: dict[str, Any]) -> dict[str, Any]:
        geometry["srid"] = int(srid)
        return geometry

    def wkt__multipoint_2(self, *coordinates: Any) -> dict[str, Any]:
        return {"type": "MultiPoint", "coordinates": list(coordinates)}

    def wkt__coordinate_list(self, coordinate_list: list[Any], coordinate: Any) -> list[Any]:
        coordinate_list.append(coordinate)
        return coordinate_list

    def wkt__coordinate_list_start(self, coordinate: Any) -> list[Any]:
        return [coordinate]


class _FilterError(Exception):
    """A filter that parses but cannot be used; its message goes to the client."""


def _build_parser() -> Lark:
    base = (Path(cql2_text.__file__).parent / "grammar.lark").read_text()
    return Lark(
        base + _GRAMMAR_PATCH,
        parser="lalr",
        maybe_placeholders=False,
        transformer=_Transformer(),
        import_paths=[str(Path(cql2_text.__file__).parent.parent)],
    )


lark_logger.setLevel(logging.WARNING)  # pygeofilter turns lark's debug logging on
_PARSER = _build_parser()


def parse(text: str) -> Any:
    """Parse CQL2 text into an AST; InvalidParameter (400) with the position of a syntax error."""
    if len(text) > MAX_LENGTH:
        raise InvalidParameter(f"filter: at most {MAX_LENGTH:,} characters are allowed.", parameter=PARAMETER)
    if not text.strip():
        raise InvalidParameter("filter: the filter is empty.", parameter=PARAMETER)
    try:
        return _PARSER.parse(text)
    except _FilterError as exc:
        raise InvalidParameter(f"filter: {exc}", parameter=PARAMETER) from None
    except VisitError as exc:
        inner = exc.orig_exc
        message = str(inner) if isinstance(inner, _FilterError) else f"a value could not be read ({inner})"
        raise InvalidParameter(f"filter: {message}", parameter=PARAMETER) from None
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        if isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END"):
            raise InvalidParameter("filter: the filter ends too early (an operand or a parenthesis is missing).",
                                   parameter=PARAMETER) from None
        if isinstance(exc, UnexpectedCharacters) and exc.pos_in_stream is not None:
            what = f"unexpected character {text[exc.pos_in_stream]!r}"
        else:
            what = f"unexpected {str(token)!r}"
        raise InvalidParameter(
            f"filter: syntax error at line {exc.line}, column {exc.column}: {what}. Write CQL2 text, e.g. "
            "\"status = 'verleend' AND S_INTERSECTS(geometry, POINT(5.1 52.1))\".",
            parameter=PARAMETER,
        ) from None
    except (LarkError, RecursionError, ValueError) as exc:
        raise InvalidParameter(f"filter: the filter could not be parsed ({type(exc).__name__}).",
                               parameter=PARAMETER) from None


@dataclass
class _Typed:
    """A translated operand: its SQL and its kind (text, number, bool, date, geometry, ...)."""

    sql: sql.Composable
    kind: str
    literal: Any = None
    is_literal: bool = False


_FIELD_KINDS = {"text": "text", "int": "number", "float": "number", "bool": "bool", "date": "date"}
_COMPARISONS = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=", ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}


@dataclass
class Translator:
    """Translates a parsed CQL2 AST into a boolean SQL expression over the alias ``t``."""

    columns: Columns
    binder: Binder
    filter_crs: Crs
    nodes: int = field(default=0)

    def translate(self, node: Any) -> sql.Composable:
        try:
            return self._condition(node, 0)
        except _FilterError as exc:
            raise InvalidParameter(f"filter: {exc}", parameter=PARAMETER) from None

    # -- conditions ------------------------------------------------------------------------------------
    def _enter(self, depth: int) -> None:
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise _FilterError(f"the filter nests deeper than {MAX_DEPTH} levels; simplify it.")
        if self.nodes > MAX_NODES:
            raise _FilterError(f"the filter has more than {MAX_NODES:,} terms; simplify it.")

    def _condition(self, node: Any, depth: int) -> sql.Composable:  # noqa: C901 - one branch per node type
        self._enter(depth)
        d = depth + 1
        if isinstance(node, ast.And | ast.Or):
            # a chain of the same operator (a OR b OR c ...) is one level, however long
            kind = type(node)
            operands, stack = [], [node]
            while stack:
                current = stack.pop()
                if type(current) is kind:
                    stack += [current.rhs, current.lhs]
                else:
                    operands.append(current)
            op = sql.SQL(" AND " if kind is ast.And else " OR ")
            return sql.SQL("({})").format(op.join([self._condition(o, d) for o in operands]))
        if isinstance(node, ast.Not):
            return sql.SQL("(NOT {})").format(self._condition(node.sub_node, d))
        if isinstance(node, ast.Include):
            return sql.SQL("FALSE" if node.not_ else "TRUE")
        if type(node) in _COMPARISONS:
            lhs, rhs = self._comparable(node.lhs, node.rhs, d)
            if not isinstance(node, ast.Equal | ast.NotEqual):
                self._check_ordered(lhs, _COMPARISONS[type(node)])
            return sql.SQL("({} {} {})").format(lhs.sql, sql.SQL(_COMPARISONS[type(node)]), rhs.sql)
        if isinstance(node, ast.Between):
            lhs = self._operand(node.lhs, d)
            low = self._coerce(self._operand(node.low, d), lhs)
            high = self._coerce(self._operand(node.high, d), lhs)
            for bound in (low, high):
                self._check_compatible(lhs, bound, "BETWEEN")
            self._check_ordered(lhs, "BETWEEN")
            neg = sql.SQL(" NOT" if node.not_ else "")
            return sql.SQL("({}{} BETWEEN {} AND {})").format(lhs.sql, neg, low.sql, high.sql)
        if isinstance(node, ast.Like):
            lhs = self._operand(node.lhs, d)
            pattern = self._operand(node.pattern, d)
            if lhs.kind != "text" or pattern.kind != "text":
                raise _FilterError("LIKE compares text: use it on a text property with a quoted pattern.")
            if pattern.is_literal and (len(pattern.literal) - len(pattern.literal.rstrip("\\"))) % 2:
                raise _FilterError("the LIKE pattern ends with the escape character \\; write \\\\ for a "
                                   "backslash.")
            neg = sql.SQL(" NOT" if node.not_ else "")
            return sql.SQL("({}{} LIKE {})").format(lhs.sql, neg, pattern.sql)
        if isinstance(node, ast.In):
            lhs = self._operand(node.lhs, d)
            if not node.sub_nodes or len(node.sub_nodes) > MAX_IN:
                raise _FilterError(f"IN takes 1 to {MAX_IN:,} values.")
            items = []
            for sub in node.sub_nodes:
                item = self._coerce(self._operand(sub, d), lhs)
                self._check_compatible(lhs, item, "IN")
                items.append(item.sql)
            neg = sql.SQL(" NOT" if node.not_ else "")
            return sql.SQL("({}{} IN ({}))").format(lhs.sql, neg, sql.SQL(", ").join(items))
        if isinstance(node, ast.IsNull):
            lhs = self._operand(node.lhs, d)
            return sql.SQL("({} IS {}NULL)").format(lhs.sql, sql.SQL("NOT " if node.not_ else ""))
        if isinstance(node, ast.SpatialComparisonPredicate):
            name = next(k for k, v in _SPATIAL_NODES.items() if isinstance(node, v))
            a, b = self._geometry(node.lhs, d), self._geometry(node.rhs, d)
            return sql.SQL("{}({}, {})").format(sql.SQL(SPATIAL[name]), a, b)
        if isinstance(node, ast.Relate):
            if not re.fullmatch(r"[012TF*]{9}", str(node.pattern), re.IGNORECASE):
                raise _FilterError("RELATE needs a DE-9IM pattern of 9 characters from 0, 1, 2, T, F and *.")
            a, b = self._geometry(node.lhs, d), self._geometry(node.rhs, d)
            return sql.SQL("ST_Relate({}, {}, {})").format(a, b, self.binder.bind(str(node.pattern).upper()))
        if isinstance(node, ast.BBox):
            env = self._envelope((node.minx, node.miny, node.maxx, node.maxy))
            return sql.SQL("ST_Intersects({}, {})").format(self._geometry(node.lhs, d), env)
        if isinstance(node, DWithin):
            factor = DISTANCE_UNITS.get(node.units.lower())
            if factor is None:
                raise _FilterError(f"S_DWITHIN: unknown distance unit {node.units!r}; use meters or kilometers.")
            distance = node.distance * factor
            if not 0 <= distance <= 1_000_000:
                raise _FilterError("S_DWITHIN: the distance must lie between 0 and 1,000 km.")
            a, b = self._geometry(node.lhs, d), self._geometry(node.rhs, d)
            return sql.SQL("ST_DWithin({}, {}, {})").format(a, b, self.binder.bind(distance))
        if isinstance(node, TemporalCall):
            return self._temporal(node, d)
        if isinstance(node, ast.TemporalPredicate):
            raise _FilterError("write temporal functions as T_NAME(a, b), "
                               "e.g. T_AFTER(decided_on, DATE('2020-01-01')).")
        if isinstance(node, ast.Node):
            raise _FilterError(f"{type(node).__name__} is not supported in filters.")
        raise _FilterError("the filter must be a condition (a comparison, a predicate or a combination of them), "
                           f"not a bare value {node!r}.")

    # -- operands ---------------------------------------------------------------------------------------
    def _operand(self, node: Any, depth: int) -> _Typed:  # noqa: C901 - one branch per node type
        self._enter(depth)
        d = depth + 1
        if isinstance(node, ast.Attribute):
            name = node.name
            if name in GEOMETRY_NAMES:
                return _Typed(sql.SQL("t.geom"), "geometry")
            f = self.columns.field(name)
            if f is None:
                raise _FilterError(
                    f"unknown property {name!r}; the queryables are: {', '.join(self.columns.names)}, geometry."
                )
            return _Typed(self.columns.expr(name), _FIELD_KINDS[f.type])
        if isinstance(node, bool):
            return self._literal(node, "bool")
        if isinstance(node, int | float):
            return self._literal(node, "number")
        if isinstance(node, str):
            return self._literal(node, "text")
        if isinstance(node, datetime):
            return self._literal(_utc_date(node), "date")
        if isinstance(node, date):
            return self._literal(node, "date")
        if isinstance(node, values.Geometry | values.Envelope):
            return _Typed(self._geometry(node, depth), "geometry")
        if isinstance(node, values.Interval):
            raise _FilterError("an INTERVAL may only be used in a temporal function such as T_INTERSECTS.")
        if isinstance(node, ast.Function):
            name = node.name.lower()
            if name == "lower" and len(node.arguments) == 1:  # CASEI
                arg = self._operand(node.arguments[0], d)
                if arg.kind != "text":
                    raise _FilterError("CASEI takes a text property or a quoted text.")
                return _Typed(sql.SQL("lower({})").format(arg.sql), "text")
            if name == "bbox":
                return _Typed(self._geometry(node, depth), "geometry")
            raise _FilterError(
                f"function {node.name!r} is not supported; the functions are: {', '.join(FUNCTIONS)} (and the "
                f"S_ and T_ predicates)."
            )
        if type(node) in _ARITHMETIC:
            lhs, rhs = self._operand(node.lhs, d), self._operand(node.rhs, d)
            if lhs.kind != "number" or rhs.kind != "number":
                raise _FilterError("arithmetic (+ - * /) works on numbers only.")
            op = sql.SQL(_ARITHMETIC[type(node)])
            if isinstance(node, ast.Div):
                return _Typed(sql.SQL("({}::float8 / NULLIF({}, 0))").format(lhs.sql, rhs.sql), "number")
            return _Typed(sql.SQL("({}::float8 {} {})").format(lhs.sql, op, rhs.sql), "number")
        raise _FilterError(f"{type(node).__name__} cannot be used as a value here.")

    def _literal(self, value: Any, kind: str) -> _Typed:
        return _Typed(self.binder.bind(value), kind, value, True)

    def _coerce(self, value: _Typed, target: _Typed) -> _Typed:
        """A quoted date compared with a date property becomes a date ('2020-01-01' as DATE('2020-01-01'))."""
        if target.kind == "date" and value.is_literal and value.kind == "text":
            try:
                return self._literal(date.fromisoformat(value.literal), "date")
            except ValueError:
                raise _FilterError(f"{value.literal!r} is not a date (YYYY-MM-DD).") from None
        return value

    def _comparable(self, lhs_node: Any, rhs_node: Any, depth: int) -> tuple[_Typed, _Typed]:
        lhs, rhs = self._operand(lhs_node, depth), self._operand(rhs_node, depth)
        lhs, rhs = self._coerce(lhs, rhs), self._coerce(rhs, lhs)
        self._check_compatible(lhs, rhs, "comparison")
        return lhs, rhs

    @staticmethod
    def _check_compatible(a: _Typed, b: _Typed, what: str) -> None:
        if a.kind != b.kind:
            raise _FilterError(f"{what} of a {a.kind} with a {b.kind}: compare values of the same type.")
        if a.kind == "geometry":
            raise _FilterError("compare geometries with the spatial functions (S_INTERSECTS, S_WITHIN, ...).")

    @staticmethod
    def _check_ordered(a: _Typed, what: str) -> None:
        if a.kind in ("bool", "geometry"):
            raise _FilterError(f"{what} needs ordered values (numbers, text or dates), not a {a.kind}.")

    # -- geometry --------------------------------------------------------------------------------------
    def _geometry(self, node: Any, depth: int) -> sql.Composable:
        if isinstance(node, ast.Attribute):
            if node.name in GEOMETRY_NAMES:
                return sql.SQL("t.geom")
            raise _FilterError(f"{node.name!r} is not a geometry; the spatial property is 'geometry'.")
        if isinstance(node, values.Envelope):
            # pygeofilter reads ENVELOPE(a b c d) as x1 x2 y1 y2 (CQL1 order)
            return self._envelope((node.x1, node.y1, node.x2, node.y2))
        if isinstance(node, ast.Function) and node.name.lower() == "bbox":
            args = node.arguments
            if len(args) not in (4, 6) or not all(isinstance(a, int | float) for a in args):
                raise _FilterError("BBOX takes 4 (or 6) numbers: minx, miny, maxx, maxy.")
            return self._envelope(tuple(float(a) for a in args))
        if isinstance(node, values.Geometry):
            geo = dict(node.geometry)
            if "srid" in geo:
                raise _FilterError("SRID=...; prefixes are not supported: give the CRS in the 'filter-crs' parameter.")
            try:
                geom = shapely.force_2d(shapely.geometry.shape(geo))
            except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as exc:
                raise _FilterError(f"the geometry could not be read ({exc}).") from None
            return self._bind_geometry(geom)
        raise _FilterError("spatial functions compare the property 'geometry' with a WKT geometry or BBOX(...).")

    def _envelope(self, bounds: tuple[float, ...]) -> sql.Composable:
        try:
            box = Bbox.of(bounds, self.filter_crs, PARAMETER)
        except InvalidParameter as exc:
            raise _FilterError(exc.message.removeprefix("filter: ")) from None
        except shapely.errors.ShapelyError as exc:
            raise _FilterError(f"the geometry could not be used ({exc}).") from None
        return geometry_sql(self.binder.bind(box.wkb), box.srid)

    def _bind_geometry(self, geom: Any) -> sql.Composable:
        try:
            wkb, srid = prepare_geometry(geom, self.filter_crs, PARAMETER)
        except InvalidParameter as exc:
            raise _FilterError(exc.message.removeprefix("filter: ")) from None
        except shapely.errors.ShapelyError as exc:
            raise _FilterError(f"the geometry could not be used ({exc}).") from None
        return geometry_sql(self.binder.bind(wkb), srid)

    # -- time ------------------------------------------------------------------------------------------
    def _temporal(self, node: TemporalCall, depth: int) -> sql.Composable:
        if node.op not in TEMPORAL_SUPPORTED:
            raise _FilterError(f"{node.op} is not supported; the temporal functions are: "
                               f"{', '.join(TEMPORAL_SUPPORTED)}.")
        a_lo, a_hi = self._period(node.lhs, depth)
        b_lo, b_hi = self._period(node.rhs, depth)
        if node.op in ("T_INTERSECTS", "T_DISJOINT"):
            terms: list[sql.Composable] = []
            if a_lo is not None and b_hi is not None:
                terms.append(sql.SQL("{} <= {}").format(a_lo, b_hi))
            if b_lo is not None and a_hi is not None:
                terms.append(sql.SQL("{} <= {}").format(b_lo, a_hi))
            intersects = sql.SQL(" AND ").join(terms or [sql.SQL("TRUE")])
            if node.op == "T_DISJOINT":
                return sql.SQL("(NOT ({}))").format(intersects)
            return sql.SQL("({})").format(intersects)
        if node.op == "T_BEFORE":
            if a_hi is None or b_lo is None:
                return sql.SQL("FALSE")
            return sql.SQL("({} < {})").format(a_hi, b_lo)
        if node.op == "T_AFTER":
            if a_lo is None or b_hi is None:
                return sql.SQL("FALSE")
            return sql.SQL("({} > {})").format(a_lo, b_hi)
        # T_EQUALS
        if None in (a_lo, a_hi, b_lo, b_hi):
            return sql.SQL("FALSE")
        return sql.SQL("({} = {} AND {} = {})").format(a_lo, b_lo, a_hi, b_hi)

    def _period(self, node: Any, depth: int) -> tuple[sql.Composable | None, sql.Composable | None]:
        """A temporal operand as closed day bounds (None: open); properties are dates (day instants)."""
        if isinstance(node, values.Interval):
            bounds: list[sql.Composable | None] = []
            for v in (node.start, node.end):
                if v is None:
                    bounds.append(None)
                elif isinstance(v, datetime):
                    bounds.append(self.binder.bind(_utc_date(v)))
                elif isinstance(v, date):
                    bounds.append(self.binder.bind(v))
                else:
                    raise _FilterError("INTERVAL bounds are dates, timestamps or '..'.")
            return bounds[0], bounds[1]
        value = self._operand(node, depth + 1)
        if value.kind != "date":
            raise _FilterError("temporal functions compare date properties with DATE(...), TIMESTAMP(...) or "
                               "INTERVAL(...).")
        return value.sql, value.sql


_SPATIAL_NODES = {
    "s_intersects": ast.GeometryIntersects,
    "s_equals": ast.GeometryEquals,
    "s_disjoint": ast.GeometryDisjoint,
    "s_touches": ast.GeometryTouches,
    "s_within": ast.GeometryWithin,
    "s_overlaps": ast.GeometryOverlaps,
    "s_crosses": ast.GeometryCrosses,
    "s_contains": ast.GeometryContains,
}


def _utc_date(value: datetime) -> date:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.date()


def to_sql(ast_root: Any, columns: Columns, binder: Binder, filter_crs: Crs) -> sql.Composable:
    """The SQL condition of a parsed filter for a layer's visible columns."""
    return Translator(columns, binder, filter_crs).translate(ast_root)
