"""An establishment register exported from the KvK Handelsregister (API field names: vestigingsnummer of 12
digits with leading zeros, kvkNummer, eersteHandelsnaam, rechtsvorm, sbiCode written 01.41, the address and
its geoData rijksdriehoekX/Y), as Windows-1252 with ';', loads as it comes with the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ingest_fixtures import rows, run_cli, scalar

from twin.settings import Settings

HEADER = ("kvkNummer;vestigingsnummer;eersteHandelsnaam;rechtsvorm;sbiCode;sbiOmschrijving;indHoofdactiviteit;"
          "straatnaam;huisnummer;postcode;plaats;datumAanvang;rijksdriehoekX;rijksdriehoekY")
LINES = (
    "01234567;000012345678;Café De Gouden Leeuw;Eenmanszaak;56.10.1;Restaurants;Ja;Kerkstraat;12;3811CV;"
    "Amersfoort;15-03-2012;155000;463000",
    "30123456;000098765432;Coöperatie Zuivel Eemland U.A.;Coöperatie;01.41;Fokken en houden van melkvee;Ja;"
    "Zuiderzeeweg;3;3751LA;Bunschoten;01-07-1998;150500;467500",
    "30987654;000055500011;Maatschap Van Dijk-Brouwer;Vennootschap onder firma;01.47.1;"
    "Houden van legkippen;Ja;Eemweg;40;3755LD;Eemnes;2-1-2020;148000;468000",
    "30555111;000000000042;Pluimveebedrijf De Hoeve B.V.;Besloten Vennootschap;01.47;Houden van pluimvee;Ja;"
    "Hoefweg;7;3781NA;Voorthuizen;2019-11-30;170000;463500",
)


def _kvk_file(path: Path) -> Path:
    path.write_bytes(("\r\n".join((HEADER, *LINES)) + "\r\n").encode("cp1252"))
    return path


@pytest.mark.usefixtures("empty_layers")
def test_kvk_export_loads_with_ids_codes_accents_and_flags(ingest_settings: Settings, ingest_owner: str,
                                                           tmp_path: Path) -> None:
    src = _kvk_file(tmp_path / "kvk_vestigingen.csv")
    assert b"Caf\xe9" in src.read_bytes() and b"Co\xf6peratie" in src.read_bytes()  # really Windows-1252

    proc = run_cli(ingest_settings, "ingest", "establishments", str(src))  # rijksdriehoekX/Y: RD New by name
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "establishment_id taken from the column 'vestigingsnummer'" in " ".join(proc.stdout.split())

    got = rows(ingest_owner, "SELECT establishment_id, vestigingsnummer, kvk_number, name, legal_form, sbi_code, "
               "sbi_description, sole_proprietor, natural_person_owner, street, house_number, postcode, city, "
               "started_on, round(ST_X(geom)), round(ST_Y(geom)) FROM twin.establishments ORDER BY establishment_id")
    assert got == [
        ("000000000042", "000000000042", "30555111", "Pluimveebedrijf De Hoeve B.V.", "Besloten Vennootschap",
         "0147", "Houden van pluimvee", False, False, "Hoefweg", "7", "3781NA", "Voorthuizen", dt.date(2019, 11, 30),
         170000, 463500),
        ("000012345678", "000012345678", "01234567", "Café De Gouden Leeuw", "Eenmanszaak", "56101", "Restaurants",
         True, True, "Kerkstraat", "12", "3811CV", "Amersfoort", dt.date(2012, 3, 15), 155000, 463000),
        ("000055500011", "000055500011", "30987654", "Maatschap Van Dijk-Brouwer", "Vennootschap onder firma",
         "01471", "Houden van legkippen", False, True, "Eemweg", "40", "3755LD", "Eemnes", dt.date(2020, 1, 2),
         148000, 468000),
        ("000098765432", "000098765432", "30123456", "Coöperatie Zuivel Eemland U.A.", "Coöperatie", "0141",
         "Fokken en houden van melkvee", False, False, "Zuiderzeeweg", "3", "3751LA", "Bunschoten",
         dt.date(1998, 7, 1), 150500, 467500),
    ]

    # The same file again changes nothing.
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert scalar(ingest_owner, "SELECT status FROM twin.ingest_runs ORDER BY id DESC LIMIT 1") == "unchanged"


@pytest.mark.usefixtures("empty_layers")
def test_an_id_column_of_its_own_wins_over_the_vestigingsnummer(ingest_settings: Settings, ingest_owner: str,
                                                                tmp_path: Path) -> None:
    src = tmp_path / "register.csv"
    src.write_bytes(("inrichting_id;" + HEADER + "\r\n" + "INR-7;" + LINES[0] + "\r\n").encode("cp1252"))
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows(ingest_owner, "SELECT establishment_id, vestigingsnummer FROM twin.establishments") == [
        ("INR-7", "000012345678")]


@pytest.mark.usefixtures("empty_layers")
def test_a_bad_dotted_sbi_code_is_a_reject_naming_the_row(ingest_settings: Settings, ingest_owner: str,
                                                          tmp_path: Path) -> None:
    src = tmp_path / "kvk_bad.csv"
    bad = LINES[1].replace(";01.41;", ";00.41;")
    src.write_bytes(("\r\n".join((HEADER, LINES[0], bad)) + "\r\n").encode("cp1252"))
    proc = run_cli(ingest_settings, "ingest", "establishments", str(src), "--max-reject-rate", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert rows(ingest_owner, "SELECT row_number, field, reason FROM twin.ingest_rejects WHERE run_id = "
                "(SELECT max(id) FROM twin.ingest_runs)") == [
        (2, "sbiCode", "sbiCode '0041' is not an SBI 2008 code: there is no SBI division 00")]
    assert scalar(ingest_owner, "SELECT count(*) FROM twin.establishments") == 1
