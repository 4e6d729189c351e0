"""Source profiles: deliveries whose shape spans more than one layer of a file, opened as one source.

:func:`open_delivery` is what the loader calls: a 3D BAG GeoPackage (``pand`` joined with a LoD layer,
:mod:`ingest.bag3d`) is recognised by its layers; every other file is read as its format has it
(:func:`ingest.sources.open_source`). A new multi-layer source gets its module next to ``bag3d.py`` and one
test here.
"""

from __future__ import annotations

from pathlib import Path

import pyogrio

from ingest import bag3d
from ingest.sources import VectorSource, detect_format, open_source, split_layer
from twin.errors import IngestError


def open_delivery(path: str | Path, *, lod: str | None = None) -> VectorSource:
    """Open a delivery for streaming: a 3D BAG GeoPackage as one joined source (``lod`` chooses its LoD
    layer), anything else through :func:`ingest.sources.open_source`."""
    p, layer = split_layer(path)
    if p.is_file() and detect_format(p) == "gpkg":
        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(p)]
        except Exception:  # noqa: BLE001 - open_source says what is wrong with the file
            layers = []
        if bag3d.is_3dbag(layers) and layer in (None, "pand", *bag3d.LOD_LAYERS.values()) or \
                layer in bag3d.LOD_LAYERS.values():
            return bag3d.open_3dbag(p, layers, layer, lod)
    if lod is not None:
        raise IngestError(f"--lod applies to 3D BAG GeoPackages (layers pand and lod12_2d ...); {p} is none")
    return open_source(path)
