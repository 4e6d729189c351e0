"""Data quality: ``/quality`` (a score per layer and rule), ``/quality/{rule}`` (the failing records as
GeoJSON) and ``/quality/signals`` (the cross-source signals as GeoJSON with their reasons).

The rules and their SQL are :mod:`twin.quality`'s; this module only runs them on the request's connection
(the caller's database role, so row-level security decides which rows count) and serves the answers.

As of a date (``geldigOp`` / ``beschikbaarOp``, docs/history.md "Quality as of a date"): the rules of the layers
with history are measured again over the versions valid on ``geldigOp`` as known at ``beschikbaarOp``, with
``geldigOp`` as the rules' reference date (the same SQL through :func:`twin.history.as_of`; layers they read
without history, such as municipalities, in their current state); the rules of other layers show the
recorded measurement that was current at ``beschikbaarOp``, if there was one.

Who sees what: a rule is shown to a caller who may read its layer and every layer it reads
(``depends_on``); the failing records are served with the layer's fields masked as
``/collections/{id}/items`` masks them. Recorded results (``twin.quality_results``, written by ``twin
quality``) count every row, so for rules that touch a restricted layer they are used only for admins, who
see every row; other callers get the counts measured live under their own role.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from psycopg import sql
from pydantic import BaseModel, Field
from starlette.datastructures import QueryParams

from api import params
from api.auth import Principal, PrincipalDep, can_read, require_admin, require_read
from api.cache import lookup
from api.columns import Binder, Columns, columns_for, output_geometry_sql, table_sql
from api.deps import ConnDep
from api.geojson import GEOJSON, features, geojson_response, number_matched, paging_links, timestamp
from api.links import base_url, wants_json
from api.params import ITEMS_OPENAPI, AsOfDep, ItemsQuery, qparam
from api.query import feature_columns, selected_fields, where_sql
from layers.messages import DEFAULT_LANGUAGE, catalogue, language, rule_title, text
from layers.registry import LAYERS, LayerSpec
from twin import history, quality
from twin.errors import InvalidParameter, NotFound, QueryTimeout
from twin.quality import audience, render
from twin.settings import Settings
from twin.sql import fetch

log = logging.getLogger("twin.api.quality")
router = APIRouter(tags=["quality"])

PAGE_PARAMETERS = ("f", "limit", "offset", "bbox", "bbox-crs", "crs")
SIGNAL_PARAMETERS = (*PAGE_PARAMETERS, "signal")


# -- the rules' SQL and whether a rule applies ----------------------------------------------------------------
# The rules' SQL never contains ``%`` (twin.quality guarantees it), so it sits unchanged in statements with
# bound parameters. Thresholds and the reference date come from the app's settings (TWIN_QUALITY_...).
def rule_settings(request: Request, when: history.AsOf | None = None) -> Settings:
    """The thresholds and reference date of the rules: the app's, with ``geldigOp`` as the reference date
    (``@today``) when answering as of a date."""
    settings: Settings = request.app.state.settings
    if when is None or when.valid_on is None:
        return settings
    return settings.model_copy(update={"quality_as_of": when.valid_on})


def failing(request: Request, rule: quality.QualityRule, principal: Principal,
            when: history.AsOf | None = None, few: bool = False) -> sql.Composable:
    """The failing records of a rule as this caller may be told of them (twin.quality.audience); ``few``: for a
    query of a few ids (twin.quality.failing_sql)."""
    return quality.failing_sql(rule, rule_settings(request, when), principal, few=few)


def has_history(rule: quality.QualityRule) -> bool:
    """Whether a rule can be measured again as of a date: its own layer keeps history (the layers it only
    looks up, such as municipalities, are read in their current state)."""
    return LAYERS[rule.layer].table in history.HISTORY_TABLES


def require_history(rule: quality.QualityRule, when: history.AsOf | None) -> None:
    """400 (parameter geldigOp) for the failing records of a layer without history as of a date."""
    if when is not None and not has_history(rule):
        raise InvalidParameter(
            f"{history.VALID_PARAM} and {history.KNOWN_PARAM} need a layer with history "
            f"({', '.join(history.HISTORY_TABLES)}); {rule.layer} keeps only its current state.",
            parameter=history.VALID_PARAM if when.valid_on is not None else history.KNOWN_PARAM)


SCHEMA_SQL = ("SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
              "WHERE n.nspname = 'twin' AND c.relkind IN ('r', 'p', 'v', 'm')")


async def not_applicable(conn: psycopg.AsyncConnection,
                         rules: Sequence[quality.QualityRule]) -> dict[str, str]:
    """Why rules do not apply here, by rule id, with the notes of ``twin quality report``: the database
    lacks a table or column the rule reads (an older schema), or its layer or a layer it reads holds no
    records (under the caller's role)."""
    rows = await fetch(conn, sql.Composed([sql.SQL(SCHEMA_SQL)]), {}, isolated=True)
    schema = {r[0] for r in rows} | {f"{r[0]}.{r[1]}" for r in rows}
    layers = sorted({x for r in rules for x in (r.layer, *r.depends_on) if LAYERS[x].table in schema})
    filled: dict[str, bool] = {}
    if layers:
        exists = sql.SQL(", ").join(
            sql.SQL("EXISTS (SELECT 1 FROM {})").format(table_sql(LAYERS[x])) for x in layers)
        found = await fetch(conn, sql.SQL("SELECT {}").format(exists), {}, isolated=True)
        filled = dict(zip(layers, found[0], strict=True))
    notes = {}
    for rule in rules:
        needed = [LAYERS[x].table for x in (rule.layer, *rule.depends_on)] + list(rule.requires)
        missing = [n for n in dict.fromkeys(needed) if n not in schema]
        empty = [x for x in (rule.layer, *rule.depends_on) if not filled.get(x)]
        if missing:
            notes[rule.id] = f"the database lacks {', '.join(missing)} (an older schema: run 'twin db migrate')"
        elif empty:
            notes[rule.id] = f"{', '.join(empty)} holds no records"
    return notes


# -- who may see a rule -------------------------------------------------------------------------------------
def rule_layers(rule: quality.QualityRule) -> tuple[LayerSpec, ...]:
    """The registered layers a rule reads: its own and those it depends on."""
    return tuple(LAYERS[i] for i in (rule.layer, *rule.depends_on) if i in LAYERS)


def can_see(principal: Principal, rule: quality.QualityRule) -> bool:
    """Whether the caller may see a rule: they may read its layer and every layer it depends on (a rule
    over a layer they cannot read would count rows row-level security hides from them)."""
    return all(can_read(principal, spec) for spec in rule_layers(rule))


def visible_rules(principal: Principal, kind: str | None = None) -> tuple[quality.QualityRule, ...]:
    return tuple(r for r in quality.all_rules(kind=kind) if r.layer in LAYERS and can_see(principal, r))


def recorded_counts_apply(principal: Principal, rule: quality.QualityRule) -> bool:
    """Recorded results count every row; only admins see every row of a restricted layer and every
    personal field, so rules scoped per audience are measured under the caller's visibility."""
    return principal.role == "admin" or (all(spec.access == "public" for spec in rule_layers(rule))
                                          and not audience.scoped(rule, principal))


def public_recorded(principal: Principal, rule_id: str, row: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded measurement of an audience-scoped rule as anonymous callers, public keys and advisors get it:
    the public counts recorded with it (migration 0024), which a live measurement under their role would give
    (twin.quality.evaluate.public_counts_apply). None when there are none: then the rule is measured live. The
    change against the previous measurement is left out (the previous public counts are not read)."""
    if principal.role not in ("anonymous", "public", "advisor") or row.get("public_checked") is None \
            or not quality.public_counts_apply(quality.get_rule(rule_id)):
        return None
    return {**row, "checked": row["public_checked"], "failed": row["public_failed"], "score": None,
            "previous_run_id": None, "previous_checked": None, "previous_failed": None, "previous_score": None}


def rule_for(principal: Principal, rule_id: str) -> quality.QualityRule:
    """The rule ``rule_id``, checked against the caller's rights (401/403 as the layer's items, 404 unknown)."""
    try:
        rule = quality.get_rule(rule_id)
    except KeyError:
        raise NotFound(f"there is no quality rule {rule_id!r}; GET /quality lists the rules.") from None
    if rule.layer not in LAYERS:
        raise NotFound(f"quality rule {rule_id!r} is about {rule.layer!r}, which is not a layer of this twin.")
    for spec in rule_layers(rule):
        require_read(principal, spec)
    return rule


# -- the summary --------------------------------------------------------------------------------------------
class Change(BaseModel):
    """The change of a rule since the previous recorded run."""

    previous_run: int | None = Field(description="Ingest/quality run of the previous measurement.")
    previous_checked: int | None
    previous_failed: int | None
    previous_score: float | None
    failed: int | None = Field(description="Failed records now minus failed records then (negative: better).")
    score: float | None = Field(description="Score now minus score then (positive: better).")


class RuleSummary(BaseModel):
    """One rule: what it checks and how many records fail it."""

    id: str = Field(examples=["establishments.kvk-filled"])
    layer: str = Field(examples=["establishments"])
    kind: str = Field(description="completeness, validity, consistency, linkage, timeliness or signal (a "
                      "cross-source signal).", examples=["completeness"])
    title: str = Field(examples=["KvK number filled in"])
    explanation: str
    severity: Literal["info", "warning", "error"]
    checked: int | None = Field(description="Records the rule applies to (None: the measurement failed).")
    failed: int | None = Field(description="Records that fail the rule.")
    score: float | None = Field(description="1 - failed/checked (1.0 when nothing is checked).", examples=[0.97])
    measured_at: datetime | None = Field(description="When the counts were measured.")
    run: int | None = Field(description="Run of the recorded measurement (None: measured live).")
    source: Literal["recorded", "live"] = Field(description="Recorded by `twin quality` or measured now.")
    change: Change | None = Field(description="Change since the previous recorded run, when there is one.")
    applicable: bool = Field(True, description="False when the rule does not apply here (see error): a layer it "
                             "reads holds no records, or the database lacks a table or column it reads.")
    error: str | None = Field(None, description="Why the rule does not apply or could not be measured.")
    href: str = Field(description="The failing records as GeoJSON.")


class LayerSummary(BaseModel):
    """The rules of one layer and their combined score."""

    layer: str
    title: str
    checked: int = Field(description="Sum of the rules' checked records.")
    failed: int = Field(description="Sum of the rules' failed records.")
    score: float = Field(description="1 - failed/checked over the layer's rules.")
    rules: list[RuleSummary]


class QualitySummary(BaseModel):
    """The quality of the layers the caller may read."""

    measured_at: datetime = Field(description="When this answer was made.")
    refresh: bool = Field(description="True when every rule was measured live (?refresh=true).")
    layers: list[LayerSummary]
    signals: list[str] = Field(description="Ids of the cross-source signal rules among the rules.")
    history: dict[str, str | None] | None = Field(
        None, description="As of a date (geldigOp / beschikbaarOp, docs/history.md): both dates (None: today / "
        "now); null for the current state.")
    links: list[dict[str, str]]


SUMMARY_EXAMPLE = {
    "measured_at": "2025-01-31T12:00:00Z", "refresh": False,
    "layers": [{
        "layer": "establishments", "title": "Establishments (inrichtingen)", "checked": 2000, "failed": 31,
        "score": 0.9845,
        "rules": [{
            "id": "establishments.kvk-filled", "layer": "establishments", "kind": "completeness",
            "title": "KvK number filled in", "explanation": "Establishments without a KvK number cannot be "
            "linked to the trade register.", "severity": "warning", "checked": 1000, "failed": 12,
            "score": 0.988, "measured_at": "2025-01-30T02:00:00Z", "run": 41, "source": "recorded",
            "change": {"previous_run": 37, "previous_checked": 990, "previous_failed": 9, "previous_score": 0.9909,
                       "failed": 3, "score": -0.0029},
            "error": None, "href": "http://localhost:8000/quality/establishments.kvk-filled",
        }],
    }],
    "signals": ["signal.livestock-without-permit"],
    "links": [{"href": "http://localhost:8000/quality", "rel": "self", "type": "application/json"}],
}


async def _recorded(conn: psycopg.AsyncConnection, known_on: datetime | None = None) -> dict[str, dict[str, Any]]:
    """The latest recorded result per rule id (empty when nothing was recorded or the table is missing);
    with ``known_on``, the latest one measured up to then."""
    try:
        async with conn.transaction():
            cur = await conn.execute(quality.latest_results_sql(known_on), prepare=False)
            names = [d.name for d in cur.description or ()]
            return {row[names.index("rule_id")]: dict(zip(names, row, strict=True)) for row in await cur.fetchall()}
    except psycopg.errors.UndefinedTable:
        log.warning("twin.quality_results is missing: run the migrations; measuring live")
        return {}


def _score(checked: int, failed: int) -> float:
    return 1.0 if checked <= 0 else round(1.0 - failed / checked, 6)


def _change(previous_run: Any, previous_checked: Any, previous_failed: Any, previous_score: Any,
            checked: int, failed: int) -> Change | None:
    """The change from a previous measurement to (checked, failed); None without a previous one."""
    if previous_run is None or previous_failed is None:
        return None
    prev_score = _score(int(previous_checked or 0), int(previous_failed)) if previous_score is None \
        else float(previous_score)
    return Change(previous_run=int(previous_run), previous_checked=None if previous_checked is None
                  else int(previous_checked), previous_failed=int(previous_failed), previous_score=prev_score,
                  failed=failed - int(previous_failed), score=round(_score(checked, failed) - prev_score, 6))


async def measure(request: Request, conn: psycopg.AsyncConnection, principal: Principal,
                  rules: Sequence[quality.QualityRule],
                  when: history.AsOf | None = None) -> dict[str, tuple[int, int] | str]:
    """(checked, failed) per rule id measured now, or why not: the simple rules of a layer in one scan
    (``shared_count_sql``), the others one by one, each in its own subtransaction under the statement
    timeout. ``when``: over the register layers as of then (the caller runs this inside history.as_of)."""
    settings = rule_settings(request, when)
    out: dict[str, tuple[int, int] | str] = {}
    slow = "the rule took too long to measure; `twin quality report` records it."
    groups: dict[str, list[quality.QualityRule]] = {}
    for rule in rules:
        groups.setdefault(rule.layer if rule.sql.simple else rule.id, []).append(rule)
    for group in groups.values():
        query = quality.shared_count_sql(group, settings, principal) if group[0].sql.simple else \
            quality.count_sql(group[0], settings, principal)
        try:
            row = (await fetch(conn, query, {}, isolated=True))[0]
        except QueryTimeout:
            out.update((r.id, slow) for r in group)
            continue
        for i, r in enumerate(group):
            out[r.id] = (int(row[2 * i] or 0), int(row[2 * i + 1] or 0))
    return out


async def measure_cached(request: Request, conn: psycopg.AsyncConnection, principal: Principal,
                         rules: Sequence[quality.QualityRule],
                         when: history.AsOf | None = None) -> dict[str, tuple[int, int] | str]:
    """:func:`measure`, kept per audience (database role, API role, organisation) in the analysis cache
    keyed by the versions of the tables the rules read (and the as-of dates), so repeated calls cost one
    version lookup."""
    if not rules:
        return {}
    tables = sorted({LAYERS[x].table for r in rules for x in (r.layer, *r.depends_on)})
    dates = tuple(str(v) for v in when.describe().values()) if when is not None else ()
    cached = await lookup(request, conn, "analysis_cache_mb", tables, principal, "quality-live",
                          tuple(r.id for r in rules), *dates)
    if cached.data is not None:
        return {k: tuple(v) if isinstance(v, list) else v for k, v in orjson.loads(cached.data).items()}
    async with history.as_of(conn, when):
        out = await measure(request, conn, principal, rules, when)
    if all(not isinstance(v, str) for v in out.values()):
        cached.store(orjson.dumps(out))
    return out


def rule_summary(base: str, rule: quality.QualityRule, recorded: dict[str, Any] | None,
                 live: tuple[int, int] | str | None, note: str | None) -> RuleSummary:
    """One rule's entry: the recorded counts, or those measured now (with the change against the latest
    recorded run), or why the rule does not apply."""
    common: dict[str, Any] = {
        "id": rule.id, "layer": rule.layer, "kind": rule.kind, "title": rule.title, "explanation": rule.explanation,
        "severity": rule.severity, "href": f"{base}/quality/{rule.id}"}
    if note is not None or isinstance(live, str):
        return RuleSummary(**common, checked=None, failed=None, score=None, measured_at=datetime.now(UTC),
                           run=None, source="live", change=None, applicable=note is None,
                           error=note if note is not None else str(live))
    if live is None:
        assert recorded is not None
        checked, failed = int(recorded["checked"]), int(recorded["failed"])
        change = _change(recorded.get("previous_run_id"), recorded.get("previous_checked"),
                         recorded.get("previous_failed"), recorded.get("previous_score"), checked, failed)
        return RuleSummary(**common, checked=checked, failed=failed, score=_score(checked, failed),
                           measured_at=recorded["measured_at"], run=recorded["run_id"], source="recorded",
                           change=change)
    checked, failed = live
    change = None
    if recorded is not None:  # measured now against the latest recorded run
        change = _change(recorded["run_id"], recorded["checked"], recorded["failed"], recorded["score"],
                         checked, failed)
    return RuleSummary(**common, checked=checked, failed=failed, score=_score(checked, failed),
                       measured_at=datetime.now(UTC), run=None, source="live", change=change)


async def summary(request: Request, conn: psycopg.AsyncConnection, principal: Principal,
                  refresh: bool, when: history.AsOf | None = None) -> QualitySummary:
    """The quality summary of the layers the caller may read: recorded counts where they apply to this
    caller (see :func:`recorded_counts_apply`) and ``refresh`` is off, the rest measured now. As of a date
    (``when``): the rules of layers with history measured over that state, the others the recorded
    measurement that was current at ``beschikbaarOp`` (or why there is none)."""
    base = base_url(request)
    rules = visible_rules(principal)
    async with history.as_of(conn, when):
        notes = await not_applicable(conn, rules)
    recorded = {}
    for k, v in (await _recorded(conn, when.known_on if when else None)).items():
        if k in {r.id for r in rules}:
            mine = v if recorded_counts_apply(principal, quality.get_rule(k)) else public_recorded(principal, k, v)
            if mine is not None:
                recorded[k] = mine
    if when is None:
        wanted = [r for r in rules if r.id not in notes and (refresh or r.id not in recorded)]
    else:
        wanted = [r for r in rules if r.id not in notes and has_history(r)]
        recorded = {k: v for k, v in recorded.items() if not has_history(quality.get_rule(k))}
        for r in rules:
            if r.id not in notes and not has_history(r) and r.id not in recorded:
                notes[r.id] = (f"{r.layer} keeps no history and no measurement of this rule was recorded by "
                               f"{when.known_on.isoformat() if when.known_on else 'now'}")
    live = await measure_cached(request, conn, principal, wanted, when)
    by_layer: dict[str, list[RuleSummary]] = {}
    for rule in rules:
        by_layer.setdefault(rule.layer, []).append(
            rule_summary(base, rule, recorded.get(rule.id), live.get(rule.id), notes.get(rule.id)))
    layers = []
    for layer_id, items in by_layer.items():
        checked = sum(r.checked or 0 for r in items)
        failed = sum(r.failed or 0 for r in items)
        layers.append(LayerSummary(layer=layer_id, title=LAYERS[layer_id].title, checked=checked, failed=failed,
                                   score=_score(checked, failed), rules=items))
    return QualitySummary(
        measured_at=datetime.now(UTC), refresh=refresh, layers=layers,
        history=None if when is None else when.describe(),
        signals=[r.id for r in rules if r.kind == "signal"],
        links=[{"href": f"{base}/quality", "rel": "self", "type": "application/json", "title": "This document"},
               {"href": f"{base}/quality?f=html", "rel": "alternate", "type": "text/html", "title": "As a page"},
               {"href": f"{base}/quality/signals", "rel": "items", "type": GEOJSON,
                "title": "The cross-source signals (GeoJSON)"}],
    )


def summary_html(doc: QualitySummary, admin: bool = False, lang: str = DEFAULT_LANGUAGE) -> str:
    """The summary as a plain page in the reader's language (Dutch by default, ``?lang=en``), every word from
    the catalogue (no script, no inline style: the page CSP allows neither). The JSON keeps its codes."""
    lang = language(lang)
    e = html.escape
    t = lambda key, **kw: e(text(lang, key, **kw))  # noqa: E731
    own = f"lang={lang}"
    measured = render.long_date(doc.measured_at, lang)
    parts = [f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{t('quality.page.doc_title')}</title></head><body><main><h1>{t('quality.heading')}</h1>",
             f"<p>{t('quality.page.measured_at', date=measured)}</p>"]
    if doc.history is not None:
        parts.append(f"<p>{e(render.as_of_line(doc.history, lang))}</p>")
    parts.append(f"<nav aria-label='{t('quality.page.nav')}'><p><a href='?f=json'>{t('quality.page.json')}</a> · "
                 + (f"<a href='?refresh=true&amp;f=html&amp;{own}'>{t('quality.page.measure_now')}</a> · "
                    if admin else "")
                 + f"<a href='/quality/signals'>{t('quality.page.signals_link')}</a> · "
                 f"<a href='/?{own}'>{t('quality.page.map_link')}</a></p></nav>")
    cols = ("quality.col.rule", "quality.col.kind", "quality.col.severity", "quality.col.checked",
            "quality.col.failed", "quality.col.score", "quality.col.change")
    for layer in doc.layers:
        title = render.layer_title(layer.layer, lang) if f"layer.{layer.layer}" in catalogue(lang) else layer.title
        parts.append(f"<h2>{t('quality.page.layer_score', title=title, score=render.percent(layer.score, lang))}"
                     "</h2><table><thead><tr>" + "".join(f"<th scope='col'>{t(c)}</th>" for c in cols)
                     + "</tr></thead><tbody>")
        for r in layer.rules:
            change = text(lang, "quality.page.none")
            if r.change is not None and r.change.failed is not None:
                change = text(lang, "quality.page.change_failed", change=render.signed(r.change.failed, lang),
                              run=str(r.change.previous_run))
            if r.error is not None:
                change = text(lang, "quality.not_applicable" if not r.applicable else "quality.not_measured",
                              error=render.note_text(r.error, lang))
            parts.append(
                f"<tr><td><a href='{e(r.href)}'>{e(rule_title(lang, r.id, r.title))}</a><br><small>"
                f"{e(render.rule_explanation(lang, r.id, r.explanation))}</small></td>"
                f"<td>{e(render.kind_text(r.kind, lang))}</td><td>{e(render.severity_text(r.severity, lang))}</td>"
                f"<td>{render.count(r.checked, lang)}</td><td>{render.count(r.failed, lang)}</td>"
                f"<td>{render.percent(r.score, lang) if r.score is not None else t('quality.page.none')}</td>"
                f"<td>{e(change)}</td></tr>")
        parts.append("</tbody></table>")
    if not doc.layers:
        parts.append(f"<p>{t('quality.page.no_rules')}</p>")
    parts.append("</main></body></html>")
    return "".join(parts)


@router.get(
    "/quality", summary="Data quality per layer and rule", response_model=QualitySummary,
    description="A score per rule (records checked, records failing, 1 - failed/checked) grouped by layer, "
    "with the change since the previous recorded run. Counts come from the latest run of `twin quality` "
    "where recorded, else they are measured now; `refresh=true` measures every rule now. Only the layers "
    "the caller may read are listed; for restricted layers the counts cover the rows the caller may see. "
    "Browsers (Accept: text/html) and `f=html` get a page.",
    responses={200: {"content": {"application/json": {"example": SUMMARY_EXAMPLE}, "text/html": {}}}},
)
async def quality_summary(
    request: Request, conn: ConnDep, principal: PrincipalDep, when: AsOfDep,
    refresh: bool = Query(False, description="Measure every rule now instead of reading the recorded results "
                          "(admins only: 401/403 for other callers)."),
    f: str | None = Query(None, description="json or html (default: by the Accept header)."),
    lang: str | None = Query(None, description="Language of the page (f=html): nl (default) or en; the JSON "
                             "keeps its codes and English titles."),
) -> Any:
    params.check_known(request.query_params, ("f", "refresh", "lang", history.VALID_PARAM, history.KNOWN_PARAM))
    if refresh:
        require_admin(principal)  # measuring every rule now costs seconds of database work
    if f is not None and f.lower() not in ("json", "html"):
        raise InvalidParameter(f"f={f!r} is not supported here; use json or html.", parameter="f")
    doc = await summary(request, conn, principal, refresh, when)
    if not wants_json(request, f):
        return HTMLResponse(summary_html(doc, principal.role == "admin", language(lang)))
    return doc


# -- a measurement as a job ------------------------------------------------------------------------------------
class Measurement(BaseModel):
    """A measurement of every rule started by POST /quality/measurements, run and recorded in the background."""

    id: str = Field(description="The job's id, for GET /quality/measurements/{id}.")
    status: Literal["running", "succeeded", "failed"]
    started_at: datetime
    finished_at: datetime | None = None
    rules_done: int = Field(default=0, description="Rules measured so far.")
    rules_total: int | None = Field(default=None, description="Rules that apply (known once measuring has begun).")
    recorded: int | None = Field(default=None, description="Results written to twin.quality_results (when succeeded).")
    seconds: float | None = None
    error: str | None = Field(default=None, description="Why it failed (when failed).")
    links: list[dict[str, str]] = Field(default_factory=list)


MEASUREMENT_EXAMPLE = {
    "id": "m-1733590000-1", "status": "running", "started_at": "2026-12-07T18:40:00Z", "finished_at": None,
    "rules_done": 31, "rules_total": 82, "recorded": None, "seconds": None, "error": None,
    "links": [{"href": "http://localhost:8000/quality/measurements/m-1733590000-1", "rel": "self",
               "type": "application/json", "title": "This measurement"},
              {"href": "http://localhost:8000/quality", "rel": "related", "type": "application/json",
               "title": "The quality summary (the recorded counts once this measurement has succeeded)"}],
}


class Measurements:
    """The measurements of this API process (kept in memory: a restart forgets their status, not what they
    recorded). One runs at a time; a POST while one runs answers with the running one."""

    def __init__(self, keep: int = 20) -> None:
        self.jobs: dict[str, Measurement] = {}
        self.keep = keep
        self.count = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def running(self) -> Measurement | None:
        return next((m for m in self.jobs.values() if m.status == "running"), None)

    def start(self, settings: Settings) -> Measurement:
        self.count += 1
        job = Measurement(id=f"m-{int(time.time())}-{self.count}", status="running", started_at=datetime.now(UTC))
        self.jobs[job.id] = job
        for old in list(self.jobs)[:-self.keep]:
            if self.jobs[old].status != "running":
                del self.jobs[old]
        task = asyncio.get_running_loop().create_task(self._run(settings, job))
        self.tasks.add(task)  # a reference, so that the task is not collected while it runs
        task.add_done_callback(self.tasks.discard)
        return job

    async def _run(self, settings: Settings, job: Measurement) -> None:
        t0 = time.perf_counter()
        try:
            job.recorded = await asyncio.to_thread(_measure_and_record, settings, job)
            job.status = "succeeded"
        except Exception as exc:  # noqa: BLE001 - the job reports it; the server goes on
            log.warning("quality measurement %s failed: %s", job.id, exc)
            job.status, job.error = "failed", _job_error(exc)
        job.finished_at, job.seconds = datetime.now(UTC), round(time.perf_counter() - t0, 3)


def _job_error(exc: Exception) -> str:
    """What an administrator can act on, without the SQL of a failing rule."""
    if isinstance(exc, psycopg.OperationalError):
        return ("the API process could not connect as the writer (twin_writer): set TWIN_WRITER_URL or "
                "TWIN_WRITER_PASSWORD for it, or run 'twin quality --record' where the writer can connect")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return "the writer role may not record quality results here: run 'twin db migrate' (roles and grants)"
    return f"the measurement stopped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _measure_and_record(settings: Settings, job: Measurement) -> int:
    """Every rule measured as the writer and recorded, as `twin quality --record` does (the national twin takes
    about two minutes); the job follows the progress."""
    def progress(done: int, total: int) -> None:
        job.rules_done, job.rules_total = done, total

    report, n = quality.measure_and_record(settings, progress=progress)
    job.rules_total = sum(1 for r in report.results if r.applicable)  # also when none applies (no progress call)
    return n


def _measurement_doc(request: Request, job: Measurement) -> Measurement:
    base = base_url(request)
    return job.model_copy(update={"links": [
        {"href": f"{base}/quality/measurements/{job.id}", "rel": "self", "type": "application/json",
         "title": "This measurement"},
        {"href": f"{base}/quality", "rel": "related", "type": "application/json",
         "title": "The quality summary (the recorded counts once this measurement has succeeded)"}]})


def _measurements(request: Request) -> Measurements:
    jobs = getattr(request.app.state, "quality_measurements", None)
    if jobs is None:
        jobs = request.app.state.quality_measurements = Measurements()
    return jobs


@router.post(
    "/quality/measurements", summary="Measure every rule now and record it, as a background job",
    status_code=202, response_model=Measurement,
    description="Starts a measurement of every quality rule as the writer and records it in "
    "twin.quality_results, as `twin quality --record` does, without waiting for it: 202 with the job "
    "(`Location`: its status). While one runs, a POST answers with that one. `/quality` serves its counts "
    "once it has succeeded. `GET /quality?refresh=true` measures in the request instead (for small twins: "
    "on a national twin some rules take longer than the statement timeout). Admins only.",
    responses={202: {"content": {"application/json": {"example": MEASUREMENT_EXAMPLE}}},
               401: {"description": "No key."}, 403: {"description": "Not an admin key."}},
)
async def start_measurement(request: Request, principal: PrincipalDep) -> Response:
    require_admin(principal)
    params.check_known(request.query_params, ())
    if await request.body():
        raise InvalidParameter("POST /quality/measurements takes no body: it measures every rule.")
    jobs = _measurements(request)
    job = jobs.running() or jobs.start(request.app.state.settings)
    doc = _measurement_doc(request, job)
    return Response(doc.model_dump_json(), status_code=202, media_type="application/json",
                    headers={"Location": doc.links[0]["href"], "Retry-After": "5"})


@router.get(
    "/quality/measurements", summary="The measurements of this API process, newest first",
    response_model=list[Measurement],
    description="The measurements started by POST /quality/measurements in this API process (the last 20), "
    "newest first, each as GET /quality/measurements/{id} gives it. Admins only.",
)
async def list_measurements(request: Request, principal: PrincipalDep) -> list[Measurement]:
    require_admin(principal)
    params.check_known(request.query_params, ())
    return [_measurement_doc(request, job) for job in reversed(_measurements(request).jobs.values())]


@router.get(
    "/quality/measurements/{measurement_id}", summary="The status of a measurement started by POST",
    response_model=Measurement,
    description="running (with the rules measured so far), succeeded (with the results recorded) or failed "
    "(with why). Measurements are kept by the API process that runs them: 404 after a restart or from "
    "another process. Admins only.",
    responses={200: {"content": {"application/json": {"example": MEASUREMENT_EXAMPLE}}},
               404: {"description": "Unknown measurement."}},
)
async def measurement_status(request: Request, measurement_id: str, principal: PrincipalDep) -> Measurement:
    require_admin(principal)
    params.check_known(request.query_params, ())
    job = _measurements(request).jobs.get(measurement_id)
    if job is None:
        raise NotFound(f"no measurement {measurement_id!r} in this API process (measurements are kept in the "
                       "memory of the process that runs them; the recorded results are in GET /quality).")
    return _measurement_doc(request, job)


# -- failing records -------------------------------------------------------------------------------------------
def _page_query(request: Request, columns: Columns, allowed: Sequence[str]) -> ItemsQuery:
    """limit, offset, bbox, bbox-crs and crs parsed as for the items (400s alike); nothing else allowed."""
    params.check_known(request.query_params, allowed)
    paging = QueryParams([(k, v) for k, v in request.query_params.multi_items() if k in PAGE_PARAMETERS])
    q = params.parse_items(paging, columns)
    if q.format != "json":
        raise InvalidParameter("f: failing records are served as GeoJSON only (f=json).", parameter="f")
    return q


def _failing_join(request: Request, rule: quality.QualityRule, principal: Principal,
                  when: history.AsOf | None = None) -> sql.Composable:
    return sql.SQL("JOIN ({failing}) f ON f.id = t.id").format(failing=failing(request, rule, principal, when))


async def require_applicable(conn: psycopg.AsyncConnection, rule: quality.QualityRule) -> None:
    """404 naming the reason when a rule does not apply here (its records would mean nothing)."""
    note = (await not_applicable(conn, [rule])).get(rule.id)
    if note:
        raise NotFound(f"quality rule {rule.id!r} does not apply here: {note}.")


async def issues_of(request: Request, conn: psycopg.AsyncConnection, principal: Principal, spec: LayerSpec,
                    ids: list[int], when: history.AsOf | None = None) -> dict[int, list[dict[str, str]]]:
    """Every rule of the layer (that the caller may see) each record of ``ids`` fails, with its reason: the
    open issues of a record. Each rule is evaluated for these ids only (``f.id = ANY(ids)``)."""
    if not ids:
        return {}
    rules = [r for r in visible_rules(principal) if r.layer == spec.id]
    notes = await not_applicable(conn, rules)
    rules = [r for r in rules if r.id not in notes]
    binder = Binder()
    wanted = binder.bind(ids)
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {rid} AS rule_id, f.id, f.reason FROM ({failing}) f WHERE f.id = ANY({ids})").format(
            rid=sql.Literal(r.id), failing=failing(request, r, principal, when, few=True), ids=wanted)
        for r in rules
    )
    rows = await fetch(conn, sql.SQL("SELECT rule_id, id, reason FROM ({}) u ORDER BY rule_id").format(union),
                       binder.params, isolated=True)
    titles = {r.id: r.title for r in rules}
    out: dict[int, list[dict[str, str]]] = {}
    for rule_id, row_id, reason in rows:
        out.setdefault(int(row_id), []).append({"rule": rule_id, "title": titles[rule_id], "reason": reason})
    return out


def _geojson(request: Request, q: ItemsQuery, feats: list[dict[str, Any]], matched: int,
             extra: dict[str, Any] | None = None) -> Response:
    doc = {
        "type": "FeatureCollection",
        **(extra or {}),
        "numberMatched": matched,
        "numberReturned": len(feats),
        "timeStamp": timestamp(),
        "links": [{"href": str(request.url), "rel": "self", "type": GEOJSON, "title": "This page"},
                  *paging_links(request, q, len(feats), matched)],
        "features": feats,
    }
    return geojson_response(doc, q)


PAGE_OPENAPI = [
    *(p for p in ITEMS_OPENAPI["parameters"] if p["name"] in ("limit", "offset", "bbox", "bbox-crs", "crs")),
    qparam("f", "json (GeoJSON, the only format here).", {"type": "string", "enum": ["json"]}),
]
RULE_EXAMPLE = {
    "type": "FeatureCollection", "rule": "establishments.kvk-filled", "layer": "establishments",
    "numberMatched": 12, "numberReturned": 1, "timeStamp": "2025-01-31T12:00:00Z",
    "links": [{"href": "http://localhost:8000/quality/establishments.kvk-filled?limit=1", "rel": "self"},
              {"href": "http://localhost:8000/quality/establishments.kvk-filled?limit=1&offset=1", "rel": "next"}],
    "features": [{"type": "Feature", "id": "INR-000123", "geometry": {"type": "Point", "coordinates": [5.38, 52.15]},
                  "properties": {"establishment_id": "INR-000123", "name": None, "sbi_code": "0141",
                                 "quality_rule": "establishments.kvk-filled",
                                 "quality_reason": "kvk_number is empty", "quality_issues": 2,
                                 "quality_issue_list": [
                                     {"rule": "establishments.kvk-filled", "title": "KvK number filled in",
                                      "reason": "kvk_number is empty"},
                                     {"rule": "signal.livestock-without-permit",
                                      "title": "Livestock farm without a valid permit",
                                      "reason": "no permit with status 'verleend' valid today for SBI 01.4"}]}}],
}
SIGNALS_EXAMPLE = {
    "type": "FeatureCollection", "numberMatched": 9, "numberReturned": 1, "timeStamp": "2025-01-31T12:00:00Z",
    "links": [{"href": "http://localhost:8000/quality/signals?limit=1", "rel": "self"}],
    "features": [{"type": "Feature", "id": "signal.livestock-without-permit/INR-000123",
                  "geometry": {"type": "Point", "coordinates": [5.38, 52.15]},
                  "properties": {"signal": "signal.livestock-without-permit",
                                 "title": "Livestock farm without a valid permit", "layer": "establishments",
                                 "record": "INR-000123", "severity": "warning",
                                 "reason": "no permit with status 'verleend' valid today for SBI 01.4 (livestock)",
                                 "explanation": "A livestock farm needs an environmental permit ..."}}],
}


@router.get(
    "/quality/signals", summary="Cross-source signals as GeoJSON, with their reasons", response_class=Response,
    description="The records that fail a rule of kind `signal` (gaps between registers that point at a risk, "
    "e.g. a livestock farm without a valid permit), as one FeatureCollection ordered by signal and record. "
    "Each feature carries `signal` (the rule id), `title`, `reason` (why this record), `explanation` (why "
    "it matters), `layer`, `record` (the record's id in that layer) and `severity`. Signals over layers the "
    "caller may not read are left out; `signal=` picks one.",
    openapi_extra={"parameters": [*PAGE_OPENAPI, qparam("signal", "Only this signal (a rule id of kind signal).",
                                                        {"type": "string"})]},
    responses={200: {"content": {GEOJSON: {"example": SIGNALS_EXAMPLE}}},
               404: {"description": "Unknown signal."}},
)
async def signals(request: Request, conn: ConnDep, principal: PrincipalDep, when: AsOfDep) -> Response:
    async with history.as_of(conn, when):
        return await _signals(request, conn, principal, when)


async def _signals(request: Request, conn: psycopg.AsyncConnection, principal: Principal,
                   when: history.AsOf | None) -> Response:
    wanted = request.query_params.get("signal")
    if wanted is not None:
        rule = rule_for(principal, wanted.strip())
        if rule.kind != "signal":
            raise InvalidParameter(f"signal={wanted!r} is a {rule.kind} rule, not a signal; GET /quality lists "
                                   "the signals.", parameter="signal")
        require_history(rule, when)
        await require_applicable(conn, rule)
        rules: tuple[quality.QualityRule, ...] = (rule,)
    else:
        rules = tuple(r for r in visible_rules(principal, kind="signal") if when is None or has_history(r))
        notes = await not_applicable(conn, rules)
        rules = tuple(r for r in rules if r.id not in notes)
        for rule in rules:
            for spec in rule_layers(rule):
                require_read(principal, spec)  # passes (visible); notes restricted layers for the audit log
    # the columns do not matter here: _page_query lets no property filter through
    q = _page_query(request, columns_for(LAYERS["establishments"], principal),
                    (*SIGNAL_PARAMETERS, history.VALID_PARAM, history.KNOWN_PARAM))
    if not rules:
        return _geojson(request, q, [], 0)
    # The signals join registers over whole layers (seconds on the national twin): a page is kept per process
    # under the versions of the tables its rules read, the caller's audience and the query (as of a past state:
    # computed each time).
    cached = None
    if when is None:
        tables = sorted({LAYERS[x].table for r in rules for x in (r.layer, *r.depends_on)})
        cached = await lookup(request, conn, "analysis_cache_mb", tables, principal, "signals",
                              tuple(r.id for r in rules), str(request.url.query))
        if cached.data is not None:
            kept = orjson.loads(cached.data)
            response = _geojson(request, q, kept["features"], kept["matched"])
            response.headers["X-Analysis-Cache"] = "hit"
            return response
    feats, matched = await _signal_page(request, conn, principal, when, rules, q)
    response = _geojson(request, q, feats, matched)
    if cached is not None:
        cached.store(orjson.dumps({"features": feats, "matched": matched}))
        if cached.status:
            response.headers["X-Analysis-Cache"] = cached.status
    return response


async def _recorded_counts(request: Request, conn: psycopg.AsyncConnection, principal: Principal,
                           rules: Sequence[quality.QualityRule], q: ItemsQuery,
                           when: history.AsOf | None) -> dict[str, int]:
    """How many records fail each rule, from the latest recorded measurement, where that is exactly what
    counting them now would give this caller: no bbox, time or property filter, the current state, a layer that
    is a whole table; counts recorded for this caller's audience (:func:`recorded_counts_apply`, or the public
    counts of :func:`public_recorded`); a rule that reads no table its fingerprint leaves out
    (:func:`twin.quality.fingerprint_covers`); and the measurement's fingerprint (migration 0025) equal to the one
    of now: the same query, thresholds and date, and no table the rule reads changed since (twin.layer_versions).
    Counting the signals live took 2.8 s of the 3.3 s of a cold first page on the national twin; counting the
    addresses that lie in no building ran into the statement timeout there."""
    if when is not None or q.bbox is not None or q.datetime is not None or q.equals or q.filter is not None:
        return {}
    wanted = [r for r in rules if not LAYERS[r.layer].subset and quality.fingerprint_covers(r)]
    if not wanted:
        return {}
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT r.rule_id, r.fingerprint, r.checked, r.failed, r.public_checked, r.public_failed, "
                "current_date AS today, (SELECT coalesce(jsonb_object_agg(table_name, version), '{}') "
                "FROM twin.layer_versions) AS versions FROM (SELECT DISTINCT ON (rule_id) rule_id, fingerprint, "
                "checked, failed, public_checked, public_failed FROM twin.quality_results WHERE rule_id = ANY(%s) "
                "ORDER BY rule_id, measured_at DESC, id DESC) r", ([r.id for r in wanted],), prepare=False)
            names = [d.name for d in cur.description or ()]
            found = {row[0]: dict(zip(names, row, strict=True)) for row in await cur.fetchall()}
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.errors.InsufficientPrivilege):
        return {}  # before migrations 0007 / 0025 (or a role without their grants): counted live
    settings = rule_settings(request)
    out: dict[str, int] = {}
    for rule in wanted:
        row = found.get(rule.id)
        if row is None or row["fingerprint"] is None:
            continue
        mine = row if recorded_counts_apply(principal, rule) else public_recorded(principal, rule.id, row)
        if mine is None:
            continue
        versions = {k: int(v) for k, v in row["versions"].items()}
        if quality.fingerprint(rule, settings, row["today"], versions) == row["fingerprint"]:
            out[rule.id] = int(mine["failed"])
    return out


async def _signal_page(request: Request, conn: psycopg.AsyncConnection, principal: Principal,
                       when: history.AsOf | None, rules: tuple[quality.QualityRule, ...],
                       q: ItemsQuery) -> tuple[list[dict[str, Any]], int]:
    """A page of the signals in (rule, record) order and how many match. Each rule is counted and paged on its
    own, in rule order: a UNION ALL of the rules under one ORDER BY ... LIMIT made the planner join every
    register in full before sorting (national twin, anonymous: 15.8 s, against 1.5-2.7 s for each signal
    alone), and the page needs the rows of one or two rules only."""
    assert q.crs is not None
    crs = q.crs

    def branch(rule: quality.QualityRule, binder: Binder) -> sql.Composable:
        spec = LAYERS[rule.layer]
        return sql.SQL(
            "SELECT t.{key}::text AS record, ST_AsGeoJSON({geom}, {decimals}, 0) AS geometry, f.reason "
            "FROM {table} t {failing} WHERE {where}"
        ).format(key=sql.Identifier(spec.key), geom=output_geometry_sql(crs), decimals=sql.Literal(crs.decimals),
                 table=table_sql(spec), failing=_failing_join(request, rule, principal, when),
                 where=where_sql(columns_for(spec, principal), q, binder, None))

    ordered = sorted(rules, key=lambda r: r.id)
    recorded = await _recorded_counts(request, conn, principal, ordered, q, when)
    rows: list[tuple[str, str, str, str]] = []
    skip, room, matched = q.offset, q.limit, 0
    for rule in ordered:
        binder = Binder()
        part = branch(rule, binder)
        n = recorded.get(rule.id)
        if n is None:
            n = int((await fetch(conn, sql.SQL("SELECT count(*) FROM ({}) s").format(part), binder.params,
                                 isolated=True))[0][0])
        matched += n
        if room > 0 and skip < n:
            page = sql.SQL("SELECT * FROM ({}) s ORDER BY record LIMIT {} OFFSET {}").format(
                part, binder.bind(room), binder.bind(skip))
            got = await fetch(conn, page, binder.params, isolated=True)
            rows += [(rule.id, record, geometry, reason) for record, geometry, reason in got]
            room -= len(got)
        skip = max(0, skip - n)
    by_id = {r.id: r for r in rules}
    feats = [{"type": "Feature", "id": f"{rule_id}/{record}", "geometry": orjson.Fragment(geometry),
              "properties": {"signal": rule_id, "title": by_id[rule_id].title, "layer": by_id[rule_id].layer,
                             "record": record, "severity": by_id[rule_id].severity, "reason": reason,
                             "explanation": by_id[rule_id].explanation}}
             for rule_id, record, geometry, reason in rows]
    return feats, matched


@router.get(
    "/quality/{rule_id}", summary="The records that fail one quality rule (GeoJSON)", response_class=Response,
    description="The failing records of a rule as a FeatureCollection of its layer, with the layer's fields "
    "as `/collections/{layer}/items` serves them to this caller (personal data masked alike), plus "
    "`quality_rule`, `quality_reason` (why this record fails), `quality_issues` (how many rules of the "
    "layer the record fails, this one included) and `quality_issue_list` (each of them with its reason). "
    "Paged like the items (limit, offset, next/prev links) and filtered by bbox. 404 for an unknown rule; "
    "401/403 when the caller may not read the rule's layer or a layer it reads.",
    openapi_extra={"parameters": PAGE_OPENAPI},
    responses={200: {"content": {GEOJSON: {"example": RULE_EXAMPLE}}},
               404: {"description": "Unknown rule."}, 401: {"description": "Restricted layer, no key."},
               403: {"description": "Restricted layer, the key's role may not read it."}},
)
async def failing_records(request: Request, rule_id: str, conn: ConnDep, principal: PrincipalDep,
                          when: AsOfDep) -> Response:
    rule = rule_for(principal, rule_id)
    require_history(rule, when)
    async with history.as_of(conn, when):
        return await _failing_records(request, rule, conn, principal, when)


async def _failing_records(request: Request, rule: quality.QualityRule, conn: psycopg.AsyncConnection,
                           principal: Principal, when: history.AsOf | None) -> Response:
    spec = LAYERS[rule.layer]
    columns = columns_for(spec, principal)
    q = _page_query(request, columns, (*PAGE_PARAMETERS, history.VALID_PARAM, history.KNOWN_PARAM))
    await require_applicable(conn, rule)
    assert q.crs is not None
    binder = Binder()
    where = where_sql(columns, q, binder, None)
    names = selected_fields(columns, q)
    page = sql.SQL(
        "SELECT {cols}, f.reason AS quality_reason, t.id FROM {table} t {failing} WHERE {where} "
        "ORDER BY t.{key} LIMIT {limit} OFFSET {offset}"
    ).format(cols=feature_columns(columns, names, q.crs), table=table_sql(spec),
             failing=_failing_join(request, rule, principal, when),
             where=where, key=sql.Identifier(spec.key), limit=binder.bind(q.limit), offset=binder.bind(q.offset))
    # The recorded count, where it stands for a live one; a page past it is empty without a look (a rule that
    # no building fails walked all 5 million of them on the national twin to find none: 7 s).
    matched = (await _recorded_counts(request, conn, principal, [rule], q, when)).get(rule.id)
    rows = [] if matched is not None and q.offset >= matched else \
        await fetch(conn, page, binder.params, isolated=True)
    if matched is None:
        matched = number_matched(len(rows), q)
    if matched is None:
        count = sql.SQL("SELECT count(*) FROM {table} t {failing} WHERE {where}").format(
            table=table_sql(spec), failing=_failing_join(request, rule, principal, when), where=where)
        matched = int((await fetch(conn, count, binder.params, isolated=True))[0][0])
    ids = [int(r[-1]) for r in rows]
    feats = features([r[:-1] for r in rows], (*names, "quality_reason"))
    issues = await issues_of(request, conn, principal, spec, ids, when)
    for feat, row_id in zip(feats, ids, strict=True):
        listed = issues.get(row_id) or [{"rule": rule.id, "title": rule.title,
                                         "reason": feat["properties"]["quality_reason"]}]
        feat["properties"]["quality_rule"] = rule.id
        feat["properties"]["quality_issues"] = len(listed)
        feat["properties"]["quality_issue_list"] = listed
    extra: dict[str, Any] = {"rule": rule.id, "layer": spec.id, "title": rule.title}
    if when is not None:
        extra["history"] = when.describe()
    return _geojson(request, q, feats, matched, extra)
