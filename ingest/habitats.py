"""The habitat types of a habitat map polygon and its KDW, as a BIJ12 habitattypenkaart delivers them.

A polygon (``ElmID``) of a BIJ12 map is a complex of parts ``Habtype{i}``, ``Perc{i}`` (share of the polygon,
%) and ``Kwal{i}`` (quality), i = 1..n. Every part is kept (the field ``habitat_types``). The polygon's KDW is
the lowest KDW of the habitat types present (share > 0 or not given), from the KDW list (layers/kdw.py); the
type that gives it becomes ``habitat_type``. ``H0000`` parts (no habitat type) do not count, and search areas
(``ZGH4030``: where the type may occur) are kept in the list, marked, but give no KDW. A polygon with nothing
but H0000 or search areas is no habitat: it is not stored, and counted. A type without a known KDW is a
warning on its row (and the KDW stays empty when no other type has one). A file without ``Habtype{i}``
columns is read as one part: its habitat_type, habitat_share and quality columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from layers.kdw import NO_HABITAT, is_habitat_code, is_search_area, normalise_code

PART_COLUMN = re.compile(r"^(habtype|perc|kwal)(\d+)$", re.IGNORECASE)


@dataclass
class Part:
    code: str
    share: float | None
    quality: str | None

    def text(self) -> str:
        words = [self.code]
        if self.share is not None:
            words.append(f"{self.share:g}%")
        if self.quality:
            words.append(self.quality)
        if is_search_area(self.code):
            words.append("(search area)")
        return " ".join(words)


@dataclass
class HabitatParts:
    """What the parts of a batch's polygons give: the fields to set, the rows not to store and the problems."""

    habitat_type: list[str | None]
    habitat_share: list[float | None]
    quality: list[str | None]
    kdw: list[float | None]
    habitat_types: list[str | None]
    skipped: np.ndarray  # rows that are no habitat (only H0000 or search areas)
    skipped_why: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)  # (index, column, value, reason)
    warnings: list[tuple[int, str, str, str]] = field(default_factory=list)


def _part_columns(names: list[str]) -> dict[int, dict[str, str]]:
    parts: dict[int, dict[str, str]] = {}
    for name in names:
        m = PART_COLUMN.match(name.strip())
        if m:
            parts.setdefault(int(m.group(2)), {})[m.group(1).lower()] = name
    return {i: c for i, c in sorted(parts.items()) if "habtype" in c}


def _share(value: object) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().rstrip("%").replace(",", ".")
    return float(text) if text else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def habitat_parts(table: pa.Table, typed: dict[str, pa.Array], kdw: dict[str, float]) -> HabitatParts:
    """The parts of each polygon of a batch and what follows from them (see the module docstring)."""
    n = table.num_rows
    columns = _part_columns(table.column_names)
    raw: list[tuple[str, list[object], str | None, list[object], str | None, list[object]]] = []
    if columns:
        for cols in columns.values():
            code_col, perc_col, kwal_col = cols["habtype"], cols.get("perc"), cols.get("kwal")
            raw.append((code_col, table.column(code_col).to_pylist(),
                        perc_col, table.column(perc_col).to_pylist() if perc_col else [None] * n,
                        kwal_col, table.column(kwal_col).to_pylist() if kwal_col else [None] * n))
    elif "habitat_type" in typed:
        raw.append(("habitat_type", typed["habitat_type"].to_pylist(),
                    "habitat_share", typed["habitat_share"].to_pylist() if "habitat_share" in typed else [None] * n,
                    "quality", typed["quality"].to_pylist() if "quality" in typed else [None] * n))
    out = HabitatParts([None] * n, [None] * n, [None] * n, [None] * n, [None] * n, np.zeros(n, dtype=bool))
    for i in range(n):
        parts: list[Part] = []
        bad = False
        for code_col, codes, perc_col, percs, _, kwals in raw:
            code = normalise_code(codes[i])
            if code is None:
                continue
            if not is_habitat_code(code):
                # Kept as written, without a KDW; the data-quality rule "habitat type is a code" reports it.
                out.warnings.append((i, code_col, str(codes[i]), f"{code_col} {str(codes[i]).strip()!r} is not a "
                                     "habitat type code (like H4030, H7140B, ZGH4030 for a search area or H0000 for "
                                     "none): kept as written, without a KDW"))
                code = str(codes[i]).strip()
            try:
                share = _share(percs[i])
            except ValueError:
                out.errors.append((i, perc_col or code_col, str(percs[i]), "is not a percentage"))
                bad = True
                continue
            if share is not None and not 0 <= share <= 100:
                out.errors.append((i, perc_col or code_col, str(percs[i]),
                                   "is out of range: a share is a percentage from 0 to 100"))
                bad = True
                continue
            parts.append(Part(code, share, _text(kwals[i])))
        if bad or not parts:
            continue  # an error rejects the row; no parts: habitat_type stays empty ("is required but empty")
        parts.sort(key=lambda p: -(p.share if p.share is not None else 100.0))
        out.habitat_types[i] = "; ".join(p.text() for p in parts)
        present = [p for p in parts if p.code != NO_HABITAT and (p.share is None or p.share > 0)]
        habitats = [p for p in present if not is_search_area(p.code)]
        if not habitats:
            why = ("only search areas (ZGH...), no habitat type" if present
                   else "only H0000 (no habitat type)")
            out.skipped[i] = True
            out.skipped_why[why] = out.skipped_why.get(why, 0) + 1
            continue
        known = [p for p in habitats if p.code in kdw]
        unknown = sorted({p.code for p in habitats if p.code not in kdw and is_habitat_code(p.code)})
        chosen = min(known, key=lambda p: (kdw[p.code], -(p.share or 0.0))) if known else habitats[0]
        out.habitat_type[i], out.habitat_share[i], out.quality[i] = chosen.code, chosen.share, chosen.quality
        out.kdw[i] = kdw.get(chosen.code)
        if unknown:
            col = raw[0][0]
            given = (f"the polygon's KDW {kdw[chosen.code]:g} comes from {chosen.code} alone" if known
                     else "its KDW is left empty")
            out.warnings.append((i, col, ", ".join(unknown),
                                 f"{col}: habitat type {', '.join(unknown)} has no known KDW ({given}); add it to "
                                 "the KDW list with TWIN_KDW_FILE (docs/ingest.md)"))
    return out
