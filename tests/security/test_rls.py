"""Row-level security on inspections, as the API's read-only role: who sees which rows is decided by
PostgreSQL from the transaction-local twin.role / twin.org_code, and fails closed without them."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from security_fixture import INSPECTIONS, ODA, ODB, expected_inspections

from api.auth import PrincipalDep, require_read
from api.deps import ConnDep
from layers.registry import LAYERS
from twin.access import REQUEST_SETTINGS_SQL, Principal, request_settings
from twin.settings import Settings


def _visible(reader_url: str, role: str | None, org: str | None = None) -> set[str]:
    """Inspections visible to the reader in a transaction set up as the API does for ``role``."""
    with psycopg.connect(reader_url) as conn:
        if role is not None:
            conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal(role=role, org_code=org)))  # type: ignore[arg-type]
        return {r[0] for r in conn.execute("SELECT inspection_id FROM twin.inspections").fetchall()}


@pytest.mark.parametrize(
    ("role", "org"),
    [("admin", None), ("inspector", ODA), ("inspector", ODB), ("advisor", ODA), ("advisor", None),
     ("public", None), ("anonymous", None), ("inspector", None)],
)
def test_reader_sees_what_the_role_allows(sec_reader_url: str, role: str, org: str | None) -> None:
    expected = expected_inspections(role, org) if role != "inspector" or org else set()
    assert _visible(sec_reader_url, role, org) == expected


def test_setting_twin_role_alone_grants_nothing(sec_reader_url: str) -> None:
    """Only the database role counts: a transaction that merely claims a role in a setting sees nothing,
    and the reader cannot switch to a role outside the API's."""
    with psycopg.connect(sec_reader_url) as conn:
        conn.execute("SELECT set_config('twin.role', 'admin', true)")
        assert conn.execute("SELECT count(*) FROM twin.inspections").fetchone() == (0,)
        conn.rollback()
        for role in ("twin_owner", "twin_writer", "postgres"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT set_config('role', %s, true)", (role,))
            conn.rollback()


def test_fixture_is_not_trivial() -> None:
    """The rules must actually separate the roles on this fixture."""
    sets = [expected_inspections("admin"), expected_inspections("inspector", ODA),
            expected_inspections("inspector", ODB), expected_inspections("advisor")]
    assert len({frozenset(s) for s in sets}) == 4 and all(sets)


def test_without_settings_nothing_is_visible(sec_reader_url: str) -> None:
    assert _visible(sec_reader_url, None) == set()


def test_settings_do_not_outlive_the_transaction(sec_reader_url: str) -> None:
    with psycopg.connect(sec_reader_url) as conn:
        conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal(role="admin")))
        assert conn.execute("SELECT count(*) FROM twin.inspections").fetchone() == (len(INSPECTIONS),)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM twin.inspections").fetchone() == (0,)


def test_reader_is_read_only(sec_reader_url: str) -> None:
    with psycopg.connect(sec_reader_url) as conn:
        conn.execute(REQUEST_SETTINGS_SQL, request_settings(Principal(role="admin")))
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM twin.inspections")


