"""The quality API tests' fixture: a small twin with known defects in a database of its own, seeded as the
writer like an ingest. Two organisations, sole proprietors and companies, so that masking and row-level
security can be checked on the failing records. Expected results are worked out from these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

ODA, ODB = "ODA", "ODB"
LIVESTOCK_SBI = ("0141", "0146", "0147")


@dataclass(frozen=True)
class Est:
    id: str
    name: str
    kvk: str | None
    sbi: str
    sole: bool
    org: str
    x: float
    y: float
    ended_on: date | None = None


@dataclass(frozen=True)
class Permit:
    id: str
    establishment_id: str
    status: str
    valid_from: date
    valid_until: date | None = None


@dataclass(frozen=True)
class Insp:
    id: str
    establishment_id: str
    on: date
    result: str
    kind: str = "routine"
    repair_deadline: date | None = None
    intervention: str | None = None


# Around Barneveld (RD New); Q-E08 shares Q-E07's KvK number 80 km away.
ESTABLISHMENTS = (
    Est("Q-E01", "Jan de Vries Veehouderij", None, "0141", True, ODA, 172000.0, 463000.0),   # no KvK, no permit
    Est("Q-E02", "Agro Noord BV", "87654321", "0146", False, ODA, 172500.0, 463500.0),        # permitted
    Est("Q-E03", "Pluimvee Zuid BV", "11223344", "0147", False, ODB, 173000.0, 464000.0),     # permit refused
    Est("Q-E04", "Bakkerij Oost BV", "22334455", "1071", False, ODB, 173500.0, 464500.0),     # not livestock
    Est("Q-E05", "Piet Jansen Melkvee", "44332211", "0141", True, ODB, 174000.0, 465000.0),   # permitted
    Est("Q-E06", "Varkens West BV", "55667788", "0146", False, ODA, 174500.0, 465500.0,       # ended, permit on
        ended_on=date(2022, 6, 30)),
    Est("Q-E07", "Transport Midden BV", "66778899", "4941", False, ODA, 175000.0, 466000.0),
    Est("Q-E08", "Transport Midden BV", "66778899", "4941", False, ODB, 255000.0, 466000.0),
)
EST = {e.id: e for e in ESTABLISHMENTS}

PERMITS = (
    Permit("Q-P02", "Q-E02", "verleend", date(2019, 1, 1)),
    Permit("Q-P03", "Q-E03", "geweigerd", date(2020, 1, 1)),
    Permit("Q-P05", "Q-E05", "verleend", date(2018, 5, 1)),
    Permit("Q-P06", "Q-E06", "verleend", date(2019, 3, 1)),
)

INSPECTIONS = (
    # a violation with its repair date long past, no enforcement measure and nothing after it
    Insp("Q-I01", "Q-E02", date(2023, 3, 1), "voorschriften overtreden", repair_deadline=date(2023, 4, 1)),
    # a violation followed by a re-inspection after the repair date
    Insp("Q-I02", "Q-E03", date(2023, 3, 1), "voorschriften overtreden", repair_deadline=date(2023, 4, 1)),
    Insp("Q-I03", "Q-E03", date(2023, 4, 15), "voorschriften nageleefd", kind="re-inspection"),
    # a violation at a sole proprietor's farm (advisors may not see it), intervention 'geen', no follow-up
    Insp("Q-I04", "Q-E01", date(2023, 5, 1), "voorschriften overtreden", repair_deadline=date(2023, 6, 1),
         intervention="geen"),
    # a violation answered by an enforcement measure: followed up
    Insp("Q-I05", "Q-E05", date(2023, 2, 1), "voorschriften overtreden", repair_deadline=date(2023, 3, 1),
         intervention="last onder dwangsom"),
)


def violations_without_follow_up() -> set[str]:
    """Violations past their repair date with no enforcement measure and no later inspection."""
    out = set()
    for i in INSPECTIONS:
        if i.result != "voorschriften overtreden" or i.repair_deadline is None:
            continue
        measure = i.intervention not in (None, "geen")
        later = any(n.establishment_id == i.establishment_id and n.on >= i.repair_deadline and n.id != i.id
                    for n in INSPECTIONS)
        if not measure and not later:
            out.add(i.id)
    return out


def livestock_without_valid_permit(today: date) -> set[str]:
    """Livestock farms (SBI 014x) with no permit 'verleend' valid today, from the definitions above."""
    out = set()
    for e in ESTABLISHMENTS:
        if e.sbi not in LIVESTOCK_SBI or (e.ended_on is not None and e.ended_on <= today):
            continue
        valid = [p for p in PERMITS if p.establishment_id == e.id and p.status == "verleend"
                 and p.valid_from <= today and (p.valid_until is None or p.valid_until >= today)]
        if not valid:
            out.add(e.id)
    return out


def visible_inspections(role: str, org: str | None = None) -> set[str]:
    """The inspections a role may see (the row-level security rules, applied to the definitions)."""
    if role == "admin":
        return {i.id for i in INSPECTIONS}
    if role == "inspector":
        return {i.id for i in INSPECTIONS if EST[i.establishment_id].org == org}
    if role == "advisor":
        return {i.id for i in INSPECTIONS if not EST[i.establishment_id].sole}
    return set()


def seed(url: str) -> None:
    """Load the rows as twin_writer, the role ingest uses."""
    with psycopg.connect(url) as conn:
        run = conn.execute(
            "INSERT INTO twin.ingest_runs (layer, source, status) VALUES ('establishments', 'quality-fixture', "
            "'succeeded') RETURNING id").fetchone()
        assert run is not None
        for e in ESTABLISHMENTS:
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, legal_form, "
                "sole_proprietor, street, house_number, postcode, city, org_code, environmental_category, "
                "visit_frequency_years, started_on, ended_on, geom, run_id) VALUES (%s, %s, %s, %s, %s, %s, "
                "'Dorpsstraat', '1', '3771AA', 'Barneveld', %s, '3.1', 3, '2010-01-01', %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (e.id, e.name, e.kvk, e.sbi, "Eenmanszaak" if e.sole else "BV", e.sole, e.org, e.ended_on,
                 e.x, e.y, run[0]))
        for p in PERMITS:
            e = EST[p.establishment_id]
            conn.execute(
                "INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, applied_on, decided_on, "
                "valid_from, valid_until, org_code, geom, run_id) VALUES (%s, %s, 'omgevingsvergunning', %s, %s, "
                "%s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (p.id, p.establishment_id, p.status, p.valid_from, p.valid_from, p.valid_from, p.valid_until,
                 e.org, e.x, e.y, run[0]))
        for i in INSPECTIONS:
            e = EST[i.establishment_id]
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, "
                "repair_deadline, intervention, inspector, org_code, geom, run_id) VALUES (%s, %s, %s, %s, %s, "
                "%s, %s, 'inspecteur', %s, ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (i.id, i.establishment_id, i.on, i.kind, i.result, i.repair_deadline, i.intervention, e.org,
                 e.x + 5, e.y + 5, run[0]))
