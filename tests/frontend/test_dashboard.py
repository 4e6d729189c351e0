"""The monitoring dashboard (/dashboard) in Chromium: its charts render (SVG with marks), filters change the
data requested and drawn, each chart's CSV link works, no console errors, no outside hosts, no serious or
critical axe-core violations, and restricted figures only with a key that may see them.

The KPI values are written here by hand (a run of twin.kpi_values), so the test checks the page, not the
computation (tests/monitoring checks that)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from frontend.page import render_page
from twin import access, database
from twin.settings import Settings

pytestmark = pytest.mark.browser
AXE = "/static/vendor/axe-core-4.14.1/axe.min.js"
YEARS = (2022, 2023, 2024)
# compliance per year (numerator, denominator) over all organisations; per sector and municipality below
ALL_YEARS = {2022: (80, 100), 2023: (60, 100), 2024: (90, 100)}
SECTORS = {"01": {2022: (40, 50), 2023: (30, 50), 2024: (45, 50)},
           "10": {2022: (40, 50), 2023: (30, 50), 2024: (35, 50)},
           "47": {2023: (8, 10)}}  # 47 in 2024: suppressed (stored for admins only)
MUNICIPALITIES = {"GM0001": {y: (n // 2, d // 2) for y, (n, d) in ALL_YEARS.items()},
                  "GM0002": {y: (n - n // 2, d - d // 2) for y, (n, d) in ALL_YEARS.items()}}
ORG = "ORG1"


def _rows(run: int) -> list[tuple[Any, ...]]:
    rows = []

    def add(ptype: str, start: date, end: date, dim: str, value: str, org: str | None, n: int, d: int,
            audience: str = "public", change: str | None = None) -> None:
        rows.append((run, "compliance", ptype, start, end, dim, value, org, n, d, n / d, n / d - 0.05,
                     n / d + 0.05, audience, change))

    for year, (n, d) in ALL_YEARS.items():
        add("year", date(year, 1, 1), date(year, 12, 31), "all", "all", None, n, d,
            change="up" if year == 2024 else None)
        add("year", date(year, 1, 1), date(year, 12, 31), "organisation", ORG, ORG, n, d, audience="org")
        for q in range(4):
            add("quarter", date(year, 3 * q + 1, 1), date(year, 3 * q + 3, 28), "all", "all", None, n // 4, d // 4)
    for dim, groups in (("sector", SECTORS), ("municipality", MUNICIPALITIES)):
        for value, years in groups.items():
            for year, (n, d) in years.items():
                add("year", date(year, 1, 1), date(year, 12, 31), dim, value, None, n, d)
                add("quarter", date(year, 10, 1), date(year, 12, 31), dim, value, None, n // 4, d // 4)
    add("year", date(2024, 1, 1), date(2024, 12, 31), "sector", "47", None, 1, 3, audience="admin")
    return rows


@pytest.fixture(scope="module")
def kpi_run(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[int]:
    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        run = conn.execute("INSERT INTO twin.kpi_runs (as_of, data_version, k) VALUES ('2024-12-31', '{}', 5) "
                           "RETURNING id").fetchone()[0]  # type: ignore[index]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO twin.kpi_values (run_id, kpi, period_type, period_start, period_end, "
                            "dimension, dimension_value, scope_org, numerator, denominator, value, ci_low, ci_high, "
                            "audience, change) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            _rows(run))
    yield run
    with psycopg.connect(owner) as conn:
        conn.execute("DELETE FROM twin.kpi_runs WHERE id = %s", (run,))


@pytest.fixture()
def dash(chromium: Any, map_server: str, kpi_run: int) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.console_errors, page.requests_seen = [], []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(f"page error: {e}"))
    page.on("request", lambda r: page.requests_seen.append(r.url))
    page.base = map_server  # type: ignore[attr-defined]
    yield page
    context.close()


def drawn(page: Any, after: int = 0, timeout_s: float = 20.0) -> int:
    """Waits until the dashboard has completed a redraw beyond ``after``; the redraw count."""
    for _ in range(int(timeout_s * 10)):
        count = int(page.evaluate("document.body.getAttribute('data-charts-drawn') || '-1'"))
        if count > after:
            return count
        page.wait_for_timeout(100)
    raise AssertionError("the dashboard did not draw")


def open_dashboard(page: Any, query: str = "") -> int:
    page.goto(f"{page.base}/dashboard{query}")
    return drawn(page)


def kpi_requests(page: Any) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(u).query) for u in page.requests_seen if "/monitoring/kpis/compliance" in u]


def marks(page: Any, chart: str, mark: str) -> int:
    return int(page.evaluate(f"document.querySelectorAll('#vis-{chart} svg .mark-{mark} path').length"))


def test_charts_render_in_dutch_without_errors_or_outside_hosts(dash: Any) -> None:
    open_dashboard(dash)
    assert dash.evaluate("document.documentElement.lang") == "nl"
    assert dash.locator("h1").inner_text() == "Monitoring toezicht en handhaving"
    assert dash.evaluate("document.body.getAttribute('data-first-chart')")
    assert marks(dash, "trend", "line") >= 1 and marks(dash, "trend", "area") >= 1
    assert marks(dash, "sector", "rect") >= 2 and marks(dash, "municipality", "rect") == 2
    assert marks(dash, "multiples", "line") == 2  # one small chart per municipality
    # every chart has its data as a table with a header row
    for chart in ("trend", "sector", "municipality", "multiples"):
        assert dash.locator(f"#table-{chart} table th[scope=col]").count() >= 3
    assert dash.console_errors == []
    hosts = {urlsplit(u).hostname for u in dash.requests_seen if urlsplit(u).scheme in ("http", "https")}
    assert hosts == {"127.0.0.1"}


def test_english_on_request(dash: Any) -> None:
    open_dashboard(dash, "?lang=en")
    assert dash.evaluate("document.documentElement.lang") == "en"
    assert dash.locator("h1").inner_text() == "Monitoring supervision and enforcement"
    open_dashboard(dash)
    assert dash.evaluate("document.documentElement.lang") == "en", "the chosen language is kept"


def test_the_map_links_to_the_dashboard() -> None:
    assert 'href="/dashboard?lang=nl"' in render_page(None)
    assert 'href="/dashboard?lang=en"' in render_page(None, "en")


def test_filters_change_the_data_requested_and_drawn(dash: Any) -> None:
    count = open_dashboard(dash)
    assert all(q["period"] == ["quarter"] for q in kpi_requests(dash) if q.get("by") != ["organisation"])
    quarters = int(dash.locator("#chart-trend").get_attribute("data-rows"))
    assert quarters == 4 * len(YEARS)
    dash.requests_seen.clear()
    dash.select_option("#f-period", "year")
    count = drawn(dash, count)
    assert {q["period"][0] for q in kpi_requests(dash)} == {"year"}
    assert dash.locator("#chart-trend").get_attribute("data-rows") == str(len(YEARS))
    # the trend table shows the hand-made yearly values, the flagged change included
    cells = dash.locator("#table-trend tbody tr").all_text_contents()
    assert any("2024" in c and "90%" in c and "significant hoger" in c for c in cells), cells
    # a sector: the trend asks for the sectors and draws that sector's years only
    dash.requests_seen.clear()
    dash.select_option("#f-sector", "10")
    drawn(dash, count)
    assert any(q.get("by") == ["sector"] for q in kpi_requests(dash))
    assert dash.locator("#chart-trend").get_attribute("data-rows") == str(len(SECTORS["10"]))
    assert "70%" in dash.locator("#table-trend tbody tr").last.text_content()
    assert "sector=10" in dash.url and dash.console_errors == []


def test_csv_link_serves_the_charts_data(dash: Any) -> None:
    open_dashboard(dash, "?period=year")
    href = dash.locator("#csv-municipality").get_attribute("href")
    q = parse_qs(urlsplit(href).query)
    assert q["f"] == ["csv"] and q["by"] == ["municipality"] and q["period"] == ["year"]
    resp = dash.request.get(dash.base + href)
    assert resp.ok and resp.headers["content-type"].startswith("text/csv")
    lines = resp.text().strip().splitlines()
    assert lines[0].startswith("kpi,period_type,period_start")
    assert len(lines) - 1 == sum(len(v) for v in MUNICIPALITIES.values())


def test_public_figures_mark_suppression_and_restricted_ones_need_a_key(dash: Any, map_settings: Settings) -> None:
    open_dashboard(dash, "?period=year")
    # sector 47 in 2024 failed the disclosure control: marked, never drawn with a value
    assert "onderdrukt" in dash.locator("#suppressed-sector").inner_text()
    rows = dash.locator("#table-sector tbody tr.suppressed")
    assert rows.count() == 1 and rows.locator("th").first.text_content() == "47"
    assert "onderdrukt" in (rows.text_content() or "") and "33" not in (rows.text_content() or "")
    assert dash.locator("#f-org option").count() == 1  # organisation figures are restricted: none anonymously
    owner = database.url_for(map_settings, "owner")
    with psycopg.connect(owner) as conn:
        _, key = access.create_key(conn, "inspector", ORG, None, "DASH-test")
    try:
        count = int(dash.evaluate("document.body.getAttribute('data-charts-drawn')"))
        dash.locator(".access summary").click()
        dash.fill("#api-key", key)
        dash.locator("#api-key-form button[type=submit]").click()
        drawn(dash, count)
        assert dash.locator("#f-org option").all_inner_texts()[1:] == [ORG]
        count = int(dash.evaluate("document.body.getAttribute('data-charts-drawn')"))
        dash.select_option("#f-org", ORG)
        drawn(dash, count)
        assert any(q.get("org") == [ORG] for q in kpi_requests(dash))
        assert dash.locator("#chart-trend").get_attribute("data-rows") == str(len(YEARS))
    finally:
        with psycopg.connect(owner) as conn:
            conn.execute("DELETE FROM twin.api_keys WHERE label = 'DASH-test'")


def test_axe_finds_no_serious_violations(dash: Any) -> None:
    open_dashboard(dash)
    dash.locator("#chart-trend details summary").click()
    dash.add_script_tag(url=dash.base + AXE)
    result = dash.evaluate("window.axe.run(document, {resultTypes: ['violations']})"
                           ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, "
                           "nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))")
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)
