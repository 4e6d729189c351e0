"""Browser-test fixtures: a database of the map's own (so its hand-made twin never meets other tests' data),
the app served by uvicorn on a free loopback port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from servers import serve_app
from testdb import throwaway_database

from twin import database
from twin.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import map_fixture  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def map_settings(base_settings: Settings) -> Iterator[Settings]:
    """A fresh, migrated database holding the map fixture; dropped at the end of the session."""
    # The map colours by the blend plan (TWIN_PRIORITY_METHOD=blend), falling back to the rules plan.
    with throwaway_database(base_settings, f"twin_map_{os.getpid()}", priority_method="blend") as s:
        yield s


@pytest.fixture(scope="session")
def map_data(map_settings: Settings) -> Iterator[dict[str, Any]]:
    """The hand-made twin, inserted as the owner and removed afterwards."""
    owner = database.url_for(map_settings, "owner")
    facts = map_fixture.load(owner)
    yield facts
    map_fixture.unload(owner)


@pytest.fixture(scope="session")
def map_server(map_settings: Settings, map_data: dict[str, Any]) -> Iterator[str]:
    """The app (API and map) served over real HTTP on 127.0.0.1 in a background thread."""
    with serve_app(map_settings) as base:
        yield base


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless (WebGL through SwiftShader)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/setup.sh --test (installs Debian's chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class MapPage:
    """A browser page on the map with everything it logged and requested."""

    page: Any
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.base_url}/{query}")
        # A DOM flag rather than wait_for_function: the page's CSP forbids the eval that the latter uses.
        self.page.wait_for_selector("body[data-first-frame]", state="attached", timeout=30000)

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def wait_idle(self, timeout_s: float = 15.0) -> None:
        """Until the camera is still and every visible tile layer has loaded its viewport."""
        deadline = time.monotonic() + timeout_s
        calm = 0
        while time.monotonic() < deadline:
            # idle (nothing to redraw, every tile loaded, camera still) on three polls in a row
            calm = calm + 1 if self.js("window.twinMap.isIdle()") else 0
            if calm >= 3:
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the map did not settle within {timeout_s} s")


@pytest.fixture()
def map_page(chromium: Any, map_server: str) -> Iterator[MapPage]:
    context = chromium.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    mp = MapPage(page, map_server)
    page.on("console", lambda m: mp.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: mp.console_errors.append(f"page error: {e}"))
    page.on("request", lambda r: mp.requests.append(r.url))
    yield mp
    context.close()
