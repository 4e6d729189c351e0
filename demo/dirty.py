"""The dirty set: small files with exactly one fault each, for the ingest tests.

Each file is otherwise clean. `dirty/manifest.json` names, per file, the fault, the layer, the 1-based
data row of the bad row (header not counted; for GeoPackages the feature's position) and the field, so a
test can assert that the loader rejects that row for that reason. The CSVs of permits and inspections
refer to the establishments of `inrichtingen_referentie.csv`, which is clean and listed under
`reference_files`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from affine import Affine
from rasterio.io import MemoryFile

from demo import catalog as cat
from demo.features import HABITAT_COLUMNS, make_habitats
from demo.geo import RD_CRS, build_geography
from demo.io import CsvWriter, write_gpkg
from demo.tables import (
    ESTABLISHMENT_COLUMNS,
    INSPECTION_COLUMNS,
    PERMIT_COLUMNS,
    iter_permits_inspections,
    make_establishments,
)

N_BASE = 20
UNKNOWN_ESTABLISHMENT = "INR9999999"
UNKNOWN_SBI = "0000"



def _origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    """A north-up geotransform (as rasterio's from_origin, without its deprecated Affine product)."""
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)

def _csv(path: Path, columns: tuple[str, ...], rows: list[list[str]]) -> int:
    with CsvWriter(path, columns) as w:
        w.write(rows)
        return w.rows


def _write_no_crs(path: Path, gdf: gpd.GeoDataFrame) -> int:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*crs.*was not provided")
        return write_gpkg(path, gdf, "pand", "Polygon")


