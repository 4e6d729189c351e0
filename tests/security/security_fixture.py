"""The security tests' fixture data: establishments (sole proprietors and companies) and inspections
of two organisations, laid out so that the 1 km grid has cells of 6, 4 and 5 records. Expected results
are worked out from these definitions and the access rules, never read back from the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

ODA, ODB = "ODA", "ODB"


@dataclass(frozen=True)
class Est:
    establishment_id: str
    name: str
    kvk: str
    sole: bool
    org: str
    x: float
    y: float


@dataclass(frozen=True)
class Insp:
    inspection_id: str
    establishment_id: str
    on: date
    org: str
    inspector: str
    x: float
    y: float


ESTABLISHMENTS = (
    Est("E-SOLE-A", "Jan de Vries Veehouderij", "12345678", True, ODA, 150100.0, 450100.0),
    Est("E-BV-A", "Agro Noord BV", "87654321", False, ODA, 150600.0, 450700.0),
    Est("E-BV-B", "Chemie Zuid BV", "11223344", False, ODB, 160500.0, 460500.0),
    Est("E-SOLE-B", "Piet Jansen Pluimvee", "44332211", True, ODB, 170500.0, 470500.0),
)
_EST = {e.establishment_id: e for e in ESTABLISHMENTS}


def _inspections() -> tuple[Insp, ...]:
    rows = []
    # (establishment, how many, years): 6 in cell (150, 450), 4 in (160, 460), 5 in (170, 470) (1 km cells)
    plan = (("E-SOLE-A", 3, (2024, 2024, 2023)), ("E-BV-A", 3, (2024, 2024, 2024)),
            ("E-BV-B", 4, (2024, 2024, 2023, 2023)), ("E-SOLE-B", 5, (2024, 2024, 2024, 2023, 2023)))
    for est_id, n, years in plan:
        e = _EST[est_id]
        for i in range(n):
            rows.append(Insp(f"I-{est_id}-{i}", est_id, date(years[i], 3, 1 + i), e.org, f"inspecteur {i}",
                             e.x + 10 * i, e.y + 10 * i))
    return tuple(rows)


INSPECTIONS = _inspections()


def seed(url: str) -> None:
    """Load the fixture rows as twin_writer, the role ingest uses (FORCE RLS must let it write)."""
    with psycopg.connect(url) as conn:
        run = conn.execute(
            "INSERT INTO twin.ingest_runs (layer, source, status) VALUES ('establishments', 'security-fixture', "
            "'succeeded') RETURNING id").fetchone()
        assert run is not None
        for e in ESTABLISHMENTS:
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, legal_form, "
                "sole_proprietor, street, house_number, postcode, city, org_code, geom, run_id) VALUES "
                "(%s, %s, %s, '0146', %s, %s, 'Dorpsstraat', '1', '1234AB', 'Ergens', %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (e.establishment_id, e.name, e.kvk, "Eenmanszaak" if e.sole else "BV", e.sole, e.org, e.x, e.y, run[0]))
        for i in INSPECTIONS:
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, "
                "inspector, org_code, geom, run_id) VALUES (%s, %s, %s, 'routine', 'voorschriften nageleefd', "
                "%s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (i.inspection_id, i.establishment_id, i.on, i.inspector, i.org, i.x, i.y, run[0]))


def expected_inspections(role: str, org: str | None = None) -> set[str]:
    """Which inspections a role may see, worked out from the fixture and the rules (not from the DB)."""
    if role == "admin":
        return {i.inspection_id for i in INSPECTIONS}
    if role == "inspector":
        return {i.inspection_id for i in INSPECTIONS if i.org == org}
    if role == "advisor":
        return {i.inspection_id for i in INSPECTIONS if not _EST[i.establishment_id].sole}
    return set()
