"""The private PostGIS cluster that the twin creates and runs in its own data folder.

Used when ``TWIN_DATABASE_URL`` is not set. The cluster listens on a unix socket in its own folder and on
127.0.0.1 at ``TWIN_PG_PORT`` (default 54329, clear of a system PostgreSQL on 5432). PostgreSQL refuses
to run as root, so when the twin runs as root the cluster runs as an unprivileged system user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from twin.errors import ClusterError
from twin.settings import Settings

SUPERUSER = "postgres"
OWNER, WRITER, READER, AUDITOR = "twin_owner", "twin_writer", "twin_reader", "twin_auditor"
ROLES = (OWNER, WRITER, READER, AUDITOR)
SERVICE_USER_CANDIDATES = ("postgres", "twin-pg")
FALLBACK_ROOT = Path("/var/lib/vth-twin")


@dataclass
class ClusterStatus:
    pgdata: Path
    initialised: bool
    running: bool
    port: int
    socket_dir: Path
    version: str | None


def find_bindir(settings: Settings) -> Path:
    """The PostgreSQL server binaries: the setting, else the newest Debian install, else PATH."""
    if settings.pg_bindir:
        return settings.pg_bindir
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name), reverse=True
    )
    if candidates:
        return candidates[0].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise ClusterError(
        "PostgreSQL server binaries not found: install them with "
        "'sudo apt-get install postgresql postgresql-15-postgis-3' (or set TWIN_PG_BINDIR, or set "
        "TWIN_DATABASE_URL to use an existing PostGIS)."
    )


def server_major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    if not m:
        raise ClusterError(f"cannot read the PostgreSQL version from {out!r}")
    return m.group(1)


def check_postgis(bindir: Path) -> None:
    """Fail with the package to install when the PostGIS extension is not available to this server."""
    major = server_major(bindir)
    sharedirs = [
        Path(f"/usr/share/postgresql/{major}"),
        bindir.parent / "share" / "postgresql",
        bindir.parent / "share",
    ]
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True).stdout.strip()
        if out:
            sharedirs.insert(0, Path(out))
    if not any((d / "extension" / "postgis.control").exists() for d in sharedirs):
        raise ClusterError(
            f"PostGIS is not installed for PostgreSQL {major}: install it with "
            f"'sudo apt-get install postgresql-{major}-postgis-3' (or run 'make demo', which does)."
        )


def service_user() -> str | None:
    """The unprivileged user that runs the cluster when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USER_CANDIDATES:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "twin-pg"],
        check=True,
        capture_output=True,
    )
    return "twin-pg"


def _as_service(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _can_reach(path: Path, user: str | None) -> bool:
    if user is None:
        return True
    probe = path if path.exists() else path.parent
    while not probe.exists():
        probe = probe.parent
    return subprocess.run(_as_service(["test", "-x", str(probe)], user), capture_output=True).returncode == 0


def cluster_paths(settings: Settings) -> tuple[Path, Path]:
    """(pgdata, socket dir). When root's service user cannot reach the data folder (e.g. under /root),
    the cluster lives in /var/lib/vth-twin/<hash> and ``<data_dir>/pgdata`` is a symlink to it."""
    pgdata, sock = settings.pgdata, settings.socket_dir
    link = settings.data_dir / "pgdata"
    if link.is_symlink():
        real = link.resolve()
        return real, real.parent / "run"
    if link.exists():
        return pgdata, sock
    user = service_user() if os.geteuid() == 0 else None
    if user and not _can_reach(settings.data_dir.resolve(), user):
        digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:12]
        base = FALLBACK_ROOT / digest
        return base / "pgdata", base / "run"
    return pgdata, sock


