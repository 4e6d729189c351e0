"""Colour ramps shared by the API's raster tiles and the map legend, so both always show the same colours.

The nitrogen-deposition ramp runs through viridis (perceptually uniform, readable with the common forms of
colour blindness and in greyscale) from low deposition (dark purple) to high (yellow). Colours are
interpolated linearly between the stops and held at the end stops; missing values are transparent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class ColourStop:
    """A value (in the ramp's unit) and its colour (RGBA, 0-255)."""

    value: float
    rgba: RGBA

    @property
    def hex(self) -> str:
        r, g, b, _ = self.rgba
        return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class ColourRamp:
    """A continuous colour ramp: linear between stops, clamped outside them, transparent for NaN."""

    id: str
    title: str
    unit: str
    stops: tuple[ColourStop, ...]
    nodata: RGBA = (0, 0, 0, 0)

    @property
    def breaks(self) -> list[float]:
        return [s.value for s in self.stops]

    def colour(self, value: float | None) -> RGBA:
        """The colour of one value."""
        if value is None or not np.isfinite(value):
            return self.nodata
        out = self.apply(np.array([[value]], dtype=np.float64))[0, 0]
        return (int(out[0]), int(out[1]), int(out[2]), int(out[3]))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """RGBA (uint8, shape ``values.shape + (4,)``) of an array of values; NaN is transparent."""
        xs = np.array(self.breaks, dtype=np.float64)
        colours = np.array([s.rgba for s in self.stops], dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        out = np.empty(v.shape + (4,), dtype=np.uint8)
        finite = np.isfinite(v)
        filled = np.where(finite, v, xs[0])
        for channel in range(4):
            out[..., channel] = np.rint(np.interp(filled, xs, colours[:, channel])).astype(np.uint8)
        out[~finite] = self.nodata
        return out

    def legend(self) -> dict[str, Any]:
        """The ramp as JSON for legends (the API serves it with the coverage's metadata)."""
        return {
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "interpolation": "linear",
            "stops": [{"value": s.value, "rgba": list(s.rgba), "hex": s.hex} for s in self.stops],
            "nodata": list(self.nodata),
        }


# Total nitrogen deposition, mol N/ha/yr. The national mean was about 1,730 in 2018, up to about 4,000 in
# livestock regions; many habitats have a critical deposition value (KDW) between 500 and 2,400.
DEPOSITION_RAMP = ColourRamp(
    id="nitrogen-deposition",
    title="Total nitrogen deposition",
    unit="mol N/ha/yr",
    stops=(
        ColourStop(0, (68, 1, 84, 255)),
        ColourStop(500, (70, 50, 126, 255)),
        ColourStop(1000, (54, 92, 141, 255)),
        ColourStop(1500, (39, 127, 142, 255)),
        ColourStop(2000, (31, 161, 135, 255)),
        ColourStop(2500, (74, 193, 109, 255)),
        ColourStop(3000, (160, 218, 57, 255)),
        ColourStop(4000, (253, 231, 37, 255)),
    ),
)

RAMPS: dict[str, ColourRamp] = {DEPOSITION_RAMP.id: DEPOSITION_RAMP}
