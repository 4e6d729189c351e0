"""The map page and its assets over HTTP (no browser): the deck JSON from pydeck, local assets only,
compression and caching, the start-up configuration, and ``frontend.build_deck`` for notebooks."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.request import Request, urlopen

import pydeck
import pytest
from fastapi.testclient import TestClient

from frontend import deck as deck_module
from frontend.assets import DECK_BUNDLE, DECKGL_VERSION
from frontend.deck import build_deck
from frontend.page import render_page
from layers.registry import LAYERS

HTML = {"Accept": "text/html,application/xhtml+xml"}
# pydeck's notebook bundle (what notebooks use; the served page has a lean build of the same deck.gl)
PYDECK_BUNDLE = Path(pydeck.__file__).resolve().parent / "nbextension" / "static" / "index.js"


def page_config(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="twin-config">(.*?)</script>', html, re.S)
    assert m, "the page carries its configuration"
    config: dict[str, Any] = json.loads(m.group(1))
    return config


def test_root_serves_the_map_with_the_pydeck_json(client: TestClient) -> None:
    r = client.get("/", headers=HTML)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    config = page_config(r.text)
    ids = [layer["id"] for layer in config["deck"]["layers"]]
    assert ids == [m["id"] for m in config["layers"]]
    assert {"municipalities", "deposition-national", "deposition-1ha", "natura2000-habitats", "housing-sites",
            "buildings", "establishments", "inspections"} <= set(ids)
    assert config["deck"]["views"] == [{"@@type": "MapView", "controller": True}]
    assert config["deck"]["initialViewState"]["pitch"] > 30  # a pitched 3D view
    # nothing from elsewhere: no absolute URL of another host anywhere in the page
    assert not re.search(r"(https?:)?//(?!127\.0\.0\.1)[a-z0-9.-]+\.[a-z]{2,}/", r.text)
    for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text):
        assert src.startswith("/static/"), src
        assert client.get(src).status_code == 200, src


def test_layers_follow_the_registry(client: TestClient) -> None:
    config = page_config(client.get("/", headers=HTML).text)
    # the URL template the layers use is the API's tile route (200 with data, 204 when empty)
    assert client.get("/collections/municipalities/tiles/WebMercatorQuad/0/0/0").status_code in (200, 204)
    by_id = {layer["id"]: layer for layer in config["deck"]["layers"]}
    for meta in config["layers"]:
        layer = by_id[meta["id"]]
        if layer["@@type"] != "MVTLayer":
            continue
        spec = LAYERS[meta["collection"]]
        assert layer["data"].split("?")[0] == f"/collections/{spec.id}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}"
        assert layer["minZoom"] >= spec.min_zoom and layer["maxZoom"] <= spec.max_zoom
        hexagons = meta["id"].startswith("deposition-")
        assert layer["uniqueIdProperty"] == (deck_module.HEX_UNIQUE_ID if hexagons else spec.key)
        tile_fields = {f.name for f in spec.public_fields}
        assert {row["field"] for row in meta["tooltip"]} <= tile_fields, meta["id"]
        assert layer["loadOptions"]["mvt"]["workerUrl"].startswith("/static/vendor/")
    hexes = [by_id["deposition-national"], by_id["deposition-1ha"]]
    queries = [parse_qs(h["data"].split("?")[1]) for h in hexes]
    assert [q["resolution"] for q in queries] == [["national"], ["1ha"]]
    for hexagons, query in zip(hexes, queries, strict=True):
        # the tiles carry only the fields the map reads: colour, height, tooltip and the unique id
        fields = set(query["properties"][0].split(","))
        tooltip = {row["field"] for row in next(m for m in config["layers"] if m["id"] == hexagons["id"])["tooltip"]}
        assert tooltip | {"exceedance", "lowest_kdw", "deposition", deck_module.HEX_UNIQUE_ID} <= fields
        assert "hexagon_id" not in fields
        assert f"properties.{LAYERS['deposition-hexagons'].style.extrude_field}" in hexagons["getElevation"]
    assert hexes[0]["visibleMaxZoom"] < hexes[1]["visibleMinZoom"] == deck_module.HEX_SWITCH_ZOOM
    assert by_id["addresses"]["visible"] is False and by_id["addresses"]["minZoom"] == LAYERS["addresses"].min_zoom
    assert by_id["buildings"]["extruded"] is True
    assert by_id["buildings"]["getElevation"] == "@@=properties.height_m || 3"
    assert by_id["municipalities"]["getLineColor"] == list(LAYERS["municipalities"].style.line)
    restricted = [m["id"] for m in config["layers"] if m["restricted"]]
    assert restricted == ["inspections"] and by_id["inspections"]["visible"] is False


def test_deck_bundle_is_the_vendored_lean_build_compressed_and_cached(client: TestClient) -> None:
    html = client.get("/", headers=HTML).text
    m = re.search(r'<script src="(/static/vendor/deckgl-[^"]+/deckgl\.min\.js\?v=[0-9a-f]+)"></script>', html)
    assert m, "the page loads the vendored deck.gl bundle, with its content hash in the URL"
    url = m.group(1)
    raw = DECK_BUNDLE.read_bytes()
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert "immutable" in r.headers["cache-control"] and "max-age=31536000" in r.headers["cache-control"]
    assert int(r.headers["content-length"]) < len(raw) / 2
    assert r.content == raw  # httpx decodes gzip
    assert len(raw) < len(PYDECK_BUNDLE.read_bytes()) / 3  # the point of vendoring it
    # the same deck.gl as pydeck's notebook bundle: the page renders the JSON of pydeck's Deck
    version = re.compile(rb'let \w+="(\d+\.\d+\.\d+)",\w+=globalThis\.deck&&globalThis\.deck\.VERSION')
    ours, pydecks = version.search(raw), version.search(PYDECK_BUNDLE.read_bytes())
    assert ours and pydecks and ours.group(1) == pydecks.group(1) == DECKGL_VERSION.encode()
    assert (DECK_BUNDLE.parent / "LICENSES.txt").read_text().count("@deck.gl/core 9.3.6 (MIT)") == 1
    again = client.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    plain = client.get("/static/map.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.headers["content-type"].startswith("text/javascript")
    assert gzip.decompress(gzip.compress(plain.content)) == plain.content


@pytest.mark.parametrize("path", ["/static/../page.py", "/static/%2e%2e/routes.py", "/static/vendor/../../deck.py",
                                  "/static/nothing.js", "/static/map.py", "/static/"])
def test_static_serves_only_its_own_files(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert b"def " not in r.content and b"import" not in r.content


def test_config_lists_the_years_of_the_data(map_server: str, map_data: dict[str, Any]) -> None:
    with urlopen(Request(f"{map_server}/map/config.json")) as r:  # noqa: S310 - loopback test server
        body = json.load(r)
    assert body["deposition_years"] == sorted(map_data["years"])
    # inspections are restricted: an anonymous caller sees no rows, hence no years
    assert body["inspection_years"] == []


def test_build_deck_for_notebooks() -> None:
    deck = build_deck(layers=["municipalities", "deposition-national", "establishments"],
                               view={"zoom": 9, "latitude": 52.1, "longitude": 5.6},
                               base_url="http://127.0.0.1:8000/", year=2023)
    assert isinstance(deck, pydeck.Deck)
    spec = json.loads(deck.to_json())
    assert [layer["id"] for layer in spec["layers"]] == ["municipalities", "deposition-national", "establishments"]
    assert all(layer["visible"] for layer in spec["layers"])
    assert spec["layers"][1]["data"] == ("http://127.0.0.1:8000/collections/deposition-hexagons/tiles/"
                                         "WebMercatorQuad/{z}/{x}/{y}?resolution=national&year=2023"
                                         "&properties=receptor_id%2Cdeposition%2Clowest_kdw%2Cexceedance%2Cyear&digits=0&ids=false")
    assert spec["initialViewState"]["zoom"] == 9 and spec["initialViewState"]["pitch"] == 45
    assert spec["layers"][0]["loadOptions"]["mvt"]["workerUrl"].startswith("http://127.0.0.1:8000/static/vendor/")
    with pytest.raises(ValueError, match="unknown map layer"):
        build_deck(layers=["roads"])
    default = json.loads(build_deck().to_json())
    assert "inspections" not in [layer["id"] for layer in default["layers"]]  # restricted: off unless asked


def test_build_deck_is_exported_by_the_package() -> None:
    """``import frontend; frontend.build_deck`` as a notebook does it (outside pytest's import paths)."""
    code = "import frontend, pydeck; d = frontend.build_deck(); assert isinstance(d, pydeck.Deck); print(len(d.layers))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert int(out.stdout) == len([m for m in deck_module.map_layers() if m.visible])


def test_render_page_without_settings_has_no_basemap() -> None:
    config = page_config(render_page(None))
    assert config["basemap"] is None and "basemap" not in [m["id"] for m in config["layers"]]


def test_basemap_layer_when_configured(base_settings: Any) -> None:
    s = base_settings.model_copy(update={"basemap_url": "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"})
    config = page_config(render_page(s))
    basemap = config["deck"]["layers"][0]
    assert basemap["id"] == "basemap" and basemap["@@type"] == "TileLayer"
    assert basemap["data"] == "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"
    assert basemap["renderSubLayers"] == {"@@function": "bitmapTiles"}
