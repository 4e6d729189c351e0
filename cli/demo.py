"""``twin demo-data``: generate the demo data (the generator is :func:`demo.generate.generate`) with a progress
bar per layer and a summary table."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo.generate import generate


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
