"""Hot standbys of the local cluster (issue 23, docs/scaling.md): ``twin db replica add|list|remove|off``.

A replica is a physical copy made with ``pg_basebackup -R`` that streams the primary's WAL (PostgreSQL's own
streaming replication); it runs from ``replicas/<name>`` next to the primary's data folder on its own port and
answers read-only queries (hot standby). The same roles, passwords and row-level security exist there, since the
copy is of the whole cluster. The API sends its reads to the replicas named in ``TWIN_READER_URLS``
(:mod:`api.replicas`).

Streaming needs ``wal_level = replica``; the single local cluster runs ``minimal`` so that a first load into an
empty table writes no WAL (migration 0008). :func:`enable` switches the primary, which PostgreSQL only accepts
at a restart; :func:`disable` switches it back once no replica is left. Against a primary on another host, make
the standby with the same pg_basebackup call (``--from URL``, a role with REPLICATION) on that host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from twin import cluster
from twin.errors import ClusterError
from twin.settings import Settings

# Lag as PostgreSQL reports it on a standby: 0 when everything received is replayed (an idle primary sends
# nothing, so the time since the last replayed transaction would read as lag), else the age of the last replayed
# transaction. NULL lag: not a standby.
LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8
"""


@dataclass
class Replica:
    name: str
    port: int
    pgdata: str
    socket_dir: str
    source: str  # what it streams from (the primary's socket and port, or --from URL)


@dataclass
class ReplicaState:
    replica: Replica
    running: bool
    in_recovery: bool | None
    lag_s: float | None
    error: str | None = None


def _root(settings: Settings) -> Path:
    """Next to the primary's data folder (which the cluster's service user can reach, twin.cluster)."""
    return cluster.cluster_paths(settings)[0].parent / "replicas"


def _registry(settings: Settings) -> Path:
    return _root(settings) / "replicas.json"


def replicas(settings: Settings) -> list[Replica]:
    """The local replicas, as ``add`` recorded them."""
    path = _registry(settings)
    if not path.exists():
        return []
    return [Replica(**r) for r in json.loads(path.read_text(encoding="utf-8"))]


def _save(settings: Settings, items: list[Replica]) -> None:
    _root(settings).mkdir(parents=True, exist_ok=True)
    _registry(settings).write_text(json.dumps([asdict(r) for r in items], indent=2) + "\n", encoding="utf-8")
    _registry(settings).chmod(0o600)


def wal_level(settings: Settings) -> str:
    return cluster._psql(settings, "SHOW wal_level")


def _restart(settings: Settings) -> None:
    pgdata, sock = cluster.cluster_paths(settings)
    # -l: the server's output to its log (without it the server would hold our pipe open)
    res = cluster._pg_ctl(settings, "restart", "-w", "-m", "fast", "-t", "120",
                          "-l", str(pgdata.parent / "postgres.log"), "-o", f"-p {settings.pg_port} -k {sock}")
    if res.returncode != 0:
        raise ClusterError(f"restarting the local PostgreSQL failed: {res.stderr.strip() or res.stdout.strip()}")
    cluster._wait_ready(settings, 60)


def enable(settings: Settings) -> bool:
    """``wal_level = replica`` on the local primary (True: it was restarted for it)."""
    if wal_level(settings) != "minimal":
        return False
    cluster._psql(settings, "ALTER SYSTEM SET wal_level = 'replica'")
    cluster._psql(settings, "ALTER SYSTEM SET max_wal_senders = 10")
    # Keep enough WAL for a standby that falls behind for a while (a restart, a long load) to catch up.
    cluster._psql(settings, "ALTER SYSTEM SET wal_keep_size = '1GB'")
    _restart(settings)
    return True


def disable(settings: Settings) -> bool:
    """Back to ``wal_level = minimal`` (True: restarted). Refused while local replicas exist."""
    if replicas(settings):
        raise ClusterError("local replicas exist: remove them first ('twin db replica remove NAME').")
    if wal_level(settings) == "minimal":
        return False
    if cluster._psql(settings, "SHOW archive_mode") != "off":  # PostgreSQL would not start again
        raise ClusterError("WAL archiving is on (twin db backup), which needs wal_level=replica: switch it off first "
                           "('twin db backup --disable-archiving').")
    cluster._psql(settings, "ALTER SYSTEM SET wal_level = 'minimal'")
    cluster._psql(settings, "ALTER SYSTEM SET max_wal_senders = 0")
    cluster._psql(settings, "ALTER SYSTEM RESET wal_keep_size")
    _restart(settings)
    return True


def _free_port(settings: Settings, taken: set[int]) -> int:
    port = settings.pg_port + 1
    while port in taken or not cluster._port_free(port):
        port += 1
    return port


