"""Dashboard benchmark: time to the first chart drawn on /dashboard in headless Chromium (issue 22's goal:
under 2 s), cold (a fresh browser context, no cache), against the twin named by the settings after
``twin monitor compute`` has stored a run.

"First chart drawn" is ``body[data-first-chart]``: ms from navigation start until vega-embed has drawn the
first chart (the page's definitions and its first KPI request answered, Vega-Lite compiled and rendered).

    TWIN_DATABASE_NAME=twin_bench .venv/bin/python bench/dashboard.py [--runs 1] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.map import ARGS, CHROMIUM, _given, serve  # noqa: E402


def cold_load(browser: Any, url: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/dashboard")
    page.wait_for_selector("body[data-first-chart]", state="attached", timeout=60000)
    first = int(page.evaluate("document.body.getAttribute('data-first-chart')"))
    page.wait_for_selector("body[data-charts-drawn]", state="attached", timeout=60000)
    all_drawn = page.evaluate("performance.now()")
    context.close()
    return {"first_chart_ms": first, "all_charts_ms": round(all_drawn), "requests": len(requests),
            "console_errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server; by default the app is served here")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with (serve() if not args.url else _given(args.url)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        first_visit = cold_load(browser, url)  # a fresh server too: its pool and first query plans
        runs = [cold_load(browser, url) for _ in range(args.runs)]
        browser.close()
    out = {"date": time.strftime("%Y-%m-%d"), "fresh_server": first_visit, "runs": runs,
           "first_chart_median_ms": statistics.median(r["first_chart_ms"] for r in runs)}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
