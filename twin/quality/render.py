"""Rendering a quality report: a rich table for the terminal, JSON (stable, documented in docs/quality.md) and a
self-contained HTML page (no CDN, inline styles, printable)."""

from __future__ import annotations

import html
import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from twin.quality.evaluate import QualityReport, RuleResult

UP, DOWN = "▲", "▼"


def _pct(score: float | None) -> str:
    return "n/a" if score is None else f"{score * 100:.1f}%"


def change_text(score: float | None, previous: float | None, failed_delta: int | None = None) -> tuple[str, str]:
    """(text, direction) of a change: '▼ 1.20 pt (+12 failed)', direction 'worse', 'better', 'same' or ''."""
    if score is None or previous is None:
        return "", ""
    delta = (score - previous) * 100
    extra = "" if failed_delta is None else f" ({failed_delta:+,} failed)"
    if abs(delta) < 0.005 and not failed_delta:
        return "= 0" + extra, "same"
    if delta < 0 or (abs(delta) < 0.005 and failed_delta and failed_delta > 0):
        return f"{DOWN} {abs(delta):.2f} pt{extra}", "worse"
    return f"{UP} {abs(delta):.2f} pt{extra}", "better"


def _rule_change(r: RuleResult) -> tuple[str, str]:
    if r.previous is None or not r.applicable:
        return "", ""
    return change_text(r.score, r.previous.score, r.failed - r.previous.failed)


def as_table(report: QualityReport) -> Group:
    """The report for the terminal: one table of layers, one of rules, then the examples."""
    colour = {"worse": "red", "better": "green", "same": "dim"}
    layers = Table(title="Data quality per layer (score = mean of its rules' scores)")
    for col in ("layer", "source (latest delivery)", "run", "rules", "failed records", "score", "change"):
        layers.add_column(col, justify="right" if col in ("run", "rules", "failed records", "score") else "left")
    for s in report.layers():
        text, way = change_text(s.score, s.previous_score)
        layers.add_row(s.layer, s.source or "-", str(s.run_id or "-"), f"{s.applicable}/{s.rules}",
                       f"{s.failed:,}", _pct(s.score), Text(text, style=colour.get(way, "")))
    rules = Table(title="Rules")
    for col in ("rule", "kind", "severity", "checked", "failed", "score", "change", "s"):
        rules.add_column(col, justify="right" if col in ("checked", "failed", "score", "s") else "left")
    for r in report.results:
        if not r.applicable:
            rules.add_row(r.rule.id, r.rule.kind, r.rule.severity, "", "", Text("n/a", style="dim"),
                          Text(r.note or "", style="dim"), "")
            continue
        text, way = _rule_change(r)
        style = "red" if r.failed and r.rule.severity == "error" else "yellow" if r.failed else ""
        rules.add_row(r.rule.id, r.rule.kind, r.rule.severity, f"{r.checked:,}", Text(f"{r.failed:,}", style=style),
                      _pct(r.score), Text(text, style=colour.get(way, "")), f"{r.seconds:.2f}")
    examples = Table(title="Examples of failing records", show_lines=False)
    for col in ("rule", "record", "reason"):
        examples.add_column(col)
    for r in report.results:
        for e in r.examples:
            examples.add_row(r.rule.id, e["key"], e["reason"])
    summary = report.as_json()["summary"]
    foot = Text(f"{summary['applicable']} of {summary['rules']} rules apply, {summary['failing_rules']} find "
                f"failing records; mean score {_pct(summary['score'])}; measured in {report.seconds:.1f} s")
    return Group(layers, rules, examples, foot)


def as_json(report: QualityReport) -> str:
    return json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:2rem auto;
max-width:1100px;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #ccc}
.meta{color:#555}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f5f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.worse{color:#b00020;font-weight:600}.better{color:#1b7f3a;font-weight:600}.same,.na{color:#777}
.error{color:#b00020}.warning{color:#9a6700}.info{color:#555}
.bar{display:inline-block;height:.6em;background:#2f6fb0;vertical-align:middle;margin-right:.3em}
.expl{color:#444;font-size:.92em}ul.ex{margin:.2rem 0 0 1rem;padding:0;font-size:.9em}
code{font-family:ui-monospace,Consolas,monospace;font-size:.92em}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}
th{background:#eee !important;-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def as_html(report: QualityReport) -> str:
    """A self-contained page: summary per layer, every rule with its explanation, counts and examples."""
    data = report.as_json()
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           "<title>vth-twin data quality</title><style>", _CSS, "</style></head><body>",
           "<h1>Data quality of the twin</h1>",
           f"<p class='meta'>Measured {_e(data['measured_at'][:19].replace('T', ' '))} UTC in {report.seconds:.1f} s. "
           f"{data['summary']['applicable']} of {data['summary']['rules']} rules apply; "
           f"{data['summary']['failing_rules']} find failing records; mean score "
           f"{_pct(data['summary']['score'])}. The change compares with the measurement of the previous delivery "
           "of each layer.</p>",
           "<h2>Per layer</h2><table><thead><tr><th>Layer</th><th>Source (latest delivery)</th><th>Run</th>"
           "<th>Rules</th><th>Failed records</th><th>Score</th><th>Change</th></tr></thead><tbody>"]
    for s in report.layers():
        text, way = change_text(s.score, s.previous_score)
        width = 0 if s.score is None else round(s.score * 80)
        out.append(f"<tr><td>{_e(s.layer)}</td><td><code>{_e(s.source or '-')}</code></td>"
                   f"<td class='n'>{_e(s.run_id or '-')}</td><td class='n'>{s.applicable}/{s.rules}</td>"
                   f"<td class='n'>{s.failed:,}</td><td class='n'><span class='bar' style='width:{width}px'></span>"
                   f"{_pct(s.score)}</td><td class='{way}'>{_e(text)}</td></tr>")
    out.append("</tbody></table>")
    for layer in dict.fromkeys(r.rule.layer for r in report.results):
        out.append(f"<h2>{_e(layer)}</h2><table><thead><tr><th>Rule</th><th>Kind</th><th>Checked</th>"
                   "<th>Failed</th><th>Score</th><th>Change</th></tr></thead><tbody>")
        for r in (x for x in report.results if x.rule.layer == layer):
            rule = r.rule
            head = (f"<strong>{_e(rule.title)}</strong> <code>{_e(rule.id)}</code> "
                    f"<span class='{rule.severity}'>{_e(rule.severity)}</span><div class='expl'>"
                    f"{_e(rule.explanation)}</div>")
            if r.examples:
                head += "<ul class='ex'>" + "".join(
                    f"<li><code>{_e(e['key'])}</code>: {_e(e['reason'])}</li>" for e in r.examples) + "</ul>"
            if not r.applicable:
                out.append(f"<tr><td>{head}</td><td>{_e(rule.kind)}</td><td colspan='4' class='na'>not applicable: "
                           f"{_e(r.note)}</td></tr>")
                continue
            text, way = _rule_change(r)
            out.append(f"<tr><td>{head}</td><td>{_e(rule.kind)}</td><td class='n'>{r.checked:,}</td>"
                       f"<td class='n'>{r.failed:,}</td><td class='n'>{_pct(r.score)}</td>"
                       f"<td class='{way}'>{_e(text)}</td></tr>")
        out.append("</tbody></table>")
    out.append("<p class='meta'>Thresholds: " + ", ".join(
        f"<code>TWIN_{_e(k.upper())}={_e(v)}</code>" for k, v in data["settings"].items()) + "</p>")
    out.append("</body></html>\n")
    return "".join(out)