def _pg_ctl(settings: Settings, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    bindir = find_bindir(settings)
    pgdata, _ = cluster_paths(settings)
    cmd = _as_service([str(bindir / "pg_ctl"), "-D", str(pgdata), *args], service_user())
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def status(settings: Settings) -> ClusterStatus:
    pgdata, sock = cluster_paths(settings)
    initialised = (pgdata / "PG_VERSION").exists()
    running = initialised and _pg_ctl(settings, "status").returncode == 0
    version = (pgdata / "PG_VERSION").read_text().strip() if initialised else None
    return ClusterStatus(pgdata, initialised, running, settings.pg_port, sock, version)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _psql(settings: Settings, sql: str, db: str = "postgres") -> str:
    bindir = find_bindir(settings)
    _, sock = cluster_paths(settings)
    psql = bindir / "psql"
    cmd = [
        str(psql) if psql.exists() else "psql",
        "-X",
        "-q",
        "-t",
        "-A",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(sock),
        "-p",
        str(settings.pg_port),
        "-U",
        SUPERUSER,
        "-d",
        db,
        "-c",
        sql,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"psql failed: {res.stderr.strip()}")
    return res.stdout.strip()


def credentials_file(settings: Settings) -> Path:
    return settings.data_dir / "credentials"


def role_passwords(settings: Settings) -> dict[str, str]:
    """Passwords of the twin's roles for TCP connections to the local cluster (the socket needs none).
    Generated once and kept in ``<data_dir>/credentials`` (mode 0600)."""
    path = credentials_file(settings)
    if path.exists():
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return dict(pairs)
    pw = {role: secrets.token_urlsafe(18) for role in ROLES}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in pw.items()))
    path.chmod(0o600)
    return pw


def _initdb(settings: Settings, pgdata: Path, sock: Path, user: str | None) -> None:
    bindir = find_bindir(settings)
    for d in (pgdata, sock):
        d.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(d, user, user)
    pgdata.chmod(0o700)
    res = subprocess.run(
        _as_service(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--no-locale",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
            user,
        ),
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise ClusterError(f"initdb failed in {pgdata}: {res.stderr.strip() or res.stdout.strip()}")
    conf = pgdata / "postgresql.auto.conf"
    with conf.open("a") as fh:
        fh.write(
            "# vth-twin local cluster\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{sock}'\n"
            "max_connections = 200\n"
            "shared_buffers = '512MB'\n"
            "work_mem = '32MB'\n"
            "maintenance_work_mem = '256MB'\n"
            "max_wal_size = '2GB'\n"
            # A single local server that nothing replicates: minimal WAL, so that a first load into an empty
            # layer table writes no WAL (migration 0008; 500,000 buildings: COPY 0.55 s instead of 0.93 s).
            "wal_level = minimal\n"
            "max_wal_senders = 0\n"
            "logging_collector = off\n"
            "jit = off\n"
        )


def up(settings: Settings, timeout_s: float = 60.0) -> ClusterStatus:
    """Create (first time) and start the local cluster; idempotent. Waits until the server answers and
    the twin's roles, database and extensions exist."""
    if not settings.local_cluster:
        raise ClusterError("TWIN_DATABASE_URL is set: the twin uses that database and starts no local cluster.")
    bindir = find_bindir(settings)
    check_postgis(bindir)
    user = service_user()
    pgdata, sock = cluster_paths(settings)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClusterError(
            f"cannot create the data folder {settings.data_dir} ({exc.strerror}): set TWIN_DATA_DIR to a "
            "folder you can write."
        ) from exc
    if pgdata != settings.pgdata and not (settings.data_dir / "pgdata").exists():
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "pgdata").symlink_to(pgdata)
    if pgdata.exists():
        owner = pgdata.stat().st_uid
        expected = pwd.getpwnam(user).pw_uid if user else os.geteuid()
        if owner != expected:
            raise ClusterError(
                f"data folder {pgdata} is owned by uid {owner}, not by {user or 'you'} (uid {expected}): "
                "fix its ownership, or set TWIN_DATA_DIR to a folder of your own."
            )
    running = (pgdata / "PG_VERSION").exists() and status(settings).running
    if not running and not _port_free(settings.pg_port):
        raise ClusterError(
            f"port {settings.pg_port} on 127.0.0.1 is in use by another program: stop it, or set "
            "TWIN_PG_PORT to a free port."
        )
    if not (pgdata / "PG_VERSION").exists():
        _initdb(settings, pgdata, sock, user)
    if not running:
        sock.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(sock, user, user)
        log = pgdata.parent / "postgres.log"
        if user and not log.exists():
            log.touch()
            shutil.chown(log, user, user)
        res = _pg_ctl(
            settings, "start", "-w", "-t", str(int(timeout_s)), "-l", str(log), "-o", f"-p {settings.pg_port} -k {sock}"
        )
        if res.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            raise ClusterError(
                f"the local PostgreSQL did not start ({res.stderr.strip() or res.stdout.strip()}); "
                f"last log lines: {' | '.join(tail)}"
            )
    _wait_ready(settings, timeout_s)
    bootstrap(settings)
    return status(settings)


