"""Privacy against a determined caller (issue 17, docs/privacy.md): each attack run as a hostile caller would
(anonymous, public, advisor, an inspector of another organisation) against a twin of its own, asserting that
nothing personal is derivable. Expected answers are worked out from the rows defined here and the access
rules, never read back from the database."""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from security_fixture import ODA, ODB, seed
from testdb import throwaway_database

from layers.messages import text
from twin import access, database
from twin.settings import Settings

# A sole proprietor (ODA) with a PC6 that holds one address, 300 m from its point (the address-mismatch
# signal's threshold is 250 m), sharing its KvK number with a company record 50 km away (ODB): the attack of
# issue 17 item 1. A sole proprietor without KvK (ODB), and a partnership of natural persons (vof, ODA).
SOLE: dict[str, Any] = {"id": "P-SOLE-1", "name": "Jan Geheim Melkvee", "kvk": "55500001", "pc6": "9876ZX",
                        "street": "Geheimweg", "number": "7", "x": 200000.0, "y": 500000.0, "org": ODA}
PARTNER: dict[str, Any] = {"id": "P-BV-PARTNER", "name": "Geheim Melkvee BV", "kvk": "55500001", "x": 250000.0,
                           "y": 500000.0, "org": ODB}
NOKVK: dict[str, Any] = {"id": "P-SOLE-NOKVK", "name": "Kees Zonder KvK", "org": ODB, "x": 210000.0, "y": 510000.0,
                         "pc6": "9876ZW"}
VOF: dict[str, Any] = {"id": "P-VOF", "name": "Maatschap Klaassen", "kvk": "55500002", "pc6": "9876ZY", "org": ODA,
                       "x": 220000.0, "y": 520000.0}
# The shared KvK number is public on the company's own record (a company), so it is not a secret by itself:
# what must not be derivable is that it is also the sole proprietor's (checked on the quality answers below).
SECRETS = (SOLE["name"], SOLE["pc6"], SOLE["street"], NOKVK["name"], NOKVK["pc6"], VOF["name"],
           VOF["kvk"], VOF["pc6"], "Geheimweg")
INGEST_PATH = "/srv/vth/uploads/inspecties_2024_export.csv"


def _insert(conn: psycopg.Connection, run: int, e: dict[str, Any], sole: bool, legal_form: str) -> None:
    conn.execute(
        "INSERT INTO twin.establishments (establishment_id, name, kvk_number, sbi_code, legal_form, sole_proprietor, "
        "street, house_number, postcode, city, org_code, visit_frequency_years, started_on, geom, run_id) VALUES "
        "(%s, %s, %s, '0141', %s, %s, %s, %s, %s, 'Ergens', %s, 1, '2000-01-01', "
        "ST_SetSRID(ST_MakePoint(%s, %s), 28992), %s)",
        (e["id"], e["name"], e.get("kvk"), legal_form, sole, e.get("street", "Laan"), e.get("number", "1"),
         e.get("pc6", "1111AA"), e["org"], e["x"], e["y"], run))


@pytest.fixture(scope="module")
def priv_settings(base_settings: Settings) -> Iterator[Settings]:
    with throwaway_database(base_settings, f"twin_priv_{os.getpid()}", rate_limit_rps=0.0, key_cache_s=0.0) as s:
        writer = database.url_for(s, "writer")
        seed(writer)
        with psycopg.connect(writer) as conn:
            row = conn.execute("INSERT INTO twin.ingest_runs (layer, source, status, rows_read) VALUES "
                               "('inspections', %s, 'succeeded', 15) RETURNING id", (INGEST_PATH,)).fetchone()
            assert row is not None
            _insert(conn, row[0], SOLE, True, "Eenmanszaak")
            _insert(conn, row[0], PARTNER, False, "Besloten Vennootschap")
            _insert(conn, row[0], NOKVK, True, "Eenmanszaak")
            _insert(conn, row[0], VOF, False, "Vennootschap onder firma")
            conn.execute(
                "INSERT INTO twin.addresses (address_id, street, house_number, postcode, city, geom) VALUES "
                "('0000010000000001', %s, 7, %s, 'Ergens', ST_SetSRID(ST_MakePoint(%s, %s), 28992))",
                (SOLE["street"], SOLE["pc6"], SOLE["x"] + 300.0, SOLE["y"]))
        yield s


