"""``twin db ...``: the local PostGIS cluster (or TWIN_DATABASE_URL) and its schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, read_settings, twin_errors
from twin import backup, cluster, database, replication
from twin.settings import default_data_dir

db_app = typer.Typer(help="The database: a private PostGIS cluster (or TWIN_DATABASE_URL) and its schema.",
                     no_args_is_help=True)
console = Console()


@db_app.command("up")
def db_up() -> None:
    """Create (first time) and start the local PostGIS cluster; wait until it answers. Idempotent."""
    s = read_settings()
    if not s.local_cluster:
        console.print("TWIN_DATABASE_URL is set: the twin uses that database; no local cluster is started.")
        return
    with twin_errors():
        with console.status("starting the local PostGIS cluster ..."):
            st = cluster.up(s)
        console.print(f"PostGIS cluster up: PostgreSQL {st.version}, port {st.port}, data {st.pgdata}")
        for r in replication.replicas(s):
            if not replication.state(s, r).running:
                replication.start(s, r)
                console.print(f"replica {r.name} up: port {r.port}")


@db_app.command("down")
def db_down() -> None:
    """Stop the local cluster (its data stays)."""
    s = read_settings()
    if not s.local_cluster:
        console.print("TWIN_DATABASE_URL is set: the twin uses that database; there is no local cluster to stop.")
        return
    with twin_errors():
        for r in replication.replicas(s):
            if replication.stop(s, r):
                console.print(f"replica {r.name} stopped")
        stopped = cluster.down(s)
        console.print("local cluster stopped" if stopped else "local cluster was not running")


@db_app.command("status")
def db_status() -> None:
    """Where the database is, whether it runs and whether its schema is current."""
    s = read_settings()
    with twin_errors():
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
            console.print(f"no running cluster in {s.data_dir.resolve()} (TWIN_DATA_DIR, default "
                          f"{default_data_dir()}): start it with 'twin db up'")
            raise typer.Exit(3)


@db_app.command("url")
def db_url(
    role: Annotated[str, typer.Option(help="owner, writer, reader or auditor")] = "owner",
    tcp: Annotated[bool, typer.Option(help="A TCP URL with password (local cluster) for tools like QGIS")] = False,
) -> None:
    """Print the connection URL of a role (for psql, ogr2ogr, QGIS)."""
    s = read_settings()
    if role not in database.ROLE_NAMES:
        fail(f"unknown role {role!r}: use owner, writer, reader or auditor")
    with twin_errors():
        if tcp and s.local_cluster:
            name = database.ROLE_NAMES[role]
            pw = cluster.role_passwords(s)[name]
            print(f"postgresql://{name}:{pw}@127.0.0.1:{s.pg_port}/{s.database_name}")
        else:
            print(database.url_for(s, role))  # type: ignore[arg-type]


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest migration (as the owner role). Idempotent."""
    s = read_settings()
    with twin_errors():
        before, after = database.migrate(s)
        if before == after:
            console.print(f"schema already current ({after})")
        else:
            console.print(f"schema migrated {before or 'empty'} -> {after}")


@db_app.command("reset")
def db_reset(yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False) -> None:
    """Delete the local cluster and all its data. Asks first unless --yes."""
    s = read_settings()
    if not s.local_cluster:
        fail("TWIN_DATABASE_URL is set: 'twin db reset' only deletes the local cluster; drop your database yourself.")
    if not yes:
        if not sys.stdin.isatty():
            fail("refusing to delete the local cluster without confirmation: add --yes")
        typer.confirm(f"Delete the local cluster in {cluster.cluster_paths(s)[0]} and all its data?", abort=True)
    with twin_errors():
        for r in replication.replicas(s):
            replication.remove(s, r.name)
        cluster.reset(s)
    console.print("local cluster deleted")


