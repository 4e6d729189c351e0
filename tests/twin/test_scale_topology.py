"""The scale-out topology natively (issue 23): scripts/scale.py starts a hot standby, PgBouncer in transaction
mode, two API processes and nginx (load balancer and shared cache) around a private cluster, the same wiring as
docker-compose's ``scale`` profile; and that profile's nginx.conf is the rendering of the same template."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from pyproj import Transformer
from servers import free_port
from testdb import private_cluster

from twin import database, replication
from twin.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "scale.py"
# nginx and pgbouncer come from Debian, installed by scripts/setup.sh with the test tools.


def _env(s: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    env.update({"TWIN_DATA_DIR": str(s.data_dir), "TWIN_PG_PORT": str(s.pg_port), "TWIN_DATABASE_NAME": "twin"})
    return env


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Iterator[tuple[Settings, dict]]:
    with private_cluster(base_settings, tmp_path_factory.mktemp("scale")) as s:
        with psycopg.connect(database.url_for(s, "owner")) as conn:
            conn.execute("INSERT INTO twin.municipalities (code, name, geom) VALUES ('GM9101', 'Schaaldorp', "
                         "ST_Multi(ST_MakeEnvelope(150000, 450000, 152000, 452000, 28992)))")
        port = free_port()
        try:
            res = subprocess.run([sys.executable, str(SCRIPT), "up", "--port", str(port)], env=_env(s),
                                 capture_output=True, text=True, timeout=240, cwd=ROOT)
            assert res.returncode == 0, res.stdout + res.stderr
            state = json.loads((Path(replication._root(s)).parent / "scale" / "state.json").read_text())
            yield s, state
        finally:
            subprocess.run([sys.executable, str(SCRIPT), "down"], env=_env(s), capture_output=True, timeout=60,
                           cwd=ROOT)
            for r in replication.replicas(s):
                replication.remove(s, r.name)


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_the_topology_serves_caches_and_survives_losses(topology: tuple[Settings, dict]) -> None:
    s, state = topology
    base = state["url"]
    with httpx.Client(base_url=base, timeout=10) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text
        dbs = ready.json()["databases"]
        assert [d["role"] for d in dbs] == ["primary", "replica"] and dbs[1]["status"] == "up"

        # A public tile: the second request is answered by nginx's cache; with a credential never.
        lon, lat = Transformer.from_crs(28992, 4326, always_xy=True).transform(151000, 451000)
        x, y = _tile(lon, lat, 12)
        path = f"/collections/municipalities/tiles/WebMercatorQuad/12/{x}/{y}"
        first = c.get(path)
        assert first.status_code == 200 and first.headers["cache-control"].startswith("public")
        second = c.get(path)
        assert second.headers["x-cache-status"] == "HIT" and second.content == first.content
        keyed = c.get(path, headers={"X-API-Key": "twin_not_a_real_key"})
        assert keyed.headers["x-cache-status"] in ("BYPASS", "MISS") and keyed.status_code == 401

        # Items go through PgBouncer (transaction mode) to the standby, with the reader's row-level security.
        items = c.get("/collections/municipalities/items", params={"limit": 5})
        assert items.status_code == 200 and items.json()["numberMatched"] == 1

        # One API process is lost: nginx sends everything to the other one.
        os.kill(state["api_pids"][0], signal.SIGKILL)
        time.sleep(0.5)
        for _ in range(6):
            r = c.get("/collections/municipalities/items", params={"limit": 1})
            assert r.status_code == 200, r.text

        # The standby is lost: the reads go to the primary (through PgBouncer's other database).
        rep = replication.find(s, state["replica"])
        replication.stop(s, rep)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and c.get("/readyz").json()["databases"][1]["status"] != "down":
                time.sleep(0.3)
            assert c.get("/readyz").json()["databases"][1]["status"] == "down"
            for _ in range(4):
                r = c.get("/collections/municipalities/items", params={"limit": 1})
                assert r.status_code == 200 and r.json()["numberMatched"] == 1
        finally:
            replication.start(s, rep)


def test_compose_profile_matches_the_native_wiring() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import scale  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    compose_conf = ROOT / "deploy" / "compose" / "nginx.conf"
    assert compose_conf.read_text() == scale.compose_nginx(), "run: scripts/scale.py compose-nginx"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("db-replica", "pgbouncer", "api-a", "api-b", "nginx"):
        assert services[name]["profiles"] == ["scale"], name
    env = services["api-a"]["environment"]
    # Every TWIN_ variable the compose file sets is a real setting.
    fields = {f"TWIN_{k.upper()}" for k in Settings.model_fields}
    for svc in services.values():
        for key in (svc.get("environment") or {}):
            if key.startswith("TWIN_"):
                assert key in fields, f"{key} is not a setting"
    assert env["TWIN_PGBOUNCER"] == "true" and "pgbouncer:6432/twin_ro" in env["TWIN_READER_URLS"]
    # nginx accepts the compose configuration (with the container names pointed at loopback).
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"twin-nginx-{os.getpid()}"
    for sub in ("cache", "client_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    text = (compose_conf.read_text().replace("api-a:8000", "127.0.0.1:1").replace("api-b:8000", "127.0.0.1:2")
            .replace("/var/cache/nginx", str(tmp)).replace("/var/log/nginx", str(tmp)))
    (tmp / "nginx.conf").write_text(text)
    try:
        res = subprocess.run([nginx, "-t", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
