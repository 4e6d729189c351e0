"""As of a date on the quality report and the public aggregates (issue 20, docs/history.md): the quality rules
of layers with history measured over the as-of state, and the public inspection grid as of a date under the
same disclosure control, which no differencing of dates can get round."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from twin import access, disclosure
from twin.disclosure import Contribution

POINT = "ST_SetSRID(ST_MakePoint({x}, {y}), 28992)"
K = 5  # TWIN_K_ANONYMITY's default, with the default 1,000 m cells


def _load(conn: psycopg.Connection, sql: str, params: tuple = (), correction: bool = False) -> None:
    with conn.transaction():
        conn.execute("SELECT set_config('twin.correction', %s, true)", ("on" if correction else "",))
        conn.execute(sql, params)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    time.sleep(0.02)
    moment = datetime.now(UTC)
    time.sleep(0.02)
    return moment


@pytest.fixture()
def owner(owner_url: str):
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield conn
        conn.execute("DELETE FROM twin.inspections WHERE inspection_id LIKE 'ASOF-%'")
        conn.execute("DELETE FROM twin.establishments WHERE establishment_id LIKE 'ASOF-%'")


@pytest.fixture()
def admin(owner_url: str) -> dict[str, str]:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        _, token = access.create_key(conn, "admin", None, None, "ASOF-test")
    return {"Authorization": f"Bearer {token}"}


def test_quality_as_of(owner: psycopg.Connection, admin: dict[str, str], client: TestClient) -> None:
    """/quality and /quality/{rule} as of a date: the establishments' rules measured over the versions then,
    the layers without history from their recorded measurement (or why there is none); their failing records
    as of a date are a 400 naming geldigOp."""
    _load(owner, "INSERT INTO twin.establishments (establishment_id, name, sbi_code, geom) VALUES "
                 f"('ASOF-Q1', 'Zonder KvK', '0141', {POINT.format(x=17500, y=449500)})")
    then = _now()
    _load(owner, "UPDATE twin.establishments SET kvk_number = '92019999' WHERE establishment_id = 'ASOF-Q1'",
          correction=True)
    rule = "/quality/establishments.kvk_number-filled"
    box = {"bbox": "3.36,52.0,3.40,52.02", "bbox-crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}
    past = {"geldigOp": date.today().isoformat(), "beschikbaarOp": _stamp(then)}

    def ids(params: dict[str, str]) -> set[str]:
        r = client.get(rule, params={**box, **params}, headers=admin)
        assert r.status_code == 200, r.text
        return {f["properties"]["establishment_id"] for f in r.json()["features"]}

    assert "ASOF-Q1" in ids(past) and "ASOF-Q1" not in ids({})
    summary = client.get("/quality", params={**past, "f": "json"}, headers=admin)
    assert summary.status_code == 200, summary.text
    doc = summary.json()
    assert doc["history"] == {"geldigOp": past["geldigOp"], "beschikbaarOp": then.isoformat()}
    rules = {r["id"]: r for layer in doc["layers"] for r in layer["rules"]}
    now = {r["id"]: r for layer in client.get("/quality", params={"refresh": "true", "f": "json"},
                                              headers=admin).json()["layers"] for r in layer["rules"]}
    kvk = rules["establishments.kvk_number-filled"]
    assert kvk["source"] == "live" and kvk["failed"] == now["establishments.kvk_number-filled"]["failed"] + 1
    buildings = rules["buildings.status-filled"]
    assert buildings["source"] == "recorded" or not buildings["applicable"]  # no history: recorded or not at all
    bad = client.get("/quality/buildings.status-filled", params={"geldigOp": "2024-01-01"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["parameter"] == "geldigOp"
    assert client.get("/quality", params={"geldigOp": "gisteren"}).status_code == 400


def _cell_of(doc: dict) -> dict[tuple[int, int], int]:
    return {(f["properties"]["x_min"] // 1000, f["properties"]["y_min"] // 1000): f["properties"]["count"]
            for f in doc["features"]}


def test_aggregates_as_of_obey_todays_disclosure_control(owner: psycopg.Connection, client: TestClient) -> None:
    """Three cells of 2024 inspections, each of as many enterprises as records (all safe at first):
    STAY: 5 records, unchanged; ENDED: 6 records, one later ended (today 5: published); SHRUNK: 5 records, one
    later ended (today 4: suppressed). As of the first moment STAY is published as today, while ENDED and SHRUNK
    are not: a count of 6 next to today's 5 would show that one record went, and SHRUNK stays suppressed."""
    cells = {"STAY": (17, 447, 5), "ENDED": (18, 447, 6), "SHRUNK": (19, 447, 5)}
    n = 0
    for name, (cx, cy, records) in cells.items():
        for i in range(records):
            n += 1
            x, y = cx * 1000 + 100 + 60 * i, cy * 1000 + 500
            _load(owner, "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, legal_form, "
                         f"org_code, geom) VALUES (%s, %s, %s, '0141', 'Besloten Vennootschap', 'ODAS', "
                         f"{POINT.format(x=x, y=y)})", (f"ASOF-{name}-{i}", f"Bedrijf {n}", f"{92030000 + n}"))
            _load(owner, "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, "
                         f"org_code, geom) VALUES (%s, %s, '2024-04-01', 'routine', 'geen overtreding', 'ODAS', "
                         f"{POINT.format(x=x, y=y)})", (f"ASOF-I-{name}-{i}", f"ASOF-{name}-{i}"))
    first = _now()
    start = {(cx, cy) for cx, cy, _ in cells.values()}
    r = client.get("/collections/inspections/aggregates", params={"year": 2024})
    assert r.status_code == 200, r.text
    today_first = {c: v for c, v in _cell_of(r.json()).items() if c in start}
    assert today_first == {(17, 447): 5, (18, 447): 6, (19, 447): 5}
    _load(owner, "DELETE FROM twin.inspections WHERE inspection_id IN ('ASOF-I-ENDED-0', 'ASOF-I-SHRUNK-0')")

    def grid(params: dict[str, str]) -> dict[tuple[int, int], int]:
        r = client.get("/collections/inspections/aggregates", params={"year": 2024, **params})
        assert r.status_code == 200, r.text
        return {c: v for c, v in _cell_of(r.json()).items() if c in start}

    today = grid({})
    assert today == {(17, 447): 5, (18, 447): 5}  # SHRUNK (4 records) is suppressed today
    past = {"geldigOp": date.today().isoformat(), "beschikbaarOp": _stamp(first)}
    as_of = grid(past)
    assert as_of == {(17, 447): 5}
    # differencing the two dates reveals nothing today's control hides: every as-of count equals today's
    # count or differs from it by a safe number of records; suppressed cells stay suppressed
    for c, v in as_of.items():
        assert c in today and (v == today[c] or abs(v - today[c]) >= K)
    assert (19, 447) not in as_of
    doc = client.get("/collections/inspections/aggregates", params={"year": 2024, **past}).json()
    assert doc["history"]["geldigOp"] == past["geldigOp"]


def test_publish_as_of_rule() -> None:
    """twin.disclosure.publish_as_of on its own: the state then, today's and the change must each pass."""
    def cell(n: int, start: int = 0) -> list[Contribution]:
        return [Contribution(f"kvk:{start + i}", False, "ODX", 1) for i in range(n)]

    then = {"same": cell(5), "one-gone": cell(6), "shrunk": cell(5), "grown": cell(5), "emptied": cell(5),
            "small-then": cell(3)}
    now = {"same": cell(5), "one-gone": cell(5), "shrunk": cell(4), "grown": cell(10), "emptied": [],
           "small-then": cell(8)}
    assert disclosure.publish_as_of(then, now, K) == {"same": 5, "grown": 5, "emptied": 5}
    # a single contributor's change is never published, even between two safe states
    assert disclosure.publish_as_of({"a": cell(6)}, {"a": cell(6)[:5] + [Contribution("kvk:99", False, "ODX", 1)]},
                                    K) == {}
