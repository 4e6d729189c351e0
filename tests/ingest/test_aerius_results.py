# ruff: noqa: E501 -- the GML is written as AERIUS writes it, one long root tag
"""AERIUS results (IMAER GML 6.0 and 5.1, shaped as IMAER-java's test_receptors.gml and complex/farm.gml):
loaded per receptor, year, situation, result type and substance; the contribution PROPOSED - REFERENCE in the
area context worked out by hand here; malformed files refused with nothing stored; the grid checked."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from ingest_fixtures import run_cli
from shapely.geometry import Polygon

from ingest import aerius
from ingest.loader import load
from twin.analyses.common import to_wgs84
from twin.analyses.context import area_context_sync
from twin.errors import IngestError
from twin.settings import Settings

# The receptor grid of DESIGN.md, written out here independently of ingest/hexagons.py.
R = math.sqrt(20000 / (3 * math.sqrt(3)))
H = math.sqrt(3) * R


def centre(rid: int) -> tuple[float, float]:
    row, col = (rid - 1) // 1529, (rid - 1) % 1529
    return 3604 + col * 3 * R + (1.5 * R if row % 2 else 0), 296800 + (row // 2) * H + (H / 2 if row % 2 else 0)


A, B, C, D = 3167281, 3167282, 3167281 + 1529, 3167281 + 2 * 1529  # D: one full row pair north of A
YEAR = 2030
REF = {A: {"NH3": 12.5, "NOX": 3.25}, B: {"NH3": 4.0, "NOX": 1.0}, C: {"NH3": 2.0, "NOX": 0.5}}
PROP = {A: {"NH3": 20.0, "NOX": 4.0}, B: {"NH3": 3.0, "NOX": 1.5}, D: {"NH3": 0.75, "NOX": 0.25}}


def receptor_xml(rid: int, results: dict[str, float], *, pos: str | None = None, result_type: str = "DEPOSITION",
                 attr: str | None = None, hexagon: bool = True) -> str:
    x, y = centre(rid)
    pos = pos or f"{round(x)}.0 {round(y)}.0"  # AERIUS writes the centres rounded to the metre
    ring = " ".join(f"{round(x + R * math.cos(math.radians(a)))}.0 {round(y + R * math.sin(math.radians(a)))}.0"
                    for a in (*range(0, 360, 60), 0))
    representation = f"""
            <imaer:representation>
                <gml:Polygon srsName="urn:ogc:def:crs:EPSG::28992" gml:id="NL.IMAER.REPR.{rid}">
                    <gml:exterior><gml:LinearRing><gml:posList>{ring}</gml:posList></gml:LinearRing></gml:exterior>
                </gml:Polygon>
            </imaer:representation>""" if hexagon else ""
    res = "".join(f"""
            <imaer:result>
                <imaer:CalculationResult resultType="{s.split(':')[0] if ':' in s else result_type}" substance="{s.split(':')[-1]}">
                    <imaer:value>{v}</imaer:value>
                </imaer:CalculationResult>
            </imaer:result>""" for s, v in results.items())
    ident = attr if attr is not None else f'receptorPointId="{rid}"'
    return f"""
    <imaer:featureMember>
        <imaer:ReceptorPoint {ident} gml:id="CP.{rid}">
            <imaer:identifier><imaer:NEN3610ID><imaer:namespace>NL.IMAER</imaer:namespace>
                <imaer:localId>CP.{rid}</imaer:localId></imaer:NEN3610ID></imaer:identifier>
            <imaer:GM_Point>
                <gml:Point srsName="urn:ogc:def:crs:EPSG::28992" gml:id="CP.{rid}.POINT"><gml:pos>{pos}</gml:pos></gml:Point>
            </imaer:GM_Point>{representation}{res}
        </imaer:ReceptorPoint>
    </imaer:featureMember>"""


def imaer(version: str, features: str, *, situation: tuple[str, str] | None = None, year: int = YEAR,
          aerius_version: str = "2024.1_20250101_abc", prolog: str = "") -> str:
    sit = f"""
            <imaer:situation>
                <imaer:SituationMetadata>
                    <imaer:name>{situation[1]}</imaer:name>
                    <imaer:reference>Rf{situation[0][:3]}001</imaer:reference>
                    <imaer:situationType>{situation[0]}</imaer:situationType>
                </imaer:SituationMetadata>
            </imaer:situation>""" if situation else ""
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}
<imaer:FeatureCollectionCalculator xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:imaer="http://imaer.aerius.nl/{version}" gml:id="NL.IMAER.Collection" xsi:schemaLocation="http://imaer.aerius.nl/{version} https://imaer.aerius.nl/{version}/IMAER.xsd">
    <imaer:metadata>
        <imaer:AeriusCalculatorMetadata>
            <imaer:project><imaer:ProjectMetadata><imaer:year>{year}</imaer:year>
                <imaer:name>Uitbreiding melkveehouderij</imaer:name></imaer:ProjectMetadata></imaer:project>{sit}
            <imaer:calculation>
                <imaer:CalculationMetadata>
                    <imaer:method>NATURE_AREA</imaer:method>
                    <imaer:substance>NOX</imaer:substance>
                    <imaer:substance>NH3</imaer:substance>
                    <imaer:resultType>DEPOSITION</imaer:resultType>
                    <imaer:otherSituation><imaer:OtherSituationMetadata><imaer:name>Other</imaer:name>
                        <imaer:situationType>TEMPORARY</imaer:situationType></imaer:OtherSituationMetadata>
                    </imaer:otherSituation>
                </imaer:CalculationMetadata>
            </imaer:calculation>
            <imaer:version>
                <imaer:VersionMetadata>
                    <imaer:aeriusVersion>{aerius_version}</imaer:aeriusVersion>
                    <imaer:databaseVersion>2024.1_db</imaer:databaseVersion>
                </imaer:VersionMetadata>
            </imaer:version>
        </imaer:AeriusCalculatorMetadata>
    </imaer:metadata>{features}
</imaer:FeatureCollectionCalculator>
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "ref": write(tmp_path / "AERIUS_Rf001_Huidig.gml", imaer("6.0", "".join(
            receptor_xml(r, v) for r, v in REF.items()), situation=("REFERENCE", "Huidig"))),
        "prop": write(tmp_path / "AERIUS_Rf001_Beoogd.gml", imaer("6.0", "".join(
            receptor_xml(r, v) for r, v in PROP.items()), situation=("PROPOSED", "Beoogd"))),
    }


@pytest.fixture()
def clean(ingest_owner: str) -> Iterator[None]:
    def wipe() -> None:
        with psycopg.connect(ingest_owner) as conn:
            conn.execute("TRUNCATE twin.aerius_results")
            conn.execute("DELETE FROM twin.deposition_hexagons WHERE receptor_id = ANY(%s)", ([A, B, C, D],))
    wipe()
    yield
    wipe()


def rows(owner: str) -> dict[tuple[int, str, str, str], tuple]:
    with psycopg.connect(owner) as conn:
        out = conn.execute(
            "SELECT receptor_id, situation_type, result_type, substance, value, year, situation, aerius_version, "
            "imaer_version, source_file, x, y, ST_X(geom), ST_Y(geom) FROM twin.aerius_results").fetchall()
    return {(r[0], r[1], r[2], r[3]): r[4:] for r in out}


def test_grid_formula_matches_design() -> None:
    x, y = aerius.grid_centre(3167281)
    assert (round(x, 1), round(y, 1)) == (137890.3, 408071.7)
    assert aerius.grid_centre(C) == pytest.approx(centre(C))


def test_reference_and_proposed_load_with_values(files: dict[str, Path], clean: None, ingest_settings: Settings,
                                                 ingest_owner: str) -> None:
    proc = run_cli(ingest_settings, "ingest", "aerius-results", str(files["ref"]), str(files["prop"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = rows(ingest_owner)
    assert len(got) == 2 * (len(REF) + len(PROP))
    v, year, situation, version, imaer_v, source, x, y, gx, gy = got[(A, "REFERENCE", "DEPOSITION", "NH3")]
    assert (v, year, situation, version, imaer_v, source) == (12.5, YEAR, "Huidig", "2024.1_20250101_abc", "6.0",
                                                              "AERIUS_Rf001_Huidig.gml")
    assert (x, y) == (round(centre(A)[0]), round(centre(A)[1])) == (gx, gy)
    assert got[(D, "PROPOSED", "DEPOSITION", "NOX")][0] == 0.25
    assert (C, "PROPOSED", "DEPOSITION", "NH3") not in got
    with psycopg.connect(ingest_owner) as conn:
        run = conn.execute("SELECT status, rows_read, rows_inserted FROM twin.ingest_runs WHERE layer = "
                           "'aerius-results' ORDER BY id DESC LIMIT 1").fetchone()
    assert run == ("succeeded", 12, 12)
    # The same files again: nothing changes.
    again = aerius.load(ingest_settings, [files["ref"], files["prop"]])
    assert again.status == "unchanged" and again.rows_unchanged == 12
    assert rows(ingest_owner) == got


def test_a_new_file_replaces_its_situation(files: dict[str, Path], clean: None, ingest_settings: Settings,
                                           ingest_owner: str, tmp_path: Path) -> None:
    assert aerius.load(ingest_settings, [files["prop"]]).rows_inserted == 6
    changed = write(tmp_path / "beoogd_v2.gml", imaer("6.0", receptor_xml(A, {"NH3": 21.0, "NOX": 4.0}),
                                                      situation=("PROPOSED", "Beoogd")))
    r = aerius.load(ingest_settings, [changed])
    assert (r.rows_updated, r.rows_unchanged, r.rows_deleted) == (2, 0, 4)  # both rows: the file is another
    got = rows(ingest_owner)
    assert set(got) == {(A, "PROPOSED", "DEPOSITION", "NH3"), (A, "PROPOSED", "DEPOSITION", "NOX")}
    assert got[(A, "PROPOSED", "DEPOSITION", "NH3")][0] == 21.0
    assert got[(A, "PROPOSED", "DEPOSITION", "NOX")][0] == 4.0 and got[(A, "PROPOSED", "DEPOSITION", "NOX")][5] == \
        "beoogd_v2.gml"


def test_imaer_51_zip_without_situation(clean: None, ingest_settings: Settings, ingest_owner: str,
                                        tmp_path: Path) -> None:
    # As v5_1/test_receptors.gml: no situation block, concentration and deposition, no hexagon.
    text = imaer("5.1", receptor_xml(A, {"CONCENTRATION:NH3": 95.8, "DEPOSITION:NH3": 8546.77}, hexagon=False),
                 year=2013)
    zpath = tmp_path / "results.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("AERIUS_test_receptors.gml", text)
        zf.writestr("readme.txt", "not GML")
    result = load(ingest_settings, "aerius-results", zpath)
    assert result.status == "succeeded", result.message
    got = rows(ingest_owner)
    assert got[(A, "UNSPECIFIED", "CONCENTRATION", "NH3")][:4] == (95.8, 2013, "AERIUS_test_receptors", "2024.1_20250101_abc")
    assert got[(A, "UNSPECIFIED", "DEPOSITION", "NH3")][0] == 8546.77
    assert got[(A, "UNSPECIFIED", "DEPOSITION", "NH3")][5] == "results.zip:AERIUS_test_receptors.gml"


BAD = {
    "namespace": (lambda: imaer("4.0", receptor_xml(A, {"NH3": 1.0})), "IMAER 4.0"),
    "no_id": (lambda: imaer("6.0", receptor_xml(A, {"NH3": 1.0}) + receptor_xml(B, {"NH3": 1.0}, attr="")),
              "has no receptorPointId"),
    "value": (lambda: imaer("6.0", receptor_xml(A, {"NH3": 1.0}) + receptor_xml(B, {"NH3": "n.v.t."})),  # type: ignore[dict-item]
              "value is not a number"),
    "off_grid": (lambda: imaer("6.0", receptor_xml(A, {"NH3": 1.0}, pos="137558.0 456251.0")), "does not match"),
    "doctype": (lambda: imaer("6.0", receptor_xml(A, {"NH3": 1.0}),
                              prolog='\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'), "DTD"),
    "truncated": (lambda: imaer("6.0", receptor_xml(A, {"NH3": 1.0}))[:-60], "not well-formed"),
    "substance": (lambda: imaer("5.1", receptor_xml(A, {"NOXNH3": 1.0})), "unknown substance"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_files_are_refused_with_nothing_stored(case: str, files: dict[str, Path], clean: None,
                                                         ingest_settings: Settings, ingest_owner: str,
                                                         tmp_path: Path) -> None:
    make, words = BAD[case]
    bad = write(tmp_path / f"bad_{case}.gml", make())
    result = aerius.load(ingest_settings, [files["ref"], bad])  # a good file with it: not stored either
    assert result.status == "refused"
    assert words in (result.message or "") and f"bad_{case}.gml" in (result.message or "")
    if case in ("no_id", "value", "off_grid"):
        assert "line " in (result.message or "")
    assert rows(ingest_owner) == {}


def test_receptor_slightly_off_centre_is_a_warning(clean: None, ingest_settings: Settings, ingest_owner: str,
                                                   tmp_path: Path) -> None:
    x, y = centre(A)
    f = write(tmp_path / "shifted.gml", imaer("6.0", receptor_xml(A, {"NH3": 1.0}, pos=f"{x + 10:.1f} {y:.1f}")))
    result = aerius.load(ingest_settings, [f])
    assert result.status == "succeeded" and result.warnings == 1
    assert "10.0 m from the centre" in result.rejects[0].reason
    assert rows(ingest_owner)[(A, "UNSPECIFIED", "DEPOSITION", "NH3")][0] == 1.0


def test_read_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="IMAER GML"):
        aerius.gml_files([write(tmp_path / "x.csv", "a;b")])


def test_area_context_shows_contribution_next_to_background(files: dict[str, Path], clean: None,
                                                            ingest_settings: Settings, ingest_owner: str) -> None:
    assert aerius.load(ingest_settings, [files["ref"], files["prop"]]).ok
    background = {A: 1500.0, B: 1400.0}  # deposition hexagons of the same receptors, year 2030
    with psycopg.connect(ingest_owner) as conn:
        for rid, dep in background.items():
            cx, cy = centre(rid)
            hexagon = Polygon([(cx + R * math.cos(math.radians(a)), cy + R * math.sin(math.radians(a)))
                               for a in range(0, 360, 60)])
            conn.execute("INSERT INTO twin.deposition_hexagons (hexagon_id, resolution, receptor_id, year, deposition, "
                         "geom) VALUES (%s, '1ha', %s, %s, %s, ST_GeomFromText(%s, 28992))",
                         (f"1ha-{rid}-{YEAR}", rid, YEAR, dep, hexagon.wkt))
    lon, lat = to_wgs84(*centre(A))
    ctx = area_context_sync(ingest_settings, lon=lon, lat=lat, radius=100)
    block = ctx["aerius"]
    assert block["unit"] == "mol N/ha/yr"
    [item] = block["items"]  # the REFERENCE is shown through the contribution it is subtracted from
    # By hand: total N = NH3 + NOX; PROPOSED - REFERENCE per receptor, a missing receptor counting 0.
    contrib = {A: (20.0 + 4.0) - (12.5 + 3.25), B: (3.0 + 1.5) - (4.0 + 1.0), C: 0 - (2.0 + 0.5), D: (0.75 + 0.25) - 0}
    assert contrib == {A: 8.25, B: -0.5, C: -2.5, D: 1.0}
    assert item["basis"] == "PROPOSED - REFERENCE" and item["situation"] == "Beoogd" and item["reference"] == "Huidig"
    assert item["receptors"] == 4 and item["max"] == round(8.25, 1)
    assert item["max_receptor_id"] == A
    assert item["mean"] == round(sum(contrib.values()) / 4, 1)
    assert item["receptors_above_zero"] == 2
    assert item["background_year"] == YEAR and item["background_mean"] == 1450.0 and item["background_at_max"] == 1500.0
    assert item["aerius_version"] == "2024.1_20250101_abc"


def test_contribution_as_given_without_a_reference() -> None:
    from twin.analyses.aerius import contributions

    rows_ = [{"receptor_id": A, "year": YEAR, "situation_type": "PROPOSED", "situation": "P", "substance": s,
              "value": v, "aerius_version": "x"} for s, v in (("NH3", 2.0), ("NOX", 1.0), ("NOXNH3", 3.5))]
    [entry] = contributions(rows_)
    assert entry["basis"] == "as given" and entry["values"] == {A: 3.5}  # NOXNH3 where the file gives it
