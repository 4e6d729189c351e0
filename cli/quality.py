"""``twin quality ...``: the data-quality report (a score per rule, layer and source, with examples and the
change since the previous delivery) and the list of rules."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from cli.common import err, fail, read_settings, twin_errors
from layers.messages import LANGUAGES
from layers.registry import get_layer
from twin import database, history
from twin.errors import InvalidParameter

if TYPE_CHECKING:
    from layers.quality_spec import QualityRule
    from twin.quality.evaluate import QualityReport
    from twin.settings import Settings

quality_app = typer.Typer(
    help="Data quality: rules per layer (completeness, validity, consistency, linkage, timeliness) and "
    "cross-source signals, measured after every ingest; see docs/quality.md.",
    no_args_is_help=True,
)
console = Console(width=None if sys.stdout.isatty() else 200)
FORMATS = ("table", "json", "html")


@quality_app.command("report")
def report_cmd(
    layer: Annotated[str | None, typer.Option(help="Only the rules of this layer (its failing records)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or html")] = "table",
    output: Annotated[Path | None, typer.Option(help="Write the report to this file instead of the terminal")]
    = None,
    record: Annotated[bool, typer.Option(help="Also record this measurement in twin.quality_results")] = False,
    examples: Annotated[int | None, typer.Option(help="Example records per rule (default "
                                                      "TWIN_QUALITY_EXAMPLES)")] = None,
    lang: Annotated[str, typer.Option(help="Language of the HTML report: nl (default) or en")] = "nl",
    geldig_op: Annotated[str | None, typer.Option(
        "--geldig-op", help="As valid on this day (geldigOp, YYYY-MM-DD; docs/history.md): the rules of the "
        "layers with history measured over the versions valid then, with that day as the rules' reference "
        "date; the other layers show the measurement recorded by --beschikbaar-op")] = None,
    beschikbaar_op: Annotated[str | None, typer.Option(
        "--beschikbaar-op", help="As known at this moment (beschikbaarOp): an RFC 3339 date-time or a date "
        "(its end); default now")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Count every rule over every record, also the rules whose recorded count the loads since "
        "have brought up to date over the records they changed (docs/quality.md)")] = False,
) -> None:
    """Measure the rules now: a score per rule, layer and source, counts, example records and the change since
    the measurement of the previous delivery of each layer."""
    from layers.registry import LAYERS
    from twin import quality
    from twin.quality import render

    s = read_settings()
    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: use table, json or html")
    if layer is not None and layer not in LAYERS:
        fail(f"--layer {layer!r} is not a layer; layers: {', '.join(LAYERS)}")
    if examples is not None and examples < 0:
        fail("--examples must be 0 or more")
    if lang not in LANGUAGES:
        fail(f"--lang {lang!r}: use {' or '.join(LANGUAGES)}")
    when = None
    try:
        when = history.parse_as_of(geldig_op, beschikbaar_op, tables=())
    except InvalidParameter as exc:
        fail(str(exc).replace(history.VALID_PARAM, "--geldig-op").replace(history.KNOWN_PARAM, "--beschikbaar-op"))
    if when is not None and record:
        fail("--record stores a measurement of the current state; not with --geldig-op/--beschikbaar-op")
    with twin_errors():
        with database.connect(database.url_for(s, "writer")) as conn:
            rules = quality.all_rules(layer=layer)
            with err.status(f"measuring {len(rules)} rules ..."):
                rep = quality.evaluate(conn, s, rules, examples=examples, incremental=not full) if when is None \
                    else measure_as_of(conn, s, rules, examples, when)
            if record:
                quality.record(conn, rep)
                conn.commit()
    if fmt == "table":
        if output is not None:
            with output.open("w", encoding="utf-8") as fh:
                Console(file=fh, width=200).print(render.as_table(rep))
        else:
            console.print(render.as_table(rep))
    else:
        described = when.describe() if when is not None else None
        text = render.as_json(rep, described) if fmt == "json" else render.as_html(rep, lang, described)
        if output is not None:
            output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    if output is not None:
        err.print(f"report written to {output}")


class _AsOfConnection:
    """A blocking connection whose statements read the register tables as of the active dates
    (twin.history.render, as the API's fetch does), for twin.quality.evaluate."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return self._conn.execute(history.render(self._conn, query), params, **kwargs)  # type: ignore[arg-type]

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return self._conn.cursor(*args, **kwargs)


LOADS_AS_OF_SQL = ("SELECT DISTINCT ON (layer) layer, id, source FROM twin.ingest_runs WHERE status = 'succeeded' "
                   "AND coalesce(finished_at, started_at) <= %s ORDER BY layer, id DESC")


def measure_as_of(conn: psycopg.Connection, settings: Settings, rules: Sequence[QualityRule], examples: int | None,
                  when: history.AsOf) -> QualityReport:
    """The report as the API's ``/quality?geldigOp=&beschikbaarOp=`` makes it (docs/history.md "Quality as of
    a date"): the rules of the layers with history measured again over the versions valid on ``geldigOp`` as
    known at ``beschikbaarOp``, with ``geldigOp`` as the rules' reference date; the rules of the other layers
    the recorded measurement that was current at ``beschikbaarOp`` (or why there is none). Each rule's source
    and run are the latest load finished by ``beschikbaarOp``."""
    from twin import quality
    from twin.quality.evaluate import QualityReport, RuleResult

    known = when.known_on or datetime.now(UTC)
    asof_settings = settings if when.valid_on is None else settings.model_copy(update={"quality_as_of": when.valid_on})
    with_history = [r for r in rules if get_layer(r.layer).table in history.HISTORY_TABLES]
    with history.as_of_sync(conn, when):
        measured = quality.evaluate(_AsOfConnection(conn), asof_settings, with_history,  # type: ignore[arg-type]
                                    examples=examples, compare=False)
    by_id = {r.rule.id: r for r in measured.results}
    try:
        with conn.transaction():
            cur = conn.execute(quality.latest_results_sql(known))
            names = [d.name for d in cur.description or ()]
            recorded = {row[names.index("rule_id")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
    except psycopg.errors.UndefinedTable:
        recorded = {}
    loads = {r[0]: (int(r[1]), r[2]) for r in conn.execute(LOADS_AS_OF_SQL, (known,)).fetchall()}
    results = []
    for rule in rules:
        res = by_id.get(rule.id)
        if res is None:
            got = recorded.get(rule.id)
            res = RuleResult(rule, applicable=got is not None)
            if got is None:
                res.note = (f"{rule.layer} keeps no history and no measurement of this rule was recorded by "
                            f"{when.known_on.isoformat() if when.known_on else 'now'}")
            else:
                res.checked, res.failed = int(got["checked"]), int(got["failed"])
        load = loads.get(rule.layer)
        res.run_id, res.source = (load[0], load[1]) if load else (None, None)
        results.append(res)
    return QualityReport(measured.measured_at, results, measured.settings, measured.seconds)


@quality_app.command("rules")
def rules_cmd(
    layer: Annotated[str | None, typer.Option(help="Only the rules of this layer")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind (completeness, validity, consistency, linkage, "
                                                  "timeliness, signal)")] = None,
) -> None:
    """List the rules with their explanation."""
    from twin import quality

    try:
        rules = quality.all_rules(layer=layer, kind=kind)
    except KeyError as exc:
        fail(str(exc.args[0]))
    table = Table(title="Data-quality rules", show_lines=True)
    for col in ("rule", "kind", "severity", "reads", "explanation"):
        table.add_column(col)
    for r in rules:
        table.add_row(r.id, r.kind, r.severity, ", ".join(r.depends_on), r.explanation)
    console.print(table)
    console.print(f"{len(rules)} rule(s)")


def register(app: typer.Typer) -> None:
    """Add ``twin quality`` to the ``twin`` command line."""
    app.add_typer(quality_app, name="quality")
