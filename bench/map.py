"""Map benchmark: page weight and time to first frame of the map in headless Chromium.

Serves the app (uvicorn, 127.0.0.1, a free port) against the twin named by the settings (for the medium
twin: ``TWIN_DATABASE_NAME=...``), or measures a running server with ``--url``. Each run is a cold load in
a fresh browser context (no cache). "First frame" is the moment the map has drawn with every tile layer
that is visible at the start loaded (``twinMap.metrics.firstFrame``, ms since navigation start).

    TWIN_DATABASE_NAME=twin_medium .venv/bin/python bench/map.py --runs 3
    .venv/bin/python bench/map.py --url http://127.0.0.1:8000 --screenshots docs/img
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
        "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 860}


@contextmanager
def serve() -> Iterator[str]:
    """The app on a free loopback port, in a thread, with the environment's settings."""
    import uvicorn

    from api.app import create_app
    from twin.settings import get_settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(get_settings()), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_idle(page: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    calm = 0
    while time.monotonic() < deadline:
        calm = calm + 1 if page.evaluate("window.twinMap.isIdle()") else 0
        if calm >= 3:
            return
        page.wait_for_timeout(100)
    raise SystemExit("the map did not settle")


def poll(page: Any, expression: str, timeout_s: float) -> None:
    """Until a JS expression is true (the page's CSP forbids the eval of Playwright's wait_for_function)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {expression}")
        page.wait_for_timeout(200)


def cold_load(browser: Any, url: str) -> dict[str, Any]:
    """One cold load: bytes over the wire, requests, hosts, first render and first frame."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    finished: list[Any] = []
    errors: list[str] = []
    page.on("requestfinished", lambda r: finished.append(r))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    t0 = time.monotonic()
    page.goto(url)
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=120_000)
    wall = time.monotonic() - t0
    metrics = page.evaluate("window.twinMap.metrics")
    if "-v" in sys.argv:
        print({k: round(v) for k, v in metrics["loaded"].items()}, metrics.get("tileErrors"))
    wait_idle(page)
    by_kind: dict[str, int] = {}
    total = 0
    for req in finished:
        size = req.sizes()["responseBodySize"]
        kind = "tiles" if "/tiles/" in req.url else "script" if req.url.split("?")[0].endswith(".js") else "other"
        by_kind[kind] = by_kind.get(kind, 0) + size
        total += size
    result = {
        "first_render_ms": metrics["firstRender"],
        "first_frame_ms": metrics["firstFrame"],
        "wall_s": wall,
        "requests": len(finished),
        "bytes": total,
        "bytes_by_kind": by_kind,
        "hosts": sorted({urlsplit(r.url).hostname or "" for r in finished}),
        "console_errors": errors,
    }
    if errors and "-v" in sys.argv:
        print("console errors:", errors)
    if "-v" in sys.argv:  # the slowest requests: where the first frame waits
        timed = sorted(((r.timing["responseEnd"], r.timing["startTime"], r.url) for r in finished
                        if r.timing.get("responseEnd", -1) >= 0), reverse=True)
        t0 = min((t[1] for t in timed), default=0.0)
        for end, start, u in timed[:8]:
            print(f"  {end:7.0f} ms, sent at {start - t0:6.0f} ms: {u.split('//', 1)[-1].split('/', 1)[-1][:110]}")
    context.close()
    return result


