"""The BAG addresses layer (migration 0004) and the establishments' end date: loads from a PDOK bag-light
style GeoPackage and from a CSV with the column names of the BAG extract, checks what the schema checks,
and ended_on round-trips."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
from ingest_fixtures import CSV_FIELDS, ESTABLISHMENTS, rows, scalar, write_csv

from ingest.loader import load
from twin.settings import Settings

pytestmark = pytest.mark.usefixtures("empty_layers")

# Six addresses in Amersfoort (GM0307), 100 m apart, the way the PDOK bag-light `verblijfsobject` layer holds
# them: one with a house letter, one with an addition, one without a postcode.
BAG_LIGHT = [
    {"identificatie": f"03070100000{n:05d}", "openbare_ruimte_naam": "Langestraat", "huisnummer": 10 + n,
     "huisletter": "A" if n == 1 else None, "toevoeging": "bis" if n == 2 else None,
     "postcode": None if n == 5 else f"3811A{'BCDEF'[n % 5]}", "woonplaats_naam": "Amersfoort",
     "pand_identificatie": f"03071000000{n:05d}", "gebruiksdoel": "woonfunctie",
     "x": 155000.0 + 100 * n, "y": 463000.0}
    for n in range(6)
]


def _bag_light_gpkg(path: Path) -> Path:
    attrs = [{k: v for k, v in r.items() if k not in ("x", "y")} for r in BAG_LIGHT]
    gdf = gpd.GeoDataFrame(attrs, geometry=shapely.points([r["x"] for r in BAG_LIGHT], [r["y"] for r in BAG_LIGHT]),
                           crs="EPSG:28992")
    gdf.to_file(path, layer="verblijfsobject", driver="GPKG")
    return path


def test_addresses_load_from_a_bag_light_geopackage(ingest_settings: Settings, ingest_owner: str,
                                                   tmp_path: Path) -> None:
    result = load(ingest_settings, "addresses", f"{_bag_light_gpkg(tmp_path / 'bag-light.gpkg')}:verblijfsobject")
    assert (result.status, result.rows_read, result.rows_inserted, result.rows_rejected) == ("succeeded", 6, 6, 0)
    got = rows(ingest_owner, "SELECT address_id, street, house_number, house_letter, house_number_addition, "
               "postcode, city, ST_X(geom), ST_Y(geom), ST_SRID(geom) FROM twin.addresses ORDER BY address_id")
    assert [r[0] for r in got] == [r["identificatie"] for r in BAG_LIGHT]
    for r, src in zip(got, BAG_LIGHT, strict=True):
        assert r[1:7] == (src["openbare_ruimte_naam"], src["huisnummer"], src["huisletter"], src["toevoeging"],
                          src["postcode"], src["woonplaats_naam"])
        assert r[7:] == (src["x"], src["y"], 28992)
    # the (postcode, house number) lookup the quality rules use
    assert scalar(ingest_owner, "SELECT address_id FROM twin.addresses WHERE postcode = '3811AD' AND "
                  "house_number = 12") == BAG_LIGHT[2]["identificatie"]


BAG_EXTRACT_FIELDS = ["identificatie", "openbareruimtenaam", "huisnummer", "huisletter", "huisnummertoevoeging",
                      "postcode", "woonplaatsnaam", "gemeentecode", "x", "y"]


def _extract_row(n: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {"identificatie": f"03070100001{n:05d}", "openbareruimtenaam": "Stationsplein",
                              "huisnummer": n + 1, "huisletter": "", "huisnummertoevoeging": "",
                              "postcode": "3818 LE", "woonplaatsnaam": "Amersfoort", "gemeentecode": "0307",
                              "x": 155500.0 + 10 * n, "y": 463600.0}
    row.update(changes)
    return row


def test_addresses_load_from_a_bag_extract_csv(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "adressen.csv", [_extract_row(n) for n in range(4)], BAG_EXTRACT_FIELDS)
    result = load(ingest_settings, "addresses", src, crs="EPSG:28992")
    assert (result.status, result.rows_inserted, result.rows_rejected) == ("succeeded", 4, 0)
    got = rows(ingest_owner, "SELECT address_id, street, house_number, house_letter, house_number_addition, "
               "postcode, city, municipality_code FROM twin.addresses ORDER BY address_id")
    # the BAG's four-digit municipality code gets the CBS prefix, the postcode loses its space
    assert got == [(f"03070100001{n:05d}", "Stationsplein", n + 1, None, None, "3818LE", "Amersfoort", "GM0307")
                   for n in range(4)]


def test_bad_addresses_are_rejected_with_the_reason(ingest_settings: Settings, ingest_owner: str,
                                                    tmp_path: Path) -> None:
    good = [_extract_row(n) for n in range(200)]
    bad = [_extract_row(900, identificatie="0307010"), _extract_row(901, postcode="0123AB"),
           _extract_row(902, huisletter="AB"), _extract_row(903, huisnummer="0")]
    src = write_csv(tmp_path / "adressen.csv", good + bad, BAG_EXTRACT_FIELDS)
    result = load(ingest_settings, "addresses", src, crs="EPSG:28992", max_reject_rate=0.05)
    assert (result.status, result.rows_inserted, result.rows_rejected) == ("succeeded", 200, 4)
    reasons = [r[0] for r in rows(ingest_owner, "SELECT reason FROM twin.ingest_rejects WHERE run_id = %s "
                                  "ORDER BY row_number", (result.run_id,))]
    assert "16 digits" in reasons[0] and "postcode" in reasons[1] and "one letter" in reasons[2]
    assert "at least 1" in reasons[3]


def test_establishment_end_date_round_trips(ingest_settings: Settings, ingest_owner: str, tmp_path: Path) -> None:
    aliases = ("datum_einde", "einddatum", "datum_opheffing")
    for alias in aliases:
        data = [dict(r, **{alias: "2025-06-30" if k % 2 else ""}) for k, r in enumerate(ESTABLISHMENTS)]
        src = write_csv(tmp_path / f"{alias}.csv", data, [*CSV_FIELDS, alias])
        result = load(ingest_settings, "establishments", src, crs="EPSG:28992")
        assert result.status in ("succeeded", "unchanged") and result.rows_rejected == 0, alias
        got = rows(ingest_owner, "SELECT establishment_id, ended_on::text FROM twin.establishments ORDER BY 1")
        assert got == [(r["inrichting_id"], "2025-06-30" if k % 2 else None) for k, r in enumerate(ESTABLISHMENTS)]
    # an end before the start is refused with the reason, and the schema refuses it too
    data = [dict(r, einddatum="2000-01-01" if k == 3 else "") for k, r in enumerate(ESTABLISHMENTS)]
    src = write_csv(tmp_path / "early.csv", data, [*CSV_FIELDS, "einddatum"])
    refused = load(ingest_settings, "establishments", src, crs="EPSG:28992", max_reject_rate=0.0)
    assert refused.status == "refused"
    reason = scalar(ingest_owner, "SELECT reason FROM twin.ingest_rejects WHERE run_id = %s", (refused.run_id,))
    assert "einddatum" in reason and "lies before aanvang" in reason
    with psycopg.connect(ingest_owner) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE twin.establishments SET ended_on = started_on - 1 WHERE started_on IS NOT NULL")
