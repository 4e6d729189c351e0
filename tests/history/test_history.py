"""History and as-of (issue 20): versions kept by the triggers of migration 0015, as-of reads through
twin.history, protection of the history, and a decision recomputed after a correction."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from twin import history

POINT = "ST_SetSRID(ST_MakePoint(155000, 463000), 28992)"


def _load(conn: psycopg.Connection, sql: str, valid_from: str = "", correction: bool = False) -> None:
    with conn.transaction():
        conn.execute("SELECT set_config('twin.valid_from', %s, true), set_config('twin.correction', %s, true)",
                     (valid_from, "on" if correction else ""))
        conn.execute(sql)


def _as_of(conn: psycopg.Connection, when: history.AsOf, query: str) -> list[tuple]:
    return conn.execute(history.rewrite(query, when)).fetchall()


@pytest.fixture()
def owner(owner_url: str):
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield conn
        conn.execute("DELETE FROM twin.establishments WHERE establishment_id LIKE 'HIST%'")


def test_change_correction_and_end(owner: psycopg.Connection) -> None:
    _load(owner, f"INSERT INTO twin.establishments (establishment_id, name, sbi_code, started_on, geom) "
                 f"VALUES ('HIST1', 'Oud', '0141', '2020-01-01', {POINT})", valid_from="2024-01-01")
    first = datetime.now(UTC)
    _load(owner, "UPDATE twin.establishments SET name = 'Nieuw' WHERE establishment_id = 'HIST1'",
          valid_from="2024-06-01")
    second = datetime.now(UTC)
    _load(owner, "UPDATE twin.establishments SET name = 'Nieuw (typfout hersteld)' WHERE establishment_id = 'HIST1'",
          correction=True)
    q = "SELECT name FROM twin.establishments WHERE establishment_id = 'HIST1'"
    # valid on a day in 2023 (from started_on), as known after the first load: the old name
    assert _as_of(owner, history.AsOf(date(2023, 5, 1), first), q) == [("Oud",)]
    # a change in the world from its reference date: before it the old name still holds, as known now
    assert _as_of(owner, history.AsOf(date(2024, 3, 1), None), q) == [("Oud",)]
    assert _as_of(owner, history.AsOf(date(2024, 7, 1), second), q) == [("Nieuw",)]
    # a correction: same validity, new registration
    assert _as_of(owner, history.AsOf(date(2024, 7, 1), None), q) == [("Nieuw (typfout hersteld)",)]
    _load(owner, "DELETE FROM twin.establishments WHERE establishment_id = 'HIST1'", valid_from="2025-01-01")
    # ended, not deleted: still valid before the end, gone after it
    assert _as_of(owner, history.AsOf(date(2024, 7, 1), None), q) == [("Nieuw (typfout hersteld)",)]
    assert _as_of(owner, history.AsOf(date(2025, 2, 1), None), q) == []
    rows = owner.execute("SELECT count(*) FROM history.establishments_versions WHERE establishment_id = 'HIST1'"
                         ).fetchone()
    assert rows is not None and rows[0] == 5  # insert 1, change 2 (cut + new), correction 1, end 1 (cut)


def test_reproducible_after_correction(owner: psycopg.Connection) -> None:
    _load(owner, f"INSERT INTO twin.establishments (establishment_id, name, sbi_code, geom, visit_frequency_years) "
                 f"SELECT 'HIST' || i, 'Bedrijf ' || i, '0141', {POINT}, 3 FROM generate_series(10, 19) i")
    decided = datetime.now(UTC)
    q = ("SELECT establishment_id, name, visit_frequency_years FROM twin.establishments "
         "WHERE establishment_id LIKE 'HIST%' ORDER BY 1")
    before = _as_of(owner, history.AsOf(None, decided), q)
    _load(owner, "UPDATE twin.establishments SET visit_frequency_years = 1 WHERE establishment_id = 'HIST12'",
          correction=True)
    assert _as_of(owner, history.AsOf(None, decided), q) == before
    assert _as_of(owner, history.AsOf(None, None), q) != before


def test_no_overlap_and_api_roles_cannot_write(owner: psycopg.Connection) -> None:
    _load(owner, f"INSERT INTO twin.establishments (establishment_id, name, sbi_code, geom) "
                 f"VALUES ('HIST30', 'X', '0141', {POINT})")
    with pytest.raises(psycopg.errors.ExclusionViolation), owner.transaction():
        owner.execute("INSERT INTO history.establishments_versions (id, establishment_id, name, sbi_code, "
                      "sole_proprietor, brzo, natural_person_owner, geom, loaded_at, valid, registered) "
                      f"VALUES (1, 'HIST30', 'Y', '0141', false, false, false, {POINT}, now(), "
                      "daterange(current_date, NULL), tstzrange(now(), NULL))")
    # The rule is checked per statement (migration 0026): one statement that writes two overlapping versions of a
    # new key, and an UPDATE that reopens an ended registration, fail the same way; versions that touch pass.
    with pytest.raises(psycopg.errors.ExclusionViolation) as raised, owner.transaction():
        owner.execute("INSERT INTO history.establishments_versions (id, establishment_id, name, sbi_code, "
                      "sole_proprietor, brzo, natural_person_owner, geom, loaded_at, valid, registered) "
                      f"SELECT 2, 'HIST31', 'Z', '0141', false, false, false, {POINT}, now(), "
                      "daterange(d, NULL), tstzrange(now(), NULL) FROM unnest(ARRAY[date '2024-01-01', "
                      "date '2025-01-01']) d")
    assert raised.value.diag.constraint_name == "establishments_versions_no_overlap"
    _load(owner, "UPDATE twin.establishments SET name = 'X2' WHERE establishment_id = 'HIST30'")
    with pytest.raises(psycopg.errors.ExclusionViolation), owner.transaction():
        owner.execute("UPDATE history.establishments_versions SET registered = tstzrange(lower(registered), NULL) "
                      "WHERE establishment_id = 'HIST30' AND NOT upper_inf(registered)")
    with owner.transaction():
        owner.execute("INSERT INTO history.establishments_versions (id, establishment_id, name, sbi_code, "
                      "sole_proprietor, brzo, natural_person_owner, geom, loaded_at, valid, registered) "
                      f"SELECT 3, 'HIST32', 'Z', '0141', false, false, false, {POINT}, now(), "
                      "daterange(a, b), tstzrange(now(), NULL) FROM (VALUES (date '2024-01-01', date '2025-01-01'), "
                      "(date '2025-01-01', NULL::date)) v(a, b)")
        owner.execute("DELETE FROM history.establishments_versions WHERE establishment_id = 'HIST32'")
    for role in ("twin_api_admin", "twin_writer"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), owner.transaction():
            owner.execute(f"SET LOCAL ROLE {role}")
            owner.execute("DELETE FROM history.establishments_versions")


def test_rewrite_points_register_tables_at_history() -> None:
    when = history.AsOf(date(2024, 1, 1), None)
    out = history.rewrite('SELECT 1 FROM twin.establishments e JOIN "twin"."inspections" i USING (x) '
                          "JOIN twin.buildings b ON true JOIN twin.establishments_extra z ON true", when)
    assert "history.establishments_at('2024-01-01'::date, now()) e" in out
    assert "history.inspections_at(" in out
    assert "twin.buildings" in out and "twin.establishments_extra" in out


def test_items_as_of_needs_history(client) -> None:
    r = client.get("/collections/buildings/items?geldigOp=2024-01-01")
    assert r.status_code == 400
    assert r.json()["parameter"] == "geldigOp"
    assert client.get("/collections/establishments/items?geldigOp=2024-01-01&limit=1").status_code == 200
    assert client.get("/collections/establishments/items?geldigOp=morgen").status_code == 400


def test_history_command_shows_versions_and_prunes(owner: psycopg.Connection, settings) -> None:
    """`twin history ID` lists a record's versions with both times; `--prune` applies the retention."""
    import subprocess
    import sys

    _load(owner, f"INSERT INTO twin.establishments (establishment_id, name, sbi_code, started_on, geom) "
                 f"VALUES ('HISTCLI', 'Eerst', '0141', '2020-01-01', {POINT})", valid_from="2024-01-01")
    _load(owner, "UPDATE twin.establishments SET name = 'Daarna' WHERE establishment_id = 'HISTCLI'",
          valid_from="2024-06-01")
    env = {"TWIN_DATABASE_NAME": settings.database_name, "TWIN_DATA_DIR": str(settings.data_dir),
           "COLUMNS": "250", "PATH": "/usr/bin:/bin"}

    def twin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                              timeout=120, stdin=subprocess.DEVNULL)

    shown = twin("history", "HISTCLI", "--layer", "establishments")
    assert shown.returncode == 0, shown.stderr
    assert "3 version(s)" in shown.stdout  # the first name (cut at 2024-06-01), its closed registration, the new
    assert "Eerst" in shown.stdout and "Daarna" in shown.stdout and "2024-06-01" in shown.stdout
    missing = twin("history", "NO-SUCH-ID")
    assert missing.returncode == 1 and "no versions" in missing.stderr
    wrong = twin("history", "HISTCLI", "--layer", "buildings")
    assert wrong.returncode == 1 and "keeps no history" in wrong.stderr
    # retention: with 1 day nothing of today goes; the current version always stays
    pruned = twin("history", "--prune")
    assert pruned.returncode == 0, pruned.stderr and "establishments" in pruned.stdout
    left = owner.execute("SELECT count(*) FROM history.establishments_versions WHERE establishment_id = 'HISTCLI' "
                         "AND upper_inf(registered)").fetchone()
    assert left is not None and left[0] >= 1