def add(settings: Settings, name: str | None = None, port: int | None = None, source_url: str | None = None) -> Replica:
    """Make and start a hot standby: ``pg_basebackup -R`` of the primary (the local cluster, or ``source_url``)
    into ``replicas/<name>`` next to its data folder, on ``port`` (default: the next free one after the primary's)."""
    existing = replicas(settings)
    name = name or f"r{len(existing) + 1}"
    if not name.isidentifier():
        raise ClusterError(f"invalid replica name {name!r}: use letters, digits and _")
    if any(r.name == name for r in existing):
        raise ClusterError(f"a replica named {name!r} exists already ('twin db replica list').")
    port = port or _free_port(settings, {r.port for r in existing})
    if not cluster._port_free(port):
        raise ClusterError(f"port {port} on 127.0.0.1 is in use: choose another with --port.")
    bindir = cluster.find_bindir(settings)
    user = cluster.service_user()
    base = _root(settings) / name
    pgdata, sock = base / "pgdata", base / "run"
    if base.exists():
        raise ClusterError(f"{base} exists already: remove it or choose another name.")
    for d in (base, sock):
        d.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(d, user, user)
    _, primary_sock = cluster.cluster_paths(settings)
    if source_url is None:
        if not settings.local_cluster:
            raise ClusterError("TWIN_DATABASE_URL is set: give the primary to copy with --from URL (a role with "
                               "REPLICATION).")
        enable(settings)
        source = f"host={primary_sock} port={settings.pg_port} user={cluster.SUPERUSER}"
    else:
        source = source_url
    # A password in the URL goes to pg_basebackup in its environment, never on its command line (ps shows that)
    # nor into replicas.json; -R writes what the standby needs into its own postgresql.auto.conf (mode 0600).
    parts = conninfo_to_dict(source)
    password = parts.pop("password", None)
    source = make_conninfo("", **parts)
    cmd = cluster._as_service([str(bindir / "pg_basebackup"), "-d", source, "-D", str(pgdata), "-X", "stream",
                               "-R", "-c", "fast", "--no-password"], user)
    env = {**os.environ, "PGPASSWORD": str(password)} if password else None
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise ClusterError(f"pg_basebackup failed: {res.stderr.strip() or res.stdout.strip()}")
    with (pgdata / "postgresql.auto.conf").open("a") as fh:
        fh.write(f"# vth-twin replica {name}\nunix_socket_directories = '{sock}'\nhot_standby = on\n"
                 # A long read on the standby may delay replay this long; with feedback the primary keeps the rows
                 # such a read still needs, so replay rarely has to cancel it.
                 "max_standby_streaming_delay = '30s'\nhot_standby_feedback = on\n")
    replica = Replica(name, port, str(pgdata), str(sock), source.replace(f"user={cluster.SUPERUSER}", "").strip())
    _save(settings, [*existing, replica])
    start(settings, replica)
    return replica


def _ctl(settings: Settings, replica: Replica, *args: str) -> subprocess.CompletedProcess[str]:
    bindir = cluster.find_bindir(settings)
    return subprocess.run(cluster._as_service([str(bindir / "pg_ctl"), "-D", replica.pgdata, *args],
                                              cluster.service_user()), capture_output=True, text=True)


def start(settings: Settings, replica: Replica) -> None:
    log = Path(replica.pgdata).parent / "postgres.log"
    res = _ctl(settings, replica, "start", "-w", "-t", "60", "-l", str(log),
               "-o", f"-p {replica.port} -k {replica.socket_dir}")
    if res.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
        raise ClusterError(f"replica {replica.name} did not start ({res.stderr.strip()}); "
                           f"last log lines: {' | '.join(tail)}")


def stop(settings: Settings, replica: Replica) -> bool:
    if _ctl(settings, replica, "status").returncode != 0:
        return False
    res = _ctl(settings, replica, "stop", "-m", "fast", "-w")
    if res.returncode != 0:
        raise ClusterError(f"stopping replica {replica.name} failed: {res.stderr.strip()}")
    return True


def find(settings: Settings, name: str) -> Replica:
    for r in replicas(settings):
        if r.name == name:
            return r
    known = ", ".join(r.name for r in replicas(settings)) or "none"
    raise ClusterError(f"no replica named {name!r} (replicas: {known}).")


def remove(settings: Settings, name: str) -> None:
    """Stop the replica and delete its folder (the primary keeps its wal_level; see :func:`disable`)."""
    replica = find(settings, name)
    stop(settings, replica)
    shutil.rmtree(Path(replica.pgdata).parent, ignore_errors=True)
    _save(settings, [r for r in replicas(settings) if r.name != name])


def url(settings: Settings, replica: Replica, role: str = cluster.READER, database: str | None = None) -> str:
    """libpq URL of a role on the replica over its unix socket (for TWIN_READER_URLS on this host)."""
    return f"postgresql://{role}@/{database or settings.database_name}?host={replica.socket_dir}&port={replica.port}"


def state(settings: Settings, replica: Replica) -> ReplicaState:
    running = _ctl(settings, replica, "status").returncode == 0
    if not running:
        return ReplicaState(replica, False, None, None)
    try:
        with psycopg.connect(url(settings, replica, cluster.SUPERUSER, "postgres"), connect_timeout=3) as conn:
            row = conn.execute(LAG_SQL).fetchone()
    except psycopg.Error as exc:
        return ReplicaState(replica, True, None, None, str(exc).splitlines()[0])
    assert row is not None
    return ReplicaState(replica, True, bool(row[0]), row[1])
