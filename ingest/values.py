"""Dates and labels as real exports write them: Dutch day-first dates, slash dates that need a stated format,
and the labels of VTH systems and the KvK mapped onto the twin's codes by the value maps (layers/valuemaps.py).

Date rules (never guessed): ISO ``YYYY-MM-DD`` (with or without a time) and hyphenated ``DD-MM-YYYY`` (day
first, the Dutch order, with or without a time) are read as they are. A slash date that could be read both
ways (``03/04/2024``) refuses the file, naming the rows, unless ``--date-format`` says the order; one that can
only be read one way (``13/04/2024``) is read that way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from layers.kdw import kdw_table
from layers.valuemaps import ValueMaps, load_value_maps, normalise
from twin.errors import IngestError

DAY_FIRST = r"^(\d{1,2})-(\d{1,2})-(\d{4})(?:[T ].*)?$"
DAY_FIRST_PARTS = r"^(?P<d>\d{1,2})-(?P<m>\d{1,2})-(?P<y>\d{4})"
SLASH = r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[T ].*)?$"
ISO_PREFIX = r"^\d{4}-\d{2}-\d{2}"
DATE_REASON = "is not a date: write YYYY-MM-DD or DD-MM-YYYY (or give --date-format for another form)"
DATE_FORMAT_HINT = "--date-format %d/%m/%Y (day first) or --date-format %m/%d/%Y (month first)"


@dataclass
class ReadOptions:
    """How to read values of one load: the date format of non-ISO dates (``--date-format``), the value maps,
    and the source's label for messages."""

    date_format: str | None = None
    value_maps: ValueMaps = field(default_factory=ValueMaps)
    source: str = ""
    kdw: dict[str, float] = field(default_factory=kdw_table)  # habitat type -> KDW (layers/kdw.py, TWIN_KDW_FILE)


def read_options(date_format: str | None = None, value_maps: list[str] | None = None,
                 source: str = "", kdw_file: Path | str | None = None) -> ReadOptions:
    """Options with the shipped value maps plus the user's files, and the KDW list with the user's
    (``TWIN_KDW_FILE``); IngestError for a bad map, KDW file or format."""
    if date_format is not None:
        check_date_format(date_format)
    try:
        maps = load_value_maps(value_maps or [])
    except ValueError as exc:
        raise IngestError(str(exc), parameter="value-map") from exc
    try:
        kdw = kdw_table(str(kdw_file) if kdw_file else None)
    except ValueError as exc:
        raise IngestError(str(exc), parameter="kdw-file") from exc
    return ReadOptions(date_format, maps, source, kdw)


def check_date_format(fmt: str) -> None:
    """Refuse a --date-format that cannot name a whole date (day, month and year)."""
    if not all(d in fmt for d in ("%d", "%m")) or not ("%Y" in fmt or "%y" in fmt):
        raise IngestError(f"--date-format {fmt!r} must contain %d, %m and %Y (e.g. %d/%m/%Y)",
                          parameter="date-format")


def iso_dates(s: pa.Array, date_format: str | None) -> pa.Array:
    """Text dates rewritten to ``YYYY-MM-DD...`` where a rule above reads them; others left as they are."""
    if not len(s) or s.null_count == len(s):
        return s
    out = s
    if date_format is not None:
        out = _with_format(out, date_format)
    dmy = pc.match_substring_regex(out, DAY_FIRST)
    if pc.any(dmy).as_py():
        parts = pc.extract_regex(pc.if_else(dmy, out, None), DAY_FIRST_PARTS)
        iso = pc.binary_join_element_wise(
            pc.struct_field(parts, "y"), pc.utf8_lpad(pc.struct_field(parts, "m"), 2, "0"),
            pc.utf8_lpad(pc.struct_field(parts, "d"), 2, "0"), "-")
        out = pc.if_else(dmy, iso, out)
    slash = pc.match_substring_regex(out, SLASH)
    if date_format is None and pc.any(slash).as_py():
        out = _one_way(out, slash)
    return out


def _with_format(s: pa.Array, fmt: str) -> pa.Array:
    """Values that are not ISO, parsed with the user's format (the whole value, or its date part)."""
    candidates = pc.invert(pc.fill_null(pc.match_substring_regex(s, ISO_PREFIX), True))
    values = pc.unique(pc.drop_null(pc.if_else(candidates, s, None))).to_pylist()
    parsed: dict[str, str] = {}
    for v in values:
        for text in (v, v.split()[0] if v.split() else v):
            try:
                parsed[v] = dt.datetime.strptime(text, fmt).date().isoformat()
                break
            except ValueError:
                continue
    if not parsed:
        return s
    keys = pa.array(list(parsed), pa.string())
    return pc.coalesce(pc.take(pa.array(list(parsed.values()), pa.string()), pc.index_in(s, value_set=keys)), s)


