"""The monitoring dashboard (``/dashboard``, issue 22): the KPIs of supervision over time, drawn by Vega-Lite.

The page is static HTML around ``dashboard.js``; the figures come from the monitoring API
(``/monitoring/kpis``, ``/monitoring/kpis/{id}``) with the caller's key, so row-level security decides which
figures a visitor sees (public figures, with disclosure suppression marked, for anonymous visitors). The
charting library is vendored (``static/vendor/vega-<version>/``, ``scripts/vendor-vega.sh``) and runs with
vega-interpreter, so the page's CSP needs no 'unsafe-eval'. Every chart has its data as a table and as CSV.
"""

from __future__ import annotations

import html
import json

from frontend.assets import VEGA_BUNDLE_NAMES, asset_url
from layers.messages import DEFAULT_LANGUAGE, catalogue, language, text

DASHBOARD_URL = "/dashboard"
PERIODS = ("month", "quarter", "year")
DEFAULT_PERIOD = "quarter"
DEFAULT_KPI = "compliance"
# The charts: id, message key of the heading, dimension asked of the API (by=), kind of chart.
CHARTS = (
    ("trend", "dashboard.trend", "all", "trend"),
    ("sector", "dashboard.by_sector", "sector", "bars"),
    ("municipality", "dashboard.by_municipality", "municipality", "bars"),
    ("multiples", "dashboard.small_multiples", "municipality", "multiples"),
)

PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{m[dashboard.title]} · vth-twin</title>
<meta name="description" content="{m[dashboard.description]}">
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{css}">
</head>
<body class="dashboard">
<a class="skip" href="#charts">{m[dashboard.skip]}</a>
<header class="dash-head">
  <h1>{m[dashboard.title]}</h1>
  <p><a href="/?lang={lang}">{m[dashboard.back]}</a> ·
    <a id="lang-switch" href="{url}?lang={m[lang.other_code]}" hreflang="{m[lang.other_code]}"
      lang="{m[lang.other_code]}" data-lang="{m[lang.other_code]}">{m[dashboard.lang_switch]}</a></p>
  <p class="intro">{m[dashboard.intro]}</p>
</header>
<main id="charts" tabindex="-1">
<section class="filters" aria-labelledby="filters-h">
  <h2 id="filters-h">{m[dashboard.filters]}</h2>
  <form id="filters">
    <div><label for="f-kpi">{m[dashboard.kpi]}</label><select id="f-kpi" name="kpi"></select></div>
    <div><label for="f-org">{m[dashboard.organisation]}</label>
      <select id="f-org" name="org"><option value="">{m[dashboard.all_orgs]}</option></select></div>
    <div><label for="f-period">{m[dashboard.period]}</label><select id="f-period" name="period">{periods}</select></div>
    <div><label for="f-sector">{m[dashboard.sector]}</label>
      <select id="f-sector" name="sector"><option value="">{m[dashboard.all_sectors]}</option></select></div>
    <button type="submit">{m[dashboard.apply]}</button>
  </form>
  <details class="access">
    <summary>{m[access.summary]}</summary>
    <form id="api-key-form">
      <label for="api-key">{m[access.label]}</label>
      <div class="row"><input id="api-key" type="password" autocomplete="off">
      <button type="submit">{m[access.button]}</button></div>
    </form>
  </details>
  <div id="definition" class="definition"></div>
  <p id="audience-note" class="note"></p>
</section>
<div id="status" class="status" role="status" aria-live="polite"></div>
{charts}
</main>
<script type="application/json" id="dashboard-config">{config}</script>
{scripts}
</body>
</html>
"""

CHART = """<section class="chart" id="chart-{id}" aria-labelledby="chart-{id}-h" data-by="{by}" data-kind="{kind}">
  <h2 id="chart-{id}-h">{title}</h2>
  {desc}
  <figure>
    <div class="vis" id="vis-{id}" role="img" aria-label="{label}"></div>
    <figcaption><a class="csv" id="csv-{id}" href="#" download>{m[dashboard.csv]}</a>
      <span class="suppressed-note" id="suppressed-{id}"></span></figcaption>
  </figure>
  <details class="data-table"><summary>{m[dashboard.table]}</summary><div id="table-{id}"></div></details>
</section>"""


def _escaped(lang: str) -> dict[str, str]:
    return {k: html.escape(str(v)) for k, v in catalogue(lang).items() if isinstance(v, str)}


def _script_json(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def render_dashboard(lang: str = DEFAULT_LANGUAGE) -> str:
    """The dashboard's HTML in a language (Dutch by default). It reads no data: ``dashboard.js`` asks the
    monitoring API with the visitor's key."""
    lang = language(lang)
    m = _escaped(lang)
    periods = "".join(f'<option value="{p}"{" selected" if p == DEFAULT_PERIOD else ""}>'
                      f'{m[f"dashboard.period.{p}"]}</option>' for p in PERIODS)
    charts = "\n".join(
        CHART.format(id=cid, by=by, kind=kind, title=m[key], m=m,
                     label=html.escape(text(lang, "dashboard.chart_label", title=catalogue(lang)[key])),
                     desc=f'<p class="hint">{m["dashboard.trend_desc"]}</p>' if kind == "trend" else "")
        for cid, key, by, kind in CHARTS)
    messages = {k: v for k, v in catalogue(lang).items()
                if k.startswith(("dashboard.", "access.", "lang.", "kpi.", "value.", "verdict.", "role."))}
    config = {"lang": lang, "messages": messages, "defaultKpi": DEFAULT_KPI,
              "charts": [{"id": c, "by": by, "kind": kind} for c, _, by, kind in CHARTS]}
    scripts = "\n".join(f'<script src="{asset_url(name)}"></script>'
                        for name in (*VEGA_BUNDLE_NAMES, "dashboard.js"))
    return PAGE.format(lang=lang, m=m, icon=asset_url("icon.svg"), css=asset_url("dashboard.css"),
                       url=DASHBOARD_URL, periods=periods, charts=charts, config=_script_json(config),
                       scripts=scripts)
