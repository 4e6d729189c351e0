#!/usr/bin/env python3
"""The scale-out topology of docker-compose's ``scale`` profile, started natively on one host (issue 23,
docs/scaling.md): the local primary, a hot standby (``twin db replica add``), PgBouncer in transaction mode in
front of both, two API processes (``twin serve``) reading from the standby through PgBouncer, and nginx as load
balancer and shared HTTP cache in front of the API processes. Every part is a Debian package or the twin itself.

    .venv/bin/python scripts/scale.py up [--port 8080]     # start (idempotent), print the URL
    .venv/bin/python scripts/scale.py status                # what runs, the API's /readyz through nginx
    .venv/bin/python scripts/scale.py down                  # stop nginx, the API processes, PgBouncer
                                                            # (the cluster and its replica keep running)

The settings are the twin's (TWIN_DATA_DIR, TWIN_PG_PORT, ...): the same ones the compose file sets per
container. The run files live in ``<data_dir>/scale``. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twin import cluster, replication  # noqa: E402
from twin.settings import Settings  # noqa: E402

TWIN = ROOT / ".venv" / "bin" / "twin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_dir(settings: Settings) -> Path:
    # Next to the cluster's data (reachable by its service user, which runs PgBouncer when we are root).
    d = cluster.cluster_paths(settings)[0].parent / "scale"
    d.mkdir(parents=True, exist_ok=True)
    _chown(d)
    return d


def _state_file(settings: Settings) -> Path:
    return run_dir(settings) / "state.json"


def read_state(settings: Settings) -> dict:
    f = _state_file(settings)
    return json.loads(f.read_text()) if f.exists() else {}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _ours(pid: int) -> bool:
    """Whether a pid from our files is still one of ours (after a reboot the number may be someone else's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(name in cmdline for name in ("nginx", "pgbouncer", "twin serve", "twin"))


def _wait_port(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port} after {seconds:.0f} s")


def _chown(path: Path) -> None:
    user = cluster.service_user()
    if user:
        shutil.chown(path, user, user)


def pgbouncer_conf(settings: Settings, d: Path, port: int, rep: replication.Replica) -> Path:
    """Transaction pooling in front of the primary (``twin``) and the standby (``twin_ro``). PgBouncer reaches
    both over their unix sockets (trust there); its clients log in with the roles' passwords (auth_file)."""
    _, sock = cluster.cluster_paths(settings)
    pw = cluster.role_passwords(settings)
    users = d / "userlist.txt"
    users.write_text("".join(f'"{role}" "{pw[role]}"\n' for role in (cluster.READER, cluster.AUDITOR, cluster.WRITER)))
    users.chmod(0o600)
    _chown(users)
    conf = d / "pgbouncer.ini"
    conf.write_text(
        "[databases]\n"
        f"twin = host={sock} port={settings.pg_port} dbname={settings.database_name}\n"
        f"twin_ro = host={rep.socket_dir} port={rep.port} dbname={settings.database_name}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {users}\n"
        "pool_mode = transaction\nmax_client_conn = 400\ndefault_pool_size = 20\n"
        # A database that is down answers within seconds, not after PgBouncer's default waits (120 s, 15 s): the
        # API then takes the replica out or answers 503 within its own pool timeout.
        "query_wait_timeout = 3\nserver_connect_timeout = 2\nserver_login_retry = 1\n"
        # The API sets its role and settings with SET LOCAL / set_config(..., true): they end with the transaction.
        "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {d / 'pgbouncer.log'}\npidfile = {d / 'pgbouncer.pid'}\n")
    _chown(conf)
    return conf


TEMPLATE = ROOT / "deploy" / "nginx-twin.conf.template"
COMPOSE_NGINX = ROOT / "deploy" / "compose" / "nginx.conf"


def render_nginx(run: str, log: str, listen: str, upstreams: list[str]) -> str:
    """deploy/nginx-twin.conf.template with its places filled (one template for here and for compose)."""
    servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
    return (TEMPLATE.read_text().replace("@RUN@", run).replace("@LOG@", log).replace("@LISTEN@", listen)
            .replace("@UPSTREAMS@", servers))


def compose_nginx() -> str:
    """The compose profile's nginx.conf: the two API containers, the cache in the nginx image's folders."""
    return render_nginx("/var/cache/nginx", "/var/log/nginx", "8080", ["api-a:8000", "api-b:8000"])


def nginx_conf(d: Path, port: int, api_ports: list[int]) -> Path:
    """Round robin over the API processes and a shared cache of the public answers (the template says how)."""
    for sub in ("cache", "client_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (d / sub).mkdir(exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(render_nginx(str(d), str(d), f"127.0.0.1:{port}", [f"127.0.0.1:{p}" for p in api_ports]))
    return conf


def up(settings: Settings, port: int | None) -> dict:
    if not settings.local_cluster:
        raise SystemExit("scale.py starts the topology around the local cluster; with TWIN_DATABASE_URL, follow the "
                         "compose file's scale profile (docs/scaling.md).")
    for tool in ("pgbouncer", "nginx"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise SystemExit(f"{tool} is not installed: run scripts/setup.sh (it installs Debian's {tool}).")
    cluster.up(settings)
    reps = replication.replicas(settings)
    rep = reps[0] if reps else replication.add(settings, "r1")
    if not replication.state(settings, rep).running:
        replication.start(settings, rep)
    d = run_dir(settings)
    state = read_state(settings)
    if state and _alive(state.get("nginx_pid")):
        return state
    down(settings, quiet=True)
    pgb_port, api_ports, http_port = free_port(), [free_port(), free_port()], port or 8080
    conf = pgbouncer_conf(settings, d, pgb_port, rep)
    pgb = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    subprocess.run(cluster._as_service([pgb, "-d", str(conf)], cluster.service_user()), check=True)
    _wait_port(pgb_port)
    pw = cluster.role_passwords(settings)
    owner = cluster.OWNER
    env = {
        **os.environ,
        # The same settings as the compose file's api service: the primary for the owner and the audit log, the
        # reads through PgBouncer from the standby, one signing secret for every API process.
        # (the owner without its password: the API never connects as the owner)
        "TWIN_DATABASE_URL": f"postgresql://{owner}@127.0.0.1:{settings.pg_port}/{settings.database_name}",
        "TWIN_READER_URL": f"postgresql://{cluster.READER}:{pw[cluster.READER]}@127.0.0.1:{pgb_port}/twin",
        "TWIN_READER_URLS": f"postgresql://{cluster.READER}:{pw[cluster.READER]}@127.0.0.1:{pgb_port}/twin_ro",
        "TWIN_AUDITOR_URL": f"postgresql://{cluster.AUDITOR}:{pw[cluster.AUDITOR]}@127.0.0.1:{pgb_port}/twin",
        "TWIN_PGBOUNCER": "true",
        "TWIN_TRUSTED_PROXIES": "127.0.0.1",
        "TWIN_CURSOR_SECRET": os.environ.get("TWIN_CURSOR_SECRET") or _secret(settings),
    }
    pids = []
    for p in api_ports:
        log = (d / f"api-{p}.log").open("ab")
        proc = subprocess.Popen([str(TWIN), "serve", "--host", "127.0.0.1", "--port", str(p)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(ROOT))
        pids.append(proc.pid)
    for p in api_ports:
        _wait_port(p, 60)
    nconf = nginx_conf(d, http_port, api_ports)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    res = subprocess.run([nginx, "-c", str(nconf), "-p", str(d), "-g", "daemon on;"], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"nginx did not start: {res.stderr.strip()}")
    _wait_port(http_port)
    nginx_pid = int((d / "nginx.pid").read_text().strip())
    state = {"url": f"http://127.0.0.1:{http_port}", "http_port": http_port, "pgbouncer_port": pgb_port,
             "api_ports": api_ports, "api_pids": pids, "nginx_pid": nginx_pid,
             "pgbouncer_pid": int((d / "pgbouncer.pid").read_text().strip()), "replica": rep.name}
    _state_file(settings).write_text(json.dumps(state, indent=2) + "\n")
    return state


def _secret(settings: Settings) -> str:
    f = run_dir(settings) / "signing-secret"
    if not f.exists():
        import secrets

        f.write_text(secrets.token_urlsafe(32))
        f.chmod(0o600)
    return f.read_text().strip()


def down(settings: Settings, quiet: bool = False) -> None:
    d = run_dir(settings)
    state = read_state(settings)
    pids = [state.get("nginx_pid"), *state.get("api_pids", []), state.get("pgbouncer_pid")]
    for name in ("nginx.pid", "pgbouncer.pid"):
        f = d / name
        if f.exists():
            try:
                pids.append(int(f.read_text().strip()))
            except ValueError:
                pass
    for pid in {p for p in pids if p}:
        if _alive(pid) and _ours(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) and _ours(p) for p in pids if p):
        time.sleep(0.1)
    _state_file(settings).unlink(missing_ok=True)
    if not quiet:
        print("scale topology stopped (the cluster and its replica keep running; 'twin db replica remove r1')")


def status(settings: Settings) -> int:
    state = read_state(settings)
    if not state:
        print("not running: scripts/scale.py up")
        return 3
    for key in ("nginx_pid", "pgbouncer_pid"):
        print(f"{key.removesuffix('_pid'):10} {'up' if _alive(state[key]) else 'DOWN'} (pid {state[key]})")
    for port, pid in zip(state["api_ports"], state["api_pids"], strict=True):
        print(f"api:{port:<6} {'up' if _alive(pid) else 'DOWN'} (pid {pid})")
    try:
        with urllib.request.urlopen(state["url"] + "/readyz", timeout=5) as r:
            print(json.dumps(json.loads(r.read()), indent=2))
    except (urllib.error.URLError, OSError) as exc:
        print(f"/readyz through nginx: {exc}")
        return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("up", "down", "status", "compose-nginx"))
    ap.add_argument("--port", type=int, help="nginx's port on 127.0.0.1 (default 8080)")
    args = ap.parse_args()
    if args.command == "compose-nginx":  # regenerate deploy/compose/nginx.conf from the template
        COMPOSE_NGINX.write_text(compose_nginx())
        return 0
    settings = Settings()
    if args.command == "up":
        state = up(settings, args.port)
        print(f"up: {state['url']} (nginx) -> API processes on {state['api_ports']} -> PgBouncer "
              f":{state['pgbouncer_port']} -> primary :{settings.pg_port} and replica {state['replica']}")
        return 0
    if args.command == "down":
        down(settings)
        return 0
    return status(settings)


if __name__ == "__main__":
    sys.exit(main())
