"""The one ``bbox`` parser: a box given as text (``bbox``, in ``bbox-crs``) or as numbers (CQL2's
``BBOX(...)``), validated and ready for PostGIS. Items, quality pages, aggregates and filters all take
their boxes from here; :data:`api.params.BboxDep` is the FastAPI dependency over it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from twin.crs import CRS84, Crs, bbox_geometry, parse_crs, prepare_geometry
from twin.errors import InvalidParameter


@dataclass(frozen=True)
class Bbox:
    """A client box as (densified, clipped) WKB polygon in its CRS: ``ST_GeomFromWKB(wkb, srid)``."""

    wkb: bytes
    srid: int

    @classmethod
    def of(cls, values: tuple[float, ...], crs: Crs, parameter: str = "bbox") -> Bbox:
        """The box (minx, miny, maxx, maxy[, and heights]) in ``crs``'s axis order."""
        wkb, srid = prepare_geometry(bbox_geometry(values, crs, parameter), crs, parameter)
        return cls(wkb, srid)


def parse_numbers(value: str, parameter: str, counts: tuple[int, ...]) -> tuple[float, ...]:
    """``counts`` comma-separated finite numbers; 400 naming the parameter otherwise."""
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


def parse_bbox(bbox: str | None, bbox_crs: str | None) -> Bbox | None:
    """The ``bbox`` parameter (4 or 6 numbers) in ``bbox-crs`` (default CRS84); None without a bbox (a
    ``bbox-crs`` alone is still checked)."""
    if bbox is None:
        if bbox_crs is not None:
            parse_crs(bbox_crs, "bbox-crs")
        return None
    crs = parse_crs(bbox_crs or CRS84.uri, "bbox-crs")
    return Bbox.of(parse_numbers(bbox, "bbox", (4, 6)), crs, "bbox")
