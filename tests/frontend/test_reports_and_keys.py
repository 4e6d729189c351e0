"""Issue 18 items 1-4 in a real browser: the printable gebiedsrapport printed to PDF by Chromium (styled under
the CSP, no print button in the PDF, the server-rendered map in it, the reader's rights through a signed link),
an invalid key reported while the public layers stay, the active role always shown, and the housing verdicts
with their criteria, filters and exports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from playwright.sync_api import expect

from twin import access, database
from twin.settings import Settings

pytestmark = pytest.mark.browser
BAD_KEY = "twin_0123456789ab_" + "x" * 40


@pytest.fixture()
def admin_key(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[str]:
    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        _, full = access.create_key(conn, "admin", None, None, "MAP-test")
    yield full
    with psycopg.connect(owner) as conn:
        conn.execute("DELETE FROM twin.api_keys WHERE label = 'MAP-test'")


def enter_key(mp: Any, key: str) -> None:
    page = mp.page
    page.locator("#access summary").click()
    page.fill("#api-key", key)
    page.locator("#api-key-form button[type=submit]").click()


def pdf_text(pdf: bytes) -> str | None:
    """The text of a PDF when pypdf is installed (None otherwise: the DOM checks stand in)."""
    try:
        import io

        import pypdf
    except ImportError:
        return None
    return "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_gebiedsrapport_prints_styled_with_the_readers_rights(map_page: Any, map_data: dict[str, Any],
                                                             admin_key: str, chromium: Any) -> None:
    known = map_data["known"]
    map_page.open()
    enter_key(map_page, admin_key)
    expect(map_page.page.locator("#who")).to_contain_text("beheerder", timeout=10000)
    map_page.js(f"window.twinMap.openEstablishment({known['establishment_id']!r})")
    link = map_page.page.locator("#report-link")
    expect(link).to_have_attribute("href", re.compile(r"grant="), timeout=15000)
    href = link.get_attribute("href")
    assert admin_key not in href and admin_key.split("_", 2)[2] not in href  # no key in the URL
    query = parse_qs(urlsplit(href).query)
    assert query["f"] == ["html"] and query["establishment"] == [known["establishment_id"]]

    # a fresh browser context without the key: the signed link alone carries the rights
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        response = page.goto(map_page.base_url + href)
        assert response.status == 200 and response.headers["cache-control"] == "private, no-store"
        assert page.title().startswith(f"Gebiedsrapport: {known['name']}")
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Times" not in font and "Segoe UI" in font  # the nonce'd stylesheet applied
        assert page.evaluate("getComputedStyle(document.querySelector('img.map')).width") != "600px"
        expect(page.locator("#print-report")).to_be_visible()
        expect(page.locator("body")).to_contain_text("Inspectiegeschiedenis (1)")  # I-0 of 10 May 2021
        expect(page.locator("body")).to_contain_text("10 mei 2021")
        expect(page.locator("body")).to_contain_text("Opgesteld voor: beheerder")
        # the button is wired by /static/report.js: clicking it calls window.print (stubbed here)
        page.evaluate("window.print = () => { window.__printed = (window.__printed || 0) + 1; }")
        page.locator("#print-report").click()
        expect(page.locator("#print-report")).to_have_attribute("data-wired", "1")
        assert page.evaluate("window.__printed") >= 1
        page.emulate_media(media="print")
        assert page.evaluate("getComputedStyle(document.querySelector('.toolbar')).display") == "none"
        img = page.evaluate("(() => { const i = document.querySelector('img.map'); "
                            "return [i.complete, i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)]; })()")
        assert img == [True, 600, 600, "data:image/png;base64,"]
        pdf = page.pdf(format="A4", print_background=True)
        assert errors == []
    finally:
        context.close()
    assert pdf[:5] == b"%PDF-"
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    assert 2 <= pages <= 8, pages
    assert b"/Subtype /Image" in pdf or b"/Subtype/Image" in pdf  # the map
    fonts = set(re.findall(rb"/BaseFont\s*/([A-Za-z0-9+\-]+)", pdf))
    assert fonts and not any(b"Times" in f for f in fonts), fonts
    words = pdf_text(pdf)
    if words is not None:
        flat = " ".join(words.split())
        assert known["name"] in flat and "Inspectiegeschiedenis (1)" in flat and "Bronnen" in flat
        assert "Afdrukken" not in flat  # the print button is not printed


def test_invalid_key_is_reported_and_public_layers_stay(map_page: Any) -> None:
    page = map_page.page
    page.add_init_script(f"try {{ sessionStorage.setItem('twin-api-key', '{BAD_KEY}'); }} catch (e) {{}}")
    map_page.open()
    expect(page.locator("#key-state")).to_have_text("sleutel ongeldig of verlopen", timeout=10000)
    expect(page.locator("#status")).to_contain_text("Sleutel ongeldig of verlopen")
    expect(page.locator("#who")).to_contain_text("anoniem")
    assert map_page.js("window.twinMap.state.apiKey") is None
    assert map_page.js("sessionStorage.getItem('twin-api-key')") is None
    map_page.wait_idle(30)
    assert "municipalities" in map_page.js("Object.keys(window.twinMap.metrics.loaded)")
    assert map_page.js("window.twinMap.metrics.tileErrors.municipalities") is None
    # only the refused key's own requests failed; no tile was asked with it after the check
    others = [e for e in map_page.console_errors if "401" not in e]
    assert others == []
    # the Access section is at the top of the side bar, visible without scrolling
    box = page.locator("#access").bounding_box()
    assert box is not None and box["y"] + box["height"] < 1000 * 0.6


def test_housing_verdicts_explain_themselves(map_page: Any) -> None:
    page = map_page.page
    map_page.open("?lang=en")
    page.locator("#tab-housing").click()
    expect(page.locator("#housing-municipality")).to_be_visible(timeout=20000)
    csv_href = page.locator("#housing-export-csv").get_attribute("href")
    assert parse_qs(urlsplit(csv_href).query) == {"f": ["csv"], "lang": ["en"]}
    page.select_option("#housing-municipality", "GM0203")
    expect(page.locator("#housing-list button.site")).to_have_count(1)
    assert parse_qs(urlsplit(page.locator("#housing-export-csv").get_attribute("href")).query)["municipality"] == [
        "GM0203"]
    csv_body = page.request.get(map_page.base_url + page.locator("#housing-export-csv").get_attribute("href"))
    assert csv_body.status == 200 and "MAP-S1" in csv_body.text() and "MAP-S3" not in csv_body.text()
    page.locator("#housing-list button.site").first.click()
    panel = page.locator("#panel-body")
    expect(panel.locator("table.criteria")).to_be_visible(timeout=15000)
    expect(panel).to_contain_text("Indicative verdict")
    expect(panel.locator("table.criteria")).to_contain_text("Distance to an overloaded habitat")
    href = page.locator("#report-link").get_attribute("href")
    assert parse_qs(urlsplit(href).query)["site"] == ["MAP-S1"]
    report = page.request.get(map_page.base_url + href)
    assert report.status == 200 and "Barneveld-Oost (MAP-S1)" in report.text()
    assert "Indicative verdict" in report.text() and "Criteria of the verdict" in report.text()
    assert map_page.console_errors == []