def _slash_parts(text: str) -> tuple[int, int, int]:
    m = re.match(SLASH, text)
    assert m is not None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _valid(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return True


def _one_way(s: pa.Array, slash: pa.Array) -> pa.Array:
    """Slash dates that only one order makes a date (13/04/2024 is day first) as ISO; the rest unchanged."""
    values = pc.unique(pc.drop_null(pc.if_else(slash, s, None))).to_pylist()
    read: dict[str, str] = {}
    for v in values:
        a, b, y = _slash_parts(v)
        day_first, month_first = _valid(y, b, a), _valid(y, a, b)
        if day_first and (not month_first or a == b):
            read[v] = dt.date(y, b, a).isoformat()
        elif month_first and not day_first:
            read[v] = dt.date(y, a, b).isoformat()
    if not read:
        return s
    keys = pa.array(list(read), pa.string())
    return pc.coalesce(pc.take(pa.array(list(read.values()), pa.string()), pc.index_in(s, value_set=keys)), s)


def ambiguous_dates(s: pa.Array) -> np.ndarray:
    """Mask of slash dates that are a date both day first and month first (03/04/2024, not 05/05/2024)."""
    out = np.zeros(len(s), dtype=bool)
    slash = pc.fill_null(pc.match_substring_regex(s, SLASH), False)
    idx = np.nonzero(np.asarray(slash.to_numpy(zero_copy_only=False), dtype=bool))[0]
    for i in idx:
        a, b, y = _slash_parts(s[int(i)].as_py())
        out[i] = a != b and _valid(y, b, a) and _valid(y, a, b)
    return out


def refuse_ambiguous(found: list[tuple[str, int, str]], source: str) -> None:
    """Refuse the load when slash dates could be read either way: (column, row, value) of each, named."""
    if not found:
        return
    shown = ", ".join(f"row {row} {col} {value!r}" for col, row, value in found[:10])
    more = f" and {len(found) - 10} more" if len(found) > 10 else ""
    where = f"{source}: " if source else ""
    raise IngestError(
        f"{where}{len(found)} date(s) could be day/month or month/day ({shown}{more}); the twin does not guess: "
        f"nothing was loaded. Say the order with {DATE_FORMAT_HINT}", parameter="date-format")


def map_values(values: pa.Array, mapping: dict[str, str]) -> tuple[pa.Array, pa.Array]:
    """Labels replaced by their code (compared with :func:`layers.valuemaps.normalise`); unmapped values are
    kept. Returns the values and a boolean array of those that a map matched."""
    if not mapping or not len(values) or values.null_count == len(values):
        return values, pa.array(np.zeros(len(values), dtype=bool))
    uniques = pc.unique(pc.drop_null(values)).to_pylist()
    hits = {u: mapping[normalise(u)] for u in uniques if normalise(u) in mapping}
    if not hits:
        return values, pa.array(np.zeros(len(values), dtype=bool))
    idx = pc.index_in(values, value_set=pa.array(list(hits), pa.string()))
    mapped = pc.take(pa.array(list(hits.values()), pa.string()), idx)
    return pc.coalesce(mapped, values), pc.is_valid(idx)


def unknown_value_reason(enum: tuple[str, ...], maps: ValueMaps, layer: str, field_name: str,
                         source: str) -> str:
    """The reason for a value that is neither a code nor in a value map: what is allowed and which file
    to extend."""
    files = maps.files_for(layer, field_name)
    where = f" in {source}" if source else ""
    return (f"{where} is not one of the allowed values: {', '.join(enum)}, nor a label in the value map "
            f"{files[-1]}: add it there as '<label>: <code>' under {layer}.{field_name} (or in a map of your "
            f"own, --value-map FILE or TWIN_VALUE_MAPS)").lstrip()


def sbi_without_dots(values: pa.Array) -> pa.Array:
    """SBI codes written with dots (KvK: 01.41, 01.47.1) as the digits the twin stores (0141, 01471)."""
    dotted = pc.match_substring_regex(values, r"^\d{2}(\.\d{1,2}){1,2}$")
    return pc.if_else(dotted, pc.replace_substring(values, ".", ""), values)


def natural_person(legal_form: pa.Array, forms: list[str]) -> pa.Array:
    """Whether a legal form is one whose owners are natural persons: a listed form, whole or as its first words."""
    listed = set(forms)

    def person(v: str) -> bool:
        words = normalise(v).split(" ")
        return any(" ".join(words[:k]) in listed for k in range(1, len(words) + 1))

    uniques = pc.unique(pc.drop_null(legal_form))
    flags = pa.array([person(v) for v in uniques.to_pylist()], pa.bool_())
    return pc.take(flags, pc.index_in(legal_form, value_set=uniques))
