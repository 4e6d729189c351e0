"""The demo-data pipeline behind `demo.generate.generate`: writes every layer in dependency order, the dirty
set and the manifest."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from demo import catalog as cat
from demo.defects import (
    ADDRESS_COLUMNS,
    TRUTH_COLUMNS,
    TRUTH_FILE,
    apply_chunk,
    apply_establishment_fields,
    building_addresses,
    establishment_addresses,
    expected_counts,
    plan_defects,
    unique_addresses,
    write_truth,
)
from demo.deposition_raster import NODATA, UNITS, write_deposition
from demo.dirty import write_dirty
from demo.features import (
    BUILDING_COLUMNS,
    HABITAT_COLUMNS,
    HOUSING_COLUMNS,
    iter_buildings,
    make_habitats,
    make_housing,
)
from demo.geo import RD_CRS, build_geography
from demo.io import CsvWriter, sha256, write_geojson_wgs84, write_gpkg, write_gpkg_stream
from demo.manifest import FILES, GENERATOR, SCALES, Manifest, ManifestFile, ProgressFn
from demo.tables import (
    ESTABLISHMENT_COLUMNS,
    INSPECTION_COLUMNS,
    PERMIT_COLUMNS,
    iter_permits_inspections,
    make_establishments,
)


def _clean(out: Path) -> None:
    """Remove the files an earlier run wrote, so a smaller scale leaves nothing stale behind."""
    for name in [*FILES.values(), "manifest.json", TRUTH_FILE]:
        (out / name).unlink(missing_ok=True)
    dirty_manifest = out / "dirty" / "manifest.json"
    if dirty_manifest.exists():
        try:
            ours = json.loads(dirty_manifest.read_text(encoding="utf-8")).get("generator") == GENERATOR
        except (OSError, ValueError):
            ours = False
        if ours:
            shutil.rmtree(out / "dirty")


def _entry(out: Path, layer: str, key: str, fmt: str, crs: str, rows: int, **extra: Any) -> ManifestFile:
    return ManifestFile(layer, FILES[key], fmt, crs, rows, sha256(out / FILES[key]), extra)


def _building_batches(chunks: Iterator[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for ch in chunks:
        cols = ch.columns
        yield pa.record_batch([
            pa.array(cols["identificatie"].astype(str), pa.string()),
            pa.array(cols["bouwjaar"].astype(np.int32), pa.int32()),
            pa.array(cols["status"].astype(str), pa.string()),
            pa.array(cols["gebruiksdoel"].astype(str), pa.string()),
            pa.array(cols["hoogte"].astype(np.float64), pa.float64()),
            pa.array(shapely.to_wkb(ch.geometry), pa.binary()),
        ], schema=schema)


ADDRESS_SCHEMA = pa.schema([("identificatie", pa.string()), ("openbare_ruimte_naam", pa.string()),
                            ("huisnummer", pa.int32()), ("huisletter", pa.string()), ("toevoeging", pa.string()),
                            ("postcode", pa.string()), ("woonplaats_naam", pa.string()),
                            ("gemeentecode", pa.string()), ("geom", pa.binary())])
assert tuple(ADDRESS_SCHEMA.names[:-1]) == ADDRESS_COLUMNS


def _address_batch(part: dict[str, Any]) -> tuple[pa.RecordBatch, pa.Table]:
    """The addresses as an Arrow batch for the GeoPackage (compact while the buildings are generated), and
    the postcode, number and coordinates the truth file matches establishments with."""
    cols = [pa.array(part[c], pa.int32() if c == "huisnummer" else pa.string()) for c in ADDRESS_COLUMNS]
    batch = pa.record_batch([*cols, pa.array(shapely.to_wkb(part["geometry"]), pa.binary())], schema=ADDRESS_SCHEMA)
    slim = pa.table({"postcode": cols[5], "huisnummer": cols[2], "x": shapely.get_x(part["geometry"]),
                     "y": shapely.get_y(part["geometry"])})
    return batch, slim


def run(scale: str, seed: int, out: Path, progress: ProgressFn | None = None, *, dirty: bool = True) -> Manifest:
    """The body of `demo.generate.generate` (kept apart so `twin --help` does not import GDAL)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    sc = SCALES[scale]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)

    def report(layer: str, done: int, total: int) -> None:
        if progress is not None:
            progress(layer, done, total)

    timings: dict[str, float] = {}
    files: list[ManifestFile] = []
    alternates: list[ManifestFile] = []
    t0 = time.perf_counter()

    def lap(layer: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[layer] = timings.get(layer, 0.0) + now - t0
        t0 = now

    report("municipalities", 0, 1)
    geo = build_geography(sc.region)
    munis = geo.municipalities
    write_gpkg(out / FILES["municipalities"], munis, "gemeenten", "MultiPolygon")
    files.append(_entry(out, "municipalities", "municipalities", "GPKG", RD_CRS, len(munis), layer_name="gemeenten"))
    report("municipalities", 1, 1)
    lap("municipalities")

    report("establishments", 0, 1)
    est = unique_addresses(make_establishments(geo, sc.establishments, seed))
    est["h_postcode"] = est["postcode"]
    plan = plan_defects(est, seed)
    lap("establishments")

    # Permits and inspections first: the planted defects (issue 9; demo.defects) decide end dates and
    # start dates of establishments from them, so the establishments are written afterwards.
    n_chunks = (len(est) + sc.chunk_size - 1) // sc.chunk_size
    report("permits, inspections", 0, n_chunks)
    with CsvWriter(out / FILES["permits"], PERMIT_COLUMNS) as wp, \
            CsvWriter(out / FILES["inspections"], INSPECTION_COLUMNS) as wi:
        for k, (prow, irow) in enumerate(iter_permits_inspections(est, seed, sc.chunk_size)):
            prow, irow = apply_chunk(est.iloc[k * sc.chunk_size:(k + 1) * sc.chunk_size], k * sc.chunk_size,
                                     prow, irow, plan, seed, k)
            wp.write(prow)
            wi.write(irow)
            report("permits, inspections", k + 1, n_chunks)
        n_permits, n_inspections = wp.rows, wi.rows
    lap("permits+inspections")

    est_addresses, taken = establishment_addresses(geo, est, plan, seed)
    est = apply_establishment_fields(est, plan)
    with CsvWriter(out / FILES["establishments"], ESTABLISHMENT_COLUMNS) as w:
        w.write(est[list(ESTABLISHMENT_COLUMNS)].itertuples(index=False, name=None))
    files.append(_entry(out, "establishments", "establishments", "CSV", RD_CRS, len(est),
                        x_column="x_coord", y_column="y_coord"))
    if sc.establishments_gpkg:
        cols = [c for c in ESTABLISHMENT_COLUMNS if c not in ("x_coord", "y_coord")]
        gdf = gpd.GeoDataFrame(est[cols], geometry=shapely.points(est["h_x"], est["h_y"]), crs=RD_CRS)
        write_gpkg(out / FILES["establishments-gpkg"], gdf, "inrichtingen", "Point")
        alternates.append(_entry(out, "establishments", "establishments-gpkg", "GPKG", RD_CRS, len(est),
                                 layer_name="inrichtingen", same_as=FILES["establishments"]))
    files.append(_entry(out, "permits", "permits", "CSV", RD_CRS, n_permits, join_on="inrichting_id"))
    files.append(_entry(out, "inspections", "inspections", "CSV", RD_CRS, n_inspections,
                        join_on="inrichting_id"))
    report("establishments", 1, 1)
    lap("establishments")

    report("natura2000-habitats", 0, 1)
    habitats = make_habitats(geo)
    write_gpkg(out / FILES["natura2000-habitats"], habitats[list(HABITAT_COLUMNS) + ["geometry"]],
               "habitattypen", "MultiPolygon")
    files.append(_entry(out, "natura2000-habitats", "natura2000-habitats", "GPKG", RD_CRS, len(habitats),
                        layer_name="habitattypen"))
    report("natura2000-habitats", 1, 1)
    lap("natura2000-habitats")

    report("housing-sites", 0, 1)
    housing = make_housing(geo, est, sc.housing_sites, seed)
    write_geojson_wgs84(out / FILES["housing-sites"], housing[list(HOUSING_COLUMNS) + ["geometry"]],
                        "woningbouwlocaties")
    files.append(_entry(out, "housing-sites", "housing-sites", "GeoJSON", "EPSG:4326", len(housing),
                        layer_name="woningbouwlocaties"))
    report("housing-sites", 1, 1)
    lap("housing-sites")

    n_munis = int(geo.in_region.sum())
    done = 0

    first_batch, first_slim = _address_batch(est_addresses)
    address_batches, address_keys = [first_batch], [first_slim]
    del est_addresses

    def counted_buildings() -> Iterator[Any]:
        nonlocal done
        for m, chunk in iter_buildings(geo, est, sc.buildings, seed):
            c = chunk.columns
            part = building_addresses(geo, m, chunk.geometry, c["gebruiksdoel"], c["hoogte"], c["status"], taken,
                                      seed)
            if part is not None:
                batch, slim = _address_batch(part)
                address_batches.append(batch)
                address_keys.append(slim)
            yield chunk
            done += 1
            report("buildings", done, n_munis)

    report("buildings", 0, n_munis)
    schema = pa.schema([("identificatie", pa.string()), ("bouwjaar", pa.int32()), ("status", pa.string()),
                        ("gebruiksdoel", pa.string()), ("hoogte", pa.float64()), ("geom", pa.binary())])
    assert tuple(schema.names[:-1]) == BUILDING_COLUMNS
    n_buildings = write_gpkg_stream(out / FILES["buildings"], "pand", schema,
                                    _building_batches(counted_buildings(), schema), "Polygon")
    files.append(_entry(out, "buildings", "buildings", "GPKG", RD_CRS, n_buildings, layer_name="pand"))
    lap("buildings")

    report("addresses", 0, 1)
    n_addresses = write_gpkg_stream(out / FILES["addresses"], "verblijfsobject", ADDRESS_SCHEMA,
                                    iter(address_batches), "Point")
    address_batches.clear()
    files.append(_entry(out, "addresses", "addresses", "GPKG", RD_CRS, n_addresses, layer_name="verblijfsobject"))
    report("addresses", 1, 1)
    lap("addresses")

    bands = write_deposition(out / FILES["nitrogen-deposition"], geo, est, sc.raster_resolution,
                             lambda d, t: report("nitrogen-deposition", d, t))
    files.append(_entry(out, "nitrogen-deposition", "nitrogen-deposition", "GTiff", RD_CRS, bands,
                        bands=[str(y) for y in cat.DEPOSITION_YEARS], units=UNITS, nodata=NODATA,
                        resolution=sc.raster_resolution))
    lap("nitrogen-deposition")

    dirty_path = None
    if dirty:
        report("dirty", 0, 1)
        write_dirty(out / "dirty", seed)
        dirty_path = "dirty/manifest.json"
        report("dirty", 1, 1)
        lap("dirty")

    # The truth of the planted defects, counted from the files as written (the addresses from memory).
    read = {k: pd.read_csv(out / FILES[k], dtype=str, keep_default_na=False, usecols=list(TRUTH_COLUMNS[k]))
            for k in ("establishments", "permits", "inspections")}
    addresses = pa.concat_tables(address_keys).to_pandas()
    addresses = addresses[addresses["postcode"].notna()]
    expected = expected_counts(read["establishments"], read["permits"], read["inspections"], addresses)
    write_truth(out, scale, seed, plan, expected,
                {"establishments": len(est), "permits": n_permits, "inspections": n_inspections,
                 "addresses": n_addresses})
    lap("quality-truth")

    manifest = Manifest(scale=scale, seed=seed, files=files, alternates=alternates, dirty=dirty_path,
                        quality_truth=TRUTH_FILE, timings=timings)
    manifest.write(out)
    return manifest
