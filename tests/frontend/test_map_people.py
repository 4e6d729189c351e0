"""The map for its people (issue 18) in a real browser: Dutch by default and English on request, Dutch
number and date formats, no console errors and no outside hosts, zero serious or critical axe-core violations
on the map, the open panel and the accessibility statement, a phone layout of 390 px and keyboard use."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from layers.messages import catalogue, text

pytestmark = pytest.mark.browser
AXE = "/static/vendor/axe-core-4.14.1/axe.min.js"
PHONE = {"width": 390, "height": 844}


def wait_until(mp: Any, expression: str, timeout_s: float = 15.0) -> Any:
    for _ in range(int(timeout_s * 10)):
        value = mp.js(expression)
        if value:
            return value
        mp.page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {expression}")


def axe_violations(mp: Any, selector: str | None = None) -> list[dict[str, Any]]:
    """axe-core (served by the app itself, like deck.gl) on the page or a part of it: serious and critical only."""
    if not mp.js("!!window.axe"):
        mp.page.add_script_tag(url=mp.base_url + AXE)
    context = json.dumps(selector) if selector else "document"
    result = mp.page.evaluate(f"window.axe.run({context}, {{resultTypes: ['violations']}})"
                              ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
                              "nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def outside_hosts(mp: Any) -> set[str]:
    hosts = {urlsplit(u).hostname or "" for u in mp.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    return hosts - {"127.0.0.1"}


def test_dutch_by_default_and_english_on_request(map_page: Any) -> None:
    nl, en = catalogue("nl"), catalogue("en")
    map_page.open()
    page = map_page.page
    assert page.locator("html").get_attribute("lang") == "nl"
    expect(page.locator("#tab-housing")).to_have_text(nl["tab.housing"])
    expect(page.get_by_label(nl["search.label"])).to_be_visible()
    expect(page.get_by_label(text("nl", "layer.establishments"), exact=True)).to_be_checked()
    expect(page.locator("#legend")).to_contain_text(nl["legend.categories"])
    assert page.title() == nl["page.title"]
    # the language control: English, remembered for the next visit without ?lang
    page.locator("#lang-switch").click()
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=30000)
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.locator("#tab-housing")).to_have_text(en["tab.housing"])
    map_page.open()
    assert page.locator("html").get_attribute("lang") == "en", "the chosen language is kept"
    map_page.open("?lang=nl")
    assert page.locator("html").get_attribute("lang") == "nl"
    assert map_page.console_errors == [] and not outside_hosts(map_page)


def test_dutch_numbers_years_and_dates(map_page: Any, map_data: dict[str, Any]) -> None:
    map_page.open()
    fmt = "window.twinMap.helpers.fmt"
    assert map_page.js(f"{fmt}(2030)") == "2.030"
    assert map_page.js(f"{fmt}(2030, null, 'year')") == "2030"
    assert map_page.js(f"{fmt}(12803, null, 'receptor_id')") == "12803"
    assert map_page.js(f"{fmt}(1234.5, 'mol N/ha/jaar')") == "1.235 mol N/ha/jaar"
    assert map_page.js(f"{fmt}(4.25)") == "4,25"
    assert map_page.js(f"{fmt}('2026-12-07')") == "7 december 2026"
    assert map_page.js("window.twinMap.helpers.t('housing.dwellings', {n: 2030})") == "2.030 woningen"
    # the year selectors: years without a separator
    options = map_page.js("[...document.querySelectorAll('#year-select option')].map(o => o.textContent)")
    assert options and all(re.fullmatch(r"\d{4}", o) for o in options), options
    # the housing list counts dwellings the Dutch way
    map_page.page.locator("#tab-housing").click()
    expect(map_page.page.locator("#housing-list .lead")).to_contain_text("woningen")
    map_page.open("?lang=en")
    assert map_page.js(f"{fmt}(2030)") == "2,030" and map_page.js(f"{fmt}(2030, null, 'year')") == "2030"
    assert map_page.js(f"{fmt}('2026-12-07')") == "7 December 2026"
    assert map_page.console_errors == []


def test_axe_finds_no_serious_violations_on_map_panel_and_statement(map_page: Any, map_data: dict[str, Any]) -> None:
    known = map_data["known"]
    map_page.open()
    map_page.wait_idle()
    assert axe_violations(map_page) == []
    map_page.js(f"window.twinMap.openEstablishment('{known['establishment_id']}', [{known['lon']}, {known['lat']}], "
                f"{{name: '{known['name']}', kvk_number: '{known['kvk_number']}'}})")
    expect(map_page.page.locator("#panel-title")).to_have_text(known["name"], timeout=15000)
    expect(map_page.page.locator("#report-link")).to_be_visible()
    body = map_page.page.locator("#panel-body")
    expect(body).to_contain_text(text("nl", "field.kvk_number"))  # field labels, not raw names
    assert "kvk_number" not in body.inner_text()
    assert axe_violations(map_page) == []
    assert axe_violations(map_page, "#panel") == []
    # the other views as text: housing list and data quality
    map_page.page.keyboard.press("Escape")
    map_page.page.locator("#tab-housing").click()
    expect(map_page.page.locator("#housing-list button.site").first).to_be_visible(timeout=15000)
    assert axe_violations(map_page) == []
    # the statement, linked from the map
    href = map_page.page.locator("a[href^='/toegankelijkheid']").get_attribute("href")
    map_page.page.goto(map_page.base_url + href)
    expect(map_page.page.locator("h1")).to_have_text(catalogue("nl")["statement.title"])
    expect(map_page.page.locator("main")).to_contain_text("WebGL")
    assert axe_violations(map_page) == []
    assert map_page.console_errors == [] and not outside_hosts(map_page)


def test_search_results_close_and_end_without_null(map_page: Any) -> None:
    map_page.open()
    search = map_page.page.get_by_label(text("nl", "search.label"))
    search.fill("zzzz-nothing")
    search.press("Enter")
    results = map_page.page.locator("#search-results")
    expect(results).to_contain_text(text("nl", "search.none", q="zzzz-nothing"))
    assert "null" not in results.inner_text()
    map_page.page.keyboard.press("Escape")
    expect(results).to_be_hidden()
    search.fill("Bar")
    search.press("Enter")
    expect(results.locator("button.result").first).to_be_visible(timeout=15000)
    assert "null" not in results.inner_text()
    results.locator("button.result").first.click()
    expect(results).to_be_hidden()
    assert map_page.console_errors == []


def test_phone_layout(chromium: Any, map_server: str) -> None:
    context = chromium.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(map_server + "/")
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=30000)
    # the side bar is folded away; the search button and both year selectors are on screen
    expect(page.locator("#controls")).to_be_hidden()
    for selector in ("#search button[type=submit]", "#year-select", "#inspection-year", "#sidebar-toggle"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, selector
    toggle = page.locator("#sidebar-toggle")
    toggle.click()
    expect(page.locator("#controls")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(page.locator("#controls")).to_be_hidden()
    # the panel is a bottom sheet across the width
    page.evaluate("window.twinMap.openPoint(5.6, 52.1)")
    panel = page.locator("#panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box and box["width"] >= PHONE["width"] - 1 and box["y"] > PHONE["height"] * 0.4
    assert box["y"] + box["height"] <= PHONE["height"] + 1
    assert errors == []
    context.close()


def test_keyboard_basics(map_page: Any) -> None:
    map_page.open()
    page = map_page.page
    page.keyboard.press("Tab")
    skip = page.locator(".skip")
    expect(skip).to_be_focused()
    assert skip.bounding_box()["y"] >= 0, "the skip link shows when focused"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "focus is visible"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#controls"
    order = []
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.getAttribute('data-layer')"))
    assert "tab-layers" in order
    # a point's panel opens, takes the focus and Escape closes it, returning the focus
    page.locator("#map").focus()
    map_page.js("window.twinMap.openPoint(5.6, 52.1)")
    expect(page.locator("#panel-title")).to_be_focused(timeout=15000)
    page.keyboard.press("Escape")
    expect(page.locator("#panel")).to_be_hidden()
    expect(page.locator("#map")).to_be_focused()
    assert map_page.console_errors == []
