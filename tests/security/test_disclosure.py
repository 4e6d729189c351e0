"""Statistical disclosure control of the public aggregates, attacked as a hostile caller would.

A database of its own holds a fixture laid out per attack (one 1 km cell each, worked out by hand below);
the tests call the API as anonymous, public, advisor, inspectors of two organisations and of one without
records, and admin, list what each may list with its own key, and check against the public grid that for
every published cell and every role (and an advisor together with an inspector) the difference is 0 or at
least k, and that every published cell holds at least k distinct establishments (enterprises).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import psycopg
import pytest
from fastapi.testclient import TestClient
from testdb import throwaway_database

from twin import access, cluster, database, disclosure
from twin.access import REQUEST_SETTINGS_SQL, Principal, request_settings
from twin.disclosure import Contribution
from twin.settings import Settings

K, CELL = 5, 1000
T = TypeVar("T")
ODA, ODB, ODC = "ODA", "ODB", "ODC"


@dataclass(frozen=True)
class Est:
    establishment_id: str
    kvk: str
    sole: bool
    org: str
    cx: int  # the 1 km cell (RD New / 1000)
    cy: int


@dataclass(frozen=True)
class Insp:
    inspection_id: str
    est: Est
    year: int
    org: str


ESTS: list[Est] = []
INSPS: list[Insp] = []


def _add(cell: tuple[int, int], n_est: int, sole: bool, org: str, per_est: list[tuple[int, int]],
         kvk: str | None = None) -> None:
    """``n_est`` establishments in ``cell``, each with ``per_est`` = [(year, inspections), ...] by ``org``."""
    for _ in range(n_est):
        i = len(ESTS)
        e = Est(f"E{i:03d}", kvk or f"{10000000 + i}", sole, org, *cell)
        ESTS.append(e)
        for year, n in per_est:
            for _ in range(n):
                INSPS.append(Insp(f"I{len(INSPS):04d}", e, year, org))


# P (200, 500): publishable in 2024 for every role; in 2023 two records only (attack c: year vs total).
P = (200, 500)
_add(P, 6, False, ODA, [(2024, 2)])
_add(P, 5, True, ODB, [(2024, 1)])
_add(P, 2, False, ODA, [(2023, 1)])
# P2 (200, 501), north of P: the same 2024 layout, for the overlapping and shifted boxes.
P2 = (200, 501)
_add(P2, 6, False, ODA, [(2024, 2)])
_add(P2, 5, True, ODB, [(2024, 1)])
# A (201, 500): 10 records, 9 enterprises; advisors list all but one sole proprietor's 2 (attack a).
A = (201, 500)
_add(A, 8, False, ODA, [(2024, 1)])
_add(A, 1, True, ODA, [(2024, 2)])
# B (202, 500): one sole proprietor with 7 inspections (attack b: k on records, not establishments).
B = (202, 500)
_add(B, 1, True, ODB, [(2024, 7)])
# D (203, 500): ODA's inspectors list 6 of 8; the other 2 are ODB's (attack a, another organisation).
D = (203, 500)
_add(D, 6, False, ODA, [(2024, 1)])
_add(D, 2, False, ODB, [(2024, 1)])
# E (204, 500): 5 enterprises, one with 20 of the 24 records (dominance).
E = (204, 500)
_add(E, 1, False, ODB, [(2024, 20)])
_add(E, 4, False, ODB, [(2024, 1)])
# V (205, 500): 5 establishments of one enterprise (one KvK number): one contributor.
V = (205, 500)
_add(V, 5, False, ODA, [(2024, 2)], kvk="55555555")
# C (206, 500): safe for each role alone, but an advisor with an ODA inspector key misses 1 record only.
C = (206, 500)
_add(C, 5, True, ODA, [(2024, 1)])
_add(C, 1, True, ODB, [(2024, 1)])
_add(C, 5, False, ODB, [(2024, 1)])
_add(C, 5, False, ODA, [(2024, 1)])

SUPPRESSED = {A, B, D, E, V, C}


def _point(insp: Insp) -> tuple[float, float]:
    """Inspections spread inside their cell (never on an edge)."""
    i = int(insp.inspection_id[1:])
    return insp.est.cx * CELL + 100 + (i * 37) % 800, insp.est.cy * CELL + 100 + (i * 53) % 800


def _seed(url: str) -> None:
    with psycopg.connect(url) as conn:
        run = conn.execute("INSERT INTO twin.ingest_runs (layer, source, status) VALUES ('establishments', "
                           "'sdc-fixture', 'succeeded') RETURNING id").fetchone()
        assert run is not None
        for e in ESTS:
            conn.execute(
                "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, legal_form, "
                "sole_proprietor, street, house_number, postcode, city, org_code, geom, run_id) VALUES "
                "(%s, %s, %s, '0146', %s, %s, 'Dorpsstraat', '1', '1234AB', 'Ergens', %s, "
                "ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (e.establishment_id, f"Bedrijf {e.establishment_id}", e.kvk, "Eenmanszaak" if e.sole else "BV",
                 e.sole, e.org, e.cx * CELL + 500, e.cy * CELL + 500, run[0]))
        for i in INSPS:
            x, y = _point(i)
            conn.execute(
                "INSERT INTO twin.inspections (inspection_id, establishment_id, inspected_on, kind, result, "
                "inspector, org_code, geom, run_id) VALUES (%s, %s, make_date(%s, 3, 1), 'routine', "
                "'voorschriften nageleefd', 'inspecteur', %s, ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
                (i.inspection_id, i.est.establishment_id, i.year, i.org, x, y, run[0]))


def _retry(step: Callable[[], T]) -> T:
    """Cluster-wide role grants of the migrations collide now and then with other pytest processes on the
    shared cluster ("tuple concurrently updated"): try again."""
    for attempt in range(4):
        try:
            return step()
        except Exception as exc:
            if "concurrently" not in str(exc) or attempt == 3:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def sdc_settings(base_settings: Settings) -> Iterator[Settings]:
    name = f"twin_sdc_{os.getpid()}"
    dbs = []

    def enter() -> Settings:
        dbs.append(throwaway_database(base_settings, name, rate_limit_rps=0.0, key_cache_s=0.0, k_anonymity=K,
                                      aggregate_cell_m=CELL))
        return dbs[-1].__enter__()

    s = _retry(enter)
    try:
        _seed(database.url_for(s, "writer"))
        yield s
    finally:
        _retry(lambda: cluster.drop_database(s, name) if s.local_cluster else dbs[-1].__exit__(None, None, None))


@pytest.fixture(scope="module")
def sdc_keys(sdc_settings: Settings) -> dict[str, dict[str, str]]:
    """Request headers per caller; anonymous sends none."""
    out: dict[str, dict[str, str]] = {"anonymous": {}}
    with psycopg.connect(database.url_for(sdc_settings, "owner"), autocommit=True) as conn:
        for name, role, org in (("public", "public", None), ("advisor", "advisor", ODA),
                                ("inspector_a", "inspector", ODA), ("inspector_b", "inspector", ODB),
                                ("inspector_c", "inspector", ODC), ("admin", "admin", None)):
            _, full = access.create_key(conn, role, org, None, f"sdc {name}")
            out[name] = {"X-API-Key": full}
    return out


@pytest.fixture(scope="module")
def client(sdc_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(sdc_settings)) as c:
        yield c


URL = "/collections/inspections/aggregates"


def _grid(client: TestClient, params: dict[str, object] | None = None,
          headers: dict[str, str] | None = None) -> dict[tuple[int, int], tuple[int, list[int]]]:
    r = client.get(URL, params=params or {}, headers=headers or {})
    assert r.status_code == 200, r.text
    out = {}
    for f in r.json()["features"]:
        p = f["properties"]
        out[(p["x_min"] // CELL, p["y_min"] // CELL)] = (p["count"], p["years"])
    return out


def _listed(client: TestClient, headers: dict[str, str]) -> dict[str, tuple[tuple[int, int], int]]:
    """What a caller can list with its own key: inspection id -> (cell, year), from the items' RD geometry."""
    r = client.get("/collections/inspections/items", headers=headers,
                   params={"limit": 1000, "crs": "http://www.opengis.net/def/crs/EPSG/0/28992"})
    if r.status_code in (401, 403):
        return {}
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["features"]) < 1000
    out = {}
    for f in doc["features"]:
        x, y = f["geometry"]["coordinates"][:2]
        out[f["properties"]["inspection_id"]] = ((int(x // CELL), int(y // CELL)),
                                                 int(f["properties"]["inspected_on"][:4]))
    return out


COALITIONS = {  # callers pooling what their keys list
    "advisor+inspector_a": ("advisor", "inspector_a"), "advisor+inspector_b": ("advisor", "inspector_b"),
}


def _truth(cell: tuple[int, int], years: list[int]) -> list[Insp]:
    return [i for i in INSPS if (i.est.cx, i.est.cy) == cell and i.year in years]


def test_fixture_is_what_the_attacks_need(client: TestClient) -> None:
    """The old rule (k records per cell) would have published every attack cell."""
    per_cell = Counter((i.est.cx, i.est.cy) for i in INSPS)
    assert all(per_cell[c] >= K for c in SUPPRESSED | {P, P2})


def test_published_cells_worked_out_by_hand(client: TestClient) -> None:
    # P: 2024 holds 6 x 2 + 5 x 1 = 17 records of 11 enterprises; 2023's 2 records are suppressed, so the
    # all-years count is 17 (2024 only), not 19. P2: the same 17.
    assert _grid(client) == {P: (17, [2024]), P2: (17, [2024])}
    assert _grid(client, {"year": 2024}) == {P: (17, [2024]), P2: (17, [2024])}
    assert _grid(client, {"year": 2023}) == {}
    assert _grid(client, {"year": 2022}) == {}


@pytest.mark.parametrize("year", [None, 2023, 2024])
def test_role_difference_property(client: TestClient, sdc_keys: dict[str, dict[str, str]], year: int | None) -> None:
    """For every published cell and every caller: published - listable is 0 or >= k, and the records
    behind that difference come from 0 or >= k enterprises; every published cell has >= k establishments."""
    params = {"year": year} if year else {}
    grid = _grid(client, params)
    for headers in sdc_keys.values():  # one public answer, whoever asks
        assert _grid(client, params, headers) == grid
    listed = {name: _listed(client, h) for name, h in sdc_keys.items()}
    for name, members in COALITIONS.items():
        listed[name] = {k: v for m in members for k, v in listed[m].items()}
    for cell, (count, years) in grid.items():
        truth = _truth(cell, years)
        assert count == len(truth)
        assert len({i.est.establishment_id for i in truth}) >= K and len({i.est.kvk for i in truth}) >= K
        for name, rows in listed.items():
            mine = {iid for iid, (c, y) in rows.items() if c == cell and y in years}
            diff = count - len(mine)
            assert diff == 0 or diff >= K, (name, cell, count, len(mine))
            hidden = [i for i in truth if i.inspection_id not in mine]
            enterprises = len({i.est.kvk for i in hidden})
            assert enterprises == 0 or enterprises >= K, (name, cell)


def test_audiences_mirror_row_level_security(client: TestClient, sdc_keys: dict[str, dict[str, str]]) -> None:
    """twin.disclosure's audiences are the roles' real visibility: per cell, what each key lists through
    the API is exactly what its audience's 'hidden' test leaves."""
    audience_of = {"anonymous": "anonymous or public", "public": "anonymous or public", "advisor": "advisor",
                   "inspector_a": f"inspector of {ODA}", "inspector_b": f"inspector of {ODB}",
                   "inspector_c": "anonymous or public"}
    for name, audience in audience_of.items():
        mine = set(_listed(client, sdc_keys[name]))
        for cell in {(i.est.cx, i.est.cy) for i in INSPS}:
            truth = [i for i in INSPS if (i.est.cx, i.est.cy) == cell]
            contribution = {i.inspection_id: Contribution(i.est.kvk, i.est.sole, i.org, 1) for i in truth}
            tests = dict(disclosure.audiences(contribution.values()))
            hides = tests.get(audience, tests["anonymous or public"])
            expected = {iid for iid, c in contribution.items() if not hides(c)}
            assert {iid for iid in mine if iid in contribution} == expected, (name, cell)
    assert len(_listed(client, sdc_keys["admin"])) == len(INSPS)


def test_attack_a_role_subtraction(client: TestClient, sdc_keys: dict[str, dict[str, str]]) -> None:
    """An advisor (A: one sole proprietor's 2 records) and an inspector of ODA (D: ODB's 2 records) would
    subtract what they list from the cell; an advisor with an ODA inspector key (C) would pool them."""
    grid = _grid(client)
    assert A not in grid and D not in grid and C not in grid
    # each alone would have been safe in C: the rule protects the pooled keys too
    cell_c = [Contribution(i.est.kvk, i.est.sole, i.org, 1) for i in INSPS if (i.est.cx, i.est.cy) == C]
    tests = dict(disclosure.audiences(cell_c))
    for single in ("anonymous or public", "advisor", f"inspector of {ODA}", f"inspector of {ODB}"):
        assert disclosure.safe([c for c in cell_c if tests[single](c)], K), single
    assert not disclosure.safe([c for c in cell_c if tests[f"advisor and inspector of {ODA}"](c)], K)


def test_attack_b_one_establishment(client: TestClient) -> None:
    """B: a sole proprietor's 7 inspections; V: 10 records of 5 establishments of one enterprise; E: one
    enterprise holds 20 of 24 records. None is published."""
    for year in (None, 2024):
        grid = _grid(client, {"year": year} if year else {})
        assert B not in grid and V not in grid and E not in grid


def test_attack_c_years_against_total(client: TestClient) -> None:
    """Per cell, the all-years count is the sum of the published years: total - any published year is
    a sum of other published years, never a suppressed one."""
    total = _grid(client)
    per_year = {y: _grid(client, {"year": y}) for y in range(2020, 2027)}
    for cell, (count, years) in total.items():
        assert count == sum(per_year[y][cell][0] for y in years)
        assert all(cell not in per_year[y] for y in set(range(2020, 2027)) - set(years))


def test_overlapping_and_shifted_boxes(client: TestClient) -> None:
    """Any box returns whole fixed cells with the values of the full grid: boxes cut through P and P2 at
    every offset, overlapping each other, add nothing to the grid."""
    full = _grid(client)
    rd = "http://www.opengis.net/def/crs/EPSG/0/28992"
    seen: set[tuple[int, int]] = set()
    for dx in range(0, 1000, 250):
        for dy in range(0, 1000, 250):
            for w, h in ((10, 10), (400, 400), (1000, 1000), (1500, 600)):
                x0, y0 = 200_000 + dx, 500_000 + dy
                got = _grid(client, {"bbox": f"{x0},{y0},{x0 + w},{y0 + h}", "bbox-crs": rd})
                for cell, value in got.items():
                    assert full[cell] == value, (dx, dy, w, h, cell)
                    assert x0 // CELL <= cell[0] <= (x0 + w) // CELL, (dx, dy, w, h, cell)
                    assert y0 // CELL <= cell[1] <= (y0 + h) // CELL, (dx, dy, w, h, cell)
                seen |= set(got)
                assert (P in got) == (x0 < 201_000 and y0 < 501_000)
    assert seen == {P, P2}


def test_cell_geometry_and_bbox_crs(client: TestClient) -> None:
    """Each cell's polygon is its RD square in WGS84 (corners checked with pyproj); a bbox in CRS84, in
    EPSG:4326 (lat,lon) and in RD New selects the same whole cell (moved here from test_rls: the security
    fixture's cells hold too few establishments to be published)."""
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(28992, 4326, always_xy=True)
    r = client.get(URL)
    doc = r.json()
    assert doc["k"] == K and doc["cellSize"] == CELL and doc["numberReturned"] == 2
    for f in doc["features"]:
        x0, y0 = f["properties"]["x_min"], f["properties"]["y_min"]
        assert f["id"] == f["properties"]["cell"] == f"E{x0}N{y0}"
        ring = f["geometry"]["coordinates"][0]
        assert len(ring) == 5
        for corner in ((x0, y0), (x0 + CELL, y0), (x0 + CELL, y0 + CELL), (x0, y0 + CELL)):
            lon, lat = to_wgs84.transform(*corner)
            assert min(abs(p[0] - lon) + abs(p[1] - lat) for p in ring) < 1e-5
    lon0, lat0 = to_wgs84.transform(200_400, 500_400)
    lon1, lat1 = to_wgs84.transform(200_600, 500_600)
    for params in ({"bbox": "200400,500400,200600,500600", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/28992"},
                   {"bbox": f"{lat0},{lon0},{lat1},{lon1}", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
                   {"bbox": f"{lon0},{lat0},{lon1},{lat1}"}):
        r = client.get(URL, params=params)
        assert r.status_code == 200, (params, r.text)
        assert [(f["properties"]["cell"], f["properties"]["count"]) for f in r.json()["features"]] == [
            ("E200000N500000", 17)], params


def test_area_summary_inspection_figures(client: TestClient, sdc_keys: dict[str, dict[str, str]]) -> None:
    """The area summary publishes no inspection figures to anonymous or public callers, and gives the
    others exactly what they can list there (difference 0)."""
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(28992, 4326, always_xy=True)
    ring = [list(to_wgs84.transform(x, y)) for x, y in
            ((200_000, 500_000), (202_000, 500_000), (202_000, 501_000), (200_000, 501_000), (200_000, 500_000))]
    body = {"type": "Polygon", "coordinates": [ring]}
    for name, headers in sdc_keys.items():
        r = client.post("/analysis/area-summary", json=body, headers=headers)
        assert r.status_code == 200, r.text
        figures = r.json()["inspections"]
        if name in ("anonymous", "public"):
            assert figures["per_year"] is None, name
            continue
        listed = _listed(client, headers)
        # establishments in P and A (their points are the cell centres), inspections of them the caller lists
        in_area = {i.inspection_id for i in INSPS if (i.est.cx, i.est.cy) in (P, A)}
        mine = Counter(y for iid, (_, y) in listed.items() if iid in in_area)
        got = {f["year"]: f["inspections"] for f in figures["per_year"]}
        assert got == {y: n for y, n in mine.items() if n}, name


def test_rule_by_hand() -> None:
    """The rule on small cells worked out by hand."""
    def c(who: str, n: int, sole: bool = False, org: str = ODA) -> Contribution:
        return Contribution(who, sole, org, n)

    five = [c(str(i), 1) for i in range(5)]
    assert disclosure.publishable(five, 5)
    assert not disclosure.publishable(five[:4], 5)  # 4 enterprises
    assert not disclosure.publishable([c("x", 5)], 5)  # 5 records, one enterprise
    # (2, 85%): 2 + 2 of 5... fine; 10 + 1 of 14 is 78.6% fine; 20 + 1 of 24 is 87.5% not
    assert disclosure.publishable([c("a", 10), c("b", 1), c("c", 1), c("d", 1), c("e", 1)], 5)
    assert not disclosure.publishable([c("a", 20), c("b", 1), c("c", 1), c("d", 1), c("e", 1)], 5)
    # an advisor would miss one sole proprietor
    assert not disclosure.publishable([*five, c("s", 3, sole=True)], 5)
    assert disclosure.publishable([*five, *(c(f"s{i}", 1, sole=True) for i in range(5))], 5)
    # an inspector of ODB would miss ODA's one record
    assert not disclosure.publishable([*(c(str(i), 1, org=ODB) for i in range(5)), c("z", 1)], 5)
    with pytest.raises(ValueError):
        disclosure.publishable(five, 1)
    # totals over periods sum the published periods only
    assert disclosure.period_totals({("c", 2024): 7, ("c", 2022): 5, ("d", 2023): 9}) == {
        "c": (12, [2022, 2024]), "d": (9, [2023])}


def test_unrestricted_read_restores_the_callers_role(sdc_settings: Settings) -> None:
    """fetch_unrestricted reads past row-level security and leaves the request's role as it was."""
    async def run() -> tuple[int, int, int]:
        async with await psycopg.AsyncConnection.connect(database.url_for(sdc_settings, "reader")) as conn:
            await conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal()))
            before = await (await conn.execute("SELECT count(*) FROM twin.inspections")).fetchone()
            rows = await disclosure.fetch_unrestricted(conn, "SELECT count(*) FROM twin.inspections")
            after = await (await conn.execute("SELECT count(*) FROM twin.inspections")).fetchone()
            assert before is not None and after is not None
            return int(before[0]), int(rows[0][0]), int(after[0])

    # in a thread of its own: a browser test's event loop may still run in this one (Playwright's sync API)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, run()).result() == (0, len(INSPS), 0)


def test_no_inspection_counted_twice_across_cells() -> None:
    """Fixture check: every inspection lies in its establishment's cell."""
    for i in INSPS:
        x, y = _point(i)
        assert (int(x // CELL), int(y // CELL)) == (i.est.cx, i.est.cy)
