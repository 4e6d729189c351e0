"""`twin demo-data`: a plausible Netherlands at three scales, written in the formats real sources deliver.

No internet reaches the machines the twin runs on, so it brings its own data: establishments, permits
and inspections as VTH-system CSV exports, Natura 2000 habitats and BAG-like buildings as GeoPackages,
planned housing sites as WGS84 GeoJSON and a nitrogen-deposition GeoTIFF, all on land inside the real
CBS municipalities. The same scale and seed give byte-identical files. `DIR/manifest.json` lists the
files in load order for `twin ingest-all DIR`; `DIR/dirty/` holds one broken file per fault for the
ingest tests. See docs/demo-data.md.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest import demo_catalog as cat
from ingest.demo_dirty import write_dirty
from ingest.demo_features import (
    BUILDING_COLUMNS,
    HABITAT_COLUMNS,
    HOUSING_COLUMNS,
    iter_buildings,
    make_habitats,
    make_housing,
)
from ingest.demo_geo import RD_CRS, build_geography
from ingest.demo_io import CsvWriter, sha256, write_geojson_wgs84, write_gpkg, write_gpkg_stream
from ingest.demo_raster import NODATA, UNITS, write_deposition
from ingest.demo_tables import (
    ESTABLISHMENT_COLUMNS,
    INSPECTION_COLUMNS,
    PERMIT_COLUMNS,
    iter_permits_inspections,
    make_establishments,
)

GENERATOR = "vth-twin demo-data"
MANIFEST_VERSION = 1

ProgressFn = Callable[[str, int, int], None]
"""Progress callback: (layer id, completed, total)."""


@dataclass(frozen=True)
class Scale:
    """What a scale holds: region, counts, raster resolution and chunk size."""

    name: str
    region: str
    establishments: int
    buildings: int
    housing_sites: int
    raster_resolution: float
    chunk_size: int
    establishments_gpkg: bool


SCALES: dict[str, Scale] = {
    "small": Scale("small", "small", 2_000, 20_000, 40, 250.0, 5_000, False),
    "medium": Scale("medium", "national", 50_000, 500_000, 600, 100.0, 10_000, True),
    "national": Scale("national", "national", 300_000, 5_000_000, 2_000, 25.0, 10_000, True),
}

FILES = {
    "municipalities": "gemeenten.gpkg",
    "establishments": "inrichtingen.csv",
    "establishments-gpkg": "inrichtingen.gpkg",
    "permits": "vergunningen.csv",
    "inspections": "controles.csv",
    "natura2000-habitats": "natura2000_habitattypen.gpkg",
    "housing-sites": "woningbouwlocaties.geojson",
    "buildings": "bag_panden.gpkg",
    "nitrogen-deposition": "stikstofdepositie_ntot.tif",
}


@dataclass(frozen=True)
class ManifestFile:
    """One file of the demo data: the layer (collection id) it loads into and how to read it."""

    layer: str
    file: str
    format: str
    crs: str
    rows: int
    sha256: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "file": self.file, "format": self.format, "crs": self.crs,
                "rows": self.rows, "sha256": self.sha256, **self.extra}


@dataclass
class Manifest:
    """`DIR/manifest.json`: the files in dependency (load) order, plus alternates (the same data in
    another format, not to be loaded twice) and where the dirty set is."""

    scale: str
    seed: int
    files: list[ManifestFile]
    alternates: list[ManifestFile] = field(default_factory=list)
    dirty: str | None = None
    reference_date: str = cat.REFERENCE_DATE
    timings: dict[str, float] = field(default_factory=dict)  # seconds per layer; not written

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": GENERATOR, "version": MANIFEST_VERSION, "scale": self.scale, "seed": self.seed,
            "reference_date": self.reference_date, "files": [f.to_dict() for f in self.files],
            "alternates": [f.to_dict() for f in self.alternates], "dirty": self.dirty,
        }

    def write(self, out: Path) -> Path:
        path = out / "manifest.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def _clean(out: Path) -> None:
    """Remove the files an earlier run wrote, so a smaller scale leaves nothing stale behind."""
    for name in [*FILES.values(), "manifest.json"]:
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


def generate(scale: str, seed: int, out: Path, progress: ProgressFn | None = None, *,
             dirty: bool = True) -> Manifest:
    """Generate the demo data of `scale` ("small", "medium" or "national") with `seed` into `out` and
    write its manifest; the same scale and seed give byte-identical files."""
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
    est = make_establishments(geo, sc.establishments, seed)
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
    report("establishments", 1, 1)
    lap("establishments")

    n_chunks = (len(est) + sc.chunk_size - 1) // sc.chunk_size
    report("permits, inspections", 0, n_chunks)
    with CsvWriter(out / FILES["permits"], PERMIT_COLUMNS) as wp, \
            CsvWriter(out / FILES["inspections"], INSPECTION_COLUMNS) as wi:
        for k, (prow, irow) in enumerate(iter_permits_inspections(est, seed, sc.chunk_size)):
            wp.write(prow)
            wi.write(irow)
            report("permits, inspections", k + 1, n_chunks)
        n_permits, n_inspections = wp.rows, wi.rows
    files.append(_entry(out, "permits", "permits", "CSV", RD_CRS, n_permits, join_on="inrichting_id"))
    files.append(_entry(out, "inspections", "inspections", "CSV", RD_CRS, n_inspections,
                        join_on="inrichting_id"))
    lap("permits+inspections")

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

    def counted_buildings() -> Iterator[Any]:
        nonlocal done
        for chunk in iter_buildings(geo, est, sc.buildings, seed):
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

    manifest = Manifest(scale=scale, seed=seed, files=files, alternates=alternates, dirty=dirty_path,
                        timings=timings)
    manifest.write(out)
    return manifest


# --- CLI ---------------------------------------------------------------------------------------------

class ScaleChoice(StrEnum):
    small = "small"
    medium = "medium"
    national = "national"


def _size(path: Path) -> str:
    n = float(path.stat().st_size)
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def demo_data(
    scale: ScaleChoice = typer.Option(
        ScaleChoice.small, "--scale", "-s", case_sensitive=False,
        help="small: one region (Gelderse Vallei, Veluwe, Amersfoort-Ede-Apeldoorn-Arnhem), ~2,000 "
        "establishments, seconds, used by the tests. medium: the whole country, ~50,000 establishments, "
        "500,000 buildings, 100 m raster, used by the benchmarks. national: ~300,000 establishments, "
        "~1M permits, ~1.7M inspections, 5M buildings, 25 m raster (minutes, GBs of disk)."),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same scale and seed give byte-identical files."),
    out: Path = typer.Option(Path("demo-data"), "--out", "-o", file_okay=False,
                             help="Output folder (created). Files of an earlier run there are replaced."),
    dirty: bool = typer.Option(True, "--dirty/--no-dirty",
                               help="Also write the dirty set (one faulty file per fault) to OUT/dirty/."),
) -> None:
    """Generate demo data: a plausible Netherlands in the formats real sources deliver.

    Writes establishments, permits and inspections (CSV, Dutch VTH column names, RD New), Natura 2000
    habitats and BAG buildings (GeoPackage), planned housing sites (GeoJSON, WGS84), the municipalities
    (GeoPackage) and a nitrogen-deposition GeoTIFF (mol N/ha/yr, one band per year), all on land inside
    the real CBS municipalities, plus OUT/manifest.json for `twin ingest-all OUT`.
    """
    console = Console()
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:

        def progress(layer: str, done: int, total: int) -> None:
            if layer not in tasks:
                tasks[layer] = bar.add_task(layer, total=max(total, 1))
            bar.update(tasks[layer], completed=done, total=max(total, 1))

        started = time.perf_counter()
        try:
            manifest = generate(scale.value, seed, out, progress, dirty=dirty)
        except Exception as exc:  # report and exit non-zero; the traceback is for --debug runs
            console.print(f"[red]demo-data failed:[/red] {exc}")
            raise typer.Exit(code=1) from exc
        elapsed = time.perf_counter() - started

    table = Table(title=f"demo data: scale {manifest.scale}, seed {manifest.seed} -> {out}")
    for col in ("layer", "file", "format", "CRS", "rows", "size", "seconds"):
        table.add_column(col, justify="right" if col in ("rows", "size", "seconds") else "left")
    seconds = dict(manifest.timings)
    seconds["permits"] = seconds["inspections"] = seconds.get("permits+inspections", 0.0)
    for f in [*manifest.files, *manifest.alternates]:
        table.add_row(f.layer, f.file, f.format, f.crs, f"{f.rows:,}", _size(out / f.file),
                      f"{seconds.get(f.layer, 0.0):.1f}" if f in manifest.files else "")
    if manifest.dirty:
        table.add_row("(dirty set)", manifest.dirty, "", "", "", "", f"{seconds.get('dirty', 0.0):.1f}")
    console.print(table)
    console.print(f"manifest: {out / 'manifest.json'}  ({elapsed:.1f} s in all)")


def register(app: typer.Typer) -> None:
    """Add the `demo-data` command to the `twin` CLI."""
    app.command("demo-data")(demo_data)
