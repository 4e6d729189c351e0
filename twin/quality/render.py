"""Rendering a quality report: a rich table for the terminal, JSON (stable, documented in docs/quality.md) and a
self-contained HTML page (no CDN, inline styles, printable)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from layers.messages import DEFAULT_LANGUAGE, catalogue, field_label, language, number, rule_title, text
from twin.analyses.report import long_date
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


def as_json(report: QualityReport, when: dict[str, Any] | None = None) -> str:
    """The report as JSON (docs/quality.md); as of a date with ``history``: both dates (as the API's ``/quality``)."""
    data = report.as_json()
    if when is not None:
        data["history"] = when
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


# -- the words of the report in the reader's language (layers/data/messages, Dutch first) ----------------------
def percent(score: float | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A score as a percentage: ``97,6%`` in Dutch, ``97.6%`` in English; ``n.v.t.``/``n/a`` without one."""
    return text(lang, "quality.page.na") if score is None else number(score * 100, lang, 1) + "%"


def count(value: int | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A count as the language writes it (``2.030``); a dash without one."""
    return text(lang, "quality.page.none") if value is None else number(value, lang)


def signed(value: int, lang: str = DEFAULT_LANGUAGE) -> str:
    """A change in a count with its sign: ``+1.203``, ``−12``."""
    return ("+" if value > 0 else "−" if value < 0 else "") + number(abs(value), lang)


def layer_title(layer: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A layer's name as the map shows it (``layer.<id>``); the id when the catalogue has none."""
    return text(lang, f"layer.{layer}") if f"layer.{layer}" in catalogue(lang) else layer


def kind_text(kind: str, lang: str = DEFAULT_LANGUAGE) -> str:
    return text(lang, f"quality.kind.{kind}") if f"quality.kind.{kind}" in catalogue(lang) else kind


def severity_text(severity: str, lang: str = DEFAULT_LANGUAGE) -> str:
    key = f"quality.severity.{severity}"
    return text(lang, key) if key in catalogue(lang) else severity


def rule_explanation(lang: str, rule_id: str, fallback: str) -> str:
    key = f"quality.rule.{rule_id}.explanation"
    return text(lang, key) if key in catalogue(lang) else fallback


def _layer_names(ids: str, lang: str) -> str:
    return ", ".join(layer_title(x, lang) for x in ids.split(", "))


def note_text(note: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """Why a rule does not apply or was not measured (written in English by twin.quality.evaluate and the API)
    in the reader's words; a note of another form stays as written."""
    if not note or language(lang) == "en":
        return note or ""
    if m := re.fullmatch(r"needs (.+), which holds no records", note):
        return text(lang, "quality.note.needs", layers=_layer_names(m[1], lang))
    if m := re.fullmatch(r"(.+) holds no records", note):
        return text(lang, "quality.note.empty", layers=_layer_names(m[1], lang))
    if m := re.match(r"the database lacks (.+) \(an older schema", note):
        return text(lang, "quality.note.schema", what=m[1])
    if m := re.fullmatch(r"(\S+) keeps no history and no measurement of this rule was recorded by (\S+)", note):
        when = text(lang, "report.now") if m[2] == "now" else long_date(_moment(m[2]), lang)
        return text(lang, "quality.note.no_history", layer=layer_title(m[1], lang), date=when)
    if note == catalogue("en").get("quality.note.slow"):
        return text(lang, "quality.note.slow")
    return note


def _moment(value: str) -> date | datetime | str:
    try:
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    except ValueError:
        return value


_DATE = r"(\d{4}-\d{2}-\d{2})"


def _last_permit(value: str, lang: str) -> str:
    if value == "no permit at all":
        return text(lang, "quality.reason.no_permit")
    m = re.fullmatch(r"latest permit (.+) is '(.+?)'(?: until " + _DATE + ")?", value)
    if not m:
        return value
    until = text(lang, "quality.reason.until", date=long_date(m[3], lang)) if m[3] else ""
    return text(lang, "quality.reason.latest_permit", id=m[1], status=m[2], until=until)


def _field(name: str, lang: str) -> str:
    return field_label(lang, name)


def _num(value: str) -> int | float:
    return float(value) if "." in value else int(value)


# A record's reason as the rules' SQL writes it (English, layers/quality_rules.py and twin/quality/generic.py)
# -> the catalogue's words: the same patterns as the map's (frontend/static/quality.js); codes stay as they are.
_REASONS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], str], str]], ...] = (
    (re.compile(r"SBI (\S+) \((livestock|industrial)\): no permit with status 'verleend' valid today; (.*)"),
     lambda m, lang: text(lang, "quality.reason.without_permit", sbi=m[1],
                          sector=text(lang, f"quality.reason.sector.{m[2]}"), last=_last_permit(m[3], lang))),
    (re.compile(r"the same KvK number is registered for (\S+) at ([\d.]+) km"),
     lambda m, lang: text(lang, "quality.reason.kvk_far", id=m[1], km=_num(m[2]))),
    (re.compile(r"lies (\d+) m from its address \(the BAG address with its postcode and house number\)"),
     lambda m, lang: text(lang, "quality.reason.address_far", m=int(m[1]))),
    (re.compile(r"status 'verleend' (without end date|until " + _DATE + r") but establishment (\S+) ended on "
                + _DATE),
     lambda m, lang: text(lang, "quality.reason.ended_permit", id=m[3], date=long_date(m[4], lang),
                          term=text(lang, "quality.reason.until_plain", date=long_date(m[2], lang)) if m[2]
                          else text(lang, "quality.reason.no_end"))),
    (re.compile(r"violation of " + _DATE + ", repair deadline " + _DATE
                + r": no inspection since and (no enforcement measure|the measure '(.+)' was withdrawn)"),
     lambda m, lang: text(lang, "quality.reason.no_follow_up", date=long_date(m[1], lang),
                          deadline=long_date(m[2], lang),
                          measure=text(lang, "quality.reason.withdrawn", measure=m[4]) if m[4]
                          else text(lang, "quality.reason.no_measure"))),
    (re.compile(r"(\w+) is empty"), lambda m, lang: text(lang, "quality.reason.empty", field=_field(m[1], lang))),
    (re.compile(r"(\w+) '(.*)' is not in the code list"),
     lambda m, lang: text(lang, "quality.reason.not_in_list", field=_field(m[1], lang), value=m[2])),
    (re.compile(r"the geometry is empty"), lambda m, lang: text(lang, "quality.reason.geometry_empty")),
    (re.compile(r"invalid geometry: (.*)"), lambda m, lang: text(lang, "quality.reason.geometry_invalid", why=m[1])),
    (re.compile(r"lies outside every municipality \(at (-?\d+), (-?\d+) in RD New\)"),
     lambda m, lang: text(lang, "quality.reason.outside", x=m[1], y=m[2])),
    (re.compile(r"loaded outside a recorded ingest run"), lambda m, lang: text(lang, "quality.reason.no_run")),
    (re.compile(r"latest delivery of (.+) on " + _DATE + r", (\d+) days ago"),
     lambda m, lang: text(lang, "quality.reason.delivery", source=m[1], date=long_date(m[2], lang), days=int(m[3]))),
    (re.compile(r"lies (\d+) m from its establishment (\S+)"),
     lambda m, lang: text(lang, "quality.reason.from_establishment", m=int(m[1]), id=m[2])),
    (re.compile(r"no building within ([\d.]+) m"),
     lambda m, lang: text(lang, "quality.reason.no_building", m=_num(m[1]))),
    (re.compile(r"municipality_code (\S+) but it lies in (.+)"),
     lambda m, lang: text(lang, "quality.reason.municipality_mismatch", code=m[1],
                          where=m[2].replace(" and ", " en " if language(lang) == "nl" else " and "))),
    (re.compile(r"postcode '(.*)' is not of the form 1234 AB"),
     lambda m, lang: text(lang, "quality.reason.postcode_form", value=m[1])),
    (re.compile(r"marked as a sole proprietorship but the legal form is '(.*)'"),
     lambda m, lang: text(lang, "quality.reason.sole_legal_form", form=m[1])),
    (re.compile(r"legal form Eenmanszaak but not marked as a sole proprietorship: its name and KvK number are "
                r"served as public"), lambda m, lang: text(lang, "quality.reason.sole_unmarked")),
    (re.compile(r"Brzo establishment with a visit frequency of every (\d+) years \(at most 3\)"),
     lambda m, lang: text(lang, "quality.reason.brzo_frequency", years=m[1])),
    (re.compile(r"no BAG address with its house number in postcode (.+)"),
     lambda m, lang: text(lang, "quality.reason.no_bag_address", postcode=m[1])),
    (re.compile(r"(?:last inspected on " + _DATE + r"|never inspected), visit frequency every (\d+) year\(s\)"),
     lambda m, lang: text(lang, "quality.reason.overdue", years=m[2],
                          last=text(lang, "quality.reason.last_inspected", date=long_date(m[1], lang)) if m[1]
                          else text(lang, "quality.reason.never_inspected"))),
    (re.compile(r"status '(.+)' without decided_on"),
     lambda m, lang: text(lang, "quality.reason.status_undecided", status=m[1])),
    (re.compile(r"status '(.+)' but decided on " + _DATE),
     lambda m, lang: text(lang, "quality.reason.status_decided", status=m[1], date=long_date(m[2], lang))),
    (re.compile(r"refused but valid from " + _DATE),
     lambda m, lang: text(lang, "quality.reason.refused_valid", date=long_date(m[1], lang))),
    (re.compile(r"(decided_on|valid_from|valid_until) " + _DATE + r" before (applied_on|decided_on|valid_from) "
                + _DATE),
     lambda m, lang: text(lang, "quality.reason.date_order", first=_field(m[1], lang), date=long_date(m[2], lang),
                          second=_field(m[3], lang), other=long_date(m[4], lang))),
    (re.compile(r"inspected on " + _DATE + r", (before|after) (\S+) (?:started|ended) on " + _DATE),
     lambda m, lang: text(lang, f"quality.reason.inspected_{m[2]}", date=long_date(m[1], lang), id=m[3],
                          other=long_date(m[4], lang))),
    (re.compile(r"violation without an LHS cell"), lambda m, lang: text(lang, "quality.reason.violation_no_lhs")),
    (re.compile(r"violation without an intervention"),
     lambda m, lang: text(lang, "quality.reason.violation_no_intervention")),
    (re.compile(r"result '(.*)' but intervention '(.*)'"),
     lambda m, lang: text(lang, "quality.reason.result_intervention", result=m[1], intervention=m[2])),
    (re.compile(r"repair deadline " + _DATE + " before the inspection on " + _DATE),
     lambda m, lang: text(lang, "quality.reason.deadline_before", deadline=long_date(m[1], lang),
                          date=long_date(m[2], lang))),
    (re.compile(r"habitat type '(.*)' is not a habitat type code"),
     lambda m, lang: text(lang, "quality.reason.habitat_code", value=m[1])),
    (re.compile(r"KDW ([\d.]+) but (\S+) has ([\d.]+) mol N/ha/yr"),
     lambda m, lang: text(lang, "quality.reason.kdw_mismatch", kdw=_num(m[1]), code=m[2], expected=_num(m[3]))),
    (re.compile(r"planned year (-?\d+)"), lambda m, lang: text(lang, "quality.reason.planned_year", year=m[1])),
    (re.compile(r"planned for (\d+) but still in phase '(.*)'"),
     lambda m, lang: text(lang, "quality.reason.planned_phase", year=m[1], phase=m[2])),
    (re.compile(r"(\d+) dwellings on ([\d.]+) ha \((\d+) per ha\)"),
     lambda m, lang: text(lang, "quality.reason.density", n=int(m[1]), ha=number(float(m[2]), lang, 2),
                          per=int(m[3]))),
    (re.compile(r"construction year (-?\d+)"),
     lambda m, lang: text(lang, "quality.reason.construction_year", year=m[1])),
    (re.compile(r"height (-?[\d.]+) m"), lambda m, lang: text(lang, "quality.reason.height", m=_num(m[1]))),
    (re.compile(r"footprint of ([\d.]+) m2"), lambda m, lang: text(lang, "quality.reason.footprint", m=_num(m[1]))),
    (re.compile(r"the address (.+) occurs more than once"),
     lambda m, lang: text(lang, "quality.reason.address_twice", address=m[1])),
    (re.compile(r"lies in no building"), lambda m, lang: text(lang, "quality.reason.in_no_building")),
)


