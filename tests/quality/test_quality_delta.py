"""The quality measurement over changed rows only (twin.quality.delta, migration 0027): after a re-delivery that
changes a few records, the row-local rules of the layer are counted over those records and added to the recorded
counts, and the result is exactly what counting every record gives: counts, the public's counts and examples.
A write that records no difference, or a change to another table a rule reads, makes the rule count in full."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from quality_fixture import AMSTERDAM, AS_OF, MUNICIPALITIES, write
from testdb import throwaway_database

from ingest import loader
from twin import database, quality
from twin.quality.sql import row_local
from twin.settings import Settings

LAYERS = ("establishments", "addresses", "buildings")


@pytest.fixture(scope="module")
def twin(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    """The fixture's establishments, addresses and buildings, loaded and measured once."""
    with throwaway_database(base_settings, f"twin_test_{os.getpid()}_delta", quality_as_of=AS_OF) as s:
        assert loader.load(s, "municipalities", MUNICIPALITIES).status == "succeeded"
        fx = write(tmp_path_factory.mktemp("delta"), database.url_for(s, "owner"))
        for layer in LAYERS:
            done = loader.load(s, layer, fx.files[layer], crs="EPSG:28992")
            assert done.status == "succeeded", (layer, done.message)
        quality.measure_and_record(s)
        yield s, fx.files["addresses"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _deliver(s: Settings, folder: Path, name: str, rows: list[dict[str, str]], mode: str = "upsert") -> None:
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    done = loader.load(s, "addresses", path, crs="EPSG:28992", mode=mode)
    assert done.status == "succeeded", done.message


def _rules() -> list[quality.QualityRule]:
    return [r for r in quality.all_rules() if r.layer in LAYERS]


def _compare(s: Settings) -> dict[str, quality.RuleResult]:
    """Measure incrementally and in full on the same state; every rule the same. Returns the incremental results."""
    with database.connect(database.url_for(s, "writer")) as conn:
        inc = {r.rule.id: r for r in quality.evaluate(conn, s, _rules(), incremental=True).results}
        full = {r.rule.id: r for r in quality.evaluate(conn, s, _rules()).results}
    assert all(r.incremental is None for r in full.values())
    for rid, f in full.items():
        i = inc[rid]
        assert (i.applicable, i.checked, i.failed, i.public, i.examples) == \
               (f.applicable, f.checked, f.failed, f.public, f.examples), rid
        assert i.fingerprint == f.fingerprint, rid
    return inc


def test_a_re_delivery_is_measured_over_its_changed_records(twin: tuple[Settings, Path], tmp_path: Path) -> None:
    s, first = twin
    rows = _rows(first)
    by_id = {r["address_id"]: r for r in rows}
    assert by_id["0344010000900003"]  # the fixture's address that lies in no building
    changed = [dict(r) for r in rows]
    changed[0]["x"] = str(float(changed[0]["x"]) + 60)  # out of its building: in-building fails
    changed[1]["street"] = ""  # street-filled fails
    changed[2]["municipality_code"] = AMSTERDAM  # Amsterdam: municipality-matches-location fails
    for r in changed:
        if r["address_id"] == "0344010000900003":
            r.update(x="134500", y="455805")  # into a building: in-building passes now
    changed.append({**rows[3], "address_id": "0344010000999999", "house_number": "99", "city": ""})  # new
    _deliver(s, tmp_path, "mutaties.csv", changed)
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        recorded = conn.execute("SELECT count(*), count(DISTINCT run_id) FROM twin.quality_deltas").fetchone()
    assert recorded is not None and recorded[0] > 0 and recorded[1] == 1

    # A second delivery before any measurement: replace, which deletes what it does not hold.
    _deliver(s, tmp_path, "volledig.csv", [r for r in changed if r["address_id"] != rows[5]["address_id"]],
             mode="replace")
    inc = _compare(s)
    local = [r for r in _rules() if r.layer == "addresses" and row_local(r)]
    assert {"addresses.in-building", "addresses.inside-netherlands", "addresses.street-filled",
            "addresses.municipality-matches-location"} <= {r.id for r in local}
    for rule in local:
        got = inc[rule.id]
        assert got.incremental is not None and len(got.incremental[1]) == 2, rule.id
    assert inc["addresses.in-building"].failed == 1  # the moved one; the fixture's own one is in a building now
    assert inc["addresses.in-building"].examples[0]["key"] == rows[0]["address_id"]
    assert inc["addresses.street-filled"].failed >= 2
    assert inc["addresses.municipality-matches-location"].failed == 2  # and the fixture's own one
    # rules that read other records of the layer, or that are not row-local, were counted in full
    assert inc["addresses.unique"].incremental is None
    assert inc["establishments.address-found"].incremental is None


def test_a_write_without_a_difference_or_a_change_elsewhere_counts_in_full(twin: tuple[Settings, Path],
                                                                          tmp_path: Path) -> None:
    s, first = twin
    quality.measure_and_record(s)
    rows = _rows(first)
    rows[7]["street"] = ""
    _deliver(s, tmp_path, "a.csv", rows)
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        # the buildings change: the addresses' difference no longer leads to the state of in-building
        conn.execute("UPDATE twin.buildings SET geom = ST_Translate(geom, 30, 0) WHERE building_id = "
                     "(SELECT min(building_id) FROM twin.buildings)")
    inc = _compare(s)
    assert inc["addresses.in-building"].incremental is None
    assert inc["addresses.street-filled"].incremental is not None

    with psycopg.connect(database.url_for(s, "owner")) as conn:
        conn.execute("UPDATE twin.addresses SET street = NULL WHERE id = (SELECT max(id) FROM twin.addresses)")
    inc = _compare(s)  # an edit by hand records no difference: every rule counts in full
    assert all(r.incremental is None for r in inc.values())


def test_a_delivery_that_changes_most_records_records_no_difference(twin: tuple[Settings, Path],
                                                                    tmp_path: Path) -> None:
    """Counting the changed records twice would cost the load about what the next full count costs: beyond a
    quarter of the table the load says so and records nothing; the measurement counts the layer in full."""
    s, first = twin
    quality.measure_and_record(s)
    rows = _rows(first)
    for r in rows:
        r["house_number"] = str(int(r["house_number"] or 0) + 1000)
    path = tmp_path / "alles_anders.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    done = loader.load(s, "addresses", path, crs="EPSG:28992")
    assert done.status == "succeeded", done.message
    assert done.rows_updated + done.rows_inserted == len(rows)
    assert any("records no quality difference" in n for n in done.notes), done.notes
    with psycopg.connect(database.url_for(s, "owner")) as conn:
        recorded = conn.execute("SELECT count(*) FROM twin.quality_deltas WHERE run_id = %s",
                                (done.run_id,)).fetchone()
    assert recorded == (0,)
    inc = _compare(s)
    assert all(inc[r.id].incremental is None for r in _rules() if r.layer == "addresses")
