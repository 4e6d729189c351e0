"""The nitrogen-deposition raster (placeholder until the raster loader lands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twin.errors import IngestError
from twin.settings import Settings


def load(settings: Settings, coverage_id: str, path: str | Path, **kwargs: Any) -> Any:
    """Load a deposition raster."""
    raise IngestError("the raster loader is not there yet")
