"""Deposition hexagons (placeholder until the derivation lands)."""

from __future__ import annotations

from typing import Any

from twin.errors import IngestError
from twin.settings import Settings


def ready(settings: Settings) -> bool:
    """Whether the raster and the habitats are both loaded."""
    return False


def derive(settings: Settings, national_size_m: float = 2000.0) -> Any:
    """Derive the hexagons."""
    raise IngestError("not there yet")
