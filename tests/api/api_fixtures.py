"""Test data of the spatial API tests: a small, known set of features in an empty corner of the map (the
North Sea west of Texel, where no other test puts data), inserted as the writer and removed again.

Every test id starts with ``t5-`` so the fixtures never touch rows of other test modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import psycopg

PREFIX = "t5-"
LON0, LAT0, STEP = 3.5, 53.5, 0.01
NX, NY = 10, 6
SBI = ("0141", "0146", "0147", "1011")
CATEGORIES = ("1", "2", "3.1", "4.2")
FREQUENCIES = (1, 3, 5, 10)
PERMIT_START = date(2019, 1, 1)


@dataclass(frozen=True)
class Establishment:
    id: str
    lon: float
    lat: float
    name: str
    sbi_code: str
    category: str
    brzo: bool
    frequency: int
    sole_proprietor: bool
    kvk: str
    city: str | None
    started_on: date


def establishments() -> list[Establishment]:
    """60 points on a 0.01 degree grid, attributes cycling so that every filter has a known answer."""
    out = []
    for j in range(NY):
        for i in range(NX):
            n = j * NX + i
            out.append(Establishment(
                id=f"{PREFIX}e{n:03d}", lon=round(LON0 + STEP * i, 6), lat=round(LAT0 + STEP * j, 6),
                name=f"Bedrijf {n:03d}", sbi_code=SBI[n % 4], category=CATEGORIES[n % 4], brzo=n % 7 == 0,
                frequency=FREQUENCIES[n % 4], sole_proprietor=n % 5 == 0, kvk=f"{10000000 + n}",
                city=None if n % 6 == 0 else "Teststad", started_on=date(2000 + n % 20, 1 + n % 12, 1),
            ))
    return out


@dataclass(frozen=True)
class Permit:
    id: str
    establishment_id: str
    lon: float
    lat: float
    decided_on: date
    status: str
    nh3: float | None


def permits() -> list[Permit]:
    """20 permits, decided every 30 days from 2019-01-01, on the first 20 establishments."""
    es = establishments()
    return [
        Permit(f"{PREFIX}p{n:03d}", es[n].id, es[n].lon, es[n].lat, PERMIT_START + timedelta(days=30 * n),
               ("verleend", "geweigerd", "in behandeling")[n % 3], None if n % 4 == 0 else 10.0 * n)
        for n in range(20)
    ]


def inspections() -> list[tuple[str, str, float, float, date]]:
    es = establishments()
    return [(f"{PREFIX}i{n:03d}", es[n].id, es[n].lon, es[n].lat, date(2023, 1, 1) + timedelta(days=n))
            for n in range(5)]


def _point(lon: float, lat: float) -> str:
    return f"ST_Transform(ST_SetSRID(ST_Point({lon}, {lat}), 4326), 28992)"


def insert(writer_url: str) -> None:
    with psycopg.connect(writer_url) as conn:
        for e in establishments():
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, sole_proprietor, "
                "city, environmental_category, brzo, visit_frequency_years, started_on, org_code, geom) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'ODT5', "
                "ST_Transform(ST_SetSRID(ST_Point(%s, %s), 4326), 28992))",
                (e.id, e.name, e.kvk, e.sbi_code, e.sole_proprietor, e.city, e.category, e.brzo, e.frequency,
                 e.started_on, e.lon, e.lat),
            )
        for p in permits():
            conn.execute(
                "INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, decided_on, "
                "nh3_kg_per_year, geom) VALUES (%s, %s, 'omgevingsvergunning', %s, %s, %s, "
                "ST_Transform(ST_SetSRID(ST_Point(%s, %s), 4326), 28992))",
                (p.id, p.establishment_id, p.status, p.decided_on, p.nh3, p.lon, p.lat),
            )
        for iid, eid, lon, lat, day in inspections():
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, "
                "inspector, org_code, geom) VALUES (%s, %s, %s, 'routine', 'voorschriften nageleefd', "
                "'J. Jansen', 'ODT5', ST_Transform(ST_SetSRID(ST_Point(%s, %s), 4326), 28992))",
                (iid, eid, day, lon, lat),
            )


def delete(writer_url: str) -> None:
    with psycopg.connect(writer_url) as conn:
        for table, key in (("inspections", "inspection_id"), ("permits", "permit_id"),
                           ("establishments", "establishment_id")):
            conn.execute(f"DELETE FROM twin.{table} WHERE {key} LIKE %s", (PREFIX + "%",))
