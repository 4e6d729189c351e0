"""Tests of the demo-data generator (issue 3): determinism, everything on land inside a municipality, the
distributions (livestock regions, compliance, deposition), consistent permits and inspections, columns
the ingest maps, and the dirty set. No database: the small scale is generated once per module."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from shapely import STRtree

from demo import catalog as cat
from demo.generate import generate
from demo.geo import build_geography
from demo.tables import make_establishments
from layers.registry import (
    ENVIRONMENTAL_CATEGORIES,
    HOUSING_PHASES,
    INSPECTION_KINDS,
    INSPECTION_RESULTS,
    INTERVENTIONS,
    LAYERS,
    PERMIT_STATUSES,
    PERMIT_TYPES,
)

SEED = 11
REF = dt.date.fromisoformat(cat.REFERENCE_DATE)
LAYER_ORDER = ["municipalities", "establishments", "permits", "inspections", "natura2000-habitats",
               "housing-sites", "buildings", "addresses", "nitrogen-deposition"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-small")
    generate("small", SEED, out)
    return out


def _manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _file(folder: Path, layer: str) -> Path:
    return folder / next(f["file"] for f in _manifest(folder)["files"] if f["layer"] == layer)


def _csv(folder: Path, layer: str) -> pd.DataFrame:
    return pd.read_csv(_file(folder, layer), dtype=str, keep_default_na=False)


def _planted(folder: Path, defect: str) -> set[str]:
    """The records planted with a data-quality defect (quality_truth.json); the clean-data checks skip them."""
    truth = json.loads((folder / "quality_truth.json").read_text(encoding="utf-8"))
    return set(truth["defects"][defect]["ids"])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def municipalities(small: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(_file(small, "municipalities"))


def test_same_scale_and_seed_give_identical_files(small: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate("small", SEED, again)
    first = {p.relative_to(small): _digest(p) for p in sorted(small.rglob("*")) if p.is_file()}
    second = {p.relative_to(again): _digest(p) for p in sorted(again.rglob("*")) if p.is_file()}
    assert first == second
    assert len(first) > 20


def test_manifest_lists_the_files_in_dependency_order_with_checksums(small: Path) -> None:
    m = _manifest(small)
    assert m["generator"] == "vth-twin demo-data" and m["version"] == 1
    assert (m["scale"], m["seed"], m["reference_date"]) == ("small", SEED, "2026-11-01")
    assert [f["layer"] for f in m["files"]] == LAYER_ORDER
    for f in m["files"]:
        path = small / f["file"]
        assert f["sha256"] == _digest(path)
        assert f["format"] in ("CSV", "GPKG", "GeoJSON", "GTiff")
        assert f["crs"] == ("EPSG:4326" if f["layer"] == "housing-sites" else "EPSG:28992")
        if f["format"] == "CSV":
            with path.open(encoding="utf-8") as fh:
                assert f["rows"] == sum(1 for _ in fh) - 1
        elif f["format"] == "GTiff":
            with rasterio.open(path) as ds:
                assert f["rows"] == ds.count == 3
        else:
            assert f["rows"] == pyogrio.read_info(path)["features"]
    assert m["dirty"] == "dirty/manifest.json"
    assert m["quality_truth"] == "quality_truth.json" and (small / m["quality_truth"]).exists()


def test_every_column_is_a_registry_field_or_alias(small: Path) -> None:
    for f in _manifest(small)["files"]:
        if f["layer"] not in LAYERS:
            continue
        spec = LAYERS[f["layer"]]
        known = {n.lower() for fs in spec.fields for n in (fs.name, *fs.aliases)}
        path = small / f["file"]
        if f["format"] == "CSV":
            columns = list(pd.read_csv(path, nrows=0).columns)
            known |= {"x_coord", "y_coord"}
        else:
            columns = list(pyogrio.read_info(path)["fields"])
        unknown = [c for c in columns if c.lower() not in known]
        assert not unknown, f"{f['file']}: {unknown}"


def test_every_feature_lies_on_land_inside_a_municipality(small: Path, municipalities: gpd.GeoDataFrame) -> None:
    geoms = municipalities.geometry.values
    tree = STRtree(geoms)
    land = shapely.union_all(geoms).buffer(0.01)

    est = _csv(small, "establishments")
    pts = shapely.points(est["x_coord"].astype(float), est["y_coord"].astype(float))
    hit, muni = tree.query(pts, predicate="within")
    assert len(set(hit)) == len(est)
    assert (municipalities["code"].to_numpy()[muni[np.argsort(hit)]] == est["gemeentecode"].to_numpy()).all()

    for layer in ("natura2000-habitats", "housing-sites", "buildings", "addresses"):
        gdf = gpd.read_file(_file(small, layer)).to_crs("EPSG:28992")
        assert len(gdf) > 0
        assert shapely.covered_by(gdf.geometry.values, land).all(), layer

    with rasterio.open(_file(small, "nitrogen-deposition")) as ds:
        band = ds.read(1)
        rows, cols = np.nonzero(band != ds.nodata)
        pick = np.random.default_rng(0).choice(len(rows), 3000, replace=False)
        xs, ys = rasterio.transform.xy(ds.transform, rows[pick], cols[pick])
        assert shapely.contains_xy(land, np.asarray(xs), np.asarray(ys)).all()


def test_livestock_concentrates_in_the_named_regions() -> None:
    geo = build_geography("national")
    est = make_establishments(geo, 6000, SEED)
    names = geo.municipalities["name"].to_numpy()[est["h_muni"].to_numpy()]
    provinces = geo.municipalities["province_name"].to_numpy()[est["h_muni"].to_numpy()]
    livestock = (est["h_sector"] == "livestock").to_numpy()
    regions = {k: np.isin(names, v) for k, v in cat.LIVESTOCK_REGIONS.items()}
    regions["Friesland"] = np.isin(provinces, cat.LIVESTOCK_PROVINCES)
    anywhere = np.any(list(regions.values()), axis=0)
    elsewhere = livestock[~anywhere].mean()
    for name, inside in regions.items():
        assert livestock[inside].mean() > 1.5 * elsewhere, name
    assert livestock[anywhere].mean() > 2 * elsewhere


def test_establishments_have_realistic_codes(small: Path) -> None:
    everything = _csv(small, "establishments")
    assert everything["inrichting_id"].is_unique
    # The records planted with a data-quality defect (docs/demo-data.md) are checked in test_demo_defects.
    planted = set().union(*(_planted(small, d) for d in ("kvk_missing", "postcode_missing", "category_missing",
                                                            "kvk_far_apart")))
    assert 0 < len(planted) < 0.05 * len(everything)
    est = everything[~everything["inrichting_id"].isin(planted)]
    by_code = {c.code: c for c in cat.SBI_CATALOGUE}
    assert est["kvk_nummer"].is_unique
    assert est["kvk_nummer"].str.fullmatch(r"\d{8}").all()
    assert est["vestigingsnummer"].str.fullmatch(r"\d{12}").all() and est["vestigingsnummer"].str[0].eq("0").all()
    assert est["sbi_code"].isin(list(by_code)).all()
    assert {"0141", "0146", "01471"} <= set(est["sbi_code"])
    assert est["milieucategorie"].isin(ENVIRONMENTAL_CATEGORIES).all()
    assert all(row.milieucategorie in dict(by_code[row.sbi_code].categories) for row in est.itertuples())
    assert est["type_activiteitenbesluit"].isin(["A", "B", "C"]).all()
    assert 0 < (est["brzo"] == "ja").mean() < 0.01
    assert est.loc[est["brzo"] == "ja", "type_activiteitenbesluit"].eq("C").all()
    assert set(est["bezoekfrequentie"]) == {"1", "3", "5", "10"}
    assert est["eenmanszaak"].eq(est["rechtsvorm"].eq("Eenmanszaak").map({True: "ja", False: "nee"})).all()
    assert 0.1 < (est["rechtsvorm"] == "Eenmanszaak").mean() < 0.5
    assert est["organisatie"].str.fullmatch(r"OD[A-Z]{3}(-[NOZW])?").all()
    assert est["postcode"].str.fullmatch(r"[1-9]\d{3}[A-Z]{2}").all()
    assert (pd.to_datetime(est["aanvang"], format="%Y-%m-%d") < pd.Timestamp(REF)).all()
    ended = everything[everything["datum_einde"] != ""]
    assert set(ended["inrichting_id"]) == _planted(small, "ended")
    assert (ended["datum_einde"] > ended["aanvang"]).all() and (ended["datum_einde"] < REF.isoformat()).all()


def test_permits_dates_and_statuses_make_sense(small: Path) -> None:
    p = _csv(small, "permits")
    est = _csv(small, "establishments").set_index("inrichting_id")
    assert p["zaaknummer"].is_unique
    assert p["inrichting_id"].isin(est.index).all()
    assert p["soort"].isin(PERMIT_TYPES).all() and p["status"].isin(PERMIT_STATUSES).all()
    d = {c: pd.to_datetime(p[c].replace("", None), format="%Y-%m-%d")
         for c in ("datum_aanvraag", "datum_besluit", "inwerkingtredingsdatum", "vervaldatum")}
    ref = pd.Timestamp(REF)
    assert d["datum_aanvraag"].notna().all() and (d["datum_aanvraag"] < ref).all()
    assert (d["datum_besluit"].dropna() >= d["datum_aanvraag"][d["datum_besluit"].notna()]).all()
    both = d["inwerkingtredingsdatum"].notna() & d["datum_besluit"].notna()
    assert (d["inwerkingtredingsdatum"][both] >= d["datum_besluit"][both]).all()
    both = d["vervaldatum"].notna() & d["inwerkingtredingsdatum"].notna()
    assert (d["vervaldatum"][both] > d["inwerkingtredingsdatum"][both]).all()
    pending = p["status"].isin(["aangevraagd", "in behandeling"])
    assert pending.any() and d["datum_besluit"][pending].isna().all()
    assert d["datum_besluit"][~pending].notna().all()
    assert d["inwerkingtredingsdatum"][p["status"] == "geweigerd"].isna().all()
    assert (d["vervaldatum"][p["status"] == "vervallen"] < ref).all()
    ok = p["status"] == "verleend"
    assert (d["vervaldatum"][ok].isna() | (d["vervaldatum"][ok] >= ref)).all()
    sbi = est.loc[p["inrichting_id"], "sbi_code"].to_numpy()
    nh3 = p["nh3_emissie"] != ""
    assert nh3.any() and pd.to_numeric(p.loc[nh3, "nh3_emissie"]).gt(0).all()
    livestock_or_industry = pd.Series(sbi).str.match(r"^(01|1|2|3)").to_numpy()
    assert livestock_or_industry[nh3.to_numpy()].all()
    assert pd.to_numeric(p.loc[p["nox_emissie"] != "", "nox_emissie"]).gt(0).all()


def test_inspections_follow_frequency_compliance_and_escalation(small: Path) -> None:
    i = _csv(small, "inspections")
    est = _csv(small, "establishments").set_index("inrichting_id")
    assert i["controle_id"].is_unique and i["inrichting_id"].isin(est.index).all()
    assert i["type"].isin(INSPECTION_KINDS).all() and i["resultaat"].isin(INSPECTION_RESULTS).all()
    date = pd.to_datetime(i["datum_controle"], format="%Y-%m-%d")
    assert (date < pd.Timestamp(REF)).all() and (date >= pd.Timestamp(REF) - pd.Timedelta(days=3653)).all()
    violation = i["resultaat"] == "voorschriften overtreden"
    assert 0.70 <= 1 - violation.mean() <= 0.85
    v = i[violation]
    assert (v["lhs_cel"] == v["gedrag"] + v["gevolg"]).all()
    assert v["gedrag"].isin(list("ABCD")).all() and v["gevolg"].isin(list("1234")).all()
    not_followed = v["controle_id"].isin(_planted(small, "violation_not_followed_up"))
    assert v.loc[~not_followed, "interventie"].isin(INTERVENTIONS[1:]).all()
    assert v.loc[not_followed, "interventie"].isin(["", "geen"]).all()
    assert (v["hersteltermijn"] > v["datum_controle"]).all()
    assert (i.loc[~violation, "lhs_cel"] == "").all()

    # a re-inspection always follows a violation of the same establishment
    s = i.assign(v=violation.astype(int)).sort_values(["inrichting_id", "datum_controle", "controle_id"])
    earlier = s.groupby("inrichting_id")["v"].cumsum() - s["v"]
    assert (earlier[s["type"] == "re-inspection"] > 0).all()
    assert (i["type"] == "re-inspection").sum() > 0.5 * violation.sum()

    # repeat offenders get heavier interventions
    rank = {name: k for k, name in enumerate(INTERVENTIONS)}
    v = v.assign(level=v["interventie"].map(rank), n=v.groupby("inrichting_id").cumcount())
    assert v.loc[v["n"] >= 2, "level"].mean() > v.loc[v["n"] == 0, "level"].mean()

    # routine visits follow the visit-frequency class
    routine = i[i["type"] == "routine"].groupby("inrichting_id").size()
    old = est[pd.to_datetime(est["aanvang"]) < pd.Timestamp(REF) - pd.Timedelta(days=3700)]
    per_class = routine.reindex(old.index, fill_value=0).groupby(old["bezoekfrequentie"].astype(int)).mean()
    assert per_class[1] >= 9 and per_class[1] > per_class[3] > per_class[5] > per_class[10] >= 0.8


def test_deposition_raster_is_in_range_and_declines(small: Path) -> None:
    with rasterio.open(_file(small, "nitrogen-deposition")) as ds:
        assert ds.crs.to_epsg() == 28992 and ds.dtypes == ("float32",) * 3 and ds.nodata == -9999.0
        assert ds.descriptions == tuple(str(y) for y in cat.DEPOSITION_YEARS)
        assert ds.tags()["UNITS"] == "mol N/ha/yr" and ds.units == ("mol N/ha/yr",) * 3
        assert ds.profile["tiled"] and ds.compression is not None
        assert "TIFFTAG_DATETIME" not in ds.tags()
        bands = [ds.read(b, masked=True) for b in range(1, 4)]
        est = _csv(small, "establishments")
        live = est[est["sbi_code"].str.startswith("014")]
        at_farms = np.array([v[0] for v in ds.sample(zip(live["x_coord"].astype(float),
                                                         live["y_coord"].astype(float), strict=True), indexes=3)])
    means = [float(b.mean()) for b in bands]
    assert means[0] > means[1] > means[2]
    assert 1300 < means[2] < 2300
    assert all(500 < b.min() and b.max() <= 4500 for b in bands)
    assert bands[2].max() > 3000
    assert at_farms.mean() > means[2] + 300


def test_natura2000_habitats_are_real_areas_with_kdw(small: Path) -> None:
    h = gpd.read_file(_file(small, "natura2000-habitats"))
    assert list(h.columns) == ["identificatie", "naamN2K", "nr", "beschermin", "Habtype1", "Perc1", "Kwal1", "kdw",
                               "geometry"]
    assert set(h.loc[h["naamN2K"] == "Veluwe", "nr"]) == {57}
    assert h["Habtype1"].isin(list(cat.KDW)).all()
    for code, kdw in cat.KDW.items():
        sub = h.loc[h["Habtype1"] == code, "kdw"]
        assert (sub.isna() if kdw is None else sub.eq(kdw)).all()
    assert h["Perc1"].between(1, 100).all() and h["Kwal1"].isin(["G", "M", "X"]).all()
    assert (h.geom_type == "MultiPolygon").all() and h.is_valid.all()


def test_housing_sites_in_wgs84_with_conflicts(small: Path) -> None:
    raw = json.loads(_file(small, "housing-sites").read_text(encoding="utf-8"))
    lon, lat = np.array(raw["features"][0]["geometry"]["coordinates"][0][0]).T
    assert (3 < lon).all() and (lon < 8).all() and (50 < lat).all() and (lat < 54).all()
    sites = gpd.read_file(_file(small, "housing-sites")).to_crs("EPSG:28992")
    assert sites["aantal_woningen"].between(50, 5000).all()
    assert sites["fase"].isin(HOUSING_PHASES).all() and sites["opleverjaar"].between(2026, 2040).all()
    assert not shapely.STRtree(sites.geometry.values).query(sites.geometry.values, predicate="overlaps").size
    est = _csv(small, "establishments")
    live = shapely.points(est.loc[est["sbi_code"].str.startswith("014"), ["x_coord", "y_coord"]].astype(float))
    near_farm = shapely.dwithin(sites.geometry.to_numpy()[:, None], live[None, :], 500).any(axis=1)
    assert near_farm.sum() >= 3
    nature = shapely.union_all(gpd.read_file(_file(small, "natura2000-habitats")).geometry.values)
    d = shapely.distance(sites.geometry.values, nature)
    assert (d > 0).all() and (d < 1500).sum() >= 3


def test_buildings_are_bag_like_and_do_not_overlap(small: Path) -> None:
    b = gpd.read_file(_file(small, "buildings"))
    assert list(b.columns) == ["identificatie", "bouwjaar", "status", "gebruiksdoel", "hoogte", "geometry"]
    assert b["identificatie"].str.fullmatch(r"\d{4}10\d{10}").all() and b["identificatie"].is_unique
    assert b["bouwjaar"].between(1600, 2027).all() and b["hoogte"].gt(0).all()
    assert (b["status"] == "Pand in gebruik").mean() > 0.85
    assert (b["gebruiksdoel"] == "woonfunctie").mean() > 0.6
    tree = STRtree(b.geometry.values)
    assert tree.query(b.geometry.values, predicate="overlaps").size == 0


DIRTY_FAULTS = {"missing-coordinates", "latlon-swapped", "outside-netherlands", "self-intersecting-polygon",
                "duplicate-id", "unknown-establishment", "unknown-sbi-code", "bad-date-format",
                "text-in-numeric-field", "missing-crs", "empty-file", "truncated-raster"}


def test_dirty_set_has_one_file_per_fault(small: Path, municipalities: gpd.GeoDataFrame) -> None:
    folder = small / "dirty"
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    faults = [f["fault"] for f in m["files"]]
    assert sorted(faults) == sorted(DIRTY_FAULTS)
    assert len({f["file"] for f in m["files"]}) == len(faults)
    ref = pd.read_csv(folder / m["reference_files"][0]["file"], dtype=str)
    land = shapely.union_all(municipalities.geometry.values)
    by_fault = {f["fault"]: f for f in m["files"]}
    for f in m["files"]:
        path = folder / f["file"]
        assert path.exists()
        if f["format"] != "CSV" or f["fault"] == "empty-file":
            continue
        with path.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        bad = rows[f["row"] - 1]
        assert bad[f["field"]] == f["value"], f["file"]
        others = [r for k, r in enumerate(rows) if k != f["row"] - 1]
        if f["layer"] == "establishments":
            xy = np.array([[float(r["x_coord"]), float(r["y_coord"])] for r in others])
            assert shapely.contains_xy(land, xy[:, 0], xy[:, 1]).all()
            assert len({r["inrichting_id"] for r in others}) == len(others)
        else:
            assert {r["inrichting_id"] for r in others} <= set(ref["inrichting_id"])

    def bad_row(fault: str) -> dict[str, str]:
        f = by_fault[fault]
        with (folder / f["file"]).open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh))[f["row"] - 1]

    assert bad_row("missing-coordinates")["y_coord"] == ""
    swapped = bad_row("latlon-swapped")
    assert 50 < float(swapped["x_coord"]) < 54 and 3 < float(swapped["y_coord"]) < 8
    out = bad_row("outside-netherlands")
    assert not shapely.contains_xy(land, float(out["x_coord"]), float(out["y_coord"]))
    assert bad_row("unknown-establishment")["inrichting_id"] not in set(ref["inrichting_id"])
    assert bad_row("unknown-sbi-code")["sbi_code"] not in {c.code for c in cat.SBI_CATALOGUE}
    assert not re.fullmatch(r"\d{4}-\d{2}-\d{2}", bad_row("bad-date-format")["datum_controle"])
    with pytest.raises(ValueError):
        float(bad_row("text-in-numeric-field")["nh3_emissie"])

    assert (folder / by_fault["empty-file"]["file"]).stat().st_size == 0
    assert gpd.read_file(folder / by_fault["missing-crs"]["file"]).crs is None
    habitats = gpd.read_file(folder / by_fault["self-intersecting-polygon"]["file"])
    assert habitats.is_valid.tolist() == [k != by_fault["self-intersecting-polygon"]["row"] - 1
                                          for k in range(len(habitats))]
    with pytest.raises(rasterio.errors.RasterioError):
        with rasterio.open(folder / by_fault["truncated-raster"]["file"]) as ds:
            ds.read()


def test_cli_explains_itself_and_fails_non_zero(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from cli.demo import register

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """twin"""

    register(app)
    runner = CliRunner()
    shown = runner.invoke(app, ["demo-data", "--help"])
    assert shown.exit_code == 0 and "manifest.json" in shown.output and "national" in shown.output
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    failed = runner.invoke(app, ["demo-data", "--out", str(blocker / "out")])
    assert failed.exit_code != 0