def test_analyses_answer_as_of(owner: psycopg.Connection, client) -> None:
    """geldigOp / beschikbaarOp on the analyses: the context names the establishment as it was then, the answer
    states both dates, housing-nitrogen answers (uncached) and a bad value is a 400 naming the parameter."""
    _load(owner, f"INSERT INTO twin.establishments (establishment_id, name, sbi_code, started_on, geom) "
                 f"VALUES ('HISTCTX', 'Toen BV', '0141', '2020-01-01', {POINT})", valid_from="2024-01-01")
    known = datetime.now(UTC)
    _load(owner, "UPDATE twin.establishments SET name = 'Nu BV' WHERE establishment_id = 'HISTCTX'",
          valid_from="2024-06-01")

    def subject(params: str) -> dict:
        r = client.get(f"/analysis/context?establishment=HISTCTX&radius=100&{params}")
        assert r.status_code == 200, r.text
        return r.json()

    now = subject("")
    then = subject("geldigOp=2024-03-01")
    assert now["subject"]["name"] == "Nu BV" and then["subject"]["name"] == "Toen BV"
    assert then["history"]["geldigOp"] == "2024-03-01" and then["as_of"] == "2024-03-01"
    # as known before the change was loaded, even for a day after it: the old name
    stamp = known.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert subject(f"geldigOp=2024-07-01&beschikbaarOp={stamp}")["subject"]["name"] == "Toen BV"
    bad = client.get("/analysis/context?establishment=HISTCTX&beschikbaarOp=gisteren")
    assert bad.status_code == 400 and bad.json()["parameter"] == "beschikbaarOp"
    differ = client.get("/analysis/context?establishment=HISTCTX&as_of=2024-01-01&geldigOp=2024-03-01")
    assert differ.status_code == 400 and differ.json()["parameter"] == "as_of"
    housing = client.get("/analysis/housing-nitrogen?geldigOp=2024-03-01")
    assert housing.status_code == 200 and "X-Analysis-Cache" not in housing.headers
    assert housing.json()["history"]["geldigOp"] == "2024-03-01"
