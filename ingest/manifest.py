"""The manifest of a delivery folder (manifest.json, as `twin demo-data` writes it): which file holds which
layer, and the order to load them in (a layer after the layers it depends on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from layers.registry import LAYERS
from twin.errors import TwinError


def manifest_entries(folder: Path) -> list[dict[str, Any]]:
    """The files of a manifest.json (a list, or an object with 'files'/'layers'), each with layer, file, crs."""
    path = folder / "manifest.json"
    if not path.exists():
        raise TwinError(f"{folder}: no manifest.json (write one with 'twin demo-data', or load files one by one "
                        "with 'twin ingest LAYER PATH')")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise TwinError(f"{path}: not valid JSON ({exc})") from exc
    entries = data if isinstance(data, list) else data.get("files") or data.get("layers") or []
    if isinstance(entries, dict):
        entries = [{"layer": k, **v} for k, v in entries.items()]
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "layer" not in e or not (e.get("file") or e.get("path")):
            raise TwinError(f"{path}: entry {i + 1} needs 'layer' and 'file'")
        out.append(e)
    return out


def order_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifest order, moved only where a layer's depends_on (or the municipalities, which the outside-the-
    Netherlands check uses) must come first."""
    rank = {"municipalities": 0}
    remaining = list(entries)
    ordered: list[dict[str, Any]] = []
    remaining.sort(key=lambda e: rank.get(e["layer"], 1))
    while remaining:
        placed = {e["layer"] for e in ordered}
        pending = {e["layer"] for e in remaining}
        for e in remaining:
            spec = LAYERS.get(e["layer"])
            deps = set(spec.depends_on) if spec else set()
            if not (deps & pending) or deps <= placed:
                ordered.append(e)
                remaining.remove(e)
                break
        else:  # a cycle: keep manifest order
            ordered.extend(remaining)
            break
    return ordered
