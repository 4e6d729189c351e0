"""The vector loader end to end against the real PostGIS: formats, counts, idempotency, upsert/replace,
reject threshold, provenance, references and the establishment's location."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from ingest_fixtures import (
    CSV_FIELDS,
    ESTABLISHMENTS,
    establishments_gdf,
    rows,
    run_cli,
    scalar,
    table_checksum,
    write_csv,
)

from ingest.loader import load
from ingest.values import DATE_REASON
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")


def test_csv_loads_with_dutch_columns(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "inrichtingen.csv", ESTABLISHMENTS)
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992")
    assert (result.status, result.rows_read, result.rows_inserted, result.rows_rejected) == ("succeeded", 12, 12, 0)
    got = rows(ingest_owner, "SELECT establishment_id, name, kvk_number, sbi_code, sole_proprietor, brzo, "
               "visit_frequency_years, environmental_category, started_on::text, ST_X(geom), ST_Y(geom), run_id "
               "FROM twin.establishments ORDER BY establishment_id")
    assert len(got) == 12
    for r, src_row in zip(got, ESTABLISHMENTS, strict=True):
        n = int(src_row["inrichting_id"][2:])
        assert r[:4] == (src_row["inrichting_id"], src_row["naam"], src_row["kvk_nummer"], src_row["sbi_code"])
        assert r[4] is (n % 3 == 0)  # rechtsvorm Eenmanszaak -> sole proprietor
        assert r[5] is (n == 5)  # brzo ja/nee
        assert r[6] == src_row["bezoekfrequentie"]
        assert r[7] == src_row["milieucategorie"]
        assert r[8] == src_row["aanvang"]
        assert (r[9], r[10]) == (src_row["x_coord"], src_row["y_coord"])
        assert r[11] == result.run_id
    run = rows(ingest_owner, "SELECT status, source, checksum, layer, mode, rows_read, rows_inserted, timings "
               "FROM twin.ingest_runs WHERE id = %s", (result.run_id,))[0]
    assert run[0] == "succeeded" and run[1] == str(src) and run[3:7] == ("establishments", "upsert", 12, 12)
    import hashlib

    assert run[2] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert {"read", "validate", "stage", "merge", "total"} <= set(run[7])


def test_second_load_of_the_same_file_changes_nothing(ingest_settings: Settings, ingest_owner: str,
                                                      tmp_path: Path) -> None:
    src = write_csv(tmp_path / "inrichtingen.csv", ESTABLISHMENTS)
    first = load(ingest_settings, "establishments", src, crs="EPSG:28992")
    before = table_checksum(ingest_owner, "establishments")
    second = load(ingest_settings, "establishments", src, crs="EPSG:28992")
    assert first.status == "succeeded"
    assert (second.status, second.rows_inserted, second.rows_updated, second.rows_unchanged) == ("unchanged", 0, 0, 12)
    assert second.checksum == first.checksum
    # Not rewritten: every row still carries the first run and its loaded_at.
    assert table_checksum(ingest_owner, "establishments") == before
    assert scalar(ingest_owner, "SELECT status FROM twin.ingest_runs WHERE id = %s", (second.run_id,)) == "unchanged"


def test_upsert_rewrites_only_the_changed_row(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    load(ingest_settings, "establishments", write_csv(tmp_path / "a.csv", ESTABLISHMENTS), crs="EPSG:28992")
    changed = [dict(r) for r in ESTABLISHMENTS]
    changed[3]["naam"] = "Nieuwe naam BV"
    changed.append({**ESTABLISHMENTS[0], "inrichting_id": "IE900", "x_coord": 161500.0})
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "b.csv", changed), crs="EPSG:28992")
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 1, 11)
    by_run = dict(rows(ingest_owner, "SELECT run_id, count(*) FROM twin.establishments GROUP BY run_id"))
    assert by_run[result.run_id] == 2
    assert scalar(ingest_owner, "SELECT name FROM twin.establishments WHERE establishment_id = 'IE003'") == \
        "Nieuwe naam BV"


def test_replace_deletes_what_the_file_no_longer_holds(ingest_settings: Settings, ingest_owner: str,
                                                       tmp_path: Path) -> None:
    load(ingest_settings, "establishments", write_csv(tmp_path / "a.csv", ESTABLISHMENTS), crs="EPSG:28992")
    fewer = ESTABLISHMENTS[:8]
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "b.csv", fewer), crs="EPSG:28992",
                  mode="replace")
    assert (result.status, result.rows_deleted, result.rows_unchanged) == ("succeeded", 4, 8)
    ids = [r[0] for r in rows(ingest_owner, "SELECT establishment_id FROM twin.establishments ORDER BY 1")]
    assert ids == [r["inrichting_id"] for r in fewer]


def test_too_many_rejects_loads_nothing_and_exits_non_zero(ingest_settings: Settings, ingest_owner: str,
                                                           tmp_path: Path) -> None:
    bad = [dict(r) for r in ESTABLISHMENTS]
    bad[2]["aanvang"] = "15 maart 2012"  # written out: neither ISO nor DD-MM-YYYY
    src = write_csv(tmp_path / "bad.csv", bad)
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src), "--crs", "EPSG:28992")
    assert proc.returncode != 0, proc.stdout
    assert "1 of 12 rows rejected" in proc.stderr + proc.stdout
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.establishments") == 0
    run_id, status = rows(ingest_owner, "SELECT id, status FROM twin.ingest_runs ORDER BY id DESC LIMIT 1")[0]
    assert status == "refused"
    rejects = rows(ingest_owner, "SELECT row_number, field, value, reason, severity FROM twin.ingest_rejects "
                   "WHERE run_id = %s", (run_id,))
    assert rejects == [(3, "aanvang", "15 maart 2012", f"aanvang '15 maart 2012' {DATE_REASON}",
                        "error")]
    report = src.with_name("bad.csv.rejects.csv")
    with report.open() as fh:
        lines = list(csv.DictReader(fh))
    assert lines == [{"file": str(src), "row": "3", "field": "aanvang", "value": "15 maart 2012",
                      "reason": f"aanvang '15 maart 2012' {DATE_REASON}", "severity": "error"}]
    # Within the threshold the good rows load and the reject is reported.
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src), "--crs", "EPSG:28992",
                   "--max-reject-rate", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.establishments") == 11


def test_rejects_report_falls_back_to_the_data_dir(ingest_settings: Settings, tmp_path: Path) -> None:
    bad = [dict(r) for r in ESTABLISHMENTS]
    bad[0]["milieucategorie"] = "7"
    src = write_csv(tmp_path / "e.csv", bad)
    # The report's place next to the source cannot be written (a folder holds its name; root ignores
    # read-only modes, so this is the dependable way to make the write fail).
    (tmp_path / "e.csv.rejects.csv").mkdir()
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.5)
    assert result.report == ingest_settings.data_dir.resolve() / "rejects" / "e.csv.rejects.csv"
    assert "milieucategorie '7' is not one of the allowed values" in result.report.read_text()
    assert any(f"the rejects report went to {result.report}" in n for n in result.notes)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "gpkg-layer", "shp", "parquet", "csv-wkt", "csv-lonlat"])
def test_every_format_loads_the_same_rows(fmt: str, ingest_settings: Settings, ingest_owner: str,
                                          tmp_path: Path) -> None:
    gdf = establishments_gdf()
    if fmt == "geojson":
        src = tmp_path / "e.geojson"
        gdf.to_crs(4326).to_file(src, driver="GeoJSON")
    elif fmt == "gpkg":
        src = tmp_path / "e.gpkg"
        gdf.to_file(src, layer="inrichtingen", driver="GPKG")
    elif fmt == "gpkg-layer":
        path = tmp_path / "e.gpkg"
        gdf.iloc[:2].to_file(path, layer="andere", driver="GPKG")
        gdf.to_file(path, layer="inrichtingen", driver="GPKG")
        src = Path(f"{path}:inrichtingen")
    elif fmt == "shp":
        src = tmp_path / "e.shp"
        gdf.to_file(src)
    elif fmt == "parquet":
        src = tmp_path / "e.parquet"
        gdf.to_parquet(src)
    elif fmt == "csv-wkt":
        df = gdf.copy()
        df["wkt"] = df.geometry.to_wkt()
        src = write_csv(tmp_path / "e.csv", df.drop(columns="geometry").to_dict("records"))
    else:
        ll = gdf.to_crs(4326)
        df = ll.drop(columns="geometry")
        df["lon"], df["lat"] = ll.geometry.x, ll.geometry.y
        src = write_csv(tmp_path / "e.csv", df.to_dict("records"))
    crs = "EPSG:28992" if fmt == "csv-wkt" else None
    result = load(ingest_settings, "establishments", src, crs=crs)
    assert (result.status, result.rows_inserted, result.rows_rejected) == ("succeeded", 12, 0), result.message
    got = rows(ingest_owner, "SELECT establishment_id, kvk_number, ST_X(geom), ST_Y(geom) FROM twin.establishments "
               "ORDER BY establishment_id")
    tolerance = 1e-6 if fmt in ("gpkg", "gpkg-layer", "shp", "parquet", "csv-wkt") else 0.01
    for r, e in zip(got, ESTABLISHMENTS, strict=True):
        assert r[:2] == (e["inrichting_id"], e["kvk_nummer"])
        assert abs(r[2] - e["x_coord"]) < tolerance and abs(r[3] - e["y_coord"]) < tolerance


def test_permits_without_coordinates_lie_at_their_establishment(ingest_settings: Settings, ingest_owner: str,
                                                                tmp_path: Path) -> None:
    load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", ESTABLISHMENTS), crs="EPSG:28992")
    permits = [
        {"zaaknummer": "Z-1", "inrichting_id": "IE001", "soort": "Omgevingsvergunning", "status": "verleend",
         "datum_aanvraag": "2020-01-10", "datum_besluit": "2020-06-01", "nh3_emissie": "1250,5"},
        {"zaaknummer": "Z-2", "inrichting_id": "IE404", "soort": "melding", "status": "verleend",
         "datum_aanvraag": "", "datum_besluit": "2021-02-01", "nh3_emissie": ""},
        {"zaaknummer": "Z-3", "inrichting_id": "IE002", "soort": "melding", "status": "verleend",
         "datum_aanvraag": "2022-05-01", "datum_besluit": "2022-04-01", "nh3_emissie": ""},
    ]
    result = load(ingest_settings, "permits", write_csv(tmp_path / "p.csv", permits), max_reject_rate=1)
    assert (result.rows_inserted, result.rows_rejected) == (1, 2)
    reasons = {(r.row, r.field): r.reason for r in result.rejects}
    assert reasons[(2, "inrichting_id")] == ("inrichting_id 'IE404' does not exist: no establishments row with this "
                                             "establishment_id in the twin (load establishments first)")
    assert reasons[(3, "datum_besluit")] == "datum_besluit '2022-04-01' lies before datum_aanvraag (2022-05-01)"
    got = rows(ingest_owner, "SELECT p.permit_type, p.nh3_kg_per_year, ST_Equals(p.geom, e.geom) FROM twin.permits p "
               "JOIN twin.establishments e USING (establishment_id)")
    assert got == [("omgevingsvergunning", 1250.5, True)]
    # a second delivery (an upsert into the filled layer): the unchanged permit stays as it was, a new one takes
    # its establishment's location in the merge too
    again = [permits[0], {**permits[2], "zaaknummer": "Z-4", "datum_besluit": "2022-06-01"}]
    result = load(ingest_settings, "permits", write_csv(tmp_path / "p2.csv", again))
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 0, 1)
    got = rows(ingest_owner, "SELECT p.permit_id, ST_Equals(p.geom, e.geom) FROM twin.permits p "
               "JOIN twin.establishments e USING (establishment_id) ORDER BY 1")
    assert got == [("Z-1", True), ("Z-4", True)]


def test_unknown_layer_and_missing_required_column_are_clear(ingest_settings: Settings, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "e.csv", ESTABLISHMENTS, fields=[f for f in CSV_FIELDS if f != "sbi_code"])
    proc = run_cli(ingest_settings, "ingest", "establishment", str(src))
    assert proc.returncode == 1 and "unknown layer 'establishment'" in proc.stderr
    result = load(ingest_settings, "establishments", src, crs="EPSG:28992")
    assert result.status == "refused"
    assert result.message is not None and "no column for required field(s) sbi_code (looked for: sbi_code, sbi" in \
        result.message


def test_runs_table_lists_the_runs(ingest_settings: Settings, tmp_path: Path) -> None:
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", ESTABLISHMENTS), crs="EPSG:28992")
    proc = run_cli(ingest_settings, "ingest", "runs", "--limit", "3")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.strip("│ ").startswith(str(result.run_id)))
    assert "establishments" in line and "succeeded" in line and "12" in line
    json.dumps(result.timings)  # timings are plain numbers


def _indexes(url: str, table: str) -> list[tuple[str, str]]:
    return rows(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'twin' AND tablename = %s "
                "ORDER BY 1", (table,)) + rows(
        url, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "ORDER BY 1", (f"twin.{table}",))


def test_bulk_load_rebuilds_the_indexes_it_set_aside(ingest_settings: Settings, ingest_owner: str, tmp_path: Path,
                                                     empty_layers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexes and the keys that a bulk load into the empty table sets aside come back exactly, after a
    refused load (the rollback) and after a good one."""
    import psycopg

    from ingest import loader

    with psycopg.connect(ingest_owner) as conn:  # what the load sets aside (rolled back at the end of the block)
        aside = conn.execute("SELECT twin.ingest_defer_indexes('establishments'), "
                             "twin.ingest_defer_constraints('establishments')").fetchone()
        kept = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'twin.establishments'::regclass "
                            "AND contype IN ('p', 'u') ORDER BY 1").fetchall()
        conn.rollback()
    # the primary key goes; the unique establishment_id stays, as the permits' and inspections' foreign keys use it
    assert aside is not None and aside[0] >= 1 and aside[1] == 1
    assert kept == [("establishments_establishment_id_key",)]

    monkeypatch.setattr(loader, "DEFER_INDEXES_MIN_ROWS", 1)
    before = _indexes(ingest_owner, "establishments")
    assert any("USING gist" in d for _, d in before)
    bad = [dict(r) for r in ESTABLISHMENTS]
    bad[0]["sbi_code"] = "x"
    refused = load(ingest_settings, "establishments", write_csv(tmp_path / "bad.csv", bad), crs="EPSG:28992")
    assert refused.status == "refused"
    assert _indexes(ingest_owner, "establishments") == before  # the rollback brought them back
    analysed = "SELECT coalesce(sum(analyze_count), 0) FROM pg_stat_all_tables WHERE relid = ANY(%s::regclass[])"
    tables = ["twin.establishments", "history.establishments_versions"]
    analyses_before = scalar(ingest_owner, analysed, (tables,))
    result = load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", ESTABLISHMENTS), crs="EPSG:28992")
    assert result.status == "succeeded" and "indexes" in result.timings
    assert _indexes(ingest_owner, "establishments") == before
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.ingest_deferred_indexes") == 0
    # a bulk load gathers the statistics of the layer and its history (migration 0023), which the next load's
    # history check and the quality measurement plan with; the counters reach the view when the session ends
    assert "analyze" in result.timings
    for _ in range(50):
        if scalar(ingest_owner, analysed, (tables,)) >= analyses_before + 2:
            break
        time.sleep(0.1)
    assert scalar(ingest_owner, analysed, (tables,)) >= analyses_before + 2


