"""The parameter layer: every request parameter is parsed and validated here, once, into the query
models next to their parsers (:class:`ItemsQuery` of the feature endpoints, tiles, coverage points and
bodies); ``bbox`` through the one parser of :mod:`api.bbox` (``BboxDep`` for routes with declared
parameters).

Every malformed value is a 400 naming the parameter and what is allowed; unknown parameters are a 400
too (OGC API Features allows it, and it catches typos such as ``bbbox``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import shapely
import shapely.geometry
from fastapi import Depends, Query, Request
from starlette.datastructures import QueryParams

from api import cql
from api.bbox import Bbox, parse_bbox
from api.columns import Columns
from api.errors import PayloadTooLarge
from api.paging import Cursors
from layers.registry import FieldSpec
from twin.crs import CRS84, Crs, parse_crs
from twin.errors import InvalidParameter, NotFound
from twin.history import KNOWN_PARAM, VALID_PARAM, AsOf, parse_as_of

Format = Literal["json", "csv", "gpkg"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000_000
MAX_SORT_FIELDS = 5
FORMATS: dict[str, Format] = {"json": "json", "geojson": "json", "csv": "csv", "gpkg": "gpkg"}
MAX_ZOOM = 24  # of the WebMercatorQuad tiles (vector and coverage)
MAX_BODY_BYTES = 1_048_576  # of a posted geometry


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
    bbox: Bbox | None = None
    crs: Crs | None = None
    datetime: DateRange | None = None
    properties: tuple[str, ...] | None = None  # None: all visible fields
    sortby: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    equals: tuple[tuple[str, Any], ...] = ()
    filter: Any = None  # parsed CQL2 AST
    filter_crs: Crs | None = None
    format: Format = "json"
    after: tuple[Any, ...] | None = None  # from ``cursor``: the sort values and key of the last row seen
    backward: bool = False  # the cursor of a prev link: the page before ``after``, in reverse order
    cursors: Cursors | None = None  # signs the next page's cursor (None: offset paging, as the quality pages)
    as_of: AsOf | None = None  # geldigOp / beschikbaarOp: the register layer as of then (None: current state)


def qparam(name: str, description: str, schema: dict[str, Any], style: str | None = None) -> dict[str, Any]:
    """An OpenAPI query parameter (optional), for ``openapi_extra`` of routes that parse their query here."""
    p: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description,
                         "schema": schema}
    if style:
        p.update({"style": style, "explode": False})
    return p


ITEMS_OPENAPI = {"parameters": [
    qparam("limit", f"Features per page (default {DEFAULT_LIMIT}; larger values are capped at "
           f"{MAX_LIMIT:,}).", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    qparam("offset", "Features to skip, up to a cap (TWIN_MAX_OFFSET, default 10,000); page deeper by following "
           "the next links.", {"type": "integer", "minimum": 0}),
    qparam("cursor", "Where the page starts: the opaque value of the previous page's next link (do not build "
           "it yourself).", {"type": "string"}),
    qparam("bbox", "minx,miny,maxx,maxy in bbox-crs (default CRS84: lon,lat).",
           {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6}, style="form"),
    qparam("bbox-crs", "CRS of bbox (URI).", {"type": "string", "format": "uri"}),
    qparam("crs", "CRS of the response geometries (URI): CRS84 (default), EPSG:4326 (lat/lon), EPSG:28992, "
           "EPSG:3857.", {"type": "string", "format": "uri"}),
    qparam("datetime", "Instant or interval on the layer's time field: 2024-01-01, 2024-01-01/2024-06-30, "
           "../2024-01-01, 2024-01-01/.. (ignored by layers without a time field).", {"type": "string"}),
    qparam("properties", "Comma-separated properties to return (empty: none).", {"type": "string"}),
    qparam("sortby", "Comma-separated +field or -field.", {"type": "string"}),
    qparam("filter", "CQL2 text filter, e.g. status = 'verleend' AND S_INTERSECTS(geometry, POINT(5.1 52.1)).",
           {"type": "string"}),
    qparam("filter-lang", "cql2-text (the default and only value).", {"type": "string", "enum": ["cql2-text"]}),
    qparam("filter-crs", "CRS of geometries in the filter (default CRS84).", {"type": "string", "format": "uri"}),
    qparam("f", "json (GeoJSON, default), csv or gpkg (GeoPackage).",
           {"type": "string", "enum": ["json", "csv", "gpkg"]}),
    qparam("geldigOp", "History (register layers only): the records as they were valid on this date "
           "(default today, or the day of beschikbaarOp); docs/history.md.", {"type": "string", "format": "date"}),
    qparam("beschikbaarOp", "History (register layers only): as the twin knew them at this moment (a date: at "
           "the end of that day; default now).", {"type": "string"}),
]}
ITEM_OPENAPI = {"parameters": [p for p in ITEMS_OPENAPI["parameters"]
                               if p["name"] in ("crs", "properties", "geldigOp", "beschikbaarOp")]}

ITEMS_PARAMETERS = (
    "f", "limit", "offset", "cursor", "bbox", "bbox-crs", "crs", "datetime", "properties", "sortby", "filter",
    "filter-lang", "filter-crs", VALID_PARAM, KNOWN_PARAM,
)
ITEM_PARAMETERS = ("f", "crs", "properties", VALID_PARAM, KNOWN_PARAM)


def check_known(params: QueryParams, allowed: Iterable[str]) -> None:
    """400 naming unknown or repeated query parameters."""
    allowed = set(allowed)
    unknown = sorted({k for k in params.keys() if k not in allowed})
    if unknown:
        raise InvalidParameter(
            f"unknown query parameter(s): {', '.join(unknown)}; allowed here: "
            f"{', '.join(sorted(allowed)) or 'none'}.",
            parameter=unknown[0],
        )
    for key in params.keys():
        if len(params.getlist(key)) > 1:
            raise InvalidParameter(f"parameter {key!r} is given more than once; give it once.", parameter=key)


def parse_int(value: str, parameter: str, minimum: int) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        raise InvalidParameter(f"{parameter}={value!r} is not an integer.", parameter=parameter) from None
    if n < minimum:
        raise InvalidParameter(f"{parameter} must be at least {minimum}, not {n}.", parameter=parameter)
    return n


def parse_instant(value: str, parameter: str, end: bool) -> date | None:
    """A date or RFC 3339 date-time, reduced to its UTC day; '..' or '' is an open end."""
    value = value.strip()
    if value in ("", ".."):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        dt = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidParameter(
            f"{parameter}: {value!r} is not a date (2024-01-31) or RFC 3339 date-time (2024-01-31T12:00:00Z).",
            parameter=parameter,
        ) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.date()


def parse_datetime(value: str) -> DateRange:
    """An instant (``2024-01-01``), an interval (``2024-01-01/2024-06-30``) or a half-open interval
    (``../2024-01-01``, ``2024-01-01/..``)."""
    p = "datetime"
    if "/" in value:
        first, _, second = value.partition("/")
        if "/" in second:
            raise InvalidParameter(f"datetime={value!r}: an interval has one '/'.", parameter=p)
        start, end = parse_instant(first, p, False), parse_instant(second, p, True)
        if start is not None and end is not None and start > end:
            raise InvalidParameter(f"datetime={value!r}: the start lies after the end.", parameter=p)
        return DateRange(start, end)
    if value.strip() in ("", ".."):
        raise InvalidParameter("datetime: give an instant or an interval such as 2024-01-01/.. .", parameter=p)
    day = parse_instant(value, p, False)
    return DateRange(day, day)


def parse_value(f: FieldSpec, value: str, parameter: str) -> Any:
    """A property-filter value as the field's type."""
    try:
        if f.type == "int":
            return int(value)
        if f.type == "float":
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if f.type == "bool":
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if f.type == "date":
            return date.fromisoformat(value)
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "bool": "true or false", "date": "a date (YYYY-MM-DD)"}
        raise InvalidParameter(f"{parameter}={value!r}: the property is {kind[f.type]}.", parameter=parameter) from None
    return value


