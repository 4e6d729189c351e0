"""The map's data-quality view in a real browser (Debian's Chromium) against the app served on 127.0.0.1 with
the map's hand-made twin: its livestock farms have no permits, so the livestock signal has records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import map_fixture
import numpy as np
import psycopg
import pytest
from PIL import Image
from playwright.sync_api import expect
from test_map_browser import MAP_CLIP, wait_until

from twin import database
from twin.settings import Settings

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def pixels(mp: Any, path: Path) -> np.ndarray:
    mp.page.screenshot(path=str(path), clip=MAP_CLIP)
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


@pytest.fixture(scope="module")
def one_permit(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[str]:
    """One permit in the map's twin (for the garage MAP-0005, not a farm), so that the permit signals apply:
    with no permits at all they would not (a layer they read holds no records)."""
    garage = next(e for e in map_fixture.establishments() if e["establishment_id"] == "MAP-0005")
    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        conn.execute("INSERT INTO twin.permits (permit_id, establishment_id, permit_type, status, valid_from, geom) "
                     "VALUES ('MAP-P-Q1', 'MAP-0005', 'melding', 'verleend', '2015-01-01', "
                     "ST_SetSRID(ST_MakePoint(%s, %s), 28992))", (garage["x"], garage["y"]))
    yield "MAP-P-Q1"
    with psycopg.connect(owner) as conn:
        conn.execute("DELETE FROM twin.permits WHERE permit_id = 'MAP-P-Q1'")


def test_quality_view_lists_signals_and_draws_their_records(map_page: Any, map_data: dict[str, Any],
                                                            one_permit: str, tmp_path: Path) -> None:
    mp = map_page
    mp.open("?lang=en")
    mp.wait_idle()
    # the default view pays nothing for the quality view: neither its script nor its data is loaded
    assert not [u for u in mp.requests if "quality" in urlsplit(u).path], "quality loaded before the view opened"
    summary = json.loads(mp.page.request.get(f"{mp.base_url}/quality", headers={"Accept": "application/json"}).text())
    rules = {r["id"]: r for layer in summary["layers"] for r in layer["rules"]}
    livestock = [r for r in rules.values() if r["kind"] == "signal" and "livestock" in r["id"]]
    assert len(livestock) == 1
    farms = [e for e in map_fixture.establishments() if str(e["sbi"]).startswith("014")]
    # worked out: the known dairy farm and 8 of the 19 others (SBI 0146 or 0147, every 5th from 0 and 1); no permits
    assert livestock[0]["failed"] == len(farms) == 9

    # keyboard: from the first tab, the arrow keys reach "Data quality"
    mp.page.locator("#tab-layers").focus()
    mp.page.keyboard.press("ArrowRight")
    mp.page.keyboard.press("ArrowRight")
    expect(mp.page.locator("#tab-quality")).to_have_attribute("aria-selected", "true")
    expect(mp.page.locator("#tabpanel-quality")).to_be_visible()
    signals = mp.page.locator("#quality-signals")
    expect(signals).to_be_visible(timeout=20000)
    # each signal's button shows the count of /quality
    for r in rules.values():
        if r["kind"] == "signal" and r["applicable"]:
            button = signals.locator(f'button[data-rule="{r["id"]}"]')
            expect(button).to_contain_text(r["title"])
            expect(button).to_contain_text(f"{r['failed']:,} of {r['checked']:,} fail")
    total = sum(r["failed"] or 0 for r in rules.values() if r["kind"] == "signal")
    expect(signals.locator('button[data-rule="signals"]')).to_contain_text(f"{total:,} records")

    before = pixels(mp, tmp_path / "before.png")
    known = map_data["known"]
    # choose the livestock signal with the keyboard: its farms are drawn on the map
    button = signals.locator(f'button[data-rule="{livestock[0]["id"]}"]')
    button.focus()
    mp.page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-pressed", "true")
    records = mp.page.locator("#quality-records ul.records button")
    expect(records).to_have_count(9, timeout=20000)
    assert wait_until(mp, "window.twinMap.deck.props.layers.some(l => l.id === 'quality-records' && "
                          "l.props.data && l.props.data.features.length === 9)")
    # the farms are drawn around Barneveld: fly there (no transition) and compare the canvas
    mp.js(f"window.twinMap.flyTo({{longitude: {known['lon']}, latitude: {known['lat']}, zoom: 11, pitch: 0, "
          "bearing: 0, transitionDuration: 0})")
    mp.wait_idle()
    mp.page.wait_for_timeout(300)
    drawn = pixels(mp, tmp_path / "drawn.png")
    mp.page.locator("#quality-clear").click()
    mp.wait_idle()
    mp.page.wait_for_timeout(300)
    cleared = pixels(mp, tmp_path / "cleared.png")
    changed = np.abs(drawn - cleared).max(axis=2) > 40
    assert changed.sum() > 9 * 30, "the records did not change the canvas"
    assert before.shape == drawn.shape

    # the records again; the farm that fails the most rules is drawn darker and larger; tooltips give reasons
    button.click()
    expect(records).to_have_count(9, timeout=20000)
    mp.wait_idle()
    feats = mp.js("window.twinMap.quality.view.data.features.map(f => [f.id, f.properties.quality_issues, "
                  "f.geometry.coordinates])")
    fid, issues, (lon, lat) = max(feats, key=lambda f: f[1])
    x, y = mp.js(f"window.twinMap.project({lon}, {lat})")
    picked = wait_until(mp, f"(() => {{ const p = window.twinMap.deck.pickObject({{x: {x}, y: {y}, radius: 4, "
                            "layerIds: ['quality-records']}); return p ? p.object.id : null; })()")
    assert picked == fid
    mp.page.mouse.move(x, y)
    tooltip = mp.page.locator(".twin-tooltip")
    expect(tooltip).to_be_visible(timeout=10000)
    expect(tooltip).to_contain_text(fid)
    expect(tooltip).to_contain_text(f"{issues} open issue")
    expect(tooltip).to_contain_text(livestock[0]["title"])

    # a record in the list flies there
    item = records.nth(3)
    chosen = item.get_attribute("data-record")
    item.click()
    lon_c, lat_c = next(f[2] for f in feats if f[0] == chosen)
    wait_until(mp, f"Math.abs(window.twinMap.state.viewState.longitude - {lon_c}) < 0.001 && "
                   f"Math.abs(window.twinMap.state.viewState.latitude - {lat_c}) < 0.001 && "
                   "!window.twinMap.state.inTransition", timeout_s=20)
    mp.wait_idle()
    mp.page.screenshot(path=str(tmp_path / "quality-view.png"))

    hosts = {urlsplit(u).hostname for u in mp.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, f"requests left the machine: {sorted(h or '' for h in hosts)}"
    assert mp.console_errors == []


def test_an_admin_measures_every_rule_again_as_a_job(map_page: Any, map_settings: Settings,
                                                     map_data: dict[str, Any]) -> None:
    """'Nu opnieuw meten' is for admins (no button for others). It starts the job POST /quality/measurements
    (not ?refresh=true, which on a national twin outlasts the statement timeout), follows it to its end and then
    shows the summary again, now from the counts the job recorded."""
    from test_map_priority import enter_key

    from twin import access

    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        key = access.create_key(conn, "admin", None, None, "MAP-quality-job")[1]
        row = conn.execute("SELECT coalesce(max(id), 0) FROM twin.quality_results").fetchone()
    before = row[0] if row else 0
    mp = map_page
    try:
        mp.open()
        mp.wait_idle()
        mp.page.locator("#tab-quality").click()
        expect(mp.page.locator("#quality-signals")).to_be_visible(timeout=20000)
        expect(mp.page.locator("#quality-refresh")).to_have_count(0)  # anonymous
        mp.page.locator("#tab-layers").click()  # the key is entered in the layers tab
        enter_key(mp, key, "admin")
        mp.page.locator("#tab-quality").click()
        button = mp.page.locator("#quality-refresh")
        expect(button).to_be_visible(timeout=10000)
        with mp.page.expect_response(lambda r: urlsplit(r.url).path == "/quality/measurements"
                                     and r.request.method == "POST") as started, \
                mp.page.expect_response(lambda r: urlsplit(r.url).path == "/quality", timeout=120000) as reloaded:
            button.click()
        assert started.value.status == 202
        assert reloaded.value.status == 200
        expect(mp.page.locator("#quality-signals")).to_be_visible(timeout=20000)
        assert not [u for u in mp.requests if "refresh=true" in u]
        with psycopg.connect(owner) as conn:
            got = conn.execute("SELECT count(*), count(fingerprint) FROM twin.quality_results WHERE id > %s",
                               (before,)).fetchone()
        assert got is not None and got[0] > 10 and got[1] == got[0]
        assert not mp.console_errors, mp.console_errors
    finally:
        with psycopg.connect(owner) as conn:
            conn.execute("DELETE FROM twin.quality_results WHERE id > %s", (before,))
            conn.execute("DELETE FROM twin.api_keys WHERE label = 'MAP-quality-job'")
