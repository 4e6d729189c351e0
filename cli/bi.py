"""``twin bi ...``: the BI feeds (docs/bi.md): login roles for Power BI, Tableau, Superset or Metabase on the ``bi``
schema's views, and exports of those views as GeoParquet and CSV, masked as the organisation's role sees them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import err, fail, read_settings, twin_errors
from twin import database


@contextmanager
def bi_errors() -> Iterator[None]:
    """Database errors a BI command meets in practice, as one clear line: a schema from before the bi views, an
    owner without CREATEROLE."""
    with twin_errors():
        try:
            yield
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedFunction):
            fail("this database has no bi schema yet: run 'twin db migrate' first")
        except psycopg.errors.InsufficientPrivilege as exc:
            fail(f"the owner role may not do this ({str(exc).splitlines()[0]}): BI roles are made by the "
                 "database's owner, which needs CREATEROLE")


bi_app = typer.Typer(
    help="BI feeds: login roles that read the versioned views of the bi schema (what the API shows their "
    "organisation), and GeoParquet/CSV exports of those views (docs/bi.md).",
    no_args_is_help=True,
)
console = Console()


@bi_app.command("grant")
def grant_cmd(
    org: Annotated[str | None, typer.Option("--org", help="Organisation code: the role sees what the API shows "
                                                          "this organisation's inspectors")] = None,
    public: Annotated[bool, typer.Option("--public", help="A role without organisation: sees what an anonymous "
                                                          "caller sees")] = False,
    role: Annotated[str | None, typer.Option("--role", help="Login role name (default twin_bi_<org> or "
                                                            "twin_bi_public)")] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file", help="Read the password from this file "
                                                       "(first line) instead of generating one")] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Give an existing role a new generated "
                                                          "password")] = False,
    host: Annotated[str | None, typer.Option(help="Host name BI tools reach the database at (for the printed "
                                                  "URL)")] = None,
) -> None:
    """Create (or keep) a login role for a BI tool, member of twin_bi, and print its connection URL. A
    generated password is shown once, here, and stored nowhere (PostgreSQL keeps a SCRAM verifier)."""
    from twin.monitoring import bi

    if (org is None) == (not public):
        fail("give exactly one of --org CODE or --public")
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError):
            fail(f"--password-file {password_file} cannot be read or is empty")
        if len(password) < 12:
            fail(f"the password in {password_file} is shorter than 12 characters")
    s = read_settings()
    owner = database.url_for(s, "owner")
    with bi_errors():
        with database.connect(owner) as conn:
            result = bi.grant(conn, org, role, password, rotate)
            conn.commit()
    r = result.role
    tcp_port = s.pg_port if s.local_cluster else None
    shown = result.password if password_file is None else None
    url = bi.connection_url(owner, r.role_name, shown, host=host or ("127.0.0.1" if s.local_cluster else None),
                            port=tcp_port)
    what = f"organisation {r.org_code}" if r.org_code else "the public (what an anonymous caller sees)"
    console.print(f"{'created' if result.created else 'kept'} login role [bold]{r.role_name}[/] for {what}, "
                  f"member of {bi.BI_ROLE}, read-only.", highlight=False)
    if shown:
        console.print("password (shown once, stored nowhere):", highlight=False)
    elif password_file is not None:
        console.print(f"password: as in {password_file}", highlight=False)
    else:
        console.print("password unchanged (--rotate gives a new one)", highlight=False)
    console.print(url, highlight=False, soft_wrap=True)


@bi_app.command("revoke")
def revoke_cmd(role: Annotated[str, typer.Argument(help="The login role (see 'twin bi list')")]) -> None:
    """Drop a BI login role and its registration; its open sessions end with their connection."""
    from twin.monitoring import bi

    s = read_settings()
    with bi_errors():
        with database.connect(database.url_for(s, "owner")) as conn:
            r = bi.revoke(conn, role)
            conn.commit()
    console.print(f"revoked {r.role_name} ({r.org_code or 'public'})", highlight=False)


@bi_app.command("list")
def list_cmd() -> None:
    """The BI login roles: organisation (public: none), the database they were granted in, since when."""
    from twin.monitoring import bi

    s = read_settings()
    with bi_errors():
        with database.connect(database.url_for(s, "owner")) as conn:
            roles = bi.list_roles(conn)
    table = Table(title=f"BI login roles ({len(roles)})")
    for col in ("role", "organisation", "database", "granted"):
        table.add_column(col)
    for r in roles:
        table.add_row(r.role_name, r.org_code or "public", r.database or "?",
                      r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "")
    console.print(table)


@bi_app.command("export")
def export_cmd(
    directory: Annotated[Path, typer.Argument(help="Folder to write the files and manifest.json into")],
    org: Annotated[str | None, typer.Option("--org", help="Export as this organisation's BI role sees "
                                                          "the views")] = None,
    public: Annotated[bool, typer.Option("--public", help="Public export: only what passes the public "
                                                          "disclosure control (docs/bi.md)")] = False,
    formats: Annotated[str, typer.Option("--format", help="geoparquet, csv or both, comma-separated")]
    = "geoparquet,csv",
) -> None:
    """Write every bi view (the public ones with --public) as GeoParquet 1.1 (WKB geometry in EPSG:4326 with a
    bbox covering column) and CSV (lon/lat, RD x/y and WKT), from one snapshot, masked by the views themselves,
    with a manifest.json (view, version, rows, sha256, data version, generated at)."""
    from twin.monitoring import bi

    if (org is None) == (not public):
        fail("give exactly one of --org CODE or --public")
    try:
        wanted = bi.parse_formats(formats)
    except Exception as exc:
        fail(str(getattr(exc, "message", exc)))
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} exists and is not a folder")
    s = read_settings()
    with bi_errors():
        with database.connect(database.url_for(s, "owner")) as conn:
            with Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(view: str, rows: int, total: int | None) -> None:
                    if view not in tasks:
                        tasks[view] = bar.add_task(view, total=None)
                    bar.update(tasks[view], completed=rows, total=total)

                try:
                    result = bi.export(conn, directory, org, wanted, progress)
                except OSError as exc:
                    fail(f"cannot write to {directory}: {exc.strerror or exc}")
    table = Table(title=f"bi export for {org or 'the public'} into {directory}")
    for col in ("view", "version", "rows", *wanted):
        table.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for v in result.views:
        table.add_row(v.view, str(v.version), f"{v.rows:,}",
                      *(f"{v.files[f]['path']} ({v.files[f]['bytes'] / 1e6:.1f} MB)" for f in wanted))
    console.print(table)
    console.print(f"manifest: {result.manifest_path}", highlight=False)


@bi_app.command("contract")
def contract_cmd(
    check: Annotated[bool, typer.Option("--check", help="Compare the database's bi views with the contract; "
                                                        "exit 1 on a difference")] = False,
) -> None:
    """Print the views and their columns from layers/data/bi_contract.json as Markdown (docs/bi.md), or check
    the database against it."""
    from twin.monitoring import bi

    if not check:
        print(bi.contract_markdown())
        return
    s = read_settings()
    with bi_errors():
        with database.connect(database.url_for(s, "owner")) as conn:
            problems = bi.contract_problems(conn)
    if problems:
        fail("the bi views differ from their contract:\n" + "\n".join(f"  {p}" for p in problems))
    console.print("the bi views match layers/data/bi_contract.json", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(bi_app, name="bi")