@pytest.fixture(scope="module")
def priv_keys(priv_settings: Settings) -> dict[str, str]:
    out = {}
    with psycopg.connect(database.url_for(priv_settings, "owner"), autocommit=True) as conn:
        for name, role, org in (("public", "public", None), ("advisor", "advisor", ODA),
                                ("inspector_a", "inspector", ODA), ("inspector_b", "inspector", ODB),
                                ("admin", "admin", None)):
            out[name] = access.create_key(conn, role, org, None, f"privacy {name}")[1]
    return out


@pytest.fixture(scope="module")
def client(priv_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(priv_settings)) as c:
        yield c


HOSTILE = ("anonymous", "public", "advisor")


def _get(client: TestClient, keys: dict[str, str], who: str, url: str) -> Any:
    headers = {} if who == "anonymous" else {"X-API-Key": keys[who]}
    return client.get(url, headers=headers)


def _records(doc: dict[str, Any]) -> set[str]:
    return {str(f["id"]).split("/")[-1] for f in doc["features"]}


def _leaks(text: str, who: str = "anonymous") -> list[str]:
    """The secrets in ``text`` that ``who`` may not see (inspector_b may see its own sole proprietor)."""
    own = (NOKVK["name"], NOKVK["pc6"]) if who == "inspector_b" else ()
    return [s for s in SECRETS if s in text and s not in own]


# -- 1. explanations that name other records ------------------------------------------------------------------
@pytest.mark.parametrize("who", [*HOSTILE, "inspector_b"])
def test_kvk_far_apart_names_no_natural_person(client: TestClient, priv_keys: dict[str, str], who: str) -> None:
    """Issue 17 item 1: the partner of a signal is named only when the caller may see its personal fields."""
    for url in ("/quality/signal.kvk-far-apart", "/quality/signals?signal=signal.kvk-far-apart",
                "/quality/signals", f"/collections/establishments/items/{PARTNER['id']}"):
        r = _get(client, priv_keys, who, url)
        assert r.status_code == 200, (url, r.text)
        assert not _leaks(r.text, who), (who, url, _leaks(r.text, who))
        if url.startswith("/quality"):
            assert SOLE["id"] not in r.text and SOLE["kvk"] not in r.text, (who, url)
    doc = _get(client, priv_keys, who, "/quality/signal.kvk-far-apart").json()
    # the sole proprietor's record is never listed; the company is not listed either: its only far partner is
    # a record the caller may not see
    assert _records(doc) == set()
    assert doc["numberMatched"] == 0


def test_kvk_far_apart_for_those_who_may_see(client: TestClient, priv_keys: dict[str, str]) -> None:
    admin = _get(client, priv_keys, "admin", "/quality/signal.kvk-far-apart").json()
    assert _records(admin) == {SOLE["id"], PARTNER["id"]}
    own = _get(client, priv_keys, "inspector_a", "/quality/signal.kvk-far-apart").json()
    # their own sole proprietor, and the company whose partner is that sole proprietor (theirs to see)
    assert _records(own) == {SOLE["id"], PARTNER["id"]}
    reasons = {f["id"]: f["properties"]["quality_reason"] for f in own["features"]}
    assert PARTNER["id"] in reasons[SOLE["id"]] and SOLE["id"] in reasons[PARTNER["id"]]


@pytest.mark.parametrize("who", [*HOSTILE, "inspector_a"])
def test_missing_kvk_of_a_named_sole_proprietor_is_not_told(client: TestClient, priv_keys: dict[str, str],
                                                           who: str) -> None:
    """Issue 17 item 5: /quality/...kvk_number-filled lists no natural person whose fields the caller may not see,
    and its count agrees with the list (the same for every rule of the layer)."""
    doc = _get(client, priv_keys, who, "/quality/establishments.kvk_number-filled").json()
    assert NOKVK["id"] not in _records(doc)
    summary = _get(client, priv_keys, who, "/quality?f=json").json()
    rules = {r["id"]: r for layer in summary["layers"] for r in layer["rules"]}
    for rule_id in ("establishments.kvk_number-filled", "signal.kvk-far-apart", "signal.address-location-mismatch",
                    "establishments.postcode-format"):
        listed = _get(client, priv_keys, who, f"/quality/{rule_id}?limit=1").json()["numberMatched"]
        assert rules[rule_id]["failed"] == listed, (who, rule_id)