def _wait_ready(settings: Settings, timeout_s: float) -> None:
    bindir = find_bindir(settings)
    _, sock = cluster_paths(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        res = subprocess.run([str(bindir / "pg_isready"), "-h", str(sock), "-p", str(settings.pg_port), "-q"])
        if res.returncode == 0:
            return
        time.sleep(0.2)
    raise ClusterError(f"the local PostgreSQL did not answer within {timeout_s:.0f} s")


def bootstrap(settings: Settings, database: str | None = None) -> None:
    """Roles, the database and the PostGIS extensions, as the cluster's superuser. Idempotent."""
    db = database or settings.database_name
    pw = role_passwords(settings)
    stmts = []
    for role in ROLES:
        extra = " CREATEROLE" if role == OWNER else ""
        stmts.append(
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN{extra}; END IF; END$$;"
        )
        stmts.append(f"ALTER ROLE {role} PASSWORD '{pw[role]}';")
    _psql(settings, "\n".join(stmts))
    create_database(settings, db)


def create_database(settings: Settings, db: str) -> None:
    """Create a database owned by the twin's owner with postgis and postgis_raster (superuser work)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db):
        raise ClusterError(f"invalid database name {db!r}: use lower-case letters, digits and _")
    exists = _psql(settings, f"SELECT 1 FROM pg_database WHERE datname = '{db}'")
    if not exists:
        _psql(settings, f"CREATE DATABASE {db} OWNER {OWNER}")
    _psql(
        settings,
        "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS postgis_raster;"
        f" GRANT TEMP ON DATABASE {db} TO {WRITER};",
        db=db,
    )


def drop_database(settings: Settings, db: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db):
        raise ClusterError(f"invalid database name {db!r}")
    _psql(settings, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def down(settings: Settings) -> bool:
    """Stop the local cluster (fast shutdown). Returns False when it was not running."""
    if not settings.local_cluster:
        raise ClusterError("TWIN_DATABASE_URL is set: the twin uses that database and has no local cluster to stop.")
    if not status(settings).running:
        return False
    res = _pg_ctl(settings, "stop", "-m", "fast", "-w")
    if res.returncode != 0:
        raise ClusterError(f"pg_ctl stop failed: {res.stderr.strip()}")
    return True


def reset(settings: Settings) -> None:
    """Stop the cluster and delete its data folder (remove its replicas first, twin.replication). Everything in
    it is lost."""
    if status(settings).running:
        down(settings)
    pgdata, sock = cluster_paths(settings)
    link = settings.data_dir / "pgdata"
    if link.is_symlink():
        link.unlink()
    shutil.rmtree(pgdata, ignore_errors=True)
    shutil.rmtree(sock, ignore_errors=True)
    for f in (credentials_file(settings), pgdata.parent / "postgres.log"):
        f.unlink(missing_ok=True)
    if pgdata.parent.parent == FALLBACK_ROOT:
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def local_url(settings: Settings, role: str, database: str | None = None) -> str:
    """libpq URL of a role over the cluster's unix socket."""
    _, sock = cluster_paths(settings)
    return f"postgresql://{role}@/{database or settings.database_name}?host={sock}&port={settings.pg_port}"
