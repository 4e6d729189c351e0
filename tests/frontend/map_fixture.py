"""A small hand-made twin for the browser tests: real municipalities, a few establishments in the Gelderse
Vallei, two Natura 2000 habitats on the Veluwe edge, deposition hexagons on the AERIUS grid (two years),
three housing sites, a few buildings and inspections. Inserted as the owner, removed afterwards.
"""

from __future__ import annotations

import math
from pathlib import Path

import psycopg
import pyogrio
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[2]
GPKG_CANDIDATES = (ROOT / "twin" / "data" / "nl_gemeenten_2023.gpkg",
                   ROOT.parent / "shared" / "data" / "nl_gemeenten_2023.gpkg",
                   Path("/work/shared/data/nl_gemeenten_2023.gpkg"))
TO_WGS84 = Transformer.from_crs(28992, 4326, always_xy=True)

YEARS = (2022, 2023)
R_1HA = math.sqrt(20000 / (3 * math.sqrt(3)))  # AERIUS hexagon circumradius, 62.04 m
H_1HA = math.sqrt(3) * R_1HA
R_NATIONAL = 2500.0

# The establishment the tests click: a dairy farm in Barneveld (RD New).
KNOWN = {"establishment_id": "MAP-0001", "name": "Melkveebedrijf Van den Berg B.V.", "kvk_number": "12345678",
         "x": 172300.0, "y": 463100.0}
HABITAT_BOX = (176000.0, 458000.0, 182000.0, 464000.0)  # Veluwe edge, west of Apeldoorn
TABLES = ("inspections", "permits", "establishments", "deposition_hexagons", "natura2000_habitats",
          "housing_sites", "buildings", "addresses", "nitrogen_deposition_years", "municipalities")
# The BAG address the tests pick: the one in the fixture's first building (Barneveld).
KNOWN_ADDRESS = {"address_id": "0203010000000000", "street": "Kerkstraat", "house_number": 1, "x": 171800.0,
                 "y": 462800.0}


def gpkg_path() -> Path:
    for path in GPKG_CANDIDATES:
        if path.exists():
            return path
    raise FileNotFoundError(f"nl_gemeenten_2023.gpkg not found in {', '.join(map(str, GPKG_CANDIDATES))}")


def hexagon_wkt(cx: float, cy: float, r: float) -> str:
    """A flat-topped hexagon (AERIUS orientation) as WKT."""
    pts = [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))) for a in range(0, 360, 60)]
    pts.append(pts[0])
    return "POLYGON((" + ", ".join(f"{x:.2f} {y:.2f}" for x, y in pts) + "))"