def parse_field_list(value: str, parameter: str, columns: Columns) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if columns.field(n) is None]
    if unknown:
        raise InvalidParameter(
            f"{parameter}: unknown propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
            f"choose from: {', '.join(columns.names)}.",
            parameter=parameter,
        )
    return tuple(dict.fromkeys(names))


def parse_sortby(value: str, columns: Columns) -> tuple[tuple[str, bool], ...]:
    keys = []
    for part in value.split(","):
        # '+' in a URL decodes to a space: ' name' is '+name'
        text = part.strip()
        desc = text.startswith("-")
        name = text.lstrip("+-").strip()
        if name.endswith((" A", " D", ":A", ":D")):  # CQL-style suffixes
            desc = name.endswith("D")
            name = name[:-2].strip()
        keys.append((name, desc))
    if not keys or any(not n for n, _ in keys) or len(keys) > MAX_SORT_FIELDS:
        raise InvalidParameter(
            f"sortby={value!r}: give 1 to {MAX_SORT_FIELDS} fields as +field or -field, comma-separated.",
            parameter="sortby",
        )
    parse_field_list(",".join(n for n, _ in keys), "sortby", columns)
    return tuple(keys)


def parse_format(value: str | None) -> Format:
    if value is None:
        return "json"
    fmt = FORMATS.get(value.strip().lower())
    if fmt is None:
        raise InvalidParameter(f"f={value!r} is not supported; use json, csv or gpkg.", parameter="f")
    return fmt