def test_ingest_analyze_takes_only_layer_tables(ingest_settings: Settings) -> None:
    import psycopg

    from twin import database

    with psycopg.connect(database.url_for(ingest_settings, "writer")) as conn:
        conn.execute("SELECT twin.ingest_analyze('permits')")
        with pytest.raises(psycopg.errors.RaiseException, match="not a layer table"):
            conn.execute("SELECT twin.ingest_analyze('pg_authid')")


def test_invalid_polygon_that_cannot_keep_its_type_is_rejected(ingest_settings: Settings, ingest_owner: str,
                                                               tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely

    x, y = 160000.0, 460000.0
    bowtie = shapely.Polygon([(x, y), (x + 20, y + 20), (x + 20, y), (x, y + 20), (x, y)])  # repairs to 2 parts
    hole = [(x + 52, y + 2), (x + 54, y + 2), (x + 54, y + 4), (x + 52, y + 4)]
    twice = shapely.Polygon([(x + 50, y), (x + 60, y), (x + 60, y + 10), (x + 50, y + 10)], holes=[hole, hole])
    # the same hole twice: repairs to one polygon with one hole
    gdf = gpd.GeoDataFrame({"identificatie": ["0001", "0002", "0003"], "bouwjaar": [1990, 2000, 2010]},
                           geometry=[shapely.box(x + 100, y, x + 110, y + 10), bowtie, twice], crs="EPSG:28992")
    src = tmp_path / "panden.gpkg"
    gdf.to_file(src, layer="pand")
    result = load(ingest_settings, "buildings", src, max_reject_rate=0.5)
    by_row = {(r.row, r.severity): r.reason for r in result.rejects}
    assert by_row[(2, "error")].startswith("geom: the geometry is invalid (Self-intersection")
    assert by_row[(2, "error")].endswith("ST_MakeValid cannot repair it without changing its type (the repair gives "
                                         "a MultiPolygon)")
    assert by_row[(3, "warning")].endswith("and was repaired with ST_MakeValid")
    assert (result.rows_inserted, result.rows_rejected, result.warnings) == (2, 1, 1)
    assert rows(ingest_owner, "SELECT building_id, ST_IsValid(geom), ST_NumInteriorRings(geom), ST_Area(geom) "
                "FROM twin.buildings ORDER BY 1") == [("0001", True, 0, 100.0), ("0003", True, 1, 96.0)]


def test_3dbag_heights_are_derived(ingest_settings: Settings, ingest_owner: str, empty_layers: None,
                                   tmp_path: Path) -> None:
    """A 3D BAG 'pand' layer has no height column: height = b3_h_dak_70p - b3_h_maaiveld (m NAP)."""
    import geopandas as gpd
    from shapely.geometry import box

    gdf = gpd.GeoDataFrame(
        {
            "identificatie": ["0228100000000001", "0228100000000002"],
            "oorspronkelijkbouwjaar": [1932, 2004],
            "b3_h_maaiveld": [10.25, -2.0],
            "b3_h_dak_70p": [18.75, 4.5],
        },
        geometry=[box(172000, 451000, 172010, 451012), box(172100, 451000, 172120, 451008)],
        crs="EPSG:28992",
    )
    src = tmp_path / "3dbag.gpkg"
    gdf.to_file(src, layer="pand", driver="GPKG")
    result = load(ingest_settings, "buildings", Path(f"{src}:pand"))
    assert result.ok, result
    heights = dict(rows(ingest_owner, "SELECT building_id, height_m FROM twin.buildings "
                                      "WHERE building_id LIKE '02281000000000%' ORDER BY 1"))
    assert heights == {"0228100000000001": 18.75 - 10.25, "0228100000000002": 4.5 - (-2.0)}


def test_kdw_from_the_habitat_type_when_the_map_has_none(ingest_settings: Settings, ingest_owner: str,
                                                          empty_layers: None, tmp_path: Path) -> None:
    """The BIJ12 habitat type map has codes only: the KDW comes from DESIGN.md's table (Van Dobben 2012)."""
    import geopandas as gpd
    from shapely.geometry import box

    gdf = gpd.GeoDataFrame(
        {
            "identificatie": ["HT-1", "HT-2", "HT-3"],
            "naamN2K": ["Veluwe"] * 3,
            "Habtype1": ["H4030", "H7110_A", "H9999"],
        },
        geometry=[box(180000 + i * 100, 455000, 180050 + i * 100, 455050) for i in range(3)],
        crs="EPSG:28992",
    )
    src = tmp_path / "habitattypen.gpkg"
    gdf.to_file(src, driver="GPKG")
    result = load(ingest_settings, "natura2000-habitats", src)
    assert result.ok, result
    kdw = dict(rows(ingest_owner, "SELECT habitat_id, kdw FROM twin.natura2000_habitats ORDER BY 1"))
    assert kdw == {"HT-1": 1071.0, "HT-2": 500.0, "HT-3": None}  # DESIGN.md: H4030 1071, H7110A 500


def test_first_load_into_an_empty_table_gets_new_storage(ingest_settings: Settings, ingest_owner: str,
                                                         empty_layers: None, tmp_path: Path) -> None:
    """With wal_level = minimal (the local cluster's setting) a first load truncates the empty table inside its
    transaction: new storage, so its COPY and index builds write no WAL. A refused first load leaves the table as
    it was; a load into a table that holds rows keeps its storage; a table that a foreign key references
    (establishments) is never truncated."""
    import geopandas as gpd
    import psycopg
    import shapely

    wal_level = scalar(ingest_owner, "SHOW wal_level")
    if ingest_settings.local_cluster:
        assert wal_level == "minimal"  # twin/cluster.py writes it into a new cluster's configuration
    elif wal_level != "minimal":
        pytest.skip(f"the server runs with wal_level = {wal_level}: twin.ingest_fresh_table does nothing there")

    def node() -> int:
        return int(scalar(ingest_owner, "SELECT pg_relation_filenode('twin.buildings')"))

    x, y = 160000.0, 460000.0
    boxes = [shapely.box(x + 20 * i, y, x + 20 * i + 10, y + 10) for i in range(3)]
    good = gpd.GeoDataFrame({"identificatie": ["0001", "0002", "0003"]}, geometry=boxes, crs="EPSG:28992")
    bad = gpd.GeoDataFrame({"identificatie": ["0001", "0001", "0002"]}, geometry=boxes, crs="EPSG:28992")
    good.to_file(tmp_path / "good.gpkg", layer="pand")
    bad.to_file(tmp_path / "bad.gpkg", layer="pand")

    empty = node()
    refused = load(ingest_settings, "buildings", tmp_path / "bad.gpkg")  # 1 of 3 rows rejected: over 1%
    assert refused.status == "refused"
    assert node() == empty and scalar(ingest_owner, "SELECT count(*) FROM twin.buildings") == 0

    first = load(ingest_settings, "buildings", tmp_path / "good.gpkg")
    assert (first.status, first.rows_inserted) == ("succeeded", 3)
    loaded = node()
    assert loaded != empty
    assert rows(ingest_owner, "SELECT building_id, ST_Area(geom) FROM twin.buildings ORDER BY 1") == [
        ("0001", 100.0), ("0002", 100.0), ("0003", 100.0)]

    again = load(ingest_settings, "buildings", tmp_path / "good.gpkg", mode="replace")
    assert again.status == "unchanged" and node() == loaded

    with psycopg.connect(ingest_owner) as conn:
        est = conn.execute("SELECT pg_relation_filenode('twin.establishments')").fetchone()
        assert conn.execute("SELECT twin.ingest_fresh_table('establishments')").fetchone() == (False,)
        assert conn.execute("SELECT pg_relation_filenode('twin.establishments')").fetchone() == est
        assert conn.execute("SELECT twin.ingest_fresh_table('buildings')").fetchone() == (False,)  # holds rows
        with pytest.raises(psycopg.errors.RaiseException, match="audit_log is not a layer table"):
            conn.execute("SELECT twin.ingest_fresh_table('audit_log')")


# Values where a careless rewrite of a CHECK would differ: other Unicode digits, multibyte letters that make
# the byte length right, whitespace, a newline before the end, too short and too long.
TRICKY_IDS = ["", "1", "12", "123", "12345", "123456", "12345678", "123456789012", "1234567890123456",
              "12345678901234567", "123456789012345", "1234567890a23456", " 123456789012345", "123456789012345 ",
              "123456789012345\n", "١٢٣٤٥٦٧٨", "１２３４", "12345678901234é", "1234567é", "-1234567", "+1234567",
              "1.234567", "0000000000000000", None]


@pytest.mark.parametrize(("table", "column", "original"), [
    ("addresses", "address_id", "^[0-9]{16}$"), ("establishments", "kvk_number", "^[0-9]{8}$"),
    ("establishments", "vestigingsnummer", "^[0-9]{12}$"), ("establishments", "sbi_code", "^[0-9]{2,5}$")])
def test_faster_identifier_checks_accept_what_the_regular_expressions_accept(ingest_owner: str, table: str,
                                                                            column: str, original: str) -> None:
    """Migration 0008 rewrote these CHECKs for speed; the table's CHECK must decide like the original pattern."""
    (definition,) = rows(ingest_owner, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
                         (f"{table}_{column}_check",))[0]
    assert definition.startswith("CHECK (") and "{" not in definition
    import psycopg
    from psycopg import sql

    with psycopg.connect(ingest_owner) as conn:
        got = conn.execute(sql.SQL("SELECT {c}, coalesce({expr}, true), coalesce({c} ~ %s, true) "
                                   "FROM unnest(%s::text[]) AS u({c})").format(
            c=sql.Identifier(column), expr=sql.SQL(definition.removeprefix("CHECK "))),
            (original, TRICKY_IDS)).fetchall()
    assert [(v, new) for v, new, _ in got] == [(v, old) for v, _, old in got]
    decided = [new for v, new, _ in got if v is not None]
    assert any(decided) and not all(decided)


@pytest.mark.parametrize("bulk", [True, False])
def test_first_staged_load_inserts_plainly_and_restores_its_keys(
        bulk: bool, ingest_settings: Settings, ingest_owner: str, empty_layers: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Permits are staged (their establishments are checked in the twin). Into the empty table they go by a plain
    INSERT; a bulk load first sets aside the indexes, the keys and the foreign key to establishments, and adds
    them back before COMMIT. The rows, the rejects and the table's definition come out the same either way, and
    a second load of the file is the usual upsert (unchanged)."""
    from ingest import loader

    monkeypatch.setattr(loader, "DEFER_INDEXES_MIN_ROWS", 1 if bulk else 10**9)
    load(ingest_settings, "establishments", write_csv(tmp_path / "e.csv", ESTABLISHMENTS), crs="EPSG:28992")
    before = _indexes(ingest_owner, "permits")
    assert any(d.startswith("FOREIGN KEY (establishment_id)") for _, d in before)
    permits = [{"zaaknummer": f"Z-{i}", "inrichting_id": e["inrichting_id"], "soort": "melding", "status": "verleend",
                "datum_aanvraag": "2020-01-10", "datum_besluit": "2020-06-01", "nh3_emissie": ""}
               for i, e in enumerate(ESTABLISHMENTS)]
    permits.append({**permits[0], "zaaknummer": "Z-404", "inrichting_id": "IE404"})
    src = write_csv(tmp_path / "p.csv", permits)
    result = load(ingest_settings, "permits", src, max_reject_rate=0.5)
    assert (result.status, result.rows_inserted, result.rows_rejected) == ("succeeded", len(ESTABLISHMENTS), 1)
    assert [r.row for r in result.rejects] == [len(permits)]
    assert ("indexes" in result.timings) == bulk
    assert _indexes(ingest_owner, "permits") == before
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.ingest_deferred_indexes") == 0
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.permits p JOIN twin.establishments e "
                                "USING (establishment_id) WHERE ST_Equals(p.geom, e.geom)") == len(ESTABLISHMENTS)
    again = load(ingest_settings, "permits", src, max_reject_rate=0.5)
    assert (again.status, again.rows_inserted, again.rows_updated, again.rows_unchanged) == (
        "unchanged", 0, 0, len(ESTABLISHMENTS))
