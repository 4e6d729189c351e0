"""The Dutch interface holds no English (issue 18): the map, its data-quality tab, the panel of an establishment,
the housing tab with a site's verdict, the priority colouring, the dashboard, the printable reports and the
accessibility statement, rendered in Chromium with ``lang=nl``, show no English catalogue string whose Dutch
text differs (the English words appearing in the Dutch page would mean a string that bypasses the catalogue
or is looked up in the wrong language)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import map_fixture
import psycopg
import pytest
from playwright.sync_api import expect
from test_map_people import axe_violations, wait_until

from layers.messages import catalogue, text
from twin import access, database
from twin.settings import Settings

pytestmark = pytest.mark.browser
SKIP_KEYS = ("lang.",)  # the language switch names English in English on purpose
MIN_SINGLE_WORD = 9  # a one-word English message counts from this length ("Criterion", "Establishments")
PUNCTUATION = " .,:;·()–—-…‘’'\"/?!"


def _forms(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(v) for v in value.values()]
    return [str(value)]


@cache
def english_fragments() -> tuple[str, ...]:
    """The English texts (each message cut at its placeholders) that the Dutch catalogue does not use too."""
    nl, en = catalogue("nl"), catalogue("en")
    dutch = "\n".join(f for v in nl.values() for f in _forms(v))
    found: set[str] = set()
    for key, value in en.items():
        if key.startswith(SKIP_KEYS) or _forms(value) == _forms(nl.get(key, "")):
            continue
        for form in _forms(value):
            if form in _forms(nl.get(key, "")):
                continue
            for part in re.split(r"\{\w+\}", form):
                part = part.strip(PUNCTUATION)
                words = part.split()
                if not words or (len(words) < 2 and len(part) < MIN_SINGLE_WORD):
                    continue
                if re.search(r"(?<!\w)" + re.escape(part) + r"(?!\w)", dutch):
                    continue  # the same words are Dutch too (a name, a code, a loan word)
                found.add(part)
    return tuple(sorted(found, key=len, reverse=True))


def english_in(text: str) -> list[str]:
    """The English catalogue fragments that occur in ``text`` as whole words."""
    return [f for f in english_fragments() if re.search(r"(?<!\w)" + re.escape(f) + r"(?!\w)", text)]


def page_words(page: Any) -> str:
    """What a reader meets: the visible text plus titles, labels, placeholders and alternative texts."""
    return str(page.evaluate(
        "(() => { const out = [document.title, document.body.innerText];"
        " document.querySelectorAll('[title],[aria-label],[placeholder],[alt]').forEach(n => {"
        "  for (const a of ['title', 'aria-label', 'placeholder', 'alt'])"
        "   if (n.getAttribute(a)) out.push(n.getAttribute(a)); });"
        " return out.join('\\n'); })()"))


def assert_dutch(page: Any, where: str) -> None:
    words = page_words(page)
    leaks = english_in(words)
    context = []
    for leak in leaks:
        at = re.search(r"(?<!\w)" + re.escape(leak) + r"(?!\w)", words)
        context.append(words[max(0, at.start() - 40):at.end() + 40].replace("\n", " | ") if at else leak)
    assert leaks == [], f"English in the Dutch {where}: {leaks}\n" + "\n".join(context)


def test_the_detector_finds_english_and_passes_dutch() -> None:
    nl, en = catalogue("nl"), catalogue("en")
    assert english_in(f"Kop\n{en['tab.housing']}\n") == [en["tab.housing"]]
    assert english_in(en["quality.rule.signal.livestock-without-permit.title"])
    dutch = "\n".join(str(v) for k, v in nl.items() if isinstance(v, str) and not k.startswith("lang."))
    assert english_in(dutch) == []


@pytest.fixture()
def inspector_key(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[str]:
    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        _, full = access.create_key(conn, "admin", None, None, "MAP-dutch")
    yield full
    with psycopg.connect(owner) as conn:
        conn.execute("DELETE FROM twin.api_keys WHERE label = 'MAP-dutch'")


def test_no_english_in_the_dutch_map_panel_tabs_reports_and_dashboard(map_page: Any, map_data: dict[str, Any],
                                                                      inspector_key: str, chromium: Any) -> None:
    known = map_data["known"]
    mp = map_page
    page = mp.page
    mp.open("?lang=nl")
    assert page.locator("html").get_attribute("lang") == "nl"
    mp.wait_idle(30)
    assert_dutch(page, "map")
    # with a key: the role, the inspection layer and the priority colouring
    page.locator("#access summary").click()
    page.fill("#api-key", inspector_key)
    page.locator("#api-key-form button[type=submit]").click()
    expect(page.locator("#who")).to_contain_text(catalogue("nl")["role.admin"], timeout=10000)
    page.get_by_label(catalogue("nl")["legend.by_priority"]).check()
    wait_until(mp, "!!window.twinMap.state.priorityInfo", 30)
    expect(page.locator("#legend")).to_contain_text(catalogue("nl")["legend.priority"])
    assert_dutch(page, "map with a key, coloured by priority")
    # the panel of an establishment, with its inspection history
    mp.js(f"window.twinMap.openEstablishment('{known['establishment_id']}', [{known['lon']}, {known['lat']}], "
          f"{{name: '{known['name']}', kvk_number: '{known['kvk_number']}', started_on: '2001-02-03', brzo: false}})")
    expect(page.locator("#panel-title")).to_have_text(known["name"], timeout=15000)
    expect(page.locator("#inspection-history table")).to_be_visible(timeout=15000)
    expect(page.locator("#priority-rank")).to_be_visible(timeout=15000)
    assert_dutch(page, "panel")
    page.keyboard.press("Escape")
    # the housing tab and a site's verdict
    page.locator("#tab-housing").click()
    expect(page.locator("#housing-list button.site").first).to_be_visible(timeout=20000)
    page.locator("#housing-list button.site").first.click()
    expect(page.locator("#panel-body table.criteria")).to_be_visible(timeout=15000)
    assert_dutch(page, "housing tab and verdict")
    page.keyboard.press("Escape")
    # the data-quality tab, with a signal's records
    page.locator("#tab-quality").click()
    expect(page.locator("#quality-list ul.rules").first).to_be_visible(timeout=30000)
    page.locator("#quality-signals button[data-rule='signals']").click()
    wait_until(mp, "document.querySelector('#quality-records ul.records') !== null", 30)
    assert_dutch(page, "data-quality tab")
    # a rule's records with their reasons (the fixture's establishments have no postcode)
    page.locator("#quality-list button[data-rule='establishments.postcode-filled']").click()
    records = page.locator("#quality-records ul.records")
    expect(records).to_contain_text(text("nl", "quality.reason.empty", field=catalogue("nl")["field.postcode"]),
                                    timeout=30000)  # the rule's reason in Dutch words
    assert " is empty" not in records.inner_text()
    assert_dutch(page, "data-quality tab with a rule's records")
    assert mp.console_errors == []


DOCUMENTS = (  # (path, a selector that is there once the page has drawn)
    ("/dashboard?lang=nl", "body[data-charts-drawn]"),
    ("/toegankelijkheid?lang=nl", "h1"),
)
REPORTS = (
    (f"/analysis/context?establishment={map_fixture.KNOWN['establishment_id']}&radius=500&f=html&lang=nl", "h1"),
    ("/analysis/context?site=MAP-S1&radius=500&f=html&lang=nl", "h1"),
    ("/analysis/housing-nitrogen?f=html&lang=nl", "h1"),
)


def check_documents(chromium: Any, base_url: str, key: str, documents: tuple[tuple[str, str], ...]) -> None:
    """Each page opened with the key sent along (as a signed link would carry the rights)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers={"X-API-Key": key})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        for path, ready in documents:
            response = page.goto(base_url + path)
            assert response is not None and response.status == 200, path
            page.wait_for_selector(ready, state="attached", timeout=30000)
            assert page.locator("html").get_attribute("lang") == "nl", path
            assert_dutch(page, path)
        assert errors == []
    finally:
        context.close()