def screenshots(browser: Any, url: str, out: Path) -> None:
    """The national 3D view and an inspector's panel, for the docs."""
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=120_000)
    wait_idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "map-national.png"))
    # an establishment near an overloaded habitat: what an inspector would look at before a visit
    est_id = page.evaluate("""async () => {
        const get = async url => { const r = await fetch(url); return r.ok ? r.json() : null; };
        const hex = await get('/collections/deposition-hexagons/items?resolution=1ha&overloaded=true&limit=1');
        if (hex && hex.features.length) {
            const c = hex.features[0].geometry.coordinates[0][0];
            const bbox = [c[0] - 0.06, c[1] - 0.04, c[0] + 0.06, c[1] + 0.04].join(',');
            const near = await get('/collections/establishments/items?limit=50&bbox=' + bbox);
            const farm = near && near.features.find(f => (f.properties.sbi_code || '').startsWith('014'));
            const any = near && near.features[0];
            if (farm || any) return (farm || any).properties.establishment_id;
        }
        const first = await get('/collections/establishments/items?limit=1');
        return first.features[0].properties.establishment_id;
    }""")
    item = page.evaluate(f"fetch('/collections/establishments/items/{est_id}').then(r => r.json())")
    lon, lat = item["geometry"]["coordinates"]
    page.evaluate(f"window.twinMap.flyTo({{longitude: {lon} + 0.01, latitude: {lat} + 0.004, zoom: 12.6, pitch: 55, "
                  f"bearing: 25, transitionDuration: 0}})")
    page.evaluate(f"window.twinMap.openEstablishment({est_id!r}, [{lon}, {lat}], null)")
    page.wait_for_selector("#report-link", timeout=30_000)
    wait_idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "map-panel.png"))
    context.close()
    # a phone (390 x 844): the side bar folded away, the panel as a bottom sheet
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=120_000)
    wait_idle(page)
    page.screenshot(path=str(out / "map-phone.png"))
    page.evaluate(f"window.twinMap.flyTo({{longitude: {lon}, latitude: {lat} - 0.01, zoom: 12.6, pitch: 50, "
                  f"transitionDuration: 0}})")
    page.evaluate(f"window.twinMap.openEstablishment({est_id!r}, [{lon}, {lat}], null)")
    page.wait_for_selector("#report-link", timeout=30_000)
    wait_idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "map-phone-panel.png"))
    phone.close()
    print(f"screenshots: {out / 'map-national.png'}, {out / 'map-panel.png'}, map-phone.png, map-phone-panel.png "
          f"(establishment {est_id})")


@contextmanager
def admin_key() -> Iterator[str | None]:
    """A key of one hour for the screenshots of restricted views (priority colouring, inspection history),
    made in the served twin and revoked afterwards; None when the database cannot be reached as the owner."""
    from twin import access, database
    from twin.settings import get_settings

    settings = get_settings()
    try:
        with database.connect(database.url_for(settings, "owner"), autocommit=True) as conn:
            meta, key = access.create_key(conn, "admin", None, access.parse_expiry("1h"), "bench/map screenshots")
    except Exception as exc:  # noqa: BLE001 - the public screenshots are made anyway
        print(f"no key for the restricted screenshots: {exc}")
        yield None
        return
    try:
        yield key
    finally:
        with database.connect(database.url_for(settings, "owner"), autocommit=True) as conn:
            access.revoke_key(conn, meta.key_id)


