"""``twin history``: the versions of one record (what the twin knew when, and what was valid when), and the
retention of the history (docs/history.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, read_settings, twin_errors
from layers.registry import LAYERS

console = Console()


def _value(v: object) -> str:
    return "" if v is None else str(v)


def history_cmd(
    record: Annotated[str | None, typer.Argument(help="The record's id (establishment, permit, inspection, "
                                                      "habitat or housing-site id)")] = None,
    layer: Annotated[str | None, typer.Option(help="The layer to look in (default: every layer with history)")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete versions older than TWIN_HISTORY_RETENTION_DAYS "
                                                        "instead (current versions always stay)")] = False,
) -> None:
    """Show every version of a record with its validity, its registration and the runs that wrote and ended
    it; or, with --prune, apply the retention period to the history."""
    from twin import database, history

    s = read_settings()
    tables = {spec.id: spec for spec in LAYERS.values() if spec.table in history.HISTORY_TABLES}
    if layer is not None and layer not in tables:
        fail(f"--layer {layer!r} keeps no history; layers with history: {', '.join(tables)}")
    if prune:
        with twin_errors(), database.connect(database.url_for(s, "owner")) as conn:
            deleted = history.prune(conn, s.history_retention_days)
            conn.commit()
        t = Table(title=f"history pruned: versions ended more than {s.history_retention_days} days ago")
        t.add_column("table")
        t.add_column("deleted", justify="right")
        for name, n in deleted:
            t.add_row(name, f"{n:,}")
        console.print(t)
        return
    if record is None:
        fail("give a record id (or --prune)")
    found = 0
    # the operator's view: the owner reads every version (the API's roles read history through RLS)
    with twin_errors(), database.connect(database.url_for(s, "owner")) as conn:
        for spec in (tables[layer],) if layer else tables.values():
            rows = history.versions(conn, spec.table, spec.key, record)
            if not rows:
                continue
            found += len(rows)
            t = Table(title=f"{spec.id} {record}: {len(rows)} version(s)")
            for col in ("version", "valid from", "valid until", "registered from", "registered until",
                        "written by run", "ended by run", "content"):
                t.add_column(col, overflow="fold")
            for r in rows:
                content = r["content"] or {}
                shown = ", ".join(f"{k}={v}" for k, v in content.items()
                                  if k not in ("run_id", spec.key) and v is not None)
                t.add_row(_value(r["version_id"]), _value(r["valid_from"]), _value(r["valid_until"]) or "-",
                          _value(r["registered_from"]), _value(r["registered_until"]) or "now",
                          f"{_value(r['run_id'])} {_value(r['run_source'])}".strip(),
                          f"{_value(r['ended_run_id'])} {_value(r['ended_by_source'])}".strip(), shown)
            console.print(t)
    if not found:
        fail(f"no versions of {record!r} in the history"
             + (f" of {layer}" if layer else f" ({', '.join(tables)})"))


def register(app: typer.Typer) -> None:
    """Add 'twin history'."""
    app.command("history")(history_cmd)