def receptor_centre(receptor_id: int) -> tuple[float, float]:
    """Centre of an AERIUS receptor hexagon (DESIGN.md)."""
    row, col = divmod(receptor_id - 1, 1529)
    x = 3604 + col * 3 * R_1HA + (1.5 * R_1HA if row % 2 else 0)
    y = 296800 + (row // 2) * H_1HA + (H_1HA / 2 if row % 2 else 0)
    return x, y


def receptor_at(x: float, y: float) -> int:
    """The receptor whose centre is nearest to (x, y): inverse of :func:`receptor_centre` near the point."""
    best: tuple[float, int] | None = None
    base_row = round((y - 296800) / H_1HA * 2)
    for row in range(base_row - 2, base_row + 3):
        col = round((x - 3604 - (1.5 * R_1HA if row % 2 else 0)) / (3 * R_1HA))
        rid = row * 1529 + col + 1
        cx, cy = receptor_centre(rid)
        d = math.hypot(cx - x, cy - y)
        if best is None or d < best[0]:
            best = (d, rid)
    assert best is not None
    return best[1]


def deposition_at(x: float, y: float, year: int) -> float:
    """A plausible field: rising to the east and south-east plus a hotspot at the known farm."""
    background = 900 + (x - 100000) * 0.012 + (500000 - y) * 0.004
    hotspot = 1800 * math.exp(-math.hypot(x - KNOWN["x"], y - KNOWN["y"]) / 3000)
    return round((background + hotspot) * (1 - 0.02 * (year - YEARS[0])), 1)


def establishments() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [dict(KNOWN, sbi="0141", cat="4.1", city="Barneveld", sole=False)]
    kinds = (("0146", "4.2", "Varkenshouderij"), ("0147", "4.1", "Pluimveebedrijf"), ("4520", "2", "Garage"),
             ("5610", "1", "Restaurant"), ("3821", "5.1", "Afvalverwerking"))
    for i in range(19):
        sbi, cat, label = kinds[i % len(kinds)]
        angle = i * 2.4
        rows.append({"establishment_id": f"MAP-{i + 2:04d}", "name": f"{label} {i + 2}",
                     "kvk_number": f"{87650000 + i}",
                     "x": KNOWN["x"] + 2500 * math.cos(angle) * (1 + i / 10),
                     "y": KNOWN["y"] + 2500 * math.sin(angle) * (1 + i / 10),
                     "sbi": sbi, "cat": cat, "city": "Barneveld", "sole": i % 7 == 3})
    return rows


def load(owner_url: str) -> dict[str, object]:
    """Insert the fixture; returns facts the tests use (the known establishment in WGS84, counts)."""
    gdf = pyogrio.read_dataframe(gpkg_path())
    with psycopg.connect(owner_url) as conn, conn.cursor() as cur:
        clear(conn)
        cur.executemany(
            "INSERT INTO twin.municipalities (code, name, geom) VALUES (%s, %s, ST_Multi(ST_GeomFromText(%s, 28992)))",
            [(r.code, r.name, r.geometry.wkt) for r in gdf.itertuples()],
        )
        ests = establishments()
        cur.executemany(
            "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, environmental_category,"
            " activiteitenbesluit_type, visit_frequency_years, city, municipality_code, sole_proprietor, geom)"
            " VALUES (%s, %s, %s, %s, %s, 'B', 3, %s, 'GM0203', %s, ST_SetSRID(ST_MakePoint(%s, %s), 28992))",
            [(e["establishment_id"], e["name"], e["kvk_number"], e["sbi"], e["cat"], e["city"], e["sole"],
              e["x"], e["y"]) for e in ests],
        )
        cur.executemany(
            "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, geom)"
            " VALUES (%s, %s, %s, 'routine', %s, ST_SetSRID(ST_MakePoint(%s, %s), 28992))",
            [(f"I-{i}", e["establishment_id"], f"{2021 + i % 3}-05-1{i % 9}",
              "voorschriften overtreden" if i % 4 == 0 else "voorschriften nageleefd", e["x"], e["y"])
             for i, e in enumerate(ests[:8])],
        )
        x0, y0, x1, y1 = HABITAT_BOX
        xm = (x0 + x1) / 2
        habitats = [
            ("MAP-H1", "Veluwe", 57, "H4030", 1071.0,
             f"MULTIPOLYGON((({x0} {y0}, {xm} {y0}, {xm} {y1}, {x0} {y1}, {x0} {y0})))"),
            ("MAP-H2", "Veluwe", 57, "H9190", 1071.0,
             f"MULTIPOLYGON((({xm} {y0}, {x1} {y0}, {x1} {y1}, {xm} {y1}, {xm} {y0})))"),
        ]
        cur.executemany(
            "INSERT INTO twin.natura2000_habitats (habitat_id, area_name, area_number, habitat_type, kdw, geom)"
            " VALUES (%s, %s, %s, %s, %s, ST_GeomFromText(%s, 28992))", habitats,
        )
        hex_rows = []
        for year in YEARS:
            # 1 ha AERIUS hexagons over the habitat box (every second one, to keep it small)
            rid0 = receptor_at(x0, y0)
            rid1 = receptor_at(x0, y1)
            row0, row1 = (rid0 - 1) // 1529, (rid1 - 1) // 1529
            col0, col1 = (rid0 - 1) % 1529, (receptor_at(x1, y0) - 1) % 1529
            for row in range(row0, row1 + 1, 2):
                for col in range(col0, col1 + 1, 2):
                    rid = row * 1529 + col + 1
                    cx, cy = receptor_centre(rid)
                    dep = deposition_at(cx, cy, year)
                    hex_rows.append((f"1ha-{rid}-{year}", "1ha", rid, year, dep, 1071.0, dep - 1071.0,
                                     dep > 1071.0, dep > 1001.0, hexagon_wkt(cx, cy, R_1HA)))
            # a coarse national grid over the middle of the country
            n = 0
            for j in range(-8, 9):
                for i in range(-10, 11):
                    cx = 160000 + i * 3 * R_NATIONAL + (1.5 * R_NATIONAL if j % 2 else 0)
                    cy = 460000 + j * math.sqrt(3) * R_NATIONAL / 2
                    dep = deposition_at(cx, cy, year)
                    inside = x0 - R_NATIONAL < cx < x1 + R_NATIONAL and y0 - R_NATIONAL < cy < y1 + R_NATIONAL
                    kdw = 1071.0 if inside else None
                    n += 1
                    hex_rows.append((f"national-{n}-{year}", "national", n, year, dep, kdw,
                                     dep - kdw if kdw else None, dep > kdw if kdw else None,
                                     dep > kdw - 70 if kdw else None, hexagon_wkt(cx, cy, R_NATIONAL)))
        cur.executemany(
            "INSERT INTO twin.deposition_hexagons (hexagon_id, resolution, receptor_id, year, deposition, lowest_kdw,"
            " exceedance, overloaded, approaching, geom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " ST_GeomFromText(%s, 28992))", hex_rows,
        )
        sites = [
            ("MAP-S1", "Barneveld-Oost", "GM0203", "Barneveld", 800, (173300, 463300)),
            ("MAP-S2", "Amersfoort Vathorst-Noord", "GM0307", "Amersfoort", 1500, (156500, 468300)),
            ("MAP-S3", "Utrecht Merwede", "GM0344", "Utrecht", 4000, (134500, 454000)),
        ]
        cur.executemany(
            "INSERT INTO twin.housing_sites (site_id, name, municipality_code, municipality_name, planned_dwellings,"
            " phase, planned_year, geom) VALUES (%s, %s, %s, %s, %s, 'planvorming', 2030,"
            " ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 28992), 300)))",
            [(s[0], s[1], s[2], s[3], s[4], s[5][0], s[5][1]) for s in sites],
        )
        cur.executemany(
            "INSERT INTO twin.buildings (building_id, construction_year, use, height_m, geom) VALUES"
            " (%s, %s, 'woonfunctie', %s, ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 28992), 8))",
            [(f"020310000000{i:04d}", 1950 + i, 4 + (i % 5) * 3, 171800 + (i % 6) * 40, 462800 + (i // 6) * 40)
             for i in range(24)],
        )
        # one BAG address in each building, at its centre: Kerkstraat 1, 2, ...
        cur.executemany(
            "INSERT INTO twin.addresses (address_id, street, house_number, postcode, city, municipality_code, geom)"
            " VALUES (%s, 'Kerkstraat', %s, '3771AA', 'Barneveld', 'GM0203', ST_SetSRID(ST_MakePoint(%s, %s), 28992))",
            [(f"0203010000{i:06d}", i + 1, 171800 + (i % 6) * 40, 462800 + (i // 6) * 40) for i in range(24)],
        )
        cur.executemany(
            "INSERT INTO twin.nitrogen_deposition_years (year, label) VALUES (%s, %s)",
            [(y, str(y)) for y in YEARS],
        )
        conn.commit()
    lon, lat = TO_WGS84.transform(KNOWN["x"], KNOWN["y"])
    a_lon, a_lat = TO_WGS84.transform(KNOWN_ADDRESS["x"], KNOWN_ADDRESS["y"])
    return {"known": dict(KNOWN, lon=lon, lat=lat), "address": dict(KNOWN_ADDRESS, lon=a_lon, lat=a_lat),
            "years": YEARS, "municipalities": len(gdf),
            "establishments": len(ests), "hexagons": len(hex_rows)}


def clear(conn: psycopg.Connection) -> None:
    """Remove every row of the fixture's tables (the test database is the session's own)."""
    for table in TABLES:
        conn.execute(f"DELETE FROM twin.{table}")  # noqa: S608 - fixed table names


def unload(owner_url: str) -> None:
    with psycopg.connect(owner_url) as conn:
        clear(conn)
        conn.commit()
