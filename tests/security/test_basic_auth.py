"""API keys as the password of HTTP Basic (issue 19): what QGIS 3.22, ArcGIS Pro, GDAL and OWSLib send from
their authentication managers. The key works with any user name, a wrong one is refused like a wrong key, the
answers are private, and a 401 challenges desktop clients with Basic but never a script in the map's page."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient


def basic(password: str, user: str = "qgis") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def challenges(r: object) -> list[str]:
    return r.headers.get_list("www-authenticate")  # type: ignore[attr-defined]


@pytest.mark.parametrize("user", ["qgis", "", "anything at all", "twin"])
def test_the_key_as_basic_password_with_any_user_name(sec_client: TestClient, keys: dict[str, str],
                                                      user: str) -> None:
    r = sec_client.get("/whoami", headers=basic(keys["inspector_a"], user))
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "inspector" and r.json()["authenticated"] is True


def test_basic_reads_the_restricted_layer_as_the_key_does(sec_client: TestClient, keys: dict[str, str]) -> None:
    for name in ("advisor", "inspector_a", "admin"):
        keyed = sec_client.get("/collections/inspections/items?limit=1000", headers={"X-API-Key": keys[name]})
        r = sec_client.get("/collections/inspections/items?limit=1000", headers=basic(keys[name]))
        assert r.status_code == keyed.status_code == 200
        assert r.json()["features"] == keyed.json()["features"]  # same rows (RLS) and fields as the key
        assert r.headers["cache-control"] in ("no-store", "private") or "private" in r.headers["cache-control"]
        assert "authorization" in r.headers["vary"].lower()
    # personal fields are masked alike: establishments through Basic equal those through the header
    for name in ("public", "advisor"):
        keyed = sec_client.get("/collections/establishments/items?limit=1000", headers={"X-API-Key": keys[name]})
        r = sec_client.get("/collections/establishments/items?limit=1000", headers=basic(keys[name]))
        assert r.status_code == 200 and r.json()["features"] == keyed.json()["features"]
    r = sec_client.get("/collections/inspections/items", headers=basic(keys["public"]))
    assert r.status_code == 403


def test_a_wrong_basic_password_is_a_wrong_key(sec_client: TestClient, keys: dict[str, str]) -> None:
    key_id = keys["advisor"].split("_")[1]
    wrong = f"twin_{key_id}_{'A' * 43}"
    by_header = sec_client.get("/collections/inspections/items", headers={"X-API-Key": wrong})
    for headers in (basic(wrong), basic("not a key"), basic(""), {"Authorization": "Basic !!!"},
                    {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()}):
        r = sec_client.get("/collections/inspections/items", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["code"] == "Unauthorized"
    assert sec_client.get("/collections/inspections/items", headers=basic(wrong)).json() == by_header.json()
    # Basic and X-API-Key together only when they carry the same key
    both = {**basic(keys["admin"]), "X-API-Key": keys["advisor"]}
    assert sec_client.get("/whoami", headers=both).status_code == 401
    both = {**basic(keys["admin"]), "X-API-Key": keys["admin"]}
    assert sec_client.get("/whoami", headers=both).json()["role"] == "admin"


def test_a_401_challenges_desktop_clients_with_basic_but_not_the_map(sec_client: TestClient) -> None:
    desktop = {"User-Agent": "Mozilla/5.0 QGIS/32216/Debian GNU/Linux 12 (bookworm)"}
    r = sec_client.get("/collections/inspections/items", headers=desktop)
    assert r.status_code == 401
    assert challenges(r) == ['Bearer realm="vth-twin"', 'Basic realm="vth-twin", charset="UTF-8"']
    r = sec_client.get("/collections/inspections/items", headers={"Sec-Fetch-Mode": "navigate"})
    assert 'Basic realm="vth-twin", charset="UTF-8"' in challenges(r)  # a link opened in a browser tab
    # a 401 of the middleware (a wrong key) challenges alike
    r = sec_client.get("/collections", headers={"X-API-Key": "twin_short"})
    assert r.status_code == 401 and len(challenges(r)) == 2
    # a script in a page (the map's fetches): Bearer only, so the browser shows no login dialog
    for headers in ({"Sec-Fetch-Mode": "cors"}, {"Sec-Fetch-Mode": "same-origin"},
                    {"X-Requested-With": "XMLHttpRequest"}):
        r = sec_client.get("/collections/inspections/items", headers=headers)
        assert r.status_code == 401 and challenges(r) == ['Bearer realm="vth-twin"'], headers
        r = sec_client.get("/collections", headers={**headers, "X-API-Key": "twin_short"})
        assert r.status_code == 401 and challenges(r) == ['Bearer realm="vth-twin"'], headers
