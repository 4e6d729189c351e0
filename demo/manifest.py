"""What a demo-data run writes and how it is described: the scales, the file names, the progress callback
and `DIR/manifest.json`. Shared by the entry point (`demo.generate`) and the pipeline (`demo.pipeline`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo import catalog as cat

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
