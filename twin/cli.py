"""The ``twin`` command line: the local database, migrations, serving, and the commands that the ingest,
analysis and access modules register."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ingest import cli as ingest_cli
from ingest import demo
from twin import access_cli, analysis_cli, cluster, database, quality_cli
from twin.errors import TwinError
from twin.settings import Settings, get_settings

app = typer.Typer(
    name="twin",
    help="vth-twin: a geospatial digital twin for Dutch permitting, supervision and enforcement (VTH).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: a private PostGIS cluster (or TWIN_DATABASE_URL) and its schema.",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def run_guarded(fn: Callable[[], None]) -> None:
    """Run a command body; a TwinError becomes one clear line and exit code 1."""
    try:
        fn()
    except TwinError as exc:
        fail(exc.message)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic ValidationError: name the setting
        fail(f"invalid TWIN_ setting: {exc}")
        raise


@db_app.command("up")
def db_up() -> None:
    """Create (first time) and start the local PostGIS cluster; wait until it answers. Idempotent."""
    s = _settings()
    if not s.local_cluster:
        console.print("TWIN_DATABASE_URL is set: the twin uses that database; no local cluster is started.")
        return

    def body() -> None:
        with console.status("starting the local PostGIS cluster ..."):
            st = cluster.up(s)
        console.print(f"PostGIS cluster up: PostgreSQL {st.version}, port {st.port}, data {st.pgdata}")

    run_guarded(body)


@db_app.command("down")
def db_down() -> None:
    """Stop the local cluster (its data stays)."""
    s = _settings()
    if not s.local_cluster:
        console.print("TWIN_DATABASE_URL is set: the twin uses that database; there is no local cluster to stop.")
        return

    def body() -> None:
        stopped = cluster.down(s)
        console.print("local cluster stopped" if stopped else "local cluster was not running")

    run_guarded(body)


@db_app.command("status")
def db_status() -> None:
    """Where the database is, whether it runs and whether its schema is current."""
    s = _settings()

    def body() -> None:
        table = Table(show_header=False, box=None)
        if s.local_cluster:
            st = cluster.status(s)
            table.add_row("cluster", "local")
            table.add_row("data folder", str(st.pgdata))
            table.add_row("initialised", "yes" if st.initialised else "no")
            table.add_row("running", "yes" if st.running else "no")
            table.add_row("port", str(st.port))
            table.add_row("socket", str(st.socket_dir))
            running = st.running
        else:
            table.add_row("cluster", "external (TWIN_DATABASE_URL)")
            running = True
        if running:
            try:
                current, head = database.schema_state(database.url_for(s, "owner"))
                table.add_row("schema", f"{current or 'none'} (newest {head})" +
                              (" - run 'twin db migrate'" if current != head else " - current"))
            except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
                table.add_row("schema", f"unreachable: {str(exc).splitlines()[0]}")
        console.print(table)
        if s.local_cluster and not running:
            raise typer.Exit(3)

    run_guarded(body)


@db_app.command("url")
def db_url(
    role: Annotated[str, typer.Option(help="owner, writer, reader or auditor")] = "owner",
    tcp: Annotated[bool, typer.Option(help="A TCP URL with password (local cluster) for tools like QGIS")] = False,
) -> None:
    """Print the connection URL of a role (for psql, ogr2ogr, QGIS)."""
    s = _settings()
    if role not in database.ROLE_NAMES:
        fail(f"unknown role {role!r}: use owner, writer, reader or auditor")

    def body() -> None:
        if tcp and s.local_cluster:
            name = database.ROLE_NAMES[role]
            pw = cluster.role_passwords(s)[name]
            print(f"postgresql://{name}:{pw}@127.0.0.1:{s.pg_port}/{s.database_name}")
        else:
            print(database.url_for(s, role))  # type: ignore[arg-type]

    run_guarded(body)


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest migration (as the owner role). Idempotent."""
    s = _settings()

    def body() -> None:
        before, after = database.migrate(s)
        if before == after:
            console.print(f"schema already current ({after})")
        else:
            console.print(f"schema migrated {before or 'empty'} -> {after}")

    run_guarded(body)


@db_app.command("reset")
def db_reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False) -> None:
    """Delete the local cluster and all its data. Asks first unless --yes."""
    s = _settings()
    if not s.local_cluster:
        fail("TWIN_DATABASE_URL is set: 'twin db reset' only deletes the local cluster; drop your database yourself.")
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to delete the local cluster without confirmation: add --yes")
        typer.confirm(f"Delete the local cluster in {cluster.cluster_paths(s)[0]} and all its data?", abort=True)
    run_guarded(lambda: cluster.reset(s))
    console.print("local cluster deleted")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default TWIN_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default TWIN_PORT, 8000)")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API and the map with uvicorn."""
    import uvicorn

    s = _settings()
    uvicorn.run(
        "api.app:app_from_env", factory=True, host=host or s.host, port=port or s.port, workers=workers,
        log_level="info", proxy_headers=False,
    )


# Commands of the other modules: each exposes register(app) and imports its heavy parts lazily.
for register in (demo.register, ingest_cli.register, analysis_cli.register, access_cli.register,
                 quality_cli.register):
    register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
