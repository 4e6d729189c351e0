"""Base backups and point-in-time recovery of the local cluster (issue 23, docs/scaling.md): ``twin db backup``,
``twin db backup list`` and ``twin db restore --to TIME``.

A backup folder (default ``backups`` next to the primary's data folder, which the cluster's service user can
reach, :func:`twin.cluster.cluster_paths`) holds ``base/<ID>/`` (``pg_basebackup`` in tar format, compressed with
lz4 where the tool exists, else gzip, plus ``backup.json`` with its start and end time and LSN) and ``wal/``, where
PostgreSQL's own WAL archiving copies every finished WAL segment (``archive_command``: a copy that refuses to
overwrite a different file, as in the PostgreSQL manual). A restore replays a base backup and the archived WAL up
to a moment (``recovery_target_time``) and promotes. Archiving needs ``wal_level = replica`` (a restart, shared
with :func:`twin.replication.enable`); the production alternative is pgBackRest (docs/scaling.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from twin import cluster, replication
from twin.errors import ClusterError, InvalidParameter
from twin.settings import Settings

SEGMENT = re.compile(r"^[0-9A-F]{24}$")
ARCHIVED_TO = re.compile(r"test ! -f '([^']+)/%f'")
BLOCK_START, BLOCK_END = "# vth-twin restore (begin)", "# vth-twin restore (end)"
NOT_REACHED = "recovery ended before configured recovery target was reached"


@dataclass
class BaseBackup:
    id: str
    start_time: str  # ISO 8601, UTC: just before pg_basebackup started
    end_time: str  # ISO 8601, UTC: after it finished (a restore to a later moment can use it)
    start_lsn: str
    end_lsn: str
    timeline: int
    compression: str
    size_bytes: int
    path: str = ""  # where it lies (not stored)

    @property
    def end(self) -> datetime:
        return datetime.fromisoformat(self.end_time)


@dataclass
class Restored:
    backup: BaseBackup
    target: datetime
    reached_target: bool  # False: no transaction after the target was archived; replayed to the archive's end
    last_transaction: datetime | None  # the last transaction replayed
    timeline: int
    lsn: str
    moved_aside: Path | None  # the data folder as it was before the restore (None: deleted on request)


def require_local(settings: Settings, running: bool = False) -> None:
    """Backups here are of the local cluster (and, with ``running``, of a running one); else a clear error."""
    if not settings.local_cluster:
        raise ClusterError("TWIN_DATABASE_URL is set: 'twin db backup' and 'twin db restore' work on the local "
                           "cluster; back up an external server with pgBackRest or its provider's backups "
                           "(docs/scaling.md).")
    if running and not cluster.status(settings).running:
        raise ClusterError("the local cluster is not running: start it with 'twin db up'.")


def default_dir(settings: Settings) -> Path:
    """``backups`` next to the primary's data folder (reachable by the cluster's service user)."""
    return cluster.cluster_paths(settings)[0].parent / "backups"


def backup_dir(settings: Settings, directory: Path | None = None) -> Path:
    return (directory or default_dir(settings)).absolute()


def archive_command(directory: Path) -> str:
    """Copy a finished segment into ``<directory>/wal`` under a temporary name and rename it; an existing file is
    only accepted when it is the same (a retry after a crash), never overwritten."""
    wal = directory / "wal"
    return (f"test ! -f '{wal}/%f' && cp %p '{wal}/%f.tmp' && mv '{wal}/%f.tmp' '{wal}/%f' "
            f"|| cmp -s %p '{wal}/%f'")


def restore_command(directory: Path, old_pgdata: Path | None = None) -> str:
    """Fetch a segment from the archive; else from the data folder moved aside, which may hold segments the old
    cluster wrote but had not archived (the manual's advice for a lost server: use them)."""
    command = f"cp '{directory / 'wal'}/%f' %p 2>/dev/null"
    return command + (f" || cp '{old_pgdata / 'pg_wal'}/%f' %p 2>/dev/null" if old_pgdata else "")


def archiving(settings: Settings) -> Path | None:
    """The backup folder the running local cluster archives its WAL into (None: archiving is off)."""
    if cluster._psql(settings, "SHOW archive_mode") == "off":
        return None
    m = ARCHIVED_TO.search(cluster._psql(settings, "SHOW archive_command"))
    return Path(m.group(1)).parent if m else None


def needs_restart(settings: Settings) -> bool:
    """Whether switching archiving on restarts the cluster (wal_level or archive_mode change)."""
    return replication.wal_level(settings) == "minimal" or cluster._psql(settings, "SHOW archive_mode") == "off"


def _prepare(directory: Path) -> None:
    if "'" in str(directory):
        raise ClusterError(f"the backup folder {directory} contains a quote: choose another with --dir.")
    user = cluster.service_user()
    for d in (directory, directory / "base", directory / "wal"):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClusterError(f"cannot create the backup folder {d} ({exc.strerror}): choose another with --dir.") \
                from exc
        if user:
            shutil.chown(d, user, user)
    if not cluster._can_reach(directory, user) or (
            user and subprocess.run(cluster._as_service(["test", "-w", str(directory / "wal")], user)).returncode):
        raise ClusterError(f"the cluster's service user {user} cannot write {directory}: choose a folder it can "
                           "reach with --dir (e.g. under /var/lib).")


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def enable_archiving(settings: Settings, directory: Path | None = None) -> bool:
    """WAL archiving into ``<directory>/wal`` with ``wal_level = replica``; True when the cluster was restarted
    for it (see :func:`needs_restart`). Pointing archiving at another folder only reloads."""
    require_local(settings, running=True)
    d = backup_dir(settings, directory)
    _prepare(d)
    restart = cluster._psql(settings, "SHOW archive_mode") == "off"
    cluster._psql(settings, f"ALTER SYSTEM SET archive_command = {_sql_literal(archive_command(d))}")
    cluster._psql(settings, "ALTER SYSTEM SET archive_mode = 'on'")
    if replication.enable(settings):  # wal_level=replica and WAL senders for pg_basebackup; restarts if minimal
        return True
    if restart:
        replication._restart(settings)
        return True
    cluster._psql(settings, "SELECT pg_reload_conf()")
    return False


def disable_archiving(settings: Settings) -> bool:
    """Archiving off (a restart; True when it was on). Base backups stay, but cannot reach past this moment."""
    require_local(settings, running=True)
    if cluster._psql(settings, "SHOW archive_mode") == "off":
        return False
    cluster._psql(settings, "ALTER SYSTEM SET archive_mode = 'off'")
    cluster._psql(settings, "ALTER SYSTEM RESET archive_command")
    replication._restart(settings)
    return True


def _compression() -> tuple[str, str]:
    """(pg_basebackup --compress, tar option): lz4 costs little CPU; gzip at level 1 where lz4 is missing."""
    if shutil.which("lz4"):
        return "client-lz4", "--use-compress-program=lz4"
    return "client-gzip:1", "--gzip"


def backup(settings: Settings, directory: Path | None = None) -> BaseBackup:
    """A base backup of the whole local cluster into ``<directory>/base/<ID>``; switches WAL archiving on first
    when it is off (which may restart the cluster, :func:`needs_restart`)."""
    require_local(settings, running=True)
    d = backup_dir(settings, directory)
    current = archiving(settings)
    if current is None:
        enable_archiving(settings, d)
    elif current != d:
        raise ClusterError(f"WAL archiving goes to {current}: back up there (--dir {current}), or move archiving "
                           f"first with 'twin db backup --enable-archiving --dir {d}'.")
    else:
        _prepare(d)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ident, n = stamp, 1
    while (d / "base" / ident).exists():
        n += 1
        ident = f"{stamp}-{n}"
    target = d / "base" / ident
    compress, _ = _compression()
    _, sock = cluster.cluster_paths(settings)
    bindir = cluster.find_bindir(settings)
    start = datetime.now(UTC)
    res = subprocess.run(cluster._as_service(
        [str(bindir / "pg_basebackup"), "-h", str(sock), "-p", str(settings.pg_port), "-U", cluster.SUPERUSER,
         "-D", str(target), "-F", "tar", "-X", "stream", "-c", "fast", f"--compress={compress}", "--no-password"],
        cluster.service_user()), capture_output=True, text=True)
    end = datetime.now(UTC)
    if res.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise ClusterError(f"pg_basebackup failed: {res.stderr.strip() or res.stdout.strip()}")
    ranges = json.loads((target / "backup_manifest").read_text(encoding="utf-8"))["WAL-Ranges"]
    item = BaseBackup(ident, start.isoformat(), end.isoformat(), ranges[0]["Start-LSN"], ranges[-1]["End-LSN"],
                      int(ranges[-1]["Timeline"]), compress.removeprefix("client-"),
                      sum(f.stat().st_size for f in target.iterdir()))
    (target / "backup.json").write_text(json.dumps(asdict(item), indent=2) + "\n", encoding="utf-8")
    item.path = str(target)
    return item


def backups(settings: Settings, directory: Path | None = None) -> list[BaseBackup]:
    """The base backups in a backup folder, oldest first."""
    found = []
    for meta in (backup_dir(settings, directory) / "base").glob("*/backup.json"):
        data = json.loads(meta.read_text(encoding="utf-8"))
        data["path"] = str(meta.parent)
        found.append(BaseBackup(**data))
    return sorted(found, key=lambda b: b.end)


def parse_time(text: str) -> datetime:
    """An ISO 8601 moment (``2026-12-07T10:15:00+01:00``, ``... Z``); without an offset: this machine's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InvalidParameter(f"cannot read {text!r} as a time: use ISO 8601, e.g. 2026-12-07T10:15:00+01:00.",
                               parameter="to") from exc
    return moment.astimezone() if moment.tzinfo is None else moment


def choose(settings: Settings, to: datetime, backup_id: str | None = None,
           directory: Path | None = None) -> BaseBackup:
    """The base backup to restore ``to`` from: the newest that ended before it, or ``backup_id``; clear errors
    for a moment in the future, a folder without archived WAL, and no backup before the moment."""
    now = datetime.now(UTC)
    if to > now:
        raise InvalidParameter(f"{to.isoformat()} is in the future (now it is {now.isoformat(timespec='seconds')}).",
                               parameter="to")
    d = backup_dir(settings, directory)
    if not (d / "wal").is_dir():
        raise ClusterError(f"WAL archiving was never enabled for {d}: nothing to restore from. 'twin db backup' "
                           "switches it on and makes the first base backup.")
    found = backups(settings, d)
    if backup_id is not None:
        picked = [b for b in found if b.id == backup_id]
        if not picked:
            raise ClusterError(f"no base backup {backup_id!r} in {d} ('twin db backup list').")
        if picked[0].end > to:
            raise ClusterError(f"base backup {backup_id} ended at {picked[0].end_time}, after {to.isoformat()}: "
                               "choose an older one, or a later time.")
        return picked[0]
    before = [b for b in found if b.end <= to]
    if not before:
        oldest = f" (the oldest ended at {found[0].end_time})" if found else ""
        raise ClusterError(f"no base backup in {d} ended before {to.isoformat()}{oldest}: a restore cannot go back "
                           "further than the oldest base backup.")
    return before[-1]


def archive_now(settings: Settings, directory: Path | None = None, timeout_s: float = 60.0) -> str:
    """Close the current WAL segment and wait until it is archived; returns its name. A small transaction first,
    so that the archive always holds a commit after any earlier moment (recovery to a time stops at the first
    commit after it)."""
    d = backup_dir(settings, directory)
    cluster._psql(settings, "SELECT txid_current()")
    segment = cluster._psql(settings, "SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + timeout_s
    while not (d / "wal" / segment).exists():
        if time.monotonic() > deadline:
            raise ClusterError(f"WAL segment {segment} was not archived into {d / 'wal'} within {timeout_s:.0f} s: "
                               "see the cluster's log (archive_command).")
        time.sleep(0.1)
    return segment


def _run_as_service(cmd: list[str], what: str) -> None:
    res = subprocess.run(cluster._as_service(cmd, cluster.service_user()), capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"{what} failed: {res.stderr.strip() or res.stdout.strip()}")


def _extract(b: BaseBackup, pgdata: Path) -> None:
    user = cluster.service_user()
    pgdata.mkdir(parents=True)
    if user:
        shutil.chown(pgdata, user, user)
    pgdata.chmod(0o700)
    src = Path(b.path)
    for tarball in sorted(src.glob("*.tar*")):
        into = pgdata / "pg_wal" if tarball.name.startswith("pg_wal.") else pgdata
        option = "--use-compress-program=lz4" if tarball.suffix == ".lz4" else \
            "--gzip" if tarball.suffix == ".gz" else "--no-auto-compress"
        _run_as_service(["tar", "-x", option, "-f", str(tarball), "-C", str(into)], f"unpacking {tarball}")


def _strip_block(conf: Path) -> list[str]:
    lines, inside = [], False
    for line in conf.read_text(encoding="utf-8").splitlines():
        if line == BLOCK_START:
            inside = True
        elif line == BLOCK_END:
            inside = False
        elif not inside:
            lines.append(line)
    return lines


def _write_recovery(pgdata: Path, d: Path, old: Path | None, to: datetime | None) -> None:
    conf = pgdata / "postgresql.auto.conf"
    lines = [*_strip_block(conf), BLOCK_START, f"restore_command = {_sql_literal(restore_command(d, old))}",
             "recovery_target_timeline = 'latest'"]
    if to is not None:
        stamp = to.astimezone(UTC).isoformat(sep=" ")
        lines += [f"recovery_target_time = '{stamp}'", "recovery_target_action = 'promote'"]
    conf.write_text("\n".join([*lines, BLOCK_END]) + "\n", encoding="utf-8")
    signal = pgdata / "recovery.signal"
    signal.touch()
    user = cluster.service_user()
    if user:
        shutil.chown(signal, user, user)


def _start_and_promote(settings: Settings, timeout_s: float) -> tuple[bool, str]:
    """Start the restored cluster and wait for the end of recovery: (promoted, the log written meanwhile)."""
    pgdata, sock = cluster.cluster_paths(settings)
    log = pgdata.parent / "postgres.log"
    offset = log.stat().st_size if log.exists() else 0
    cluster._pg_ctl(settings, "start", "-w", "-t", str(int(timeout_s)), "-l", str(log),
                    "-o", f"-p {settings.pg_port} -k {sock}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cluster._pg_ctl(settings, "status").returncode != 0:
            break  # recovery failed and the server stopped
        try:
            if cluster._psql(settings, "SELECT pg_is_in_recovery()") == "f":
                return True, ""
        except ClusterError:
            pass  # not accepting connections yet
        time.sleep(0.2)
    with log.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    if cluster._pg_ctl(settings, "status").returncode == 0:
        cluster._pg_ctl(settings, "stop", "-m", "immediate", "-w")
    return False, text


def restore(settings: Settings, to: datetime, backup_id: str | None = None, directory: Path | None = None,
            discard_old: bool = False, timeout_s: float = 3600.0,
            say: Callable[[str], None] = lambda _: None) -> Restored:
    """Point-in-time recovery of the local cluster to ``to``: archive the current WAL (when the cluster runs), stop
    it, move its data folder aside, unpack the newest base backup that ended before ``to``, replay the archived WAL
    up to ``to`` and promote. The folder moved aside is kept unless ``discard_old``; when the restore fails, it is
    put back and started again."""
    require_local(settings)
    d = backup_dir(settings, directory)
    b = choose(settings, to, backup_id, d)
    if replication.replicas(settings):
        raise ClusterError("local replicas exist; they cannot follow a restored primary: remove them first ('twin db "
                           "replica remove NAME') and add them again after the restore.")
    pgdata, _ = cluster.cluster_paths(settings)
    if "'" in str(pgdata):
        raise ClusterError(f"the data folder {pgdata} contains a quote, which restore_command cannot carry.")
    was_running = cluster.status(settings).running
    if was_running:
        say("archiving the current WAL segment and stopping the cluster")
        if archiving(settings) == d:
            archive_now(settings, d)
        cluster.down(settings)
    aside = None
    if pgdata.exists():
        aside = pgdata.with_name(f"{pgdata.name}.before-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
        pgdata.rename(aside)
        say(f"the data folder moved aside to {aside}")
    try:
        say(f"unpacking base backup {b.id}")
        _extract(b, pgdata)
        _write_recovery(pgdata, d, aside, to)
        say(f"replaying archived WAL up to {to.isoformat()}")
        promoted, log = _start_and_promote(settings, timeout_s)
        reached = promoted
        if not promoted and NOT_REACHED in log:
            # Nothing committed after ``to`` was archived: the end of the archive is the state at ``to``.
            say("no transaction after that moment was archived: replaying to the end of the archive")
            _write_recovery(pgdata, d, aside, None)
            promoted, log = _start_and_promote(settings, timeout_s)
        if not promoted:
            lines = [ln for ln in log.splitlines() if "FATAL" in ln or "ERROR" in ln or "LOG:  recovery" in ln][-4:]
            raise ClusterError(f"recovery from base backup {b.id} did not complete: {' | '.join(lines) or 'timeout'}")
    except BaseException:
        if cluster._pg_ctl(settings, "status").returncode == 0:
            cluster._pg_ctl(settings, "stop", "-m", "immediate", "-w")
        shutil.rmtree(pgdata, ignore_errors=True)
        if aside is not None:
            aside.rename(pgdata)
            say(f"restore failed: the previous data folder is back in {pgdata}")
            if was_running:
                cluster.up(settings)
        raise
    row = cluster._psql(settings, "SELECT pg_last_xact_replay_timestamp(), pg_current_wal_lsn(), "
                                  "pg_walfile_name(pg_current_wal_lsn())").split("|")
    _write_back(settings, pgdata)
    last = datetime.fromisoformat(row[0]) if row[0] else None
    if discard_old and aside is not None:
        shutil.rmtree(aside)
        aside = None
    return Restored(b, to, reached, last, int(row[2][:8], 16), row[1], aside)


def _write_back(settings: Settings, pgdata: Path) -> None:
    """Take the recovery settings out again, so that they do not linger in the running cluster's configuration."""
    for name in ("restore_command", "recovery_target_time", "recovery_target_action", "recovery_target_timeline"):
        cluster._psql(settings, f"ALTER SYSTEM RESET {name}")
    cluster._psql(settings, "SELECT pg_reload_conf()")