def reason_text(reason: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A failing record's reason in the reader's words (the SQL writes it in English; the data keeps the code):
    the signals' and the common generic rules' reasons are translated, others stay as written."""
    if not reason or language(lang) == "en":
        return reason or ""
    for pattern, word in _REASONS:
        if m := pattern.fullmatch(reason):
            return word(m, lang)
    return reason


def change_words(score: float | None, previous: float | None, failed_delta: int | None = None,
                 lang: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """:func:`change_text` in the reader's words and number format."""
    if score is None or previous is None:
        return "", ""
    delta = (score - previous) * 100
    if abs(delta) < 0.005 and not failed_delta:
        words, way = text(lang, "quality.page.same"), "same"
    else:
        worse = delta < 0 or (abs(delta) < 0.005 and bool(failed_delta) and (failed_delta or 0) > 0)
        words = text(lang, "quality.page.points", arrow=DOWN if worse else UP, points=number(abs(delta), lang, 2))
        way = "worse" if worse else "better"
    if failed_delta is not None:
        words = text(lang, "quality.page.failed_delta", points=words, delta=signed(failed_delta, lang))
    return words, way


def _rule_change_words(r: RuleResult, lang: str) -> tuple[str, str]:
    if r.previous is None or not r.applicable:
        return "", ""
    return change_words(r.score, r.previous.score, r.failed - r.previous.failed, lang)


def as_of_line(describe: dict[str, Any] | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """The two dates of a report as of a date (``history.AsOf.describe()``): '' for the current state."""
    if not describe:
        return ""
    valid, known = describe.get("geldigOp"), describe.get("beschikbaarOp")
    return text(lang, "report.state",
                valid=long_date(_moment(str(valid)), lang) if valid else text(lang, "report.today"),
                known=long_date(_moment(str(known)), lang) if known else text(lang, "report.now"))


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:2rem auto;
max-width:1100px;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #ccc}
.meta{color:#555}table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e3e3e3;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f5f7;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.worse{color:#b00020;font-weight:600}.better{color:#1b7f3a;font-weight:600}.same,.na{color:#595959}
.error{color:#b00020}.warning{color:#8a5c00}.info{color:#555}
.bar{display:inline-block;height:.6em;background:#2f6fb0;vertical-align:middle;margin-right:.3em}
.expl{color:#444;font-size:.92em}ul.ex{margin:.2rem 0 0 1rem;padding:0;font-size:.9em}
code{font-family:ui-monospace,Consolas,monospace;font-size:.92em}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr{break-inside:avoid}
th{background:#eee !important;-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def as_html(report: QualityReport, lang: str = DEFAULT_LANGUAGE, when: dict[str, Any] | None = None) -> str:
    """A self-contained page in the reader's language (Dutch by default): summary per layer, every rule with
    its explanation, counts and examples; ``when`` (``history.AsOf.describe()``) states the dates of a report
    as of a date. JSON and CSV keep their field names and codes; only this page is worded."""
    lang = language(lang)
    data = report.as_json()
    t = lambda key, **kw: _e(text(lang, key, **kw))  # noqa: E731
    summary = data["summary"]
    measured = long_date(_moment(str(data["measured_at"])[:19]), lang)
    col = lambda key: f"<th scope='col'>{t(key)}</th>"  # noqa: E731
    out = [f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           f"<title>{t('quality.page.doc_title')}</title><style>", _CSS, "</style></head><body><main>",
           f"<h1>{t('quality.page.title')}</h1>",
           "<p class='meta'>" + t("quality.page.measured", date=measured, seconds=number(report.seconds, lang, 1),
                                   applicable=summary["applicable"], rules=summary["rules"],
                                   failing=summary["failing_rules"], score=percent(summary["score"], lang)) + "</p>"]
    if when:
        out.append(f"<p class='meta'>{_e(as_of_line(when, lang))}</p>")
    out += [f"<h2>{t('quality.page.per_layer')}</h2><table><thead><tr>",
            *(col(k) for k in ("quality.col.layer", "quality.col.source", "quality.col.run", "quality.col.rules",
                               "quality.col.failed_records", "quality.col.score", "quality.col.change")),
            "</tr></thead><tbody>"]
    for s in report.layers():
        words, way = change_words(s.score, s.previous_score, lang=lang)
        width = 0 if s.score is None else round(s.score * 80)
        out.append(f"<tr><td>{_e(layer_title(s.layer, lang))}</td><td><code>{_e(s.source or '–')}</code></td>"
                   f"<td class='n'>{_e(s.run_id or '–')}</td><td class='n'>{count(s.applicable, lang)}/"
                   f"{count(s.rules, lang)}</td><td class='n'>{count(s.failed, lang)}</td><td class='n'>"
                   f"<span class='bar' style='width:{width}px'></span>{percent(s.score, lang)}</td>"
                   f"<td class='{way}'>{_e(words)}</td></tr>")
    out.append("</tbody></table>")
    for layer in dict.fromkeys(r.rule.layer for r in report.results):
        out += [f"<h2>{_e(layer_title(layer, lang))}</h2><table><thead><tr>",
                *(col(k) for k in ("quality.col.rule", "quality.col.kind", "quality.col.checked",
                                   "quality.col.failed", "quality.col.score", "quality.col.change")),
                "</tr></thead><tbody>"]
        for r in (x for x in report.results if x.rule.layer == layer):
            rule = r.rule
            head = (f"<strong>{_e(rule_title(lang, rule.id, rule.title))}</strong> <code>{_e(rule.id)}</code> "
                    f"<span class='{rule.severity}'>{_e(severity_text(rule.severity, lang))}</span>"
                    f"<div class='expl'>{_e(rule_explanation(lang, rule.id, rule.explanation))}</div>")
            if r.examples:
                head += "<ul class='ex'>" + "".join(
                    f"<li><code>{_e(e['key'])}</code>: {_e(reason_text(e['reason'], lang))}</li>"
                    for e in r.examples) + "</ul>"
            if not r.applicable:
                out.append(f"<tr><td>{head}</td><td>{_e(kind_text(rule.kind, lang))}</td><td colspan='4' class='na'>"
                           f"{t('quality.not_applicable', error=note_text(r.note, lang))}</td></tr>")
                continue
            words, way = _rule_change_words(r, lang)
            out.append(f"<tr><td>{head}</td><td>{_e(kind_text(rule.kind, lang))}</td>"
                       f"<td class='n'>{count(r.checked, lang)}</td><td class='n'>{count(r.failed, lang)}</td>"
                       f"<td class='n'>{percent(r.score, lang)}</td><td class='{way}'>{_e(words)}</td></tr>")
        out.append("</tbody></table>")
    out.append("<p class='meta'>" + t("quality.page.thresholds", list="\0") .replace("\0", ", ".join(
        f"<code>TWIN_{_e(k.upper())}={_e(v)}</code>" for k, v in data["settings"].items())) + "</p>")
    out.append(f"<p class='meta'>{t('quality.page.footer', generated=long_date(datetime.now(UTC), lang))}</p>")
    out.append("</main></body></html>\n")
    return "".join(out)