def parse_items(params: QueryParams, columns: Columns, max_offset: int = MAX_OFFSET,
                cursors: Cursors | None = None) -> ItemsQuery:
    """Validate the query of ``/collections/{id}/items`` for a caller who sees ``columns``: ``offset`` up to
    ``max_offset``; ``cursor`` checked and decoded with ``cursors`` (keyset paging, see :mod:`api.paging`)."""
    field_names = [n for n in columns.names if n not in ITEMS_PARAMETERS]
    check_known(params, [*ITEMS_PARAMETERS, *field_names])
    get = params.get
    fmt = parse_format(get("f"))
    limit_given = get("limit") is not None
    limit = DEFAULT_LIMIT
    if limit_given:
        # OGC API Features 1.0.1: a limit above the maximum is not an error; the maximum applies.
        limit = min(parse_int(str(get("limit")), "limit", 1), MAX_LIMIT)
    elif fmt != "json":
        limit = MAX_LIMIT  # an export without a limit: the whole result, up to the maximum
    offset = parse_int(get("offset") or "0", "offset", 0)
    if offset > max_offset:
        if max_offset < MAX_OFFSET:
            raise InvalidParameter(
                f"offset {offset:,} is beyond the {max_offset:,} this API pages by offset: follow the next links "
                "instead (rel=next; they carry a cursor and are as fast at any depth), or download the whole "
                "layer (rel=enclosure of the collection).", parameter="offset")
        raise InvalidParameter(f"offset must be at most {max_offset:,}.", parameter="offset")
    crs = parse_crs(get("crs") or CRS84.uri, "crs")
    bbox = parse_bbox(get("bbox"), get("bbox-crs"))
    dt = parse_datetime(str(get("datetime"))) if get("datetime") is not None else None
    properties = parse_field_list(str(get("properties")), "properties", columns) \
        if get("properties") is not None else None
    sortby = parse_sortby(str(get("sortby")), columns) if get("sortby") is not None else ()
    equals = tuple(
        (name, parse_value(f, str(get(name)), name))
        for f in columns.fields
        if (name := f.name) in field_names and get(name) is not None
    )
    lang = get("filter-lang")
    if lang is not None and lang.strip().lower() != "cql2-text":
        raise InvalidParameter(f"filter-lang={lang!r} is not supported; use cql2-text.", parameter="filter-lang")
    filter_crs = parse_crs(get("filter-crs") or CRS84.uri, "filter-crs")
    ast = cql.parse(str(get("filter"))) if get("filter") is not None else None
    after, backward = None, False
    if get("cursor") is not None:
        if cursors is None:
            raise InvalidParameter("cursor is not supported here; page with offset.", parameter="cursor")
        if get("offset") is not None:
            raise InvalidParameter("give cursor or offset, not both: the next links carry a cursor alone.",
                                   parameter="cursor")
        types = [columns.spec.field(name).type for name, _ in sortby] + [key_type(columns)]
        after, backward = cursors.decode(str(get("cursor")), types)
        if backward and fmt != "json":
            raise InvalidParameter("a prev cursor pages GeoJSON only; use the next links for exports.",
                                   parameter="cursor")
    return ItemsQuery(
        limit=limit, offset=offset, limit_given=limit_given, bbox=bbox, crs=crs, datetime=dt,
        properties=properties, sortby=sortby, equals=equals, filter=ast, filter_crs=filter_crs, format=fmt,
        after=after, backward=backward, cursors=cursors, as_of=_as_of(params, columns),
    )


