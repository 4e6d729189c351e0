"""Backups and point-in-time recovery (issue 23): a restore drill on a private cluster. Base backup, rows A, a
moment T, rows B; ``restore --to T`` brings back A and not B. Plus the clear errors and the command line."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from testdb import private_cluster
from typer.testing import CliRunner

from twin import backup, cluster, database, replication
from twin.errors import ClusterError, InvalidParameter
from twin.settings import Settings

INSERT = ("INSERT INTO twin.municipalities (code, name, geom) VALUES (%s, %s, "
          "ST_Multi(ST_MakeEnvelope(150000, 450000, 151000, 451000, 28992)))")


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Iterator[Settings]:
    with private_cluster(base_settings, tmp_path_factory.mktemp("pitr")) as s:
        yield s


def _insert(s: Settings, *codes: str) -> datetime:
    """Insert municipalities (one transaction); returns the server's clock just after the commit."""
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        for code in codes:
            conn.execute(INSERT, (code, f"Gemeente {code}"))
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _codes(s: Settings) -> set[str]:
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        return {r[0] for r in conn.execute("SELECT code FROM twin.municipalities WHERE code LIKE 'GM8%'")}


def test_clear_errors_before_any_backup(primary: Settings, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(ClusterError, match="archiving was never enabled"):
        backup.choose(primary, past, directory=tmp_path / "nothing")
    with pytest.raises(InvalidParameter, match="in the future"):
        backup.choose(primary, datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidParameter, match="ISO 8601"):
        backup.parse_time("gisteren om drie uur")
    assert backup.parse_time("2026-12-07T10:15:00+01:00") == datetime(2026, 12, 7, 9, 15, tzinfo=UTC)
    assert backup.parse_time("2026-12-07T09:15:00Z") == datetime(2026, 12, 7, 9, 15, tzinfo=UTC)
    assert backup.parse_time("2026-12-07 10:15").tzinfo is not None  # this machine's zone


def test_restore_drill(primary: Settings) -> None:
    assert backup.archiving(primary) is None and replication.wal_level(primary) == "minimal"
    _insert(primary, "GM8000")
    before_backup = datetime.now(UTC)
    time.sleep(0.05)
    b = backup.backup(primary)  # the first backup switches archiving on (a restart)
    d = backup.default_dir(primary)
    assert d == cluster.cluster_paths(primary)[0].parent / "backups"
    assert backup.archiving(primary) == d and replication.wal_level(primary) == "replica"
    listed = backup.backups(primary)
    assert [x.id for x in listed] == [b.id]
    assert listed[0].start_time <= listed[0].end_time and listed[0].start_lsn and listed[0].end_lsn
    assert list(Path(b.path).glob("base.tar*")), "a tar base backup"

    _insert(primary, "GM8001")  # rows A
    moment = _insert(primary)  # T: after A's commit
    time.sleep(0.2)
    _insert(primary, "GM8002")  # rows B
    segment = backup.archive_now(primary)
    assert (d / "wal" / segment).exists()
    assert _codes(primary) == {"GM8000", "GM8001", "GM8002"}

    with pytest.raises(ClusterError, match="no base backup in .* ended before"):
        backup.choose(primary, before_backup)
    with pytest.raises(ClusterError, match="no base backup 'nope'"):
        backup.choose(primary, moment, "nope")

    old = cluster.cluster_paths(primary)[0]
    restored = backup.restore(primary, moment)
    assert restored.backup.id == b.id and restored.reached_target
    assert _codes(primary) == {"GM8000", "GM8001"}, "A is back, B is not"
    assert restored.last_transaction is not None and restored.last_transaction <= moment
    assert restored.timeline == 2
    assert restored.moved_aside is not None and (restored.moved_aside / "PG_VERSION").exists()
    assert restored.moved_aside.parent == old.parent
    # A working primary again: it takes writes and goes on archiving on its new timeline.
    assert cluster._psql(primary, "SELECT pg_is_in_recovery()") == "f"
    # The recovery settings are taken out of the configuration again (they would apply at the next recovery).
    assert "recovery_target" not in (cluster.cluster_paths(primary)[0] / "postgresql.auto.conf").read_text()
    _insert(primary, "GM8003")
    assert backup.archive_now(primary).startswith("00000002")
    assert (d / "wal" / "00000002.history").exists()

    # A cluster that is down (lost): its last segment was never archived; the restore takes it from the data folder
    # moved aside, and with no transaction after the moment it replays to the end and says so.
    moment2 = _insert(primary, "GM8004")
    cluster.down(primary)
    again = backup.restore(primary, moment2, b.id, discard_old=True)
    assert not again.reached_target and again.moved_aside is None
    assert _codes(primary) == {"GM8000", "GM8001", "GM8003", "GM8004"}
    assert again.timeline == 3

    # A restore that fails puts the previous data folder back and starts it again.
    broken = Path(b.path).with_name("broken")
    shutil.copytree(b.path, broken)
    for tarball in broken.glob("base.tar*"):
        tarball.write_bytes(b"not a tar file")
    meta = json.loads((broken / "backup.json").read_text())
    (broken / "backup.json").write_text(json.dumps({**meta, "id": "broken"}))
    folders = set(cluster.cluster_paths(primary)[0].parent.iterdir())
    with pytest.raises(ClusterError, match="unpacking"):
        backup.restore(primary, datetime.now(UTC), "broken")
    assert _codes(primary) == {"GM8000", "GM8001", "GM8003", "GM8004"}
    assert set(cluster.cluster_paths(primary)[0].parent.iterdir()) == folders
    shutil.rmtree(broken)

    # wal_level cannot go back to minimal while archiving is on (PostgreSQL would not start).
    with pytest.raises(ClusterError, match="archiving is on"):
        replication.disable(primary)
    assert backup.disable_archiving(primary) is True
    assert backup.archiving(primary) is None
    assert replication.disable(primary) is True


def test_command_line(primary: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    for key, value in {"TWIN_DATA_DIR": str(primary.data_dir), "TWIN_PG_PORT": str(primary.pg_port),
                       "TWIN_DATABASE_NAME": primary.database_name}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TWIN_DATABASE_URL", raising=False)
    runner = CliRunner()
    listed = runner.invoke(app, ["db", "backup", "list"])
    assert listed.exit_code == 0, listed.output
    assert "1 base backups" in listed.output and "WAL archiving: off" in listed.output
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    res = runner.invoke(app, ["db", "restore", "--to", future, "--yes"])
    assert res.exit_code == 1 and "in the future" in res.output
    res = runner.invoke(app, ["db", "restore", "--to", "2000-01-01T00:00:00Z", "--yes"])
    assert res.exit_code == 1 and "no base backup" in res.output
    res = runner.invoke(app, ["db", "restore", "--to", datetime.now(UTC).isoformat()])
    assert res.exit_code == 1 and "--yes" in res.output, "no silent replacement without confirmation"
    monkeypatch.setenv("TWIN_DATABASE_URL", "postgresql://someone@db.invalid/twin")
    for args in (["db", "backup"], ["db", "restore", "--to", "2026-01-01T00:00:00Z", "--yes"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 1 and "pgBackRest" in res.output, res.output
