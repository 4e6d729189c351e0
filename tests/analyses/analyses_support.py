"""Helpers for the analyses tests: inserting hand-built fixtures as the owner, a hand-made raster, AERIUS-
sized hexagons, and running an analysis on a reader connection as a given role (as the API does).

Every analyses test module builds its own small world offshore (RD x 20-80 km, y 480-540 km: inside the
area of use of RD New, far from any municipality or demo data), with ids that start with ``AN-``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import numpy as np
import psycopg
from pyproj import Transformer
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

T = TypeVar("T")
HEX_R = math.sqrt(20000 / (3 * math.sqrt(3)))  # circumradius of a 1 ha hexagon: 62.04 m
TO_WGS84 = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_WGS84.transform(x, y)
    return float(lon), float(lat)


def hexagon(cx: float, cy: float, r: float = HEX_R) -> Polygon:
    """A flat-topped regular hexagon (the AERIUS receptor shape): 1 ha for the default radius."""
    return Polygon([(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
                    for a in range(0, 360, 60)])


def execute(owner_url: str, statements: Iterable[tuple[str, Any]]) -> None:
    with psycopg.connect(owner_url) as conn:
        for sql, params in statements:
            conn.execute(sql, params)


def wkb(geom: BaseGeometry) -> bytes:
    return bytes(geom.wkb)


class Raster:
    """A hand-made deposition tile: upper-left corner, square pixels, a value grid (rows top to bottom)."""

    def __init__(self, ulx: float, uly: float, size: float, values: np.ndarray, nodata: float = -9999.0):
        self.ulx, self.uly, self.size, self.values, self.nodata = ulx, uly, size, values, nodata

    def insert(self, year: int, label: str) -> tuple[str, Any]:
        rows, cols = self.values.shape
        return (
            "INSERT INTO twin.nitrogen_deposition (year, label, rast) VALUES (%s, %s, ST_SetValues(ST_AddBand("
            "ST_MakeEmptyRaster(%s, %s, %s, %s, %s, %s, 0, 0, 28992), '32BF'::text, 0, %s), 1, 1, 1, %s::float8[][]))",
            (year, label, cols, rows, self.ulx, self.uly, self.size, -self.size, self.nodata, self.values.tolist()),
        )

    def pixels(self) -> Iterable[tuple[Polygon, float]]:
        """Every pixel with data as (square, value)."""
        rows, cols = self.values.shape
        for r in range(rows):
            for c in range(cols):
                v = float(self.values[r, c])
                if v != self.nodata:
                    x0, y1 = self.ulx + c * self.size, self.uly - r * self.size
                    yield box(x0, y1 - self.size, x0 + self.size, y1), v

    def value_at(self, x: float, y: float) -> float | None:
        c, r = int((x - self.ulx) // self.size), int((self.uly - y) // self.size)
        v = float(self.values[r, c])
        return None if v == self.nodata else v

    def centre_stats(self, area: BaseGeometry) -> dict[str, float]:
        """count/min/max/mean of the pixels whose centre lies inside ``area`` (what ST_Clip selects)."""
        vals = []
        for px, v in self.pixels():
            centre = px.centroid
            assert abs(area.exterior.distance(centre)) > 0.01, "a pixel centre on the boundary is ambiguous"  # type: ignore[attr-defined]
            if area.contains(centre):
                vals.append(v)
        return {"count": len(vals), "min": min(vals), "max": max(vals), "mean": sum(vals) / len(vals)}

    def weighted(self, area: BaseGeometry) -> dict[str, float]:
        """Area-weighted mean and max over every pixel that overlaps ``area``."""
        pairs = [(px.intersection(area).area, v) for px, v in self.pixels()]
        pairs = [(a, v) for a, v in pairs if a > 0]
        total = sum(a for a, _ in pairs)
        return {"mean": sum(a * v for a, v in pairs) / total, "max": max(v for _, v in pairs),
                "min": min(v for _, v in pairs), "pixels": len(pairs)}


def as_role(reader_url: str, fn: Callable[..., Awaitable[T]], *args: Any, role: str = "admin",
            org_code: str | None = None, **kwargs: Any) -> T:
    """Run ``fn(conn, *args, **kwargs)`` on a reader connection whose transaction carries the caller's role,
    the way the API sets it for row-level security."""

    from twin.analyses.common import Disclosure, act_as

    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(reader_url) as conn:
            await act_as(conn, Disclosure(role, org_code))
            return await fn(conn, *args, **kwargs)

    return asyncio.run(main())


def cleanup_statements() -> list[tuple[str, Any]]:
    """Remove every AN- fixture row (children go with their establishment by ON DELETE CASCADE)."""
    return [
        ("DELETE FROM twin.establishments WHERE establishment_id LIKE 'AN-%%'", None),
        ("DELETE FROM twin.natura2000_habitats WHERE habitat_id LIKE 'AN-%%'", None),
        ("DELETE FROM twin.housing_sites WHERE site_id LIKE 'AN-%%'", None),
        ("DELETE FROM twin.deposition_hexagons WHERE hexagon_id LIKE 'AN-%%'", None),
        ("DELETE FROM twin.nitrogen_deposition WHERE label LIKE 'AN-%%'", None),
        ("DELETE FROM twin.buildings WHERE building_id LIKE 'AN-%%'", None),
        ("DELETE FROM twin.municipalities WHERE name LIKE 'AN-%%'", None),
    ]


def municipality(code: str, name: str, geom: BaseGeometry) -> tuple[str, Any]:
    return ("INSERT INTO twin.municipalities (code, name, geom) VALUES (%s, %s, ST_Multi(ST_GeomFromWKB(%s, 28992)))",
            (code, name, wkb(geom)))


def establishment(eid: str, x: float, y: float, *, name: str = "Bedrijf BV", category: str | None = "3.1",
                  sbi: str = "1071", sole: bool = False, kvk: str | None = None, ab_type: str | None = "B",
                  brzo: bool = False, freq: int | None = 5, org: str | None = "ODAN",
                  municipality_code: str | None = None) -> tuple[str, Any]:
    return (
        "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, sole_proprietor, "
        "environmental_category, activiteitenbesluit_type, brzo, visit_frequency_years, org_code, "
        "municipality_code, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "ST_SetSRID(ST_MakePoint(%s, %s), 28992))",
        (eid, name, kvk, sbi, sole, category, ab_type, brzo, freq, org, municipality_code, x, y),
    )


def inspection(iid: str, eid: str, on: str, result: str, *, lhs: str | None = None, follow_up: str | None = None,
               kind: str = "routine", org: str = "ODAN") -> tuple[str, Any]:
    gedrag, gevolg = (lhs[0], lhs[1]) if lhs else (None, None)
    return (
        "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, gedrag, gevolg, "
        "lhs_cell, follow_up_status, inspector, org_code, geom) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "'Inspecteur X', %s, geom FROM twin.establishments WHERE establishment_id = %s",
        (iid, eid, on, kind, result, gedrag, gevolg, lhs, follow_up, org, eid),
    )


def permit(pid: str, eid: str, *, status: str = "verleend", permit_type: str = "omgevingsvergunning",
           valid_from: str | None = None, valid_until: str | None = None, nh3: float | None = None) -> tuple[str, Any]:
    return (
        "INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, valid_from, valid_until, "
        "nh3_kg_per_year, geom) SELECT %s, %s, %s, %s, %s, %s, %s, geom FROM twin.establishments "
        "WHERE establishment_id = %s",
        (pid, eid, permit_type, status, valid_from, valid_until, nh3, eid),
    )


def habitat(hid: str, geom: BaseGeometry, kdw: float, *, habitat_type: str = "H4030",
            area_name: str = "AN-Testduinen") -> tuple[str, Any]:
    return (
        "INSERT INTO twin.natura2000_habitats (habitat_id, area_name, habitat_type, kdw, geom) "
        "VALUES (%s, %s, %s, %s, ST_Multi(ST_GeomFromWKB(%s, 28992)))",
        (hid, area_name, habitat_type, kdw, wkb(geom)),
    )


def hexagon_row(receptor: int, year: int, geom: BaseGeometry, deposition: float, lowest_kdw: float = 1000.0,
                ) -> tuple[str, Any]:
    exc = deposition - lowest_kdw
    return (
        "INSERT INTO twin.deposition_hexagons (hexagon_id, resolution, receptor_id, year, deposition, lowest_kdw, "
        "exceedance, overloaded, approaching, geom) VALUES (%s, '1ha', %s, %s, %s, %s, %s, %s, %s, "
        "ST_GeomFromWKB(%s, 28992))",
        (f"AN-{receptor}-{year}", receptor, year, deposition, lowest_kdw, exc, exc > 0, exc > -70, wkb(geom)),
    )


def housing_site(sid: str, geom: BaseGeometry, dwellings: int, *, name: str | None = None,
                 municipality_code: str | None = None, phase: str = "planvorming") -> tuple[str, Any]:
    return (
        "INSERT INTO twin.housing_sites (site_id, name, municipality_code, planned_dwellings, phase, geom) "
        "VALUES (%s, %s, %s, %s, %s, ST_Multi(ST_GeomFromWKB(%s, 28992)))",
        (sid, name or sid, municipality_code, dwellings, phase, wkb(geom)),
    )


def building(bid: str, geom: BaseGeometry, use: str = "woonfunctie") -> tuple[str, Any]:
    return ("INSERT INTO twin.buildings (building_id, use, geom) VALUES (%s, %s, ST_GeomFromWKB(%s, 28992))",
            (bid, use, wkb(geom)))


def api_key(owner_url: str, role: str, org_code: str | None = None) -> dict[str, str]:
    """Headers with a fresh API key of ``role`` (label ``AN-test``; removed by :func:`drop_api_keys`)."""
    from twin import access

    with psycopg.connect(owner_url) as conn:
        _, full = access.create_key(conn, role, org_code, None, "AN-test")
    return {"Authorization": f"Bearer {full}"}


def drop_api_keys(owner_url: str) -> None:
    execute(owner_url, [("DELETE FROM twin.api_keys WHERE label = 'AN-test'", None)])
