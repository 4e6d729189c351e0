"""``twin monitor ...``: compute the KPIs of supervision and record them over time (docs/monitoring.md)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import err, fail, read_settings, twin_errors
from twin import database

monitor_app = typer.Typer(
    help="Monitoring the quality of supervision: KPIs (compliance, coverage, follow-up, effectiveness, LHS, "
    "permits, nitrogen, data quality) per period and dimension, recorded with their data version.",
    no_args_is_help=True,
)
console = Console()


@monitor_app.command("compute")
def compute_cmd(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Reference date YYYY-MM-DD (geldigOp): compute from the history as valid on that day "
        "(default: today, from the current state)")] = None,
    known_on: Annotated[str | None, typer.Option(
        "--known-on", help="As known at this moment (beschikbaarOp): an RFC 3339 date-time or a date (its end); "
        "default: now. Recomputing a run as of its as_of and known_on gives the same values after later "
        "corrections.")] = None,
    kpi: Annotated[list[str] | None, typer.Option(help="Only this KPI (repeatable); default all")] = None,
    lhs_matrix: Annotated[Path | None, typer.Option(help="LHS matrix CSV (cell,expected,escalate_on_repeat); "
                                                         "default layers/data/lhs_matrix.csv")] = None,
) -> None:
    """Compute every KPI for every month, quarter and year, per organisation, municipality, sector and
    environmental category, and store them as a new run (twin.kpi_runs, twin.kpi_values)."""
    from twin import history
    from twin.errors import InvalidParameter
    from twin.monitoring import compute
    from twin.monitoring.definitions import BY_ID

    s = read_settings()
    try:
        when = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date: use YYYY-MM-DD")
    known = None
    if known_on is not None:
        try:
            known = history.parse_known(known_on, "--known-on")
        except InvalidParameter as exc:
            fail(str(exc))
    for k in kpi or ():
        if k not in BY_ID:
            fail(f"--kpi {k!r} is unknown; KPIs: {', '.join(BY_ID)}")
    if lhs_matrix is not None and not lhs_matrix.is_file():
        fail(f"--lhs-matrix {lhs_matrix} is not a file")
    with twin_errors():
        with database.connect(database.url_for(s, "writer")) as conn:
            with err.status("computing the KPIs ..."):
                try:
                    run = compute.compute(conn, as_of=when, k=s.k_anonymity, kpi_ids=kpi or None,
                                          lhs_matrix=lhs_matrix, known_on=known)
                except ValueError as exc:
                    fail(str(exc))
            conn.commit()
    source = "history" if run.from_history else "current state"
    table = Table(title=f"KPI run {run.run_id} as of {run.as_of}, known on {run.known_on.isoformat()} "
                        f"({source}; {run.seconds:.1f} s)")
    for col in ("step", "seconds"):
        table.add_column(col)
    for step, secs in run.timings.items():
        table.add_row(step, f"{secs:.2f}")
    console.print(table)
    console.print(f"{run.values:,} values: {run.public:,} public, {run.suppressed:,} suppressed for the public "
                  f"(k={s.k_anonymity}), {run.flagged:,} significant changes flagged (BH q < 0.05).")


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
