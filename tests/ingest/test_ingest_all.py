"""``twin ingest-all DIR``: the manifest's files load in dependency order (a layer's depends_on first, even
when the manifest lists it later), the hexagons are derived after the raster and the habitats, a second
run changes nothing, and ``twin ingest`` without a subcommand loads one file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
import shapely
from ingest_fixtures import ESTABLISHMENTS, rows, run_cli, write_csv, write_raster

from ingest.manifest import order_entries
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")


def test_order_puts_dependencies_first() -> None:
    entries = [{"layer": "inspections"}, {"layer": "buildings"}, {"layer": "establishments"},
               {"layer": "municipalities"}, {"layer": "permits"}]
    assert [e["layer"] for e in order_entries(entries)] == \
        ["municipalities", "buildings", "establishments", "inspections", "permits"]


def test_loads_that_reference_one_layer_do_not_run_side_by_side() -> None:
    """Permits and inspections both reference the establishments: a bulk load sets its foreign key aside, which
    locks the establishments until it commits, so ingest-all runs them one after the other (and the others
    beside them)."""
    from cli.ingest import _contend

    assert _contend("permits", "inspections") and _contend("inspections", "permits")
    assert not _contend("permits", "buildings") and not _contend("establishments", "permits")
    assert not _contend("addresses", "nitrogen-deposition")


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "delivery"
    d.mkdir()
    write_csv(d / "inrichtingen.csv", ESTABLISHMENTS)
    write_csv(d / "controles.csv", [
        {"controle_id": f"C{i}", "inrichting_id": e["inrichting_id"], "datum_controle": "2024-03-01",
         "type": "routine", "resultaat": "voorschriften nageleefd"} for i, e in enumerate(ESTABLISHMENTS)])
    habitat = shapely.box(160500, 460500, 161500, 461500)
    (d / "habitats.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "N1", "naamN2K": "Test", "habtype1": "H4030", "kdw_mol": 1071},
         "geometry": shapely.geometry.mapping(habitat)}]}))
    write_raster(d / "depositie.tif", [np.full((300, 300), 1500.0)], 160000, 462000, 10.0, descriptions=["2024"])
    manifest = {"files": [  # inspections listed before the establishments they refer to
        {"layer": "inspections", "file": "controles.csv", "format": "CSV", "crs": "EPSG:28992"},
        {"layer": "establishments", "file": "inrichtingen.csv", "format": "CSV", "crs": "EPSG:28992"},
        {"layer": "natura2000-habitats", "file": "habitats.geojson", "format": "GeoJSON", "crs": "EPSG:28992"},
        {"layer": "nitrogen-deposition", "file": "depositie.tif", "format": "GTiff", "crs": "EPSG:28992"},
    ]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def test_ingest_all_loads_in_order_and_derives(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    proc = run_cli(ingest_settings, "ingest-all", str(folder), "--jobs", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = rows(ingest_owner, "SELECT layer, status FROM twin.ingest_runs ORDER BY id DESC LIMIT 5")[::-1]
    assert runs == [("establishments", "succeeded"), ("inspections", "succeeded"),
                    ("natura2000-habitats", "succeeded"), ("nitrogen-deposition", "succeeded"),
                    ("deposition-hexagons", "succeeded")]
    # The habitat is a 1 km square: ~100 receptor hexagons plus a ring that shares area with its edge.
    n, dep, kdw = rows(ingest_owner, "SELECT count(*), min(deposition), max(lowest_kdw) FROM twin.deposition_hexagons "
                       "WHERE resolution = '1ha'")[0]
    assert 100 <= n <= 140 and dep == pytest.approx(1500.0) and kdw == 1071.0
    again = run_cli(ingest_settings, "ingest-all", str(folder))
    assert again.returncode == 0, again.stderr
    statuses = rows(ingest_owner, "SELECT status FROM twin.ingest_runs ORDER BY id DESC LIMIT 4")
    assert statuses == [("unchanged",)] * 4  # nothing changed, so no derivation either


def test_ingest_without_subcommand_loads_a_file(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "e.csv", ESTABLISHMENTS)
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src), "--crs", "EPSG:28992")
    assert proc.returncode == 0, proc.stderr
    assert "ingest summary" in proc.stdout and "succeeded" in proc.stdout
    assert rows(ingest_owner, "SELECT count(*) FROM twin.establishments") == [(12,)]
    help_text = run_cli(ingest_settings, "ingest", "--help").stdout
    assert "runs" in help_text and "derive-hexagons" in help_text


def test_ingest_all_side_by_side_waits_for_what_a_load_depends_on(ingest_settings: Settings, ingest_owner: str,
                                                                  tmp_path: Path) -> None:
    """With two jobs (the default) loads run side by side, but a load starts only after the loads it depends on
    have committed, and the hexagons are derived after both their inputs; the data is the same as one by one."""
    folder = _folder(tmp_path)
    with psycopg.connect(ingest_owner) as conn:  # start from empty layers, so that every load writes
        conn.execute("TRUNCATE twin.inspections, twin.establishments, twin.natura2000_habitats, "
                     "twin.deposition_hexagons CASCADE")
    last_result = rows(ingest_owner, "SELECT coalesce(max(id), 0) FROM twin.quality_results")[0][0]
    first = run_cli(ingest_settings, "ingest-all", str(folder))
    assert first.returncode == 0, first.stdout + first.stderr
    # Every rule of the changed layers is measured once: those that do not read the hexagons while they may still
    # be derived, the others after; the analyses are kept meanwhile.
    from twin.quality import rules_reading

    changed = {"establishments", "inspections", "natura2000-habitats", "deposition-hexagons"}
    recorded = rows(ingest_owner, "SELECT rule_id FROM twin.quality_results WHERE id > %s", (last_result,))
    applicable = {r.id for r in rules_reading(frozenset(changed))} & {rule for rule, in recorded}
    assert sorted(rule for rule, in recorded) == sorted(applicable), first.stdout
    assert {"deposition-hexagons.geometry-valid", "establishments.name-filled"} <= applicable, applicable
    assert "kept the inspection-priority ranking" in first.stdout, first.stdout
    runs = {layer: (started, finished, status) for layer, started, finished, status in rows(
        ingest_owner, "SELECT DISTINCT ON (layer) layer, started_at, finished_at, status FROM twin.ingest_runs "
        "ORDER BY layer, id DESC")}
    assert {layer: r[2] for layer, r in runs.items()}.items() >= {
        "establishments": "succeeded", "inspections": "succeeded", "natura2000-habitats": "succeeded",
        "deposition-hexagons": "succeeded"}.items()
    assert runs["establishments"][1] <= runs["inspections"][0]
    assert max(runs["natura2000-habitats"][1], runs["nitrogen-deposition"][1]) <= runs["deposition-hexagons"][0]
    n = rows(ingest_owner, "SELECT count(*) FROM twin.deposition_hexagons WHERE resolution = '1ha'")[0][0]
    assert 100 <= n <= 140


def test_two_files_of_one_layer_load_in_manifest_order_side_by_side(ingest_settings: Settings, ingest_owner: str,
                                                                     tmp_path: Path) -> None:
    """Two deliveries of the same layer in one manifest load one after the other in manifest order, also with two
    jobs, so that the later file wins as it does when loading one by one."""
    from cli.ingest import _depends

    d = tmp_path / "twice"
    d.mkdir()
    first = [dict(e) for e in ESTABLISHMENTS]
    second = [dict(e) for e in ESTABLISHMENTS]
    second[0]["naam"] = "Tweede levering BV"
    write_csv(d / "a.csv", first)
    write_csv(d / "b.csv", second)
    entries = [{"layer": "establishments", "file": "a.csv", "format": "CSV", "crs": "EPSG:28992"},
               {"layer": "establishments", "file": "b.csv", "format": "CSV", "crs": "EPSG:28992"}]
    (d / "manifest.json").write_text(json.dumps({"files": entries}))
    assert _depends(1, entries) == {0} and _depends(0, entries) == set()
    done = run_cli(ingest_settings, "ingest-all", str(d), "--jobs", "2", "--no-derive", "--no-quality",
                   "--no-keep-analyses")
    assert done.returncode == 0, done.stdout + done.stderr
    (a_end,), (b_start,) = (rows(ingest_owner, "SELECT finished_at FROM twin.ingest_runs WHERE source LIKE %s "
                                 "ORDER BY id DESC LIMIT 1", ("%/a.csv",))[0],
                            rows(ingest_owner, "SELECT started_at FROM twin.ingest_runs WHERE source LIKE %s "
                                 "ORDER BY id DESC LIMIT 1", ("%/b.csv",))[0])
    assert a_end <= b_start
    name = rows(ingest_owner, "SELECT name FROM twin.establishments WHERE establishment_id = %s",
                (ESTABLISHMENTS[0]["inrichting_id"],))
    assert name == [("Tweede levering BV",)]


def test_a_database_without_the_schema_is_named_with_what_to_run(base_settings: Settings, tmp_path: Path) -> None:
    """A database created by hand and never migrated: 'twin ingest' and 'twin ingest-all' say which database
    lacks the schema and what to run, exit 1 and print no traceback."""
    import os

    from testdb import throwaway_database

    with throwaway_database(base_settings, f"twin_test_{os.getpid()}_unmigrated", migrated=False) as s:
        folder = _folder(tmp_path)
        for args in (("ingest", "establishments", str(folder / "inrichtingen.csv")), ("ingest-all", str(folder))):
            done = run_cli(s, *args)
            out = done.stdout + done.stderr
            assert done.returncode == 1, out
            assert "Traceback" not in out, out
            assert "has no twin schema yet" in out and "twin db migrate" in out and s.database_name in out, out
            assert out.count("has no twin schema yet") == 1, out  # said once, not once per file of the manifest
    # A database that does not exist: one error that says so and what to check, before any file is read.
    if base_settings.database_url:  # a database of the URL's: nothing to name instead
        return
    gone = base_settings.model_copy(update={"database_name": f"twin_test_{os.getpid()}_missing"})
    (tmp_path / "again").mkdir()
    done = run_cli(gone, "ingest-all", str(_folder(tmp_path / "again")))
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out, out
    assert out.count("cannot connect to the database") == 1 and "does not exist" in out, out
