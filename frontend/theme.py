"""The map's colours, classes and legends: one definition feeds both the deck.gl accessors and the legend.

Every ramp is chosen to survive colour blindness: classes of plasma (monotonic lightness) for the
exceedance of the KDW, the Okabe-Ito palette for categories (verdicts, inspection results), viridis for
ordered categories. The deposition ramp of the raster tiles comes from ``layers.styles`` (the API draws
the PNG tiles with it) when that module exists, so that the legend and the tiles agree.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from layers.messages import DEFAULT_LANGUAGE, number, text

RGBA = tuple[int, int, int, int]

BACKGROUND = (221, 230, 237)  # sea and abroad: the canvas behind the municipalities
LAND = (247, 246, 241, 255)  # municipalities filled as land when they are the background


@dataclass(frozen=True)
class Swatch:
    """One legend entry: a colour and what it means."""

    color: RGBA
    label: str
    shape: str = "square"  # square, circle, line, column


@dataclass(frozen=True)
class Legend:
    """The legend of one map layer: a title, its unit and the swatches."""

    title: str
    swatches: tuple[Swatch, ...]
    unit: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "unit": self.unit,
            "note": self.note,
            "swatches": [{"color": list(s.color), "label": s.label, "shape": s.shape} for s in self.swatches],
        }


# --- deposition hexagons: exceedance of the lowest KDW (mol N/ha/yr), plasma classes -----------------
# (upper bound of the class, colour, label); approaching overload is deposition > KDW - 70 (DESIGN.md).
APPROACH_MARGIN = 70.0
EXCEEDANCE_CLASSES: tuple[tuple[float | None, RGBA, str], ...] = (
    (-APPROACH_MARGIN, (13, 8, 135, 235), "below KDW (more than 70 under)"),
    (0.0, (126, 3, 168, 235), "approaching overload (within 70 of KDW)"),
    (500.0, (204, 71, 120, 235), "overloaded by up to 500"),
    (1000.0, (248, 149, 64, 235), "overloaded by 500 to 1,000"),
    (None, (240, 249, 33, 235), "overloaded by more than 1,000"),
)
NO_HABITAT: RGBA = (160, 168, 178, 90)


def exceedance_expression(field: str = "exceedance", kdw_field: str = "lowest_kdw") -> str:
    """A deck.gl JSON expression (``@@=`` body) that colours a feature by its exceedance class.

    "No habitat" is tested as ``not (kdw > 0)``: binary MVT features carry a missing number as 0 or NaN,
    never null, and a KDW is always positive."""
    expr = f"[{', '.join(map(str, EXCEEDANCE_CLASSES[-1][1]))}]"
    for upper, color, _ in reversed(EXCEEDANCE_CLASSES[:-1]):
        expr = f"properties.{field} <= {upper} ? [{', '.join(map(str, color))}] : ({expr})"
    grey = ", ".join(map(str, NO_HABITAT))
    return f"properties.{kdw_field} > 0 ? ({expr}) : [{grey}]"


def exceedance_class(exceedance: float | None, lowest_kdw: float | None) -> RGBA:
    """The colour of one hexagon, as the expression computes it (for tests and static renderings)."""
    if exceedance is None or lowest_kdw is None or not lowest_kdw > 0:
        return NO_HABITAT
    for upper, color, _ in EXCEEDANCE_CLASSES:
        if upper is None or exceedance <= upper:
            return color
    raise AssertionError("unreachable: the last class is open")


def exceedance_legend(elevation_note: str, lang: str = DEFAULT_LANGUAGE) -> Legend:
    swatches = tuple(Swatch(color, text(lang, f"legend.exceedance.{i}"), "column")
                     for i, (_, color, _) in enumerate(EXCEEDANCE_CLASSES))
    return Legend(
        text(lang, "legend.exceedance"),
        (*swatches, Swatch(NO_HABITAT, text(lang, "legend.no_habitat"), "column")),
        unit=text(lang, "legend.exceedance_unit"),
        note=elevation_note,
    )


# --- housing sites: the housing-nitrogen verdict (Okabe-Ito) -------------------------------------------
VERDICTS: tuple[tuple[str, RGBA, str], ...] = (
    ("conflict", (213, 94, 0, 235), "conflict"),
    ("attention", (240, 228, 66, 235), "attention"),
    ("no constraint", (0, 114, 178, 235), "no constraint"),
)
UNKNOWN: RGBA = (160, 160, 160, 200)


def verdict_expression(field: str = "verdict") -> str:
    """Colour a housing site by its verdict; ``no_constraint`` and ``no constraint`` both count."""
    expr = f"[{', '.join(map(str, UNKNOWN))}]"
    for value, color, _ in reversed(VERDICTS):
        rgba = ", ".join(map(str, color))
        test = f"properties.{field} == '{value}'"
        if " " in value:
            test += f" || properties.{field} == '{value.replace(' ', '_')}'"
        expr = f"({test}) ? [{rgba}] : ({expr})"
    return expr


def verdict_legend(lang: str = DEFAULT_LANGUAGE) -> Legend:
    return Legend(
        text(lang, "legend.verdicts"),
        (*(Swatch(c, text(lang, f"verdict.{v}")) for v, c, _ in VERDICTS),
         Swatch(UNKNOWN, text(lang, "legend.no_verdict"))),
    )


# --- establishments: VNG environmental category (viridis, darker = heavier) ---------------------------
CATEGORY_CLASSES: tuple[tuple[tuple[str, ...], RGBA, str], ...] = (
    (("1", "2"), (94, 201, 98, 255), "category 1-2 (up to 30 m)"),
    (("3.1", "3.2"), (33, 145, 140, 255), "category 3 (50-100 m)"),
    (("4.1", "4.2"), (59, 82, 139, 255), "category 4 (200-300 m)"),
    (("5.1", "5.2", "5.3", "6"), (68, 1, 84, 255), "category 5-6 (500-1,500 m)"),
)


def category_expression(field: str = "environmental_category") -> str:
    expr = f"[{', '.join(map(str, UNKNOWN))}]"
    for values, color, _ in reversed(CATEGORY_CLASSES):
        test = " || ".join(f"properties.{field} == '{v}'" for v in values)
        expr = f"({test}) ? [{', '.join(map(str, color))}] : ({expr})"
    return expr


def category_legend(lang: str = DEFAULT_LANGUAGE) -> Legend:
    return Legend(
        text(lang, "legend.categories"),
        (*(Swatch(c, text(lang, f"legend.category.{i}"), "circle") for i, (_, c, _) in enumerate(CATEGORY_CLASSES)),
         Swatch(UNKNOWN, text(lang, "legend.unknown"), "circle")),
        note=text(lang, "legend.category_note"),
    )


# Inspection priority (when /analysis/inspection-priority answers): rank classes, plasma.
PRIORITY_CLASSES: tuple[tuple[float, RGBA, str], ...] = (
    (0.05, (240, 249, 33, 255), "top 5% priority"),
    (0.20, (248, 149, 64, 255), "top 5-20%"),
    (0.50, (204, 71, 120, 255), "top 20-50%"),
    (1.00, (13, 8, 135, 255), "lower half"),
)


def priority_legend(lang: str = DEFAULT_LANGUAGE) -> Legend:
    return Legend(
        text(lang, "legend.priority"),
        tuple(Swatch(c, text(lang, f"legend.priority.{i}"), "circle") for i, (_, c, _) in enumerate(PRIORITY_CLASSES)),
        note=text(lang, "legend.priority_note_plain"),
    )


# --- data quality: records by their number of open issues (ColorBrewer Reds: darker = more issues) ------
# A single-hue ramp ordered by lightness reads the same with every kind of colour blindness, and red stands
# apart from the viridis dots of the establishments underneath. (fewest issues of the class, colour, point
# radius in pixels, label); the map's data-quality view.
ISSUE_CLASSES: tuple[tuple[int, RGBA, int, str], ...] = (
    (1, (252, 146, 114, 240), 6, "1 open issue"),
    (2, (239, 59, 44, 245), 8, "2 open issues"),
    (3, (165, 15, 21, 250), 10, "3 open issues"),
    (4, (103, 0, 13, 255), 12, "4 or more open issues"),
)


def issue_class(issues: int) -> tuple[RGBA, int]:
    """Colour and radius of a record failing ``issues`` rules (as the data-quality view draws it)."""
    chosen = ISSUE_CLASSES[0]
    for cls in ISSUE_CLASSES:
        if issues >= cls[0]:
            chosen = cls
    return chosen[1], chosen[2]


def issue_legend(lang: str = DEFAULT_LANGUAGE) -> Legend:
    return Legend(
        text(lang, "legend.issues"),
        tuple(Swatch(c, text(lang, f"legend.issue.{i}"), "circle") for i, (_, c, _, _) in enumerate(ISSUE_CLASSES)),
        note=text(lang, "legend.issue_note"),
    )


# --- inspections: the finding (Okabe-Ito) --------------------------------------------------------------
RESULTS: tuple[tuple[str, RGBA], ...] = (
    ("voorschriften nageleefd", (0, 114, 178, 255)),
    ("voorschriften overtreden", (213, 94, 0, 255)),
    ("akkoord na aanwijzing", (230, 159, 0, 255)),
    ("nader onderzoek noodzakelijk", (204, 121, 167, 255)),
    ("voorschriften niet van toepassing", (153, 153, 153, 255)),
)


def result_expression(field: str = "result") -> str:
    expr = f"[{', '.join(map(str, UNKNOWN))}]"
    for value, color in reversed(RESULTS):
        expr = f"properties.{field} == '{value}' ? [{', '.join(map(str, color))}] : ({expr})"
    return expr


def result_legend(lang: str = DEFAULT_LANGUAGE) -> Legend:
    return Legend(text(lang, "legend.results"), tuple(Swatch(c, v, "circle") for v, c in RESULTS))


# --- the deposition raster (shared with the API's PNG tiles) -------------------------------------------
# viridis stops (value in mol N/ha/yr, colour); replaced by layers.styles' ramp when it exists.
_VIRIDIS_STOPS: tuple[tuple[float, RGBA], ...] = (
    (500.0, (68, 1, 84, 255)),
    (1000.0, (59, 82, 139, 255)),
    (1500.0, (33, 145, 140, 255)),
    (2000.0, (94, 201, 98, 255)),
    (3000.0, (253, 231, 37, 255)),
)


def deposition_stops() -> tuple[tuple[float, RGBA], ...]:
    """The deposition colour ramp (value, RGBA) of the raster tiles: ``layers.styles`` when present."""
    try:
        styles = importlib.import_module("layers.styles")  # the API's ramp, shared with the PNG tiles
    except ModuleNotFoundError as exc:
        if exc.name != "layers.styles":
            raise
        return _VIRIDIS_STOPS
    ramp = styles.DEPOSITION_RAMP
    return tuple((float(stop.value), tuple(int(c) for c in stop.rgba)) for stop in ramp.stops)  # type: ignore[misc]


def deposition_legend(lang: str = DEFAULT_LANGUAGE) -> Legend:
    stops = deposition_stops()
    return Legend(
        text(lang, "legend.raster"),
        tuple(Swatch(c, number(v, lang)) for v, c in stops),
        unit=text(lang, "unit.mol N/ha/yr"),
    )


def css_rgba(color: RGBA | tuple[int, ...]) -> str:
    """A colour as CSS ``rgba()``."""
    r, g, b, *a = color
    return f"rgba({r}, {g}, {b}, {round((a[0] if a else 255) / 255, 3)})"
