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
from frontend.deck import DEFAULT_VIEW, PLACES_URL, build_deck, map_layers
from layers.messages import DEFAULT_LANGUAGE, catalogue, language, text
from twin.settings import Settings

GROUPS = ("planning", "nitrogen", "supervision", "background")
CONTEXT_RADIUS_M = 500
PRIORITY_LIMIT = 1000
# The visit plan the map colours by: model, rules or blend, as ``TWIN_PRIORITY_METHOD`` says.


def page_config(settings: Settings | None, base_url: str = "", lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """Everything the page script needs: the deck JSON from pydeck, the layer catalogue, the theme and the
    messages of the page's language."""
    basemap = settings.basemap_url if settings else None
    catalog = map_layers(base_url, basemap_url=basemap, lang=lang)
    deck = build_deck(layers=[m.layer.id for m in catalog], base_url=base_url, basemap_url=basemap,
                      view=DEFAULT_VIEW, tooltip=False, lang=lang)
    deck_json = json.loads(deck.to_json())
    # build_deck switches every chosen layer on; the page starts with the registry's defaults.
    defaults = {m.layer.id: m.visible for m in catalog}
    for layer in deck_json["layers"]:
        layer["visible"] = defaults[layer["id"]]
    return {
        "deck": deck_json,
        "layers": [m.meta() for m in catalog],
        "groups": [[g, text(lang, f"group.{g}")] for g in GROUPS],
        "lang": lang,
        "messages": catalogue(lang),
        "placesUrl": PLACES_URL,
        "contextRadius": CONTEXT_RADIUS_M,
        "priorityLimit": PRIORITY_LIMIT,
        "priorityMethod": settings.priority_method if settings else Settings.model_fields["priority_method"].default,
        "theme": {
            "unknown": list(theme.UNKNOWN),
            "verdicts": [[v, list(c), text(lang, f"verdict.{v}")] for v, c, _ in theme.VERDICTS],
            "priority": [[share, list(c)] for share, c, _ in theme.PRIORITY_CLASSES],
            "priorityLegend": theme.priority_legend(lang).as_dict(),
            "issues": [[n, list(c), radius] for n, c, radius, _ in theme.ISSUE_CLASSES],
            "issueLegend": theme.issue_legend(lang).as_dict(),
            "background": list(theme.BACKGROUND),
        },
        "basemap": basemap,
    }


def _script_json(data: object) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{m[page.title]}</title>
<meta name="description" content="{m[page.description]}">
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{css}">
</head>
<body>
<a class="skip" href="#controls">{m[page.skip]}</a>
<header class="topbar">
  <button type="button" id="sidebar-toggle" class="sidebar-toggle" aria-controls="controls" aria-expanded="true">
    <span aria-hidden="true" class="burger"></span>
    <span class="visually-hidden">{m[page.sidebar_toggle]}</span></button>
  <h1><span aria-hidden="true" class="logo"></span>vth-twin</h1>
  <form id="search" role="search" autocomplete="off">
    <label for="search-input">{m[search.label]}</label>
    <div class="row">
      <input id="search-input" name="q" type="search" placeholder="{m[search.placeholder]}">
      <button type="submit">{m[search.button]}</button>
    </div>
  </form>
  <div class="years">
    <div><label for="year-select">{m[years.deposition]}</label><select id="year-select" disabled></select></div>
    <div><label for="inspection-year">{m[years.inspection]}</label><select id="inspection-year" disabled></select></div>
  </div>
  <a id="lang-switch" class="lang" href="?lang={m[lang.other_code]}" hreflang="{m[lang.other_code]}"
    lang="{m[lang.other_code]}" data-lang="{m[lang.other_code]}" title="{m[lang.switch]}">{m[lang.other_name]}</a>
  <p id="who" class="who-badge" title="{m[access.who_label]}"><span class="visually-hidden">{m[access.who_label]}:
    </span><span data-who>{m[role.anonymous]}</span></p>
</header>
<div id="search-results" class="search-results" role="region" aria-live="polite" aria-label="{m[search.region]}" hidden>
</div>
<nav id="controls" class="sidebar" aria-label="{m[nav.label]}" tabindex="-1">
  <div role="tablist" aria-label="{m[tabs.label]}">
    <button type="button" role="tab" id="tab-layers" aria-controls="tabpanel-layers" aria-selected="true">
      {m[tab.layers]}</button>
    <button type="button" role="tab" id="tab-housing" aria-controls="tabpanel-housing" aria-selected="false"
      tabindex="-1">{m[tab.housing]}</button>
    <button type="button" role="tab" id="tab-quality" aria-controls="tabpanel-quality" aria-selected="false"
      tabindex="-1" data-script="{quality_js}" data-css="{quality_css}">{m[tab.quality]}</button>
  </div>
  <section id="tabpanel-layers" role="tabpanel" aria-labelledby="tab-layers">
    <h2 class="visually-hidden">{m[layers.heading]}</h2>
    <details class="access" id="access">
      <summary>{m[access.summary]} <span class="who" data-who>{m[role.anonymous]}</span></summary>
      <form id="api-key-form">
        <label for="api-key">{m[access.label]}</label>
        <div class="row"><input id="api-key" type="password" autocomplete="off">
        <button type="submit">{m[access.button]}</button></div>
        <p id="key-state" class="key-state" role="status" aria-live="polite"></p>
      </form>
    </details>
    <div id="layer-toggles"></div>
    <h2>{m[legend.heading]}</h2>
    <div id="legend"></div>
    <p class="hint">{m[hint.navigate]}
    <button type="button" id="reset-view" class="link">{m[hint.reset]}</button></p>
    <p class="hint">{m[hint.sources]}{basemap_note}</p>
    <p class="hint"><a href="{dashboard_url}">{m[page.dashboard]}</a></p>
    <p class="hint"><a href="{statement_url}">{m[page.statement]}</a></p>
  </section>
  <section id="tabpanel-housing" role="tabpanel" aria-labelledby="tab-housing" hidden>
    <h2>{m[housing.heading]}</h2>
    <p class="hint">{m[housing.hint]}</p>
    <div id="housing-list"></div>
  </section>
  <section id="tabpanel-quality" role="tabpanel" aria-labelledby="tab-quality" hidden>
    <h2>{m[quality.heading]}</h2>
    <p class="hint">{m[quality.hint]}</p>
    <div id="quality-list" aria-live="polite"></div>
  </section>
</nav>
<main id="map" class="map" aria-label="{m[map.label]}" tabindex="0"></main>
<aside id="panel" class="panel" aria-labelledby="panel-title" hidden>
  <div class="panel-head">
    <h2 id="panel-title" tabindex="-1">{m[panel.title]}</h2>
    <button type="button" id="panel-close" aria-label="{m[panel.close]}">&times;</button>
  </div>
  <div id="panel-body"></div>
</aside>
<div id="loading" class="loading" role="status"><span class="spinner" aria-hidden="true"></span>{m[page.loading]}</div>
<div id="status" class="status" role="status" aria-live="polite" hidden></div>
<script type="application/json" id="twin-config">{config}</script>
<script src="{boot_js}"></script>
<script src="{deck_js}"></script>
<script src="{twin_deck_js}"></script>
<script src="{map_js}"></script>
</body>
</html>
"""

STATEMENT_URL = "/toegankelijkheid"


def _escaped_messages(lang: str) -> dict[str, str]:
    """The catalogue's plain messages, HTML-escaped for the templates."""
    return {k: html.escape(str(v)) for k, v in catalogue(lang).items() if isinstance(v, str)}


def render_page(settings: Settings | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """The map page's HTML for given settings and language (without a request, for tests and static exports)."""
    lang = language(lang)
    config = page_config(settings, lang=lang)
    m = _escaped_messages(lang)
    basemap_note = (" " + html.escape(text(lang, "hint.basemap", url=settings.basemap_url))
                    if settings and settings.basemap_url else "")
    return PAGE.format(
        lang=lang,
        m=m,
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
        statement_url=f"{STATEMENT_URL}?lang={lang}",
        dashboard_url=f"/dashboard?lang={lang}",
    )


def render_map(request: Request) -> str:
    """The HTML of the map for ``GET /`` (browsers) in the language of ``?lang=`` (Dutch by default): the deck
    from pydeck, served with local assets only."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return render_page(settings, request.query_params.get("lang") or DEFAULT_LANGUAGE)


STATEMENT = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{m[statement.title]} · vth-twin</title>
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{css}">
</head>
<body class="document">
<main class="statement">
<p><a href="/?lang={lang}">{m[statement.back]}</a> ·
  <a href="{url}?lang={m[lang.other_code]}" hreflang="{m[lang.other_code]}"
    lang="{m[lang.other_code]}">{m[lang.other_name]}</a></p>
<h1>{m[statement.title]}</h1>
<p>{m[statement.intro]}</p>
<h2>{m[statement.status_h]}</h2>
<p>{m[statement.status]}</p>
<h2>{m[statement.limits_h]}</h2>
<ul>
  <li>{m[statement.limit_canvas]}</li>
  <li>{m[statement.limit_pointer]}</li>
  <li>{m[statement.limit_colour]}</li>
  <li>{m[statement.limit_rules]}</li>
</ul>
<h2>{m[statement.tested_h]}</h2>
<p>{m[statement.tested]}</p>
<h2>{m[statement.contact_h]}</h2>
<p>{m[statement.contact]}</p>
<p>{m[statement.date]}</p>
</main>
</body>
</html>
"""


def render_statement(lang: str = DEFAULT_LANGUAGE) -> str:
    """The accessibility statement (toegankelijkheidsverklaring) of the map, linked from the map."""
    lang = language(lang)
    return STATEMENT.format(lang=lang, m=_escaped_messages(lang), icon=asset_url("icon.svg"),
                            css=asset_url("map.css"), url=STATEMENT_URL)
