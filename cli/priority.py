"""``twin priority ...``: the inspection-priority ranking on the command line, and the coordinators'
overrides of it (recorded with a reason and an author in ``twin.priority_overrides``)."""

from __future__ import annotations

import getpass
from datetime import date
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, read_settings, twin_errors
from twin import database
from twin.errors import InvalidParameter, NotFound
from twin.settings import Settings

priority_app = typer.Typer(
    help="Inspection priority: the risk ranking and the coordinators' overrides of it (with a reason).",
    no_args_is_help=True,
)
console = Console()


def _writer(settings: Settings) -> psycopg.Connection:
    return database.connect(database.url_for(settings, "writer"))


@priority_app.command("override")
def override(
    establishment_id: Annotated[str, typer.Argument(help="The establishment to place")],
    rank: Annotated[int, typer.Option("--rank", help="The rank it gets (1 = first)")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown with the ranking)")],
    author: Annotated[str | None, typer.Option(help="Who decides (default: your user name)")] = None,
) -> None:
    """Place an establishment at a fixed rank of the priority list, with a reason. Replaces its earlier
    override (kept as history)."""
    s = read_settings()
    with twin_errors():
        if rank < 1:
            raise InvalidParameter(f"--rank must be 1 or more, not {rank}")
        if not reason.strip():
            raise InvalidParameter("--reason must say why (it is shown with the ranking)")
        who = (author or getpass.getuser()).strip()
        with _writer(s) as conn, conn.transaction():
            if conn.execute("SELECT 1 FROM twin.establishments WHERE establishment_id = %s",
                            (establishment_id,)).fetchone() is None:
                raise NotFound(f"establishment {establishment_id!r} is not in the twin")
            conn.execute("UPDATE twin.priority_overrides SET active = false WHERE establishment_id = %s AND active",
                         (establishment_id,))
            conn.execute("INSERT INTO twin.priority_overrides (establishment_id, rank, reason, author) "
                         "VALUES (%s, %s, %s, %s)", (establishment_id, rank, reason.strip(), who))
    console.print(f"{establishment_id} placed at rank {rank} by {who}: {reason.strip()}")


@priority_app.command("clear")
def clear(establishment_id: Annotated[str, typer.Argument(help="The establishment whose override ends")]) -> None:
    """End the override of an establishment: it returns to its computed rank (the record stays as history)."""
    s = read_settings()
    with twin_errors():
        with _writer(s) as conn:
            cur = conn.execute("UPDATE twin.priority_overrides SET active = false "
                               "WHERE establishment_id = %s AND active", (establishment_id,))
            if cur.rowcount == 0:
                raise NotFound(f"{establishment_id!r} has no active override; see 'twin priority list'")
    console.print(f"override of {establishment_id} cleared")


@priority_app.command("list")
def list_overrides(
    history: Annotated[bool, typer.Option("--all", help="Also the overrides that were replaced or cleared")] = False,
) -> None:
    """The overrides: establishment, rank, reason, author, when."""
    s = read_settings()
    with twin_errors():
        with _writer(s) as conn:
            rows = conn.execute(
                "SELECT o.establishment_id, o.rank, o.reason, o.author, o.created_at, o.active "
                "FROM twin.priority_overrides o WHERE o.active OR %s ORDER BY o.active DESC, o.rank, o.created_at",
                (history,),
            ).fetchall()
    table = Table(title="Priority overrides" + (" (all)" if history else " (active)"))
    for col in ("establishment", "rank", "reason", "author", "recorded", *(("active",) if history else ())):
        table.add_column(col)
    for eid, rank, reason, author, created, active in rows:
        table.add_row(eid, str(rank), reason, author, created.strftime("%Y-%m-%d %H:%M"),
                      *(("yes" if active else "no",) if history else ()))
    console.print(table)
    console.print(f"{len(rows)} override(s)")