def _as_of(params: QueryParams, columns: Columns) -> AsOf | None:
    return parse_as_of(params.get(VALID_PARAM), params.get(KNOWN_PARAM), (columns.spec.table,))


def key_type(columns: Columns) -> str:
    """The field type of the layer's natural key (text when it is not a declared field)."""
    spec = columns.spec
    return spec.field(spec.key).type if spec.key in spec.field_names else "text"


def parse_item(params: QueryParams, columns: Columns) -> ItemsQuery:
    """Validate the query of ``/collections/{id}/items/{featureId}``."""
    check_known(params, ITEM_PARAMETERS)
    fmt = parse_format(params.get("f"))
    if fmt != "json":
        raise InvalidParameter("f: a single feature is served as GeoJSON only (f=json).", parameter="f")
    crs = parse_crs(params.get("crs") or CRS84.uri, "crs")
    properties = parse_field_list(str(params.get("properties")), "properties", columns) \
        if params.get("properties") is not None else None
    return ItemsQuery(crs=crs, properties=properties, as_of=_as_of(params, columns))


def bbox_param(
    bbox: str | None = Query(None, max_length=200, description="minx,miny,maxx,maxy in bbox-crs (default CRS84: "
                             "minlon,minlat,maxlon,maxlat); whole cells"),
    bbox_crs: str | None = Query(None, alias="bbox-crs", max_length=200, description="CRS of bbox (URI); default "
                                 "CRS84"),
) -> Bbox | None:
    """``bbox`` and ``bbox-crs`` as declared FastAPI parameters (an empty ``bbox`` is no box)."""
    return parse_bbox(bbox or None, bbox_crs)


BboxDep = Annotated[Bbox | None, Depends(bbox_param)]


# -- tiles -------------------------------------------------------------------------------------------------
def parse_tile(z: str, x: str, y: str) -> tuple[int, int, int]:
    """(z, x, y) of a WebMercatorQuad tile; 400 when malformed, 404 outside the tile matrix."""
    m = re.fullmatch(r"(\d{1,10})(?:\.(?:mvt|pbf))?", y)
    try:
        zi, xi = int(z), int(x)
        if m is None:
            raise ValueError
        yi = int(m.group(1))
    except ValueError:
        raise InvalidParameter(
            f"tile {z}/{x}/{y}: z, x and y must be non-negative integers.", parameter="tile"
        ) from None
    if not 0 <= zi <= MAX_ZOOM:
        raise NotFound(f"zoom level {zi} is outside WebMercatorQuad (0 to {MAX_ZOOM}).")
    n = 1 << zi
    if not (0 <= xi < n and 0 <= yi < n):
        raise NotFound(f"tile {zi}/{xi}/{yi} lies outside the tile matrix of zoom {zi} (0 to {n - 1}).")
    return zi, xi, yi


