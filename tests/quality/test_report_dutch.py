"""The quality report pages people read, in Dutch by default (issue 18): ``/quality?f=html`` and ``twin quality
report --format html`` word everything from the catalogue (``?lang=en`` / ``--lang en`` for English), write Dutch
numbers and dates, translate the per-record reasons at display while the JSON keeps its codes, and pass axe-core
(no serious or critical violations). ``twin quality report --geldig-op/--beschikbaar-op`` (issue 20) measures
as of a date, as the API's ``/quality?geldigOp=&beschikbaarOp=`` does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import Twin
from fastapi.testclient import TestClient
from quality_fixture import AS_OF, run_cli

from layers.messages import catalogue, text
from twin.quality import render

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "frontend" / "static" / "vendor" / "axe-core-4.14.1" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
PUNCTUATION = " .,:;·()–—-…‘’'\"/?!`"


def _forms(value: Any) -> list[str]:
    return [str(v) for v in value.values()] if isinstance(value, dict) else [str(value)]


@cache
def english_fragments() -> tuple[str, ...]:
    """The English catalogue texts (cut at their placeholders) that no Dutch message uses too (the pattern of
    tests/frontend/test_map_dutch.py)."""
    nl, en = catalogue("nl"), catalogue("en")
    dutch = "\n".join(f for v in nl.values() for f in _forms(v))
    found: set[str] = set()
    for key, value in en.items():
        if key.startswith("lang.") or _forms(value) == _forms(nl.get(key, "")):
            continue
        for form in _forms(value):
            for part in re.split(r"\{\w+\}", form):
                part = part.strip(PUNCTUATION)
                if not part.split() or (len(part.split()) < 2 and len(part) < 9):
                    continue
                if re.search(r"(?<!\w)" + re.escape(part) + r"(?!\w)", dutch):
                    continue
                found.add(part)
    return tuple(sorted(found, key=len, reverse=True))


def visible_text(page: str) -> str:
    """The words of a page (tags, style and code identifiers left out)."""
    page = re.sub(r"<style.*?</style>|<code>.*?</code>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def english_in(page: str) -> list[str]:
    words = visible_text(page)
    return [f for f in english_fragments() if re.search(r"(?<!\w)" + re.escape(f) + r"(?!\w)", words)]


@pytest.fixture(scope="module")
def admin_client(quality_twin: Twin) -> Iterator[tuple[TestClient, str]]:
    import psycopg

    from api.app import create_app
    from twin import access

    with psycopg.connect(quality_twin.owner, autocommit=True) as conn:
        key = access.create_key(conn, "admin", None, None, "dutch quality report test")[1]
    with TestClient(create_app(quality_twin.settings)) as c:
        yield c, key


def test_reasons_and_notes_are_translated_at_display_only() -> None:
    assert render.reason_text("kvk_number is empty", "nl") == text(
        "nl", "quality.reason.empty", field=catalogue("nl")["field.kvk_number"])
    assert render.reason_text("kvk_number is empty", "en") == "kvk_number is empty"
    assert render.reason_text("the same KvK number is registered for E-2 at 12.5 km", "nl") == \
        "hetzelfde KvK-nummer staat ook op E-2, op 12,5 km"
    reason = ("violation of 2026-01-05, repair deadline 2026-02-01: no inspection since and no enforcement measure")
    assert "5 januari 2026" in render.reason_text(reason, "nl") and "1 februari 2026" in render.reason_text(reason)
    assert render.reason_text("something the catalogue does not know", "nl") == "something the catalogue does not know"
    assert render.note_text("needs permits, which holds no records", "nl") == text(
        "nl", "quality.note.needs", layers=text("nl", "layer.permits"))
    assert render.percent(0.976, "nl") == "97,6%" and render.percent(0.976, "en") == "97.6%"
    assert render.count(2030, "nl") == "2.030" and render.signed(-1203, "nl") == "−1.203"


def test_api_quality_page_is_dutch_by_default_and_english_on_request(admin_client: tuple[TestClient, str]) -> None:
    client, key = admin_client
    page = client.get("/quality?f=html", headers={"X-API-Key": key})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html lang='nl'>" in page.text and f"<h1>{text('nl', 'quality.heading')}</h1>" in page.text
    assert text("nl", "layer.establishments") in page.text and text("nl", "quality.col.severity") in page.text
    assert english_in(page.text) == []
    assert re.search(r"Gemeten op \d{1,2} (januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|"
                     r"november|december) \d{4}", page.text)
    en = client.get("/quality?f=html&lang=en", headers={"X-API-Key": key})
    assert "<html lang='en'>" in en.text and "<h1>Data quality</h1>" in en.text and "Severity" in en.text
    doc = client.get("/quality?f=json&lang=nl", headers={"X-API-Key": key}).json()  # the JSON keeps its codes
    rule = doc["layers"][0]["rules"][0]
    assert rule["kind"] in ("completeness", "validity", "consistency", "linkage", "timeliness", "signal")
    assert rule["severity"] in ("info", "warning", "error")
    assert client.get("/quality?f=html&lang=nl&geldigOp=" + AS_OF.isoformat(),
                      headers={"X-API-Key": key}).text.count("geldigOp") == 1  # the page states both dates


def test_cli_html_report_in_dutch_with_translated_reasons(quality_twin: Twin, tmp_path: Path) -> None:
    s = quality_twin.settings
    nl_page, en_page, data_path = tmp_path / "nl.html", tmp_path / "en.html", tmp_path / "report.json"
    for args in (("--output", str(nl_page)), ("--lang", "en", "--output", str(en_page))):
        done = run_cli(s, "quality", "report", "--format", "html", "--examples", "3", *args)
        assert done.returncode == 0, done.stdout + done.stderr
    done = run_cli(s, "quality", "report", "--format", "json", "--examples", "3", "--output", str(data_path))
    assert done.returncode == 0, done.stderr
    page, en = nl_page.read_text(), en_page.read_text()
    assert page.startswith("<!doctype html><html lang='nl'>") and "<script" not in page
    assert f"<h1>{text('nl', 'quality.page.title')}</h1>" in page
    assert english_in(page) == []
    assert "hetzelfde KvK-nummer staat ook op" in page and "the same KvK number" not in page
    assert "the same KvK number is registered for" in en and "<html lang='en'>" in en
    data = json.loads(data_path.read_text())  # the JSON keeps its English reasons and codes
    kvk = next(r for r in data["rules"] if r["id"] == "signal.kvk-far-apart")
    assert kvk["examples"][0]["reason"].startswith("the same KvK number is registered for")
    assert re.search(r"\d+,\d%", page) and not re.search(r"\d+\.\d%", page)  # Dutch decimals
    assert run_cli(s, "quality", "report", "--format", "html", "--lang", "fr").returncode == 1


def test_cli_report_as_of_a_date(quality_twin: Twin, admin_client: tuple[TestClient, str], tmp_path: Path) -> None:
    """Before the first load the registers held nothing as known then; as known now, valid on the fixture's
    reference date, the CLI counts what the API's /quality?geldigOp= counts for the layers with history;
    both dates are stated."""
    s = quality_twin.settings
    client, key = admin_client
    before = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    then = run_cli(s, "quality", "report", "--format", "json", "--geldig-op", AS_OF.isoformat(),
                   "--beschikbaar-op", before)
    assert then.returncode == 0, then.stderr
    old = json.loads(then.stdout)
    assert old["history"]["geldigOp"] == AS_OF.isoformat()
    assert old["history"]["beschikbaarOp"].startswith(before)
    by_id = {r["id"]: r for r in old["rules"]}
    kvk = by_id["establishments.kvk_number-filled"]
    assert not kvk["applicable"] and "holds no records" in kvk["note"]
    known = run_cli(s, "quality", "report", "--format", "json", "--geldig-op", AS_OF.isoformat())
    assert known.returncode == 0, known.stderr
    doc = json.loads(known.stdout)
    assert doc["settings"]["quality_as_of"] == AS_OF.isoformat()
    api = client.get(f"/quality?f=json&geldigOp={AS_OF.isoformat()}", headers={"X-API-Key": key}).json()
    api_counts = {r["id"]: (r["checked"], r["failed"]) for layer in api["layers"] for r in layer["rules"]
                  if r["layer"] in ("establishments", "permits", "inspections", "natura2000-habitats",
                                    "housing-sites") and r["applicable"]}
    cli_counts = {r["id"]: (r["checked"], r["failed"]) for r in doc["rules"] if r["id"] in api_counts}
    assert api_counts and cli_counts == api_counts
    current = json.loads(run_cli(s, "quality", "report", "--format", "json").stdout)
    assert "history" not in current
    page = tmp_path / "asof.html"
    done = run_cli(s, "quality", "report", "--format", "html", "--geldig-op", AS_OF.isoformat(),
                   "--beschikbaar-op", before, "--output", str(page))
    assert done.returncode == 0, done.stderr
    assert "(geldigOp)" in page.read_text() and "(beschikbaarOp)" in page.read_text()
    bad = run_cli(s, "quality", "report", "--geldig-op", "31-12-2026")
    assert bad.returncode == 1 and "--geldig-op" in bad.stderr
    assert run_cli(s, "quality", "report", "--geldig-op", AS_OF.isoformat(), "--record").returncode == 1


@pytest.mark.browser
def test_dutch_quality_pages_pass_axe(quality_twin: Twin, admin_client: tuple[TestClient, str],
                                      tmp_path: Path) -> None:
    """axe-core in Chromium on both pages: no serious or critical violations."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() or not AXE.exists():
        pytest.skip("Chromium or the vendored axe-core is missing (scripts/setup.sh --test)")
    client, key = admin_client
    api_page = client.get("/quality?f=html", headers={"X-API-Key": key}).text
    cli_page = tmp_path / "q.html"
    assert run_cli(quality_twin.settings, "quality", "report", "--format", "html", "--examples", "3",
                   "--output", str(cli_page)).returncode == 0
    def audit() -> dict[str, list[dict[str, Any]]]:
        out = {}
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                for name, html_text in (("api", api_page), ("cli", cli_page.read_text())):
                    page.set_content(html_text)
                    page.add_script_tag(path=str(AXE))
                    out[name] = page.evaluate(
                        "window.axe.run(document, {resultTypes: ['violations']}).then(r => "
                        "r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, "
                        "nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))")
            finally:
                browser.close()
        return out

    # In a thread of its own: the browser tests' session-wide Playwright keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        found = pool.submit(audit).result()
    for name, violations in found.items():
        assert [v for v in violations if v["impact"] in ("serious", "critical")] == [], name