def test_no_english_in_the_dutch_dashboard_and_statement(map_data: dict[str, Any], map_server: str,
                                                                          inspector_key: str, chromium: Any) -> None:
    check_documents(chromium, map_server, inspector_key, DOCUMENTS)


def test_no_english_in_the_dutch_gebiedsrapport_and_printable_verdicts(map_data: dict[str, Any], map_server: str,
                                                                       inspector_key: str, chromium: Any) -> None:
    check_documents(chromium, map_server, inspector_key, REPORTS)


def test_axe_finds_no_serious_violations_on_reports_quality_tab_and_priority_panel(
        map_page: Any, map_data: dict[str, Any], inspector_key: str, chromium: Any) -> None:
    """axe-core (served by the app) on what the other axe tests leave out: the gebiedsrapport of an
    establishment and of a housing site, the printable verdicts, the data-quality tab with a signal's records
    and the panel with the inspection priority."""
    mp = map_page
    page = mp.page
    mp.open()
    page.locator("#access summary").click()
    page.fill("#api-key", inspector_key)
    page.locator("#api-key-form button[type=submit]").click()
    expect(page.locator("#who")).to_contain_text(catalogue("nl")["role.admin"], timeout=10000)
    known = map_data["known"]
    mp.js(f"window.twinMap.openEstablishment('{known['establishment_id']}', [{known['lon']}, {known['lat']}], "
          f"{{name: '{known['name']}'}})")
    expect(page.locator("#priority-rank")).to_be_visible(timeout=20000)
    assert axe_violations(mp, "#panel") == []
    page.keyboard.press("Escape")
    page.locator("#tab-quality").click()
    page.locator("#quality-signals button[data-rule='signals']").click(timeout=30000)
    wait_until(mp, "document.querySelector('#quality-records ul.records') !== null", 30)
    assert axe_violations(mp) == []
    for path, _ in REPORTS:
        response = page.goto(mp.base_url + path, wait_until="load")
        assert response is not None and response.status == 200, path
        assert axe_violations(mp) == [], path
    assert mp.console_errors == []