def write_dirty(out: Path, seed: int) -> dict[str, Any]:
    """Write the dirty set into `out` (created) and its manifest; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    geo = build_geography("small")
    est = make_establishments(geo, N_BASE, seed)
    base = [[str(v) for v in row] for row in est[list(ESTABLISHMENT_COLUMNS)].itertuples(index=False)]
    permits: list[list[str]] = []
    inspections: list[list[str]] = []
    for p, i in iter_permits_inspections(est, seed, N_BASE):
        permits += [list(r) for r in p]
        inspections += [list(r) for r in i]
    col = {c: k for k, c in enumerate(ESTABLISHMENT_COLUMNS)}
    pcol = {c: k for k, c in enumerate(PERMIT_COLUMNS)}
    icol = {c: k for k, c in enumerate(INSPECTION_COLUMNS)}
    files: list[dict[str, Any]] = []

    def entry(file: str, layer: str, fmt: str, fault: str, description: str, row: int | None,
              field: str | None, value: str | None, rows: int, crs: str | None = RD_CRS) -> None:
        files.append({"file": file, "layer": layer, "format": fmt, "crs": crs, "rows": rows, "fault": fault,
                      "description": description, "row": row, "field": field, "value": value})

    ref_rows = _csv(out / "inrichtingen_referentie.csv", ESTABLISHMENT_COLUMNS, base)

    rows = [r.copy() for r in base]
    rows[3][col["x_coord"]] = rows[3][col["y_coord"]] = ""
    entry("inrichtingen_zonder_coordinaten.csv", "establishments", "CSV", "missing-coordinates",
          "x_coord and y_coord are empty", 4, "x_coord", "",
          _csv(out / "inrichtingen_zonder_coordinaten.csv", ESTABLISHMENT_COLUMNS, rows))

    rows = [r.copy() for r in base]
    to_wgs = pyproj.Transformer.from_crs(RD_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_wgs.transform(float(rows[6][col["x_coord"]]), float(rows[6][col["y_coord"]]))
    rows[6][col["x_coord"]], rows[6][col["y_coord"]] = f"{lat:.6f}", f"{lon:.6f}"
    entry("inrichtingen_latlon_verwisseld.csv", "establishments", "CSV", "latlon-swapped",
          "WGS84 latitude in x_coord and longitude in y_coord instead of RD metres", 7, "x_coord",
          rows[6][col["x_coord"]], _csv(out / "inrichtingen_latlon_verwisseld.csv", ESTABLISHMENT_COLUMNS, rows))

    rows = [r.copy() for r in base]
    rows[4][col["x_coord"]], rows[4][col["y_coord"]] = "40000.00", "520000.00"
    entry("inrichtingen_buiten_nederland.csv", "establishments", "CSV", "outside-netherlands",
          "valid RD coordinates in the North Sea, outside every municipality", 5, "x_coord", "40000.00",
          _csv(out / "inrichtingen_buiten_nederland.csv", ESTABLISHMENT_COLUMNS, rows))

    rows = [r.copy() for r in base]
    rows[8][col["inrichting_id"]] = rows[1][col["inrichting_id"]]
    entry("inrichtingen_dubbele_id.csv", "establishments", "CSV", "duplicate-id",
          "row 9 repeats the inrichting_id of row 2", 9, "inrichting_id", rows[8][col["inrichting_id"]],
          _csv(out / "inrichtingen_dubbele_id.csv", ESTABLISHMENT_COLUMNS, rows))

    rows = [r.copy() for r in base]
    rows[2][col["sbi_code"]] = UNKNOWN_SBI
    rows[2][col["sbi_omschrijving"]] = ""
    entry("inrichtingen_onbekende_sbi.csv", "establishments", "CSV", "unknown-sbi-code",
          "sbi_code is not an SBI 2008 code", 3, "sbi_code", UNKNOWN_SBI,
          _csv(out / "inrichtingen_onbekende_sbi.csv", ESTABLISHMENT_COLUMNS, rows))

    open(out / "inrichtingen_leeg.csv", "wb").close()
    entry("inrichtingen_leeg.csv", "establishments", "CSV", "empty-file", "the file has zero bytes", None,
          None, None, 0)

    rows = [r.copy() for r in inspections[:12]]
    rows[5][icol["inrichting_id"]] = UNKNOWN_ESTABLISHMENT
    entry("controles_onbekende_inrichting.csv", "inspections", "CSV", "unknown-establishment",
          "the inspection refers to an establishment that does not exist", 6, "inrichting_id",
          UNKNOWN_ESTABLISHMENT, _csv(out / "controles_onbekende_inrichting.csv", INSPECTION_COLUMNS, rows))

    rows = [r.copy() for r in inspections[:12]]
    y, m, d = rows[7][icol["datum_controle"]].split("-")
    months = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
              "november", "december")
    rows[7][icol["datum_controle"]] = f"{int(d)} {months[int(m) - 1]} {y}"
    entry("controles_datumformaat.csv", "inspections", "CSV", "bad-date-format",
          "datum_controle written out in words (1 mei 2023) instead of YYYY-MM-DD or DD-MM-YYYY", 8, "datum_controle",
          rows[7][icol["datum_controle"]], _csv(out / "controles_datumformaat.csv", INSPECTION_COLUMNS, rows))

    rows = [r.copy() for r in permits[:10]]
    rows[3][pcol["nh3_emissie"]] = "circa 12"
    entry("vergunningen_tekst_in_getal.csv", "permits", "CSV", "text-in-numeric-field",
          "nh3_emissie holds text", 4, "nh3_emissie", "circa 12",
          _csv(out / "vergunningen_tekst_in_getal.csv", PERMIT_COLUMNS, rows))

    habitats = make_habitats(geo).iloc[:6].copy()
    x0, y0 = (float(v) for v in habitats.geometry.iloc[2].representative_point().coords[0])
    bowtie = shapely.Polygon([(x0, y0), (x0 + 200, y0 + 200), (x0 + 200, y0), (x0, y0 + 200), (x0, y0)])
    geoms = list(habitats.geometry.values)
    geoms[2] = shapely.MultiPolygon([bowtie])
    habitats = habitats.set_geometry(geoms, crs=RD_CRS)
    entry("habitattypen_zelfdoorsnijdend.gpkg", "natura2000-habitats", "GPKG", "self-intersecting-polygon",
          "feature 3 is a bow-tie polygon (its ring crosses itself)", 3, "geom", None,
          write_gpkg(out / "habitattypen_zelfdoorsnijdend.gpkg", habitats[list(HABITAT_COLUMNS) + ["geometry"]],
                     "habitattypen", "MultiPolygon"))

    rng = np.random.default_rng([seed, 99])
    cx, cy = float(est["h_x"].iloc[0]), float(est["h_y"].iloc[0])
    boxes = [shapely.box(cx + i * 20, cy, cx + i * 20 + 9, cy + 11) for i in range(5)]
    panden = gpd.GeoDataFrame({
        "identificatie": [f"0228100000{900000 + i:06d}" for i in range(5)],
        "bouwjaar": rng.integers(1950, 2020, 5), "status": "Pand in gebruik", "gebruiksdoel": "woonfunctie",
        "hoogte": np.round(rng.uniform(6, 10, 5), 1),
    }, geometry=boxes, crs=None)
    entry("panden_zonder_crs.gpkg", "buildings", "GPKG", "missing-crs",
          "the GeoPackage declares no CRS (undefined SRS); coordinates are RD metres", None, None, None,
          _write_no_crs(out / "panden_zonder_crs.gpkg", panden), crs=None)

    data = np.round(rng.uniform(900, 2500, (2, 256, 256)), 1).astype(np.float32)
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=256, height=256, count=2, dtype="float32", crs=RD_CRS,
                      transform=_origin(cx - 12800, cy + 12800, 100, 100), nodata=-9999.0, tiled=True,
                      blockxsize=128, blockysize=128, compress="deflate") as ds:
            ds.write(data)
        blob = mem.read()
    (out / "stikstofdepositie_afgebroken.tif").write_bytes(blob[: len(blob) // 2])
    entry("stikstofdepositie_afgebroken.tif", "nitrogen-deposition", "GTiff", "truncated-raster",
          "the GeoTIFF is cut off halfway; its last tiles are missing", None, None, None, 2)

    manifest = {
        "generator": "vth-twin demo-data", "version": 1, "kind": "dirty", "seed": seed,
        "reference_date": cat.REFERENCE_DATE,
        "reference_files": [{"layer": "establishments", "file": "inrichtingen_referentie.csv", "format": "CSV",
                             "crs": RD_CRS, "rows": ref_rows}],
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest
