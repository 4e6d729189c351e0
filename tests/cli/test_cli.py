"""The `twin` command line on bad input: one clear line, a non-zero exit, nothing deleted."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TWIN = str(Path(sys.executable).parent / "twin")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TWIN_")}
    full.update(env or {})
    return subprocess.run(
        [TWIN, *args], capture_output=True, text=True, env=full, timeout=120, stdin=subprocess.DEVNULL
    )


def test_help_lists_the_commands() -> None:
    res = run("--help")
    assert res.returncode == 0
    for word in ("db", "serve"):
        assert word in res.stdout


def test_up_and_down_say_when_a_database_url_is_set() -> None:
    env = {"TWIN_DATABASE_URL": "postgresql://someone@db.invalid/twin"}
    for cmd in ("up", "down"):
        res = run("db", cmd, env=env)
        assert res.returncode == 0
        assert "TWIN_DATABASE_URL is set" in res.stdout


def test_wrong_database_url_is_one_clear_line() -> None:
    res = run("db", "migrate", env={"TWIN_DATABASE_URL": "postgresql://nobody:x@127.0.0.1:1/none"})
    assert res.returncode == 1
    assert "cannot connect to the database" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    res = run("db", "migrate", env={"TWIN_DATABASE_URL": "mysql://x@y/z"})
    assert res.returncode == 1 and "must start with postgresql://" in res.stderr


def test_port_in_use(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run("db", "up", env={"TWIN_DATA_DIR": str(tmp_path / "twin"), "TWIN_PG_PORT": str(port)})
    assert res.returncode == 1
    assert f"port {port}" in res.stderr and "TWIN_PG_PORT" in res.stderr
    run("db", "reset", "--yes", env={"TWIN_DATA_DIR": str(tmp_path / "twin"), "TWIN_PG_PORT": str(port)})


def test_data_folder_of_someone_else(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    if os.geteuid() == 0:
        pgdata = tmp_path / "twin" / "pgdata"
        pgdata.mkdir(parents=True)
        os.chown(pgdata, 65534, 65534)  # nobody
        res = run("db", "up", env={"TWIN_DATA_DIR": str(tmp_path / "twin")})
        assert res.returncode == 1
        assert "is owned by uid 65534" in res.stderr and "TWIN_DATA_DIR" in res.stderr
        assert pgdata.exists(), "nothing is deleted"
    else:
        res = run("db", "up", env={"TWIN_DATA_DIR": "/proc/twin-test"})
        assert res.returncode == 1
        assert "cannot create the data folder" in res.stderr


def test_missing_postgis_names_the_package(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "postgres"
    fake.write_text("#!/bin/sh\necho 'postgres (PostgreSQL) 99.1'\n")
    fake.chmod(0o755)
    res = run("db", "up", env={"TWIN_PG_BINDIR": str(bindir), "TWIN_DATA_DIR": str(tmp_path / "twin")})
    assert res.returncode == 1
    assert "postgresql-99-postgis-3" in res.stderr


def test_reset_asks_for_confirmation(tmp_path: Path) -> None:
    res = run("db", "reset", env={"TWIN_DATA_DIR": str(tmp_path / "twin")})
    assert res.returncode == 1
    assert "--yes" in res.stderr


@pytest.mark.parametrize("role", ["owner", "writer", "reader"])
def test_url_per_role(role: str) -> None:
    res = run("db", "url", "--role", role)
    assert res.returncode == 0
    assert res.stdout.startswith(f"postgresql://twin_{role}@")