def restricted_screenshots(browser: Any, url: str, out: Path, key: str) -> None:
    """With a key: establishments coloured by inspection priority with the top one's panel (rank and reasons),
    and the data-quality view with every signal on the map."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(f"try {{ sessionStorage.setItem('twin-api-key', {key!r}); }} catch (e) {{}}")
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=120_000)
    page.wait_for_selector("input[name=est-color][value=priority]", state="attached", timeout=60_000)
    page.check("input[name=est-color][value=priority]")
    poll(page, "!!window.twinMap.state.priorityInfo", 180)
    top = page.evaluate("Object.entries(window.twinMap.state.priorityRows).sort((a, b) => a[1].rank - b[1].rank)[0]")
    est_id = top[0]
    item = page.evaluate(f"fetch('/collections/establishments/items/{est_id}', "
                         f"{{headers: {{'X-API-Key': {key!r}}}}}).then(r => r.json())")
    lon, lat = item["geometry"]["coordinates"]
    page.evaluate(f"window.twinMap.flyTo({{longitude: {lon} + 0.03, latitude: {lat}, zoom: 11.2, pitch: 40, "
                  f"bearing: 0, transitionDuration: 0}})")
    page.evaluate(f"window.twinMap.openEstablishment({est_id!r}, [{lon}, {lat}], null)")
    page.wait_for_selector("#priority-rank", timeout=60_000)
    page.evaluate("document.getElementById('priority-box').scrollIntoView({block: 'start'})")
    wait_idle(page, 120)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "map-priority.png"))
    page.keyboard.press("Escape")
    page.click("#tab-quality")
    page.wait_for_selector("#quality-signals button[data-rule='signals']", timeout=120_000)
    page.click("#quality-signals button[data-rule='signals']")
    page.wait_for_selector("#quality-records ul.records", timeout=120_000)
    page.evaluate("window.twinMap.flyTo({longitude: 5.55, latitude: 52.12, zoom: 9.3, pitch: 30, bearing: 0, "
                  "transitionDuration: 0})")
    wait_idle(page, 120)
    page.wait_for_timeout(500)
    page.screenshot(path=str(out / "map-quality.png"))
    context.close()
    print(f"screenshots: map-priority.png (establishment {est_id}, rank {top[1]['rank']}), map-quality.png")


def hexagon_view(browser: Any, url: str) -> dict[str, Any]:
    """Bytes of the 1 ha hexagon tiles of one zoom-12 view over the Veluwe (the budget: under 1.5 MB)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    tiles: list[Any] = []
    page.on("requestfinished", lambda r: tiles.append(r) if "resolution=1ha" in r.url else None)
    page.goto(url)
    page.wait_for_selector("body[data-first-frame]", state="attached", timeout=120_000)
    page.evaluate("window.twinMap.flyTo({longitude: 5.85, latitude: 52.1, zoom: 12, pitch: 45, bearing: 0, "
                  "transitionDuration: 0})")
    wait_idle(page, 120)
    sizes = [r.sizes()["responseBodySize"] for r in tiles]
    context.close()
    return {"tiles": len(sizes), "bytes": sum(sizes), "largest": max(sizes, default=0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server; by default the app is served here")
    parser.add_argument("--runs", type=int, default=3, help="cold loads to measure (median reported; 0: none)")
    parser.add_argument("--screenshots", type=Path, help="write the docs' screenshots here (map-national, map-panel, "
                        "map-phone, map-phone-panel and, with a key made for the run, map-priority and map-quality)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print when each layer had loaded")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with (serve() if not args.url else _given(args.url)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        results = [cold_load(browser, url + "/") for _ in range(args.runs)]
        for i, r in enumerate(results, 1):
            kinds = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(r["bytes_by_kind"].items()))
            print(f"run {i}: first frame {r['first_frame_ms']:.0f} ms (first render {r['first_render_ms']:.0f} ms), "
                  f"{r['requests']} requests, {r['bytes'] / 1e6:.2f} MB over the wire ({kinds}); "
                  f"hosts {r['hosts']}; console errors {len(r['console_errors'])}")
        if results:  # --runs 0: only the screenshots
            ff = statistics.median(r["first_frame_ms"] for r in results)
            weight = statistics.median(r["bytes"] for r in results)
            print(f"median: first frame {ff:.0f} ms, page weight {weight / 1e6:.2f} MB "
                  f"({'within' if ff <= 3000 else 'OVER'} the 3 s goal)")
            hexes = hexagon_view(browser, url)
            print(f"zoom-12 view over the Veluwe: {hexes['tiles']} hexagon tiles, {hexes['bytes'] / 1e6:.2f} MB over "
                  f"the wire, largest {hexes['largest'] / 1e3:.0f} kB "
                  f"({'within' if hexes['bytes'] <= 1.5e6 else 'OVER'} the 1.5 MB budget)")
        if args.screenshots:
            screenshots(browser, url, args.screenshots)
            with (admin_key() if not args.url else _given(None)) as key:  # type: ignore[arg-type]
                if key:
                    restricted_screenshots(browser, url, args.screenshots, key)
        browser.close()


@contextmanager
def _given(url: str | None) -> Iterator[Any]:
    yield url.rstrip("/") if url else None


if __name__ == "__main__":
    main()