def test_missing_kvk_shown_to_own_inspector_and_admin(client: TestClient, priv_keys: dict[str, str]) -> None:
    for who in ("inspector_b", "admin"):
        assert NOKVK["id"] in _records(_get(client, priv_keys, who, "/quality/establishments.kvk_number-filled").json())


# -- 2. the location of a natural person ------------------------------------------------------------------------
@pytest.mark.parametrize("who", [*HOSTILE, "inspector_b"])
def test_no_pc6_street_or_distance_of_a_natural_person(client: TestClient, priv_keys: dict[str, str],
                                                       who: str) -> None:
    """Issue 17 item 2: no PC6 (items, filters, sorting, CSV, quality pages), so the BAG addresses of a PC6
    cannot be intersected with it; no distance to their address."""
    items = _get(client, priv_keys, who, "/collections/establishments/items?limit=100").json()
    by_id = {f["id"]: f["properties"] for f in items["features"]}
    for e in (SOLE, VOF):
        props = by_id[e["id"]]
        assert props["postcode"] == e["pc6"][:4], (who, e["id"])
        assert props["name"] is None and props.get("kvk_number") is None and props.get("street") is None
    assert by_id[PARTNER["id"]]["name"] == PARTNER["name"]  # a company keeps its public fields
    for url in (f"/collections/establishments/items?postcode={SOLE['pc6']}",
                f"/collections/establishments/items?filter=postcode%3D%27{SOLE['pc6']}%27",
                f"/collections/establishments/items?filter=postcode%20LIKE%20%27{SOLE['pc6']}%25%27"):
        r = _get(client, priv_keys, who, url)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            assert r.json()["numberMatched"] == 0 if "numberMatched" in r.json() else not r.json()["features"]
    csv = _get(client, priv_keys, who, "/collections/establishments/items?f=csv&limit=100").text
    assert not _leaks(csv, who)
    for url in ("/quality/signal.address-location-mismatch", "/quality/establishments.postcode-format",
                "/quality/establishments.address-found", "/quality/signals", "/quality?f=html",
                f"/collections/establishments/items/{SOLE['id']}"):
        r = _get(client, priv_keys, who, url)
        assert r.status_code == 200, (url, r.text)
        assert not _leaks(r.text, who), (who, url, _leaks(r.text, who))
    mismatch = _get(client, priv_keys, who, "/quality/signal.address-location-mismatch").json()
    assert SOLE["id"] not in _records(mismatch)


def test_distance_to_the_address_for_those_who_may_see(client: TestClient, priv_keys: dict[str, str]) -> None:
    for who in ("inspector_a", "admin"):
        doc = _get(client, priv_keys, who, "/quality/signal.address-location-mismatch").json()
        assert SOLE["id"] in _records(doc)
        assert "300 m" in json.dumps(doc)


