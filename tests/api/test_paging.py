"""Keyset (cursor) paging of /items: next links with signed cursors, stable while rows are inserted,
refused when altered or replayed against another query or caller; offset up to a cap; the OpenAPI maximum
of limit, and GDAL's OAPIF driver paging with it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from api_fixtures import PREFIX, Establishment
from fastapi.testclient import TestClient
from servers import serve_app

from twin import access
from twin.settings import Settings

ITEMS = "/collections/establishments/items"
AREA = "3.49,53.49,3.60,53.56"  # the 60 test establishments


@pytest.fixture(scope="module")
def inspector_key(owner_url: str) -> str:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        return access.create_key(conn, "inspector", "ODT5", None, "paging test")[1]


def walk(client: TestClient, url: str, headers: dict[str, str] | None = None,
         on_page: Any = None) -> list[dict[str, Any]]:
    """Every feature reached by following next links from ``url``."""
    seen: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["features"]
        links = {link["rel"]: link["href"] for link in body["links"]}
        next_url = links.get("next")
        if next_url:
            assert "cursor=" in next_url and "offset=" not in next_url
        pages += 1
        if on_page:
            on_page(pages)
        assert pages < 200
    return seen


def ids(features: list[dict[str, Any]]) -> list[str]:
    return [f["id"] for f in features]


def expected_order(reader_url: str, order: str) -> list[str]:
    with psycopg.connect(reader_url) as conn:
        conn.execute("SET ROLE twin_api_public")
        rows = conn.execute(f"SELECT establishment_id FROM twin.establishments WHERE establishment_id LIKE 't5-e%' "
                            f"ORDER BY {order}").fetchall()
    return [r[0] for r in rows]


def test_walking_by_next_links_returns_every_feature_once(
        client: TestClient, api_data: list[Establishment], reader_url: str) -> None:
    with psycopg.connect(reader_url) as conn:
        row = conn.execute("SELECT count(*) FROM twin.establishments").fetchone()
    assert row is not None
    seen = walk(client, f"{ITEMS}?limit=7")
    assert len(ids(seen)) == len(set(ids(seen))) == row[0]
    assert ids(seen) == sorted(ids(seen))  # the natural key's order


@pytest.mark.parametrize(("sortby", "order"), [
    ("-started_on", "started_on DESC NULLS LAST, establishment_id"),
    ("city,-visit_frequency_years", "city ASC NULLS FIRST, visit_frequency_years DESC NULLS LAST, establishment_id"),
    # name is personal: masked (null) for sole proprietors, and sorted as served
    ("brzo,-name", "brzo ASC NULLS FIRST, CASE WHEN sole_proprietor IS NOT FALSE THEN NULL ELSE name END "
     "DESC NULLS LAST, establishment_id"),
])
def test_cursor_pages_follow_sortby_with_nulls(client: TestClient, api_data: list[Establishment], reader_url: str,
                                               sortby: str, order: str) -> None:
    seen = walk(client, f"{ITEMS}?bbox={AREA}&limit=8&sortby={sortby}")
    assert ids(seen) == expected_order(reader_url, order)


def test_prev_links_lead_back_page_by_page(client: TestClient, api_data: list[Establishment]) -> None:
    pages = []
    url: str | None = f"{ITEMS}?bbox={AREA}&limit=9&sortby=-city"
    while url:
        body = client.get(url).json()
        pages.append(ids(body["features"]))
        url = {link["rel"]: link["href"] for link in body["links"]}.get("next")
    assert len(pages) == 7
    # back from the last page
    body = client.get({link["rel"]: link["href"] for link in client.get(
        f"{ITEMS}?bbox={AREA}&limit=9&sortby=-city").json()["links"]}["next"]).json()
    for expected in pages[1:]:
        assert ids(body["features"]) == expected
        links = {link["rel"]: link["href"] for link in body["links"]}
        if "next" not in links:
            break
        body = client.get(links["next"]).json()
    for expected in reversed(pages[:-1]):
        links = {link["rel"]: link["href"] for link in body["links"]}
        body = client.get(links["prev"]).json()
        assert ids(body["features"]) == expected


def test_a_walk_is_stable_while_rows_are_inserted(client: TestClient, api_data: list[Establishment],
                                                  writer_url: str) -> None:
    before = {e.id for e in api_data}
    added: list[str] = []

    def insert_some(page: int) -> None:
        # rows that sort before the cursor, right after it and at the end, on every page
        with psycopg.connect(writer_url) as conn:
            for n, tag in enumerate(("a", "e0", "z")):
                fid = f"{PREFIX}{tag}-new{page:02d}{n}"
                conn.execute(
                    "INSERT INTO twin.establishments (establishment_id, name, sbi_code, org_code, geom) "
                    "VALUES (%s, 'nieuw', '0141', "
                    "'ODT5', ST_Transform(ST_SetSRID(ST_Point(3.55, 53.52), 4326), 28992))", (fid,))
                added.append(fid)

    try:
        seen = ids(walk(client, f"{ITEMS}?bbox={AREA}&limit=6", on_page=insert_some))
        assert len(seen) == len(set(seen))  # nothing served twice
        assert before <= set(seen)  # nothing that was there at the start skipped
        # an offset walk would have repeated features: the proof that inserts did move the rows
        assert any(f in seen for f in added)
    finally:
        with psycopg.connect(writer_url) as conn:
            conn.execute("DELETE FROM twin.establishments WHERE establishment_id = ANY(%s)", (added,))


def cursor_of(client: TestClient, url: str, headers: dict[str, str] | None = None) -> str:
    body = client.get(url, headers=headers).json()
    href = {link["rel"]: link["href"] for link in body["links"]}["next"]
    return href.split("cursor=")[1].split("&")[0]


def assert_cursor_error(r: Any) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "InvalidParameterValue" and body["parameter"] == "cursor"
    assert "first page" in body["description"]


def test_an_altered_or_foreign_cursor_is_400(client: TestClient, api_data: list[Establishment],
                                             inspector_key: str) -> None:
    cursor = cursor_of(client, f"{ITEMS}?bbox={AREA}&limit=5")
    assert client.get(f"{ITEMS}?bbox={AREA}&limit=5&cursor={cursor}").status_code == 200
    body, mac = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[1] = ["t5-e050"]  # jump ahead: a forged position
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    for bad in (f"{forged}.{mac}", cursor[:-3], "abc", cursor.replace(".", ""), ""):
        assert_cursor_error(client.get(ITEMS, params={"bbox": AREA, "limit": 5, "cursor": bad}))
    # replayed against another filter, sort, collection or caller
    assert_cursor_error(client.get(ITEMS, params={"bbox": "3.49,53.49,3.55,53.56", "cursor": cursor}))
    assert_cursor_error(client.get(ITEMS, params={"bbox": AREA, "sortby": "name", "cursor": cursor}))
    assert_cursor_error(client.get(ITEMS, params={"bbox": AREA, "sbi_code": "0141", "cursor": cursor}))
    assert_cursor_error(client.get("/collections/permits/items", params={"bbox": AREA, "cursor": cursor}))
    assert_cursor_error(client.get(ITEMS, params={"bbox": AREA, "cursor": cursor},
                                   headers={"Authorization": f"Bearer {inspector_key}"}))
    # a cursor with an offset: one or the other
    r = client.get(ITEMS, params={"bbox": AREA, "cursor": cursor, "offset": 5})
    assert r.status_code == 400 and r.json()["parameter"] == "cursor"


def test_the_cursor_holds_only_what_the_page_showed(client: TestClient, api_data: list[Establishment]) -> None:
    # kvk_number is personal: masked (null) for sole proprietors for anonymous callers; sorting by it must
    # not carry a hidden value in the cursor
    url = f"{ITEMS}?bbox={AREA}&limit=5&sortby=kvk_number"
    body = client.get(url).json()
    last = body["features"][-1]
    assert last["properties"]["kvk_number"] is None  # nulls first: the masked ones
    cursor = cursor_of(client, url)
    part = cursor.split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert payload[1] == [None, last["id"]]
    real = {e.id: e.kvk for e in api_data}
    assert real[last["id"]] not in cursor and real[last["id"]] not in json.dumps(payload)
    seen = walk(client, url)
    hidden = {e.id for e in api_data if e.sole_proprietor}
    assert all(f["properties"]["kvk_number"] is None for f in seen if f["id"] in hidden)


def test_offset_is_capped_and_the_error_points_to_next(client: TestClient, api_data: list[Establishment]) -> None:
    cap = client.app.state.settings.max_offset  # type: ignore[attr-defined]
    assert client.get(ITEMS, params={"offset": cap, "limit": 1}).status_code == 200
    r = client.get(ITEMS, params={"offset": cap + 1, "limit": 1})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "InvalidParameterValue" and body["parameter"] == "offset"
    assert "next" in body["description"] and f"{cap:,}" in body["description"]


def test_numbermatched_on_every_cursor_page(client: TestClient, api_data: list[Establishment]) -> None:
    url: str | None = f"{ITEMS}?bbox={AREA}&limit=25"
    while url:
        body = client.get(url).json()
        assert body["numberMatched"] == 60
        url = {link["rel"]: link["href"] for link in body["links"]}.get("next")


def test_openapi_declares_the_maximum_of_limit(client: TestClient) -> None:
    doc = client.get("/api").json()
    params = {p["name"]: p for p in doc["paths"]["/collections/{collection_id}/items"]["get"]["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100}
    assert "cursor" in params


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    with serve_app(settings) as base:
        yield base


def test_gdal_follows_the_cursors_with_its_page_size(server: str, api_data: list[Establishment]) -> None:
    tool = shutil.which("ogrinfo")
    assert tool, "ogrinfo (gdal-bin) is not installed"
    env = {**os.environ, "CPL_DEBUG": "ON", "CPL_CURL_VERBOSE": "NO"}
    r = subprocess.run([tool, "-ro", "-al", "-q", "-where", "establishment_id LIKE 't5-e%'",
                        f"OAPIF:{server}/collections/establishments", "establishments"],
                       capture_output=True, text=True, timeout=120, check=False, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    fetched = [line for line in r.stderr.splitlines() if "/items" in line and "Fetch" in line]
    assert any("cursor=" in line for line in fetched) or len(fetched) <= 2, fetched[:5]
    assert r.stdout.count("establishment_id (String) = t5-e") == 60
