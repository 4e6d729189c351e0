"""The map page: the pydeck JSON of :func:`frontend.deck.build_deck` plus the controls around it.

``render_map(request)`` is called by the landing route for browsers. It touches no database (the route is
``async``): years and other data-dependent settings come from ``/map/config.json`` when the page starts.
"""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import Request

from frontend import theme
from frontend.assets import DECK_BUNDLE_NAME, asset_url
from frontend.deck import DEFAULT_VIEW, build_deck, map_layers
from twin.settings import Settings

GROUPS = (
    ("planning", "Planning"),
    ("nitrogen", "Nitrogen"),
    ("supervision", "Supervision"),
    ("background", "Background"),
)
CONTEXT_RADIUS_M = 500
PRIORITY_LIMIT = 1000


def page_config(settings: Settings | None, base_url: str = "") -> dict[str, Any]:
    """Everything the page script needs: the deck JSON from pydeck, the layer catalogue and the theme."""
    basemap = settings.basemap_url if settings else None
    catalog = map_layers(base_url, basemap_url=basemap)
    deck = build_deck(layers=[m.layer.id for m in catalog], base_url=base_url, basemap_url=basemap,
                      view=DEFAULT_VIEW, tooltip=False)
    deck_json = json.loads(deck.to_json())
    # build_deck switches every chosen layer on; the page starts with the registry's defaults.
    defaults = {m.layer.id: m.visible for m in catalog}
    for layer in deck_json["layers"]:
        layer["visible"] = defaults[layer["id"]]
    return {
        "deck": deck_json,
        "layers": [m.meta() for m in catalog],
        "groups": [list(g) for g in GROUPS],
        "contextRadius": CONTEXT_RADIUS_M,
        "priorityLimit": PRIORITY_LIMIT,
        "theme": {
            "unknown": list(theme.UNKNOWN),
            "verdicts": [[v, list(c), label] for v, c, label in theme.VERDICTS],
            "priority": [[share, list(c)] for share, c, _ in theme.PRIORITY_CLASSES],
            "priorityLegend": theme.priority_legend().as_dict(),
            "issues": [[n, list(c), radius] for n, c, radius, _ in theme.ISSUE_CLASSES],
            "issueLegend": theme.issue_legend().as_dict(),
            "background": list(theme.BACKGROUND),
        },
        "basemap": basemap,
    }


def _script_json(data: object) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vth-twin: the map</title>
<meta name="description" content="3D map of the vth-twin: nitrogen deposition, Natura 2000, housing sites,
establishments and inspections in the Netherlands.">
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{css}">
</head>
<body>
<a class="skip" href="#controls">Skip to the map controls</a>
<header class="topbar">
  <h1><span aria-hidden="true" class="logo"></span>vth-twin</h1>
  <form id="search" role="search" autocomplete="off">
    <label for="search-input">Search an establishment, KvK number or municipality</label>
    <div class="row">
      <input id="search-input" name="q" type="search" placeholder="e.g. Utrecht, GM0344, 12345678, De Vries">
      <button type="submit">Search</button>
    </div>
  </form>
  <div class="years">
    <div><label for="year-select">Deposition year</label><select id="year-select" disabled></select></div>
    <div><label for="inspection-year">Inspection year</label><select id="inspection-year" disabled></select></div>
  </div>
</header>
<div id="search-results" class="search-results" role="region" aria-live="polite" aria-label="Search results" hidden>
</div>
<nav id="controls" class="sidebar" aria-label="Map layers, legend, housing and data-quality views">
  <div role="tablist" aria-label="Views">
    <button type="button" role="tab" id="tab-layers" aria-controls="tabpanel-layers" aria-selected="true">
      Layers &amp; legend</button>
    <button type="button" role="tab" id="tab-housing" aria-controls="tabpanel-housing" aria-selected="false"
      tabindex="-1">Housing vs nitrogen</button>
    <button type="button" role="tab" id="tab-quality" aria-controls="tabpanel-quality" aria-selected="false"
      tabindex="-1" data-script="{quality_js}" data-css="{quality_css}">Data quality</button>
  </div>
  <section id="tabpanel-layers" role="tabpanel" aria-labelledby="tab-layers">
    <h2 class="visually-hidden">Layers</h2>
    <div id="layer-toggles"></div>
    <h2>Legend</h2>
    <div id="legend"></div>
    <details class="access">
      <summary>Access</summary>
      <form id="api-key-form">
        <label for="api-key">API key (advisors and inspectors see restricted layers)</label>
        <div class="row"><input id="api-key" type="password" autocomplete="off">
        <button type="submit">Use key</button></div>
      </form>
    </details>
    <p class="hint">Click the map or an establishment for the area context. Drag to pan, right-drag or
    Ctrl-drag to tilt; with the map focused, arrow keys pan and +/- zoom.
    <button type="button" id="reset-view" class="link">Back to the national view</button></p>
    <p class="hint">Boundaries: Bron: CBS, Kadaster (CC-BY 4.0).{basemap_note}</p>
  </section>
  <section id="tabpanel-housing" role="tabpanel" aria-labelledby="tab-housing" hidden>
    <h2>Housing against nitrogen and zoning</h2>
    <p class="hint">Each planned housing site gets a verdict from the deposition on the site, the overloaded
    Natura 2000 habitats within reach and the VNG guide distances of nearby establishments. Choose a site to
    fly there and read the reasons.</p>
    <div id="housing-list"></div>
  </section>
  <section id="tabpanel-quality" role="tabpanel" aria-labelledby="tab-quality" hidden>
    <h2>Data quality</h2>
    <p class="hint">How far the data can be trusted: each rule checks a layer (fields filled, values valid,
    dates in order, records linked, deliveries on time); signals are gaps between registers that point at a
    risk. Choose a rule or signal to see its records on the map, darker and larger where a record has more
    open issues.</p>
    <div id="quality-list" aria-live="polite"></div>
  </section>
</nav>
<main id="map" class="map" aria-label="3D map of the Netherlands" tabindex="0"></main>
<aside id="panel" class="panel" aria-labelledby="panel-title" hidden>
  <div class="panel-head">
    <h2 id="panel-title" tabindex="-1">Area context</h2>
    <button type="button" id="panel-close" aria-label="Close the panel">&times;</button>
  </div>
  <div id="panel-body"></div>
</aside>
<div id="status" class="status" role="status" aria-live="polite" hidden></div>
<script type="application/json" id="twin-config">{config}</script>
<script src="{boot_js}"></script>
<script src="{deck_js}"></script>
<script src="{twin_deck_js}"></script>
<script src="{map_js}"></script>
</body>
</html>
"""


def render_page(settings: Settings | None) -> str:
    """The map page's HTML for given settings (without a request, for tests and static exports)."""
    config = page_config(settings)
    basemap_note = f" Basemap: {html.escape(settings.basemap_url)}." if settings and settings.basemap_url else ""
    return PAGE.format(
        icon=asset_url("icon.svg"),
        css=asset_url("map.css"),
        boot_js=asset_url("boot.js"),
        deck_js=asset_url(DECK_BUNDLE_NAME),
        twin_deck_js=asset_url("twin-deck.js"),
        map_js=asset_url("map.js"),
        quality_js=asset_url("quality.js"),
        quality_css=asset_url("quality.css"),
        config=_script_json(config),
        basemap_note=basemap_note,
    )


def render_map(request: Request) -> str:
    """The HTML of the map for ``GET /`` (browsers): the deck from pydeck, served with local assets only."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return render_page(settings)
