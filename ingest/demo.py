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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest import demo_catalog as cat

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
    "addresses": "bag_verblijfsobjecten.gpkg",
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
    quality_truth: str | None = None
    reference_date: str = cat.REFERENCE_DATE
    timings: dict[str, float] = field(default_factory=dict)  # seconds per layer; not written

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": GENERATOR, "version": MANIFEST_VERSION, "scale": self.scale, "seed": self.seed,
            "reference_date": self.reference_date, "files": [f.to_dict() for f in self.files],
            "alternates": [f.to_dict() for f in self.alternates], "dirty": self.dirty,
            "quality_truth": self.quality_truth,
        }

    def write(self, out: Path) -> Path:
        path = out / "manifest.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def generate(scale: str, seed: int, out: Path, progress: ProgressFn | None = None, *,
             dirty: bool = True) -> Manifest:
    """Generate the demo data of `scale` ("small", "medium" or "national") with `seed` into `out` and
    write its manifest; the same scale and seed give byte-identical files."""
    from ingest.demo_pipeline import run

    return run(scale, seed, out, progress, dirty=dirty)


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
        help="small (one region, seconds, for tests), medium (the country, for benchmarks) or national "
        "(full size: minutes and GBs of disk)."),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same scale and seed give byte-identical files."),
    out: Path = typer.Option(Path("demo-data"), "--out", "-o", file_okay=False,
                             help="Output folder (created). Files of an earlier run there are replaced."),
    dirty: bool = typer.Option(True, "--dirty/--no-dirty",
                               help="Also write the dirty set (one faulty file per fault) to OUT/dirty/."),
) -> None:
    """Generate demo data (see HELP)."""
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


HELP = (
    "Generate demo data: a plausible Netherlands in the formats real sources deliver.\n\n"
    "Establishments, permits and inspections as VTH-system CSV exports (Dutch column names, RD New), Natura "
    "2000 habitats, BAG buildings and the municipalities as GeoPackages, planned housing sites as WGS84 "
    "GeoJSON and a nitrogen-deposition GeoTIFF (mol N/ha/yr, one band per year), all on land inside the "
    "real CBS municipalities, plus OUT/manifest.json for 'twin ingest-all OUT' and a dirty set in OUT/dirty/."
    "\n\n"
    "Scales: small = Gelderse Vallei, Veluwe and Amersfoort-Ede-Apeldoorn-Arnhem, 2,000 establishments, "
    "20,000 buildings, 250 m raster (seconds). medium = the Netherlands, 50,000 establishments, 500,000 "
    "buildings, 100 m raster (under a minute). national = 300,000 establishments, ~1M permits, ~1.7M "
    "inspections, 5M buildings, 25 m raster (minutes, several GB)."
    "\n\n"
    "The same scale and seed give byte-identical files; dates are relative to 2026-11-01. "
    "See docs/demo-data.md."
)


def register(app: typer.Typer) -> None:
    """Add the `demo-data` command to the `twin` CLI."""
    app.command("demo-data", help=HELP)(demo_data)
