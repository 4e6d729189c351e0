"""``twin quality ...``: the data-quality report (a score per rule, layer and source, with examples and the
change since the previous delivery) and the list of rules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import err, fail, read_settings, twin_errors
from twin import database

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
    with twin_errors():
        with database.connect(database.url_for(s, "writer")) as conn:
            rules = quality.all_rules(layer=layer)
            with err.status(f"measuring {len(rules)} rules ..."):
                rep = quality.evaluate(conn, s, rules, examples=examples)
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
        text = render.as_json(rep) if fmt == "json" else render.as_html(rep)
        if output is not None:
            output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    if output is not None:
        err.print(f"report written to {output}")


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
