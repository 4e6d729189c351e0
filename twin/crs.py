"""Coordinate reference systems the twin speaks, and how client geometries reach storage (EPSG:28992).

The twin stores everything in RD New (EPSG:28992). Clients speak CRS84 (lon/lat), EPSG:4326 (lat/lon:
the authority's axis order), RD New or Web Mercator. A client geometry is validated, clipped to the
region where the projection to RD New is meaningful, densified (so that straight edges in the client's
CRS stay straight after projection) and handed to PostGIS as WKB with its SRID; PostGIS does the
transformation, so input and output use the same PROJ pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from twin.errors import InvalidParameter

STORAGE_SRID = 28992
MAX_VERTICES = 10_000


@dataclass(frozen=True)
class Crs:
    """A CRS the API accepts and serves: its URI, SRID, axis order and output precision."""

    uri: str
    srid: int
    label: str
    lat_lon: bool  # axis order latitude, longitude (EPSG:4326): coordinates are swapped on the wire
    decimals: int  # coordinate decimals in responses
    domain: tuple[float, float, float, float]  # (minx, miny, maxx, maxy) in x/y order where RD New is valid

    @property
    def geographic(self) -> bool:
        return self.srid == 4326

    @property
    def header(self) -> str:
        """The value of the ``Content-Crs`` header."""
        return f"<{self.uri}>"


# Where the oblique stereographic RD projection gives sane values: a generous box around the Netherlands.
# Client geometries are clipped to it; all stored data lies well inside it.
_LONLAT_DOMAIN = (-10.0, 40.0, 25.0, 65.0)

CRS84 = Crs("http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326, "CRS84", False, 7, _LONLAT_DOMAIN)
EPSG_4326 = Crs("http://www.opengis.net/def/crs/EPSG/0/4326", 4326, "EPSG:4326", True, 7, _LONLAT_DOMAIN)
RD_NEW = Crs("http://www.opengis.net/def/crs/EPSG/0/28992", 28992, "EPSG:28992", False, 3,
             (-1_000_000.0, -1_000_000.0, 1_300_000.0, 1_900_000.0))
WEB_MERCATOR = Crs("http://www.opengis.net/def/crs/EPSG/0/3857", 3857, "EPSG:3857", False, 2,
                   (-1_113_195.0, 4_865_942.0, 2_782_987.0, 9_659_531.0))

SUPPORTED: tuple[Crs, ...] = (CRS84, EPSG_4326, RD_NEW, WEB_MERCATOR)
SUPPORTED_URIS: list[str] = [c.uri for c in SUPPORTED]

_ALIASES: dict[str, Crs] = {}
for _crs in SUPPORTED:
    _code = _crs.uri.rsplit("/", 1)[-1]
    _authority = "OGC" if _crs is CRS84 else "EPSG"
    for _alias in (
        _crs.uri,
        _crs.uri.replace("http://", "https://"),
        f"{_authority}:{_code}",
        f"[{_authority}:{_code}]",
        f"urn:ogc:def:crs:{_authority}::{_code}",
        f"urn:ogc:def:crs:{_authority}:1.3:{_code}",
    ):
        _ALIASES[_alias.lower()] = _crs


def parse_crs(value: str, parameter: str = "crs") -> Crs:
    """The CRS named by a URI (``http://www.opengis.net/def/crs/EPSG/0/4326``), a CURIE (``[EPSG:4326]``)
    or a code (``EPSG:28992``); InvalidParameter naming the supported ones otherwise."""
    crs = _ALIASES.get(value.strip().lower())
    if crs is None:
        raise InvalidParameter(
            f"{parameter}={value!r} is not a supported CRS; use one of: {', '.join(SUPPORTED_URIS)}.",
            parameter=parameter,
        )
    return crs


def count_vertices(geom: BaseGeometry) -> int:
    """Number of coordinate tuples in a geometry."""
    return int(shapely.get_num_coordinates(geom))


def validate_geometry(geom: BaseGeometry, crs: Crs, parameter: str) -> BaseGeometry:
    """Check a client geometry in its own CRS: finite, within the CRS's valid range, at most
    :data:`MAX_VERTICES` vertices, and valid (OGC simple features); returns it in x/y (lon/lat) order."""
    if geom.is_empty:
        raise InvalidParameter(f"{parameter}: the geometry is empty.", parameter=parameter)
    n = count_vertices(geom)
    if n > MAX_VERTICES:
        raise InvalidParameter(
            f"{parameter}: the geometry has {n:,} vertices; at most {MAX_VERTICES:,} are allowed (simplify it).",
            parameter=parameter,
        )
    if crs.lat_lon:
        geom = shapely.transform(geom, lambda c: c[:, ::-1])
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise InvalidParameter(f"{parameter}: the geometry has non-finite coordinates.", parameter=parameter)
    if crs.geographic:
        lon, lat = coords[:, 0], coords[:, 1]
        if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
            order = "latitude, longitude" if crs.lat_lon else "longitude, latitude"
            raise InvalidParameter(
                f"{parameter}: coordinates out of range for {crs.label} (axis order {order}): longitude must lie "
                "within -180..180 and latitude within -90..90.",
                parameter=parameter,
            )
    if not geom.is_valid:
        raise InvalidParameter(
            f"{parameter}: the geometry is not valid ({explain_validity(geom)}); repair it, e.g. remove "
            "self-intersections.",
            parameter=parameter,
        )
    return geom


def prepare_geometry(geom: BaseGeometry, crs: Crs, parameter: str) -> tuple[bytes, int]:
    """A client geometry ready for PostGIS: validated, clipped to the CRS's domain, densified; returns
    (WKB in x/y order, SRID). Wrap it in ``ST_Transform(ST_GeomFromWKB(wkb, srid), 28992)``.

    Densifying into 64 steps over the geometry's size keeps the error of projecting a long straight edge
    below a few centimetres at the scale of a municipality.
    """
    geom = validate_geometry(geom, crs, parameter)
    domain = box(*crs.domain)
    if not domain.contains(geom):
        geom = geom.intersection(domain)
        if geom.is_empty:
            # Entirely outside the region of the twin: a geometry that matches nothing.
            geom = shapely.Point(crs.domain[0], crs.domain[1]).buffer(1e-9 if crs.geographic else 1e-3)
    minx, miny, maxx, maxy = geom.bounds
    step = max(maxx - minx, maxy - miny) / 64
    if step > 0 and crs.srid != STORAGE_SRID:
        geom = shapely.segmentize(geom, step)
    return shapely.to_wkb(geom), crs.srid


def bbox_geometry(values: tuple[float, ...], crs: Crs, parameter: str = "bbox") -> BaseGeometry:
    """The polygon of a bbox given as (minx, miny, maxx, maxy) in the CRS's own axis order (lat/lon for
    EPSG:4326), in that same order for :func:`prepare_geometry`; 3D boxes (six numbers) drop their heights."""
    if len(values) == 6:
        values = (values[0], values[1], values[3], values[4])
    a0, a1, b0, b1 = values
    if a0 > b0 or a1 > b1:
        order = "lat,lon" if crs.lat_lon else "x,y"
        raise InvalidParameter(
            f"{parameter}: the lower corner ({a0:g}, {a1:g}) must lie below and left of the upper corner "
            f"({b0:g}, {b1:g}) in axis order {order} of {crs.label}; boxes across the antimeridian are not "
            "supported.",
            parameter=parameter,
        )
    eps = 1e-9 if crs.geographic else 1e-4  # a degenerate box (a point or a line) still selects what it touches
    return box(a0, a1, max(b0, a0 + eps), max(b1, a1 + eps))


@lru_cache(maxsize=8)
def transformer(src: int, dst: int) -> Transformer:
    """A cached pyproj transformer in x/y (lon/lat) order."""
    return Transformer.from_crs(f"EPSG:{src}", f"EPSG:{dst}", always_xy=True)


def to_storage(geom: BaseGeometry, crs: Crs, parameter: str) -> BaseGeometry:
    """A client geometry in RD New: validated, clipped and densified as in :func:`prepare_geometry`, then
    projected with pyproj (for code that needs the RD geometry itself rather than SQL)."""
    wkb, srid = prepare_geometry(geom, crs, parameter)
    g = shapely.from_wkb(wkb)
    if srid == STORAGE_SRID:
        return g
    t = transformer(srid, STORAGE_SRID)
    out = shapely.transform(g, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise InvalidParameter(f"{parameter}: the geometry cannot be projected to RD New.", parameter=parameter)
    return out if out.is_valid else shapely.make_valid(out)