# -- coverages ---------------------------------------------------------------------------------------------
def parse_float(value: str | None, name: str, low: float, high: float) -> float:
    """A required number between ``low`` and ``high``."""
    if value is None:
        raise InvalidParameter(f"{name} is required.", parameter=name)
    try:
        number = float(value)
    except ValueError:
        raise InvalidParameter(f"{name}={value!r} is not a number.", parameter=name) from None
    if not (math.isfinite(number) and low <= number <= high):
        raise InvalidParameter(f"{name} must lie between {low:g} and {high:g}.", parameter=name)
    return number


def parse_year(value: str | None, known: list[int], required: bool = False) -> int | None:
    """The ``year`` of a coverage, one of ``known``; the latest when required and not given."""
    if value is None:
        if not required:
            return None
        if not known:
            raise NotFound("the coverage holds no years yet: load a deposition raster first.")
        return max(known)
    try:
        year = int(value)
    except ValueError:
        raise InvalidParameter(f"year={value!r} is not a year.", parameter="year") from None
    if year not in known:
        raise InvalidParameter(
            f"year {year} is not in the coverage; available: {', '.join(map(str, known)) or 'none yet'}.",
            parameter="year",
        )
    return year


def parse_geometry_crs(value: str | None) -> Crs:
    """The ``crs`` of a posted geometry: CRS84 (default), EPSG:4326 or EPSG:28992."""
    crs = parse_crs(value or CRS84.uri, "crs")
    if crs.srid not in (4326, 28992):
        raise InvalidParameter("crs: post the geometry in CRS84, EPSG:4326 or EPSG:28992.", parameter="crs")
    return crs


async def read_json_body(request: Request) -> Any:
    """The posted JSON, at most :data:`MAX_BODY_BYTES` (413 beyond, 400 when it is not JSON)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is {int(length):,} bytes; at most {MAX_BODY_BYTES:,} are allowed "
                              "(simplify the geometry).")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES:,} bytes (simplify the geometry).")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("the body is not JSON: send a GeoJSON Polygon or MultiPolygon (or a Feature with "
                               "one).", parameter="body") from None


def polygon_body(doc: Any) -> shapely.Geometry:
    """The (2D) Polygon or MultiPolygon of a posted GeoJSON geometry or Feature."""
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, dict) or doc.get("type") not in ("Polygon", "MultiPolygon"):
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InvalidParameter(
            f"the body must be a GeoJSON Polygon or MultiPolygon (or a Feature with one), not {kind!r}.",
            parameter="body",
        )
    try:
        geom = shapely.geometry.shape(doc)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, shapely.errors.ShapelyError) as exc:
        raise InvalidParameter(f"the geometry could not be read ({type(exc).__name__}: {exc}); check its "
                               "coordinates.", parameter="body") from None
    return shapely.force_2d(geom)


def as_of_param(
    geldigOp: str | None = Query(None, description="History: the register layers as valid on this date (the "
                                 "reference date; as_of defaults to it); docs/history.md"),
    beschikbaarOp: str | None = Query(None, description="History: as the twin knew them at this moment (a date: "
                                      "at the end of that day)"),
) -> AsOf | None:
    """``geldigOp`` / ``beschikbaarOp`` of an analysis (None: the current state), parsed once for every route
    that reads the register layers (the items parse them in :func:`parse_items`)."""
    return parse_as_of(geldigOp, beschikbaarOp)


AsOfDep = Annotated[AsOf | None, Depends(as_of_param)]