def test_tiles_carry_pc4_only(client: TestClient) -> None:
    """Public vector tiles (cached for everyone) carry the PC4 of a natural person; a tile filter on the PC6
    finds nothing."""
    import mapbox_vector_tile  # type: ignore[import-untyped]

    lon, lat = _lonlat(SOLE["x"], SOLE["y"])
    z = 14
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    r = client.get(f"/collections/establishments/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert r.status_code == 200
    layer = mapbox_vector_tile.decode(r.content)["establishments"]
    postcodes = {f["properties"].get("postcode") for f in layer["features"]}
    assert SOLE["pc6"] not in postcodes and SOLE["pc6"][:4] in postcodes
    r = client.get(f"/collections/establishments/tiles/WebMercatorQuad/{z}/{x}/{y}?postcode={SOLE['pc6']}")
    assert r.status_code == 204


def _lonlat(x: float, y: float) -> tuple[float, float]:
    from pyproj import Transformer

    return Transformer.from_crs(28992, 4326, always_xy=True).transform(x, y)


# -- 3. restricted counts per audience ------------------------------------------------------------------------
def test_inspection_overdue_within_own_organisation(client: TestClient, priv_keys: dict[str, str]) -> None:
    """Issue 17 item 5: an inspector is not shown other organisations' establishments as never inspected."""
    doc = _get(client, priv_keys, "inspector_b", "/quality/establishments.inspection-overdue?limit=100").json()
    orgs = {f["properties"]["org_code"] for f in doc["features"]}
    assert orgs <= {ODB}
    assert SOLE["id"] not in _records(doc) and VOF["id"] not in _records(doc)
    advisor = _get(client, priv_keys, "advisor", "/quality/establishments.inspection-overdue?limit=100").json()
    assert not {SOLE["id"], NOKVK["id"], VOF["id"]} & _records(advisor)  # inspections of natural persons: hidden
    admin = _get(client, priv_keys, "admin", "/quality/establishments.inspection-overdue?limit=100").json()
    assert {SOLE["id"], NOKVK["id"], VOF["id"], PARTNER["id"]} <= _records(admin)  # never inspected, 1-year class


# -- 4. edges --------------------------------------------------------------------------------------------------
DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize("url", ["/coverages/nitrogen-deposition/statistics", "/analysis/area-summary"])
@pytest.mark.parametrize("body", [DEEP, b'{"type": "Polygon", "coordinates": ' + DEEP + b"}",
                                  b'{"type": "Polygon", "coordinates": [[[1e999999, 2], [3, 4]]]}',
                                  b'{"type": "Polygon", "coordinates": [[[' + b"9" * 5000 + b", 2]]]}",
                                  b'\xff\xfe{"type": 1}', "{\"type\": \"Polyg\u00f6n\"}".encode("latin-1"),
                                  b'{"type": "Polygon", "coordinates": [[[1, 2], [3, 4], "\\ud800"]]}', b""])
def test_no_500_on_any_body(client: TestClient, url: str, body: bytes) -> None:
    r = client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 404, 422) and r.status_code != 422, (r.status_code, r.text[:300])
    doc = r.json()
    assert set(doc) <= {"code", "description", "parameter"} and doc["code"] and doc["description"]
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in r.headers


@pytest.mark.parametrize("url", ["/collections/establishments/items?limit=abc", "/analysis/context?lon=abc&lat=1",
                                 "/quality?refresh=maybe", "/collections/establishments/items?offset=1e400"])
def test_validation_errors_are_400_in_the_documented_shape(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 400, (url, r.status_code, r.text)
    assert set(r.json()) <= {"code", "description", "parameter"} and "detail" not in r.json()


def test_restricted_layer_401_names_the_scheme(client: TestClient) -> None:
    for url in ("/collections/inspections/items", "/quality/establishments.inspection-overdue",
                "/collections/inspections/tiles/WebMercatorQuad/10/500/300"):
        r = client.get(url)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_refresh_is_for_admins(client: TestClient, priv_keys: dict[str, str]) -> None:
    assert _get(client, priv_keys, "anonymous", "/quality?refresh=true").status_code == 401
    for who in ("public", "advisor", "inspector_a"):
        assert _get(client, priv_keys, who, "/quality?refresh=true").status_code == 403
    assert _get(client, priv_keys, "admin", "/quality?refresh=true&f=json").json()["refresh"] is True
    assert "refresh=true" not in _get(client, priv_keys, "anonymous", "/quality?f=html").text


@pytest.mark.parametrize("who", ["anonymous", "advisor"])
def test_printable_report_shows_no_path_or_restricted_counts(client: TestClient, priv_keys: dict[str, str],
                                                            who: str) -> None:
    """Issue 17 item 5: the anonymous report showed the ingest file path and the inspection row count."""
    lon, lat = _lonlat(SOLE["x"], SOLE["y"])
    r = _get(client, priv_keys, who, f"/analysis/context?lon={lon}&lat={lat}&radius=1000&f=html")
    assert r.status_code == 200, r.text[:300]
    assert "/srv/vth" not in r.text and "inspecties_2024_export.csv" in r.text
    row = r.text[r.text.index(f"<td>{html.escape(text('nl', 'layer.inspections'))}</td>"):]  # the sources table
    row = row[:row.index("</tr>")]
    assert "15" not in row
    assert not _leaks(r.text, who)