def test_rls_is_forced_and_writer_and_owner_see_all(sec_owner_url: str, sec_settings: Settings) -> None:
    from twin import database

    with psycopg.connect(sec_owner_url) as conn:
        row = conn.execute("SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                           "WHERE oid = 'twin.inspections'::regclass").fetchone()
        assert row == (True, True)
        assert conn.execute("SELECT count(*) FROM twin.inspections").fetchone() == (len(INSPECTIONS),)
    with psycopg.connect(database.url_for(sec_settings, "writer")) as conn:
        assert conn.execute("SELECT count(*) FROM twin.inspections").fetchone() == (len(INSPECTIONS),)


def test_grid_function_is_k_anonymous(sec_reader_url: str) -> None:
    """Anonymous callers count through the SECURITY DEFINER function only; cells under k are left out."""
    cell, k = 1000, 5
    per_cell = Counter((int(i.x // cell), int(i.y // cell)) for i in INSPECTIONS)
    expected = {c: n for c, n in per_cell.items() if n >= k}
    assert expected and len(expected) < len(per_cell)  # the fixture has a suppressed cell
    with psycopg.connect(sec_reader_url) as conn:
        rows = conn.execute("SELECT cx, cy, n FROM twin.inspection_grid_counts(%s, %s, NULL, NULL, NULL, NULL, NULL)",
                            (cell, k)).fetchall()
        assert {(cx, cy): n for cx, cy, n in rows} == expected
        for bad_cell, bad_k in ((50, 5), (1000, 1)):
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                conn.execute("SELECT * FROM twin.inspection_grid_counts(%s, %s, NULL, NULL, NULL, NULL, NULL)",
                             (bad_cell, bad_k))
            conn.rollback()


def test_grid_bbox_selects_whole_cells(sec_reader_url: str) -> None:
    """A bbox cutting through a cell still counts the whole cell, so moving its edge reveals nothing."""
    cell = 1000
    full = sum(1 for i in INSPECTIONS if (int(i.x // cell), int(i.y // cell)) == (150, 450))
    with psycopg.connect(sec_reader_url) as conn:
        for x0, x1 in ((150000, 151000), (150050, 150150), (150595, 150605), (150999, 151000)):
            rows = conn.execute(
                "SELECT cx, cy, n FROM twin.inspection_grid_counts(1000, 5, %s, 450000, %s, 451000, NULL)",
                (x0, x1)).fetchall()
            assert rows == [(150, 450, full)], (x0, x1)


def test_aggregates_endpoint_for_anonymous(sec_client: TestClient) -> None:
    """Under statistical disclosure control (tests/security/test_disclosure.py has the attacks and the
    published values) this fixture publishes nothing: its cells hold 6, 4 and 5 records, but of 2, 1 and 1
    establishments, fewer than k. The old rule (k records) published two of them."""
    cell, k = 1000, 5
    est_per_cell: dict[tuple[int, int], set[str]] = {}
    for i in INSPECTIONS:
        est_per_cell.setdefault((int(i.x // cell), int(i.y // cell)), set()).add(i.establishment_id)
    assert all(len(e) < k for e in est_per_cell.values())
    for params in ({}, {"year": 2024}, {"year": 2023}):
        r = sec_client.get("/collections/inspections/aggregates", params=params)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["features"] == [] and doc["numberReturned"] == 0 and doc["k"] == k and doc["cellSize"] == cell
    for params, code in (({"bbox": "1,2,3"}, 400), ({"bbox": "5,53,4,52"}, 400), ({"bbox": "nan,1,2,3"}, 400),
                         ({"year": "1800"}, 400)):
        assert sec_client.get("/collections/inspections/aggregates", params=params).status_code == code, params
    assert sec_client.get("/collections/establishments/aggregates").status_code == 404
    assert sec_client.get("/collections/nope/aggregates").status_code == 404


def test_bbox_aggregates_in_bbox_crs(sec_client: TestClient) -> None:
    """bbox-crs as for the items: the same box in RD New, EPSG:4326 (lat,lon order) and CRS84 is accepted
    (the cells they select, and their values, are checked in test_disclosure.py); bad ones are 400s."""
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(28992, 4326, always_xy=True)
    lon0, lat0 = to_wgs84.transform(170400, 470400)
    lon1, lat1 = to_wgs84.transform(170600, 470600)
    url = "/collections/inspections/aggregates"
    for params in ({"bbox": "170400,470400,170600,470600", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/28992"},
                   {"bbox": f"{lat0},{lon0},{lat1},{lon1}", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
                   {"bbox": f"{lon0},{lat0},{lon1},{lat1}", "bbox-crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
                   {"bbox": f"{lon0},{lat0},{lon1},{lat1}"}):
        r = sec_client.get(url, params=params)
        assert r.status_code == 200, (params, r.text)
        assert r.json()["features"] == [], params  # one sole proprietor's 5 inspections: suppressed
    r = sec_client.get(url, params={"bbox": "170400,470400,170600,470600", "bbox-crs": "EPSG:9999"})
    assert r.status_code == 400 and r.json()["parameter"] == "bbox-crs", r.text
    r = sec_client.get(url, params={"bbox": "170400,470400,170600,470600"})  # RD numbers read as CRS84
    assert r.status_code == 400 and r.json()["parameter"] == "bbox", r.text


# The API path: ConnDep carries the caller into the transaction. A route of the test's own, so this holds
# whatever the feature routes do.
def _probe_app(sec_settings: Settings) -> FastAPI:
    from api.app import create_app

    app = create_app(sec_settings)

    @app.get("/_probe/inspections")
    async def probe(principal: PrincipalDep, conn: ConnDep) -> dict[str, Any]:
        require_read(principal, LAYERS["inspections"])
        cur = await conn.execute("SELECT inspection_id FROM twin.inspections ORDER BY inspection_id")
        return {"ids": [r[0] for r in await cur.fetchall()]}

    return app


def test_api_requests_see_their_own_rows(sec_settings: Settings, keys: dict[str, str]) -> None:
    with TestClient(_probe_app(sec_settings)) as c:
        for name, role, org in (("admin", "admin", None), ("inspector_a", "inspector", ODA),
                                ("inspector_b", "inspector", ODB), ("advisor", "advisor", ODA)):
            for _ in range(3):  # pooled connections must not carry one caller's settings to the next
                r = c.get("/_probe/inspections", headers={"X-API-Key": keys[name]})
                assert r.status_code == 200, r.text
                assert set(r.json()["ids"]) == expected_inspections(role, org), name
        assert c.get("/_probe/inspections").status_code == 401
        assert c.get("/_probe/inspections", headers={"X-API-Key": keys["public"]}).status_code == 403


# The real feature routes (api.routes.features) under the same rules.
def _ids(doc: dict[str, Any]) -> set[str]:
    return {f["id"] for f in doc["features"]}


def test_items_of_inspections_per_role(sec_client: TestClient, keys: dict[str, str]) -> None:
    r = sec_client.get("/collections/inspections/items")
    assert r.status_code == 401 and "/collections/inspections/aggregates" in r.json()["description"]
    assert sec_client.get("/collections/inspections/items", headers={"X-API-Key": keys["public"]}).status_code == 403
    for name, role, org in (("admin", "admin", None), ("inspector_a", "inspector", ODA),
                            ("inspector_b", "inspector", ODB), ("advisor", "advisor", ODA)):
        r = sec_client.get("/collections/inspections/items", params={"limit": 100}, headers={"X-API-Key": keys[name]})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert _ids(doc) == expected_inspections(role, org), name
        assert doc["numberMatched"] == len(expected_inspections(role, org))
        # the inspector's name is personal: only inspectors (of their own rows) and admins get it
        has_inspector = {"inspector" in f["properties"] for f in doc["features"]}
        assert has_inspector == {role in ("inspector", "admin")}, name
    # another organisation's record is 'not found', not 'forbidden' (its existence is not revealed)
    other = next(i.inspection_id for i in INSPECTIONS if i.org == ODB)
    r = sec_client.get(f"/collections/inspections/items/{other}", headers={"X-API-Key": keys["inspector_a"]})
    assert r.status_code == 404
    r = sec_client.get(f"/collections/inspections/items/{other}", headers={"X-API-Key": keys["inspector_b"]})
    assert r.status_code == 200


def test_sole_proprietors_are_masked_in_public_views(sec_client: TestClient, keys: dict[str, str]) -> None:
    from security_fixture import ESTABLISHMENTS

    from layers.registry import LAYERS

    personal = {f.name for f in LAYERS["establishments"].fields if f.personal}
    assert {"name", "kvk_number", "street", "house_number"} <= personal
    cases = ((None, lambda e: not e.sole), ("public", lambda e: not e.sole), ("advisor", lambda e: not e.sole),
             ("inspector_a", lambda e: not e.sole or e.org == ODA), ("admin", lambda e: True))
    for name, shown in cases:
        headers = {"X-API-Key": keys[name]} if name else {}
        for fmt in ("json", "csv"):
            r = sec_client.get("/collections/establishments/items", params={"f": fmt}, headers=headers)
            assert r.status_code == 200, r.text
            text = r.text
            for e in ESTABLISHMENTS:
                assert (e.name in text) == shown(e), (name, fmt, e.establishment_id)
                assert (e.kvk in text) == shown(e), (name, fmt, e.establishment_id)
        doc = sec_client.get("/collections/establishments/items", headers=headers).json()
        for f in doc["features"]:
            e = next(x for x in ESTABLISHMENTS if x.establishment_id == f["id"])
            if not shown(e):
                assert all(f["properties"].get(p) is None for p in personal), (name, e.establishment_id)
    # a filter on a masked field cannot find what the response hides
    sole = next(e for e in ESTABLISHMENTS if e.sole)
    r = sec_client.get("/collections/establishments/items", params={"filter": f"kvk_number = '{sole.kvk}'"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0
    r = sec_client.get("/collections/establishments/items", params={"filter": f"kvk_number = '{sole.kvk}'"},
                       headers={"X-API-Key": keys["admin"]})
    assert r.status_code == 200 and r.json()["numberMatched"] == 1