replica_app = typer.Typer(
    help="Hot standbys of the local cluster (streaming replication) for the API's reads (TWIN_READER_URLS); "
    "see docs/scaling.md.", no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


@replica_app.command("add")
def replica_add(
    name: Annotated[str | None, typer.Argument(help="Name of the replica (default r1, r2, ...)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: the next free one after the primary's)")] = None,
    source: Annotated[str | None, typer.Option("--from", help="libpq URL of a primary on another host (a role with "
                                               "REPLICATION); default: the local cluster")] = None,
) -> None:
    """Make a hot standby with pg_basebackup and start it. The local primary is switched to wal_level=replica
    first, which needs a restart (said when it happens); loads then write WAL (README, performance)."""
    s = read_settings()
    with twin_errors():
        if source is None and s.local_cluster and replication.wal_level(s) == "minimal":
            console.print("[yellow]the primary runs wal_level=minimal, which cannot feed a replica: switching it to "
                          "wal_level=replica and RESTARTING it now (open connections are dropped; first loads will "
                          "write WAL from now on).[/yellow]")
        with console.status("copying the primary with pg_basebackup ..."):
            r = replication.add(s, name, port, source)
        st = replication.state(s, r)
        console.print(f"replica {r.name} up on port {r.port} (standby: {st.in_recovery}, lag {st.lag_s} s)")
        console.print("read from it with:")
        print(f"TWIN_READER_URLS={replication.url(s, r)}")


@replica_app.command("list")
def replica_list() -> None:
    """The local replicas: port, running, lag."""
    s = read_settings()
    with twin_errors():
        table = Table("name", "port", "running", "standby", "lag (s)", "URL")
        for r in replication.replicas(s):
            st = replication.state(s, r)
            table.add_row(r.name, str(r.port), "yes" if st.running else "no",
                          "-" if st.in_recovery is None else ("yes" if st.in_recovery else "NO (promoted?)"),
                          "-" if st.lag_s is None else f"{st.lag_s:.1f}", replication.url(s, r))
        console.print(table)
        if s.local_cluster:
            console.print(f"primary: wal_level={replication.wal_level(s)}")


@replica_app.command("remove")
def replica_remove(name: Annotated[str, typer.Argument(help="Name of the replica")]) -> None:
    """Stop a replica and delete its data (the primary keeps wal_level=replica; see 'replica off')."""
    s = read_settings()
    with twin_errors():
        replication.remove(s, name)
    console.print(f"replica {name} removed; remove it from TWIN_READER_URLS too")


@replica_app.command("off")
def replica_off() -> None:
    """Switch the local primary back to wal_level=minimal (fast first loads), with a restart; no replica may be
    left."""
    s = read_settings()
    with twin_errors():
        restarted = replication.disable(s)
    console.print("primary restarted with wal_level=minimal" if restarted else "primary runs wal_level=minimal already")


backup_app = typer.Typer(
    help="Base backups and WAL archiving of the local cluster, for point-in-time recovery ('twin db restore'); "
    "see docs/scaling.md.", invoke_without_command=True)
db_app.add_typer(backup_app, name="backup")
DirOption = Annotated[Path | None, typer.Option("--dir", help="Backup folder (default: backups next to the cluster's "
                                                "data folder)")]


@backup_app.callback()
def backup_run(
    ctx: typer.Context,
    directory: DirOption = None,
    enable_archiving: Annotated[bool, typer.Option("--enable-archiving", help="Only switch WAL archiving on (into "
                                                   "DIR/wal), without a base backup")] = False,
    disable_archiving: Annotated[bool, typer.Option("--disable-archiving", help="Switch WAL archiving off (restart); "
                                                    "restores can then not go past this moment")] = False,
) -> None:
    """Make a base backup (pg_basebackup, compressed) into DIR/base/ID. The first one switches on WAL archiving
    into DIR/wal, with wal_level=replica, which restarts the cluster (said when it happens)."""
    if ctx.invoked_subcommand is not None:
        return
    s = read_settings()
    with twin_errors():
        if disable_archiving:
            restarted = backup.disable_archiving(s)
            console.print("WAL archiving switched off; the cluster was restarted" if restarted
                          else "WAL archiving was off")
            return
        backup.require_local(s, running=True)
        d = backup.backup_dir(s, directory)
        if (enable_archiving or backup.archiving(s) is None) and backup.needs_restart(s):
            console.print("[yellow]WAL archiving needs archive_mode=on and wal_level=replica: RESTARTING the cluster "
                          "now (open connections are dropped; first loads will write WAL from now on).[/yellow]")
        if enable_archiving:
            restarted = backup.enable_archiving(s, d)
            console.print(f"WAL archiving into {d / 'wal'}" + (" (cluster restarted)" if restarted else ""))
            return
        with console.status("base backup with pg_basebackup ..."):
            b = backup.backup(s, d)
        console.print(f"base backup {b.id}: {b.size_bytes / 1e6:.1f} MB ({b.compression}) in {b.path}, "
                      f"LSN {b.start_lsn} - {b.end_lsn}; WAL archived into {d / 'wal'}")
        console.print("restore to any later moment with: twin db restore --to TIME")


@backup_app.command("list")
def backup_list(directory: DirOption = None) -> None:
    """The base backups: start and end time, LSN, size; and where WAL is archived."""
    s = read_settings()
    with twin_errors():
        d = backup.backup_dir(s, directory)
        table = Table("id", "start (UTC)", "end (UTC)", "start LSN", "end LSN", "timeline", "MB")
        items = backup.backups(s, d)
        for b in items:
            table.add_row(b.id, b.start_time[:19], b.end_time[:19], b.start_lsn, b.end_lsn, str(b.timeline),
                          f"{b.size_bytes / 1e6:.1f}")
        console.print(table)
        wal = d / "wal"
        segments = sorted(p.name for p in wal.glob("*") if backup.SEGMENT.match(p.name)) if wal.is_dir() else []
        console.print(f"{len(items)} base backups in {d}; " + (
            f"{len(segments)} archived WAL segments (newest {segments[-1]})" if segments
            else "no archived WAL segments"))
        if s.local_cluster and cluster.status(s).running:
            to = backup.archiving(s)
            console.print(f"WAL archiving: {'off' if to is None else 'into ' + str(to / 'wal')}")


@db_app.command("restore")
def db_restore(
    to: Annotated[str, typer.Option("--to", help="The moment to restore, ISO 8601 (2026-12-07T10:15:00+01:00; "
                                    "without an offset: this machine's time zone)")],
    backup_id: Annotated[str | None, typer.Option("--backup", help="Base backup ID (default: the newest that "
                                                  "ended before --to)")] = None,
    directory: DirOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    discard_old: Annotated[bool, typer.Option("--discard-old", help="Delete the data folder moved aside once the "
                                              "restore succeeded (with --yes, or after the question)")] = False,
) -> None:
    """Point-in-time recovery: stop the cluster, move its data folder aside (kept unless --discard-old), unpack the
    newest base backup before --to, replay the archived WAL up to --to, promote and start."""
    s = read_settings()
    with twin_errors():
        backup.require_local(s)
        moment = backup.parse_time(to)
        b = backup.choose(s, moment, backup_id, directory)
        pgdata = cluster.cluster_paths(s)[0]
        if not yes:
            if not sys.stdin.isatty():
                fail("refusing to replace the local cluster without confirmation: add --yes")
            typer.confirm(f"Stop the cluster, move {pgdata} aside{' and DELETE it afterwards' if discard_old else ''}"
                          f", and restore it to {moment.isoformat()} from base backup {b.id}?", abort=True)
        r = backup.restore(s, moment, b.id, directory, discard_old=discard_old,
                           say=lambda m: console.print(f"  {m}"))
        last = r.last_transaction.isoformat() if r.last_transaction else "none replayed"
        console.print(f"restored to {r.target.isoformat()} from base backup {r.backup.id}: last transaction "
                      f"{last}, timeline {r.timeline}, LSN {r.lsn}")
        if not r.reached_target:
            console.print("[yellow]no transaction after that moment was archived: replayed to the end of the archive"
                          "[/yellow]")
        if r.moved_aside:
            console.print(f"the previous data folder is kept in {r.moved_aside}; delete it when no longer needed")
        else:
            console.print("the previous data folder was deleted (--discard-old)")


def register(app: typer.Typer) -> None:
    """Add ``twin db`` to the ``twin`` command line."""
    app.add_typer(db_app, name="db")
