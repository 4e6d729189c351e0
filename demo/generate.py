"""The demo-data generator behind `twin demo-data` (cli/demo.py): a plausible Netherlands at three scales,
written in the formats real sources deliver.

No internet reaches the machines the twin runs on, so it brings its own data: establishments, permits
and inspections as VTH-system CSV exports, Natura 2000 habitats and BAG-like buildings as GeoPackages,
planned housing sites as WGS84 GeoJSON and a nitrogen-deposition GeoTIFF, all on land inside the real
CBS municipalities. The same scale and seed give byte-identical files. `DIR/manifest.json` lists the
files in load order for `twin ingest-all DIR`; `DIR/dirty/` holds one broken file per fault for the
ingest tests. See docs/demo-data.md.
"""

from __future__ import annotations

from pathlib import Path

from demo.manifest import Manifest, ProgressFn


def generate(scale: str, seed: int, out: Path, progress: ProgressFn | None = None, *,
             dirty: bool = True) -> Manifest:
    """Generate the demo data of `scale` ("small", "medium" or "national") with `seed` into `out` and
    write its manifest; the same scale and seed give byte-identical files."""
    from demo.pipeline import run  # here, not at the top: `twin --help` must not import GDAL

    return run(scale, seed, out, progress, dirty=dirty)