@priority_app.command("rank")
def rank_list(
    municipality: Annotated[str | None, typer.Option(help="CBS code (GM....): only this municipality")] = None,
    limit: Annotated[int, typer.Option(help="How many to show")] = 20,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Reference date YYYY-MM-DD (default today)")] = None,
) -> None:
    """Show the priority ranking with each factor's points."""
    from twin.analyses.priority import inspection_priority_sync

    s = read_settings()
    try:
        ref = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date YYYY-MM-DD")
    with twin_errors():
        result = inspection_priority_sync(s, municipality_code=municipality, limit=limit, as_of=ref)
    table = Table(title=f"Inspection priority{' ' + municipality if municipality else ''} on {result['as_of']}")
    for col in ("rank", "computed", "establishment", "cat.", "score", "relevance", "compliance", "overdue",
                "surroundings", "override"):
        table.add_column(col, justify="right" if col not in ("establishment", "override") else "left")
    for item in result["ranking"]:
        f = {x["factor"]: x["score"] for x in item["factors"]}
        o = item["override"]
        table.add_row(str(item["rank"]), str(item["computed_rank"]), item["establishment_id"],
                      item["environmental_category"] or "-", f"{item['score']:.1f}",
                      *(f"{f[k]:.1f}" for k in ("relevance", "compliance", "overdue", "surroundings")),
                      f"{o['rank']}: {o['reason']} ({o['author']})" if o else "")
    console.print(table)
    console.print(f"{result['numberReturned']} of {result['numberMatched']} establishments; weights from "
                  f"{result['weights']['source']}")


@priority_app.command("plan")
def plan(
    capacity: Annotated[int, typer.Option("--capacity", help="How many visits the plan holds")],
    random_share: Annotated[float, typer.Option("--random-share", help="Share of the capacity drawn at random "
                                                "from the rest (keeps what the model learns unbiased)")] = 0.1,
    method: Annotated[str | None, typer.Option("--method", help="model, rules or blend (default: "
                                               "TWIN_PRIORITY_METHOD, else rules)")] = None,
    model_id: Annotated[str | None, typer.Option("--model", help="Registry id (default: the newest model)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Data cut-off YYYY-MM-DD (default today): "
                                              "records dated before it")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random share")] = 0,
    show: Annotated[int, typer.Option(help="How many of the plan to print")] = 15,
) -> None:
    """Next year's visit plan, stored dated and versioned (method, model id and version, data cut-off);
    /analysis/inspection-priority?method=... reads it. Advice: the coordinators' overrides stay on top."""
    from twin.model import registry
    from twin.model.plan import make_plan

    s = read_settings()
    chosen = method or s.priority_method
    try:
        cutoff = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        fail(f"--as-of {as_of!r} is not a date YYYY-MM-DD")
    with twin_errors():
        model = registry.load(s.data_dir, model_id) if chosen != "rules" else None
        with _writer(s) as conn:
            result = make_plan(conn, s, method=chosen, capacity=capacity, random_share=random_share,
                               cutoff=cutoff, model=model, seed=seed)
    table = Table(title=f"Visit plan {result['plan_id']} ({chosen}, data before {result['data_cutoff']}"
                        + (f", model {result['model_id']}" if result["model_id"] else "") + ")")
    for col in ("rank", "establishment", "selection", "chance", "rules", "reasons"):
        table.add_column(col, justify="right" if col in ("rank", "chance", "rules") else "left")
    for item in result["items"][:show]:
        p = item["probability"]
        table.add_row(str(item["rank"]), item["establishment_id"], item["selection"],
                      "-" if p is None else f"{p:.0%}", f"{item['rules_score']:.1f}",
                      "; ".join(r["text"] for r in item["reasons"][:3]))
    console.print(table)
    n_random = sum(1 for i in result["items"] if i["selection"] == "random")
    console.print(f"{len(result['items'])} visits ({n_random} drawn at random) of {result['candidates']:,} "
                  f"active establishments; stored as plan {result['plan_id']}")


def register(app: typer.Typer) -> None:
    """Add ``twin priority`` to the ``twin`` command line."""
    app.add_typer(priority_app, name="priority")
