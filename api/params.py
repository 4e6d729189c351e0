"""Query parameters of the feature endpoints, validated once into :class:`api.query.ItemsQuery`.

Every malformed value is a 400 naming the parameter and what is allowed; unknown parameters are a 400
too (OGC API Features allows it, and it catches typos such as ``bbbox``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from starlette.datastructures import QueryParams

from api import cql
from api.query import Columns, DateRange, Format, ItemsQuery
from layers.registry import FieldSpec
from twin.crs import CRS84, bbox_geometry, parse_crs, prepare_geometry
from twin.errors import InvalidParameter

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_OFFSET = 1_000_000_000
MAX_SORT_FIELDS = 5
FORMATS: dict[str, Format] = {"json": "json", "geojson": "json", "csv": "csv", "gpkg": "gpkg"}

ITEMS_PARAMETERS = (
    "f", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "properties", "sortby", "filter",
    "filter-lang", "filter-crs",
)
ITEM_PARAMETERS = ("f", "crs", "properties")


def check_known(params: QueryParams, allowed: Iterable[str]) -> None:
    """400 naming unknown or repeated query parameters."""
    allowed = set(allowed)
    unknown = sorted({k for k in params.keys() if k not in allowed})
    if unknown:
        raise InvalidParameter(
            f"unknown query parameter(s): {', '.join(unknown)}; allowed here: {', '.join(sorted(allowed))}.",
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


def parse_numbers(value: str, parameter: str, counts: tuple[int, ...]) -> tuple[float, ...]:
    parts = value.split(",")
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) not in counts or not all(math.isfinite(n) for n in numbers):
        raise InvalidParameter(
            f"{parameter}={value!r} must be {' or '.join(str(c) for c in counts)} comma-separated numbers.",
            parameter=parameter,
        )
    return numbers


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


def parse_items(params: QueryParams, columns: Columns) -> ItemsQuery:
    """Validate the query of ``/collections/{id}/items`` for a caller who sees ``columns``."""
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
    if offset > MAX_OFFSET:
        raise InvalidParameter(f"offset must be at most {MAX_OFFSET:,}.", parameter="offset")
    crs = parse_crs(get("crs") or CRS84.uri, "crs")
    bbox = None
    if get("bbox") is not None:
        bbox_crs = parse_crs(get("bbox-crs") or CRS84.uri, "bbox-crs")
        numbers = parse_numbers(str(get("bbox")), "bbox", (4, 6))
        bbox = prepare_geometry(bbox_geometry(numbers, bbox_crs, "bbox"), bbox_crs, "bbox")
    elif get("bbox-crs") is not None:
        parse_crs(str(get("bbox-crs")), "bbox-crs")
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
    return ItemsQuery(
        limit=limit, offset=offset, limit_given=limit_given, bbox=bbox, crs=crs, datetime=dt,
        properties=properties, sortby=sortby, equals=equals, filter=ast, filter_crs=filter_crs, format=fmt,
    )


def parse_item(params: QueryParams, columns: Columns) -> ItemsQuery:
    """Validate the query of ``/collections/{id}/items/{featureId}``."""
    check_known(params, ITEM_PARAMETERS)
    fmt = parse_format(params.get("f"))
    if fmt != "json":
        raise InvalidParameter("f: a single feature is served as GeoJSON only (f=json).", parameter="f")
    crs = parse_crs(params.get("crs") or CRS84.uri, "crs")
    properties = parse_field_list(str(params.get("properties")), "properties", columns) \
        if params.get("properties") is not None else None
    return ItemsQuery(crs=crs, properties=properties)
