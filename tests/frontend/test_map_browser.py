"""The map in a real browser (Debian's Chromium, headless, WebGL through SwiftShader) against the app served
over HTTP on 127.0.0.1 with a small hand-made twin."""

from __future__ import annotations

import io
import json
import math
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import map_fixture
import numpy as np
import pyogrio
import pytest
from PIL import Image
from playwright.sync_api import expect
from pyproj import Transformer

from frontend import theme

pytestmark = pytest.mark.browser
TO_WGS84 = Transformer.from_crs(28992, 4326, always_xy=True)
MAP_CLIP = {"x": 340, "y": 80, "width": 900, "height": 700}  # the map between the sidebar and the edge


def canvas_pixels(mp: Any) -> np.ndarray:
    png = mp.page.screenshot(clip=MAP_CLIP)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)


def wait_until(mp: Any, expression: str, timeout_s: float = 15.0) -> Any:
    """Poll a JS expression until it is truthy (the CSP forbids Playwright's eval-based waits)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = mp.js(expression)
        if value:
            return value
        mp.page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {expression}")


def fly(mp: Any, lon: float, lat: float, zoom: float, pitch: float = 0, bearing: float = 0) -> None:
    mp.js(f"window.twinMap.flyTo({{longitude: {lon}, latitude: {lat}, zoom: {zoom}, pitch: {pitch}, "
          f"bearing: {bearing}, transitionDuration: 0}})")
    wait_until(mp, f"Math.abs(window.twinMap.state.viewState.zoom - {zoom}) < 0.01")
    mp.wait_idle()


def test_page_loads_offline_without_console_errors(map_page: Any) -> None:
    map_page.open("?lang=en")
    map_page.wait_idle()
    assert map_page.console_errors == []
    hosts = {urlsplit(u).hostname for u in map_page.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, f"requests left the machine: {sorted(h or '' for h in hosts)}"
    # the deck came from pydeck's JSON: every layer of the page's catalogue was converted by deck.gl
    ids = map_page.js("window.twinMap.deck.props.layers.map(l => l.id)")
    assert {"municipalities", "deposition-national", "establishments", "housing-sites"} <= set(ids)
    assert map_page.js("window.twinMap.metrics.firstFrame") > 0


def test_canvas_draws_and_changes_when_a_layer_is_toggled(map_page: Any, tmp_path: Any) -> None:
    map_page.open("?lang=en")
    map_page.wait_idle()
    before = canvas_pixels(map_page)
    # not blank: municipalities as land against the sea, coloured hexagons, dots
    assert before.std(axis=(0, 1)).mean() > 8
    assert len(np.unique(before.reshape(-1, 3), axis=0)) > 50
    map_page.page.screenshot(path=str(tmp_path / "national.png"))
    map_page.page.get_by_label("Deposition: national grid (zoomed out)").uncheck()
    map_page.page.get_by_label("Municipalities").uncheck()
    map_page.wait_idle()
    after = canvas_pixels(map_page)
    changed = np.abs(after - before).max(axis=2) > 30
    assert changed.mean() > 0.05, "toggling two layers off changed less than 5% of the map"
    assert map_page.js("window.twinMap.deck.props.layers.map(l => l.id).includes('municipalities')") is False
    map_page.page.get_by_label("Municipalities").check()
    map_page.wait_idle()
    assert map_page.console_errors == []


def test_click_on_an_establishment_opens_the_area_context(map_page: Any, map_data: dict[str, Any]) -> None:
    known = map_data["known"]
    map_page.open("?lang=en")
    fly(map_page, known["lon"], known["lat"], 15)
    x, y = map_page.js(f"window.twinMap.project({known['lon']}, {known['lat']})")
    assert 340 < x < 860 and 80 < y < 790, "the establishment is not in the free part of the map"
    # On a loaded machine the establishments tile can land after the map reports idle: poll the pick.
    picked = wait_until(map_page, f"(() => {{ const ids = window.twinMap.deck.pickMultipleObjects("
                        f"{{x: {x}, y: {y}, radius: 3}}).filter(p => p.layer.id === 'establishments')"
                        ".map(p => p.object.properties.establishment_id); return ids.length ? ids : null; })()")
    assert picked == [known["establishment_id"]]
    map_page.page.mouse.click(x, y)
    panel = map_page.page.locator("#panel")
    expect(panel).to_be_visible()
    expect(map_page.page.locator("#panel-title")).to_have_text(known["name"], timeout=15000)
    body = map_page.page.locator("#panel-body")
    expect(body).to_contain_text("Barneveld (GM0203)")
    expect(body).to_contain_text("Establishments")
    expect(body.locator("table.data").first).to_contain_text(known["name"])
    href = map_page.page.locator("#report-link").get_attribute("href")
    query = parse_qs(urlsplit(href).query)
    assert query["f"] == ["html"] and query["establishment"] == [known["establishment_id"]]
    report = map_page.page.request.get(map_page.base_url + href)
    assert report.status == 200 and report.headers["content-type"].startswith("text/html")
    assert known["name"] in report.text()
    map_page.page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert map_page.console_errors == []


def test_addresses_show_at_street_level_when_switched_on(map_page: Any, map_data: dict[str, Any]) -> None:
    address = map_data["address"]
    map_page.open("?lang=en")
    toggle = map_page.page.get_by_label("Addresses (BAG)")
    expect(toggle).not_to_be_checked()  # off by default: the national view does not need them
    fly(map_page, address["lon"] + 0.002, address["lat"] + 0.001, 16.5)
    toggle.check()
    map_page.wait_idle()
    x, y = map_page.js(f"window.twinMap.project({address['lon']}, {address['lat']})")
    assert 340 < x < 1240 and 80 < y < 790, "the address is not in the free part of the map"
    picked = wait_until(map_page, f"(() => {{ const hits = window.twinMap.deck.pickMultipleObjects("
                        f"{{x: {x}, y: {y}, radius: 4}}).filter(p => p.layer.id === 'addresses')"
                        ".map(p => p.object.properties); return hits.length ? hits : null; })()")
    assert [(p["address_id"], p["street"], p["house_number"]) for p in picked] == [
        (address["address_id"], address["street"], address["house_number"])]
    tiles = [u for u in map_page.requests if "/collections/addresses/tiles/WebMercatorQuad/14/" in u]
    assert tiles, "the addresses come as zoom-14 vector tiles (overzoomed beyond)"
    toggle.uncheck()
    map_page.wait_idle()
    assert "addresses" not in map_page.js("window.twinMap.deck.props.layers.map(l => l.id)")
    assert map_page.console_errors == []


def test_search_flies_to_a_municipality(map_page: Any) -> None:
    gdf = pyogrio.read_dataframe(map_fixture.gpkg_path())
    x0, y0, x1, y1 = gdf[gdf.name == "Utrecht"].total_bounds
    lons, lats = TO_WGS84.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
    lon_c = (min(lons) + max(lons)) / 2

    def merc(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    lat_c = math.degrees(2 * math.atan(math.exp((merc(min(lats)) + merc(max(lats))) / 2)) - math.pi / 2)
    map_page.open("?lang=en")
    start = map_page.js("window.twinMap.state.viewState")
    search = map_page.page.get_by_label("Search an establishment, KvK number or municipality")
    search.fill("utrecht")
    search.press("Enter")
    expect(map_page.page.locator("#search-results")).to_contain_text("Utrecht (GM0344)")
    wait_until(map_page, f"Math.abs(window.twinMap.state.viewState.longitude - {lon_c}) < 0.01 && "
                         f"Math.abs(window.twinMap.state.viewState.latitude - {lat_c}) < 0.01 && "
                         "!window.twinMap.state.inTransition", timeout_s=20)
    end = map_page.js("window.twinMap.state.viewState")
    assert end["zoom"] > start["zoom"] + 2
    assert map_page.console_errors == []


def test_search_by_kvk_number_opens_the_establishment(map_page: Any, map_data: dict[str, Any]) -> None:
    known = map_data["known"]
    map_page.open("?lang=en")
    search = map_page.page.get_by_label("Search an establishment, KvK number or municipality")
    search.fill(known["kvk_number"])
    search.press("Enter")
    expect(map_page.page.locator("#panel-title")).to_have_text(known["name"], timeout=15000)
    wait_until(map_page, f"Math.abs(window.twinMap.state.viewState.longitude - {known['lon']}) < 0.001", 20)


def test_housing_view_lists_sites_by_verdict_and_flies_to_one(map_page: Any) -> None:
    map_page.open("?lang=en")
    map_page.page.get_by_role("tab", name="Housing vs nitrogen").click()
    sites = map_page.page.locator("#housing-list button.site")
    expect(sites).to_have_count(3)
    verdicts = map_page.js("window.twinMap.state.housing.features.map(f => f.properties.verdict)")
    assert set(verdicts) <= {"no constraint", "no_constraint", "attention", "conflict"}
    target = map_page.page.locator('#housing-list button[data-site="MAP-S3"]')
    target.click()
    site = wait_until(map_page, "window.twinMap.state.housing.features.find(f => f.properties.site_id === 'MAP-S3')")
    coords = np.array(site["geometry"]["coordinates"]).reshape(-1, 2)
    lon_c, lat_c = coords[:, 0].mean(), coords[:, 1].mean()
    wait_until(map_page, f"Math.abs(window.twinMap.state.viewState.longitude - {lon_c}) < 0.02 && "
                         f"Math.abs(window.twinMap.state.viewState.latitude - {lat_c}) < 0.02", 20)
    expect(map_page.page.locator("#panel-title")).to_contain_text("Utrecht Merwede")
    assert map_page.console_errors == []


def test_colour_expressions_classify_like_the_kdw_rules(map_page: Any) -> None:
    """The deck.gl expression (evaluated by deck.gl's own parser) against the DESIGN.md rules."""
    map_page.open("?lang=en")
    colours = {label: list(color) for _, color, label in theme.EXCEEDANCE_CLASSES}
    below, approaching, to500, to1000, above = (list(c) for _, c, _ in theme.EXCEEDANCE_CLASSES)
    cases = [  # (deposition, kdw): overloaded when deposition > KDW, approaching when deposition > KDW - 70
        ((900.0, 1071.0), below), ((1001.0, 1071.0), below), ((1001.5, 1071.0), approaching),
        ((1071.0, 1071.0), approaching), ((1072.0, 1071.0), to500), ((1571.0, 1071.0), to500),
        ((1572.0, 1071.0), to1000), ((2071.0, 1071.0), to1000), ((2072.0, 1071.0), above), ((1500.0, None), None),
    ]
    assert len(colours) == 5
    expr = json.dumps(theme.exceedance_expression())
    for (dep, kdw), expected in cases:
        props = {"deposition": dep, "lowest_kdw": kdw, "exceedance": None if kdw is None else dep - kdw}
        got = map_page.js(f"deck._parseExpressionString({expr})({{properties: {json.dumps(props)}}})")
        assert got == (expected if expected is not None else list(theme.NO_HABITAT)), (dep, kdw)


def test_controls_are_labelled_and_keyboard_reachable(map_page: Any) -> None:
    map_page.open("?lang=en")
    unlabelled = map_page.js(
        "[...document.querySelectorAll('input, select')].filter(e => !e.labels || !e.labels.length)"
        ".map(e => e.id || e.outerHTML)")
    assert unlabelled == []
    nameless = map_page.js("[...document.querySelectorAll('button')].filter(b => !(b.textContent.trim() ||"
                           " b.getAttribute('aria-label'))).length")
    assert nameless == 0
    focused = []
    for _ in range(6):
        map_page.page.keyboard.press("Tab")
        focused.append(map_page.js("document.activeElement.id || document.activeElement.tagName"))
    assert "search-input" in focused and "year-select" in focused


def test_restricted_layers_anonymously_raise_no_login_dialog_and_no_401(map_page: Any,
                                                                         map_data: dict[str, Any]) -> None:
    """Issue 19: 401s carry a Basic challenge for desktop GIS, which would make a browser pop up its login
    dialog; the map never asks for a restricted layer without a key, and its scripts' requests get Bearer only."""
    dialogs: list[str] = []
    challenged: list[str] = []
    map_page.page.on("dialog", lambda d: dialogs.append(d.message))
    map_page.page.on("response", lambda r: challenged.append(r.url) if r.status == 401 else None)
    address = map_data["address"]
    map_page.open("?lang=en")
    map_page.page.get_by_label("Inspections (restricted)").check()
    fly(map_page, address["lon"], address["lat"], 12)
    map_page.wait_idle()
    expect(map_page.page.locator('[data-layer-note="inspections"]')).to_have_text("restricted: needs an API key")
    assert not [u for u in map_page.requests if "/collections/inspections/" in u]
    assert map_page.console_errors == [] and challenged == [] and dialogs == []
    # a script's request for a restricted resource is refused without a Basic challenge (no browser dialog)
    status, challenge = map_page.js(
        "fetch('/collections/inspections/items?limit=1').then(r => [r.status, r.headers.get('www-authenticate')])")
    assert status == 401 and challenge == 'Bearer realm="vth-twin"'
    assert dialogs == []
