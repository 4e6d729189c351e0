"""Habitat type codes and their critical deposition values (KDW, mol N/ha/yr), kept as data.

The shipped list is ``layers/data/kdw.csv`` (columns ``code,kdw,name_nl``; its source and status are in
``kdw.source.md``: it holds only the values verified so far, not the whole list of Van Dobben et al. 2012).
A user completes it without code with a CSV of the same shape (``TWIN_KDW_FILE``), whose rows win over the
shipped ones. Codes are compared in one normal form (:func:`normalise_code`): upper case, no spaces,
hyphens or underscores, so ``h7140_b`` and ``H7140B`` are the same type.

In a BIJ12 habitat type map ``H0000`` means "no habitat type" and ``ZG...`` codes (``ZGH4030``) are
search areas (zoekgebieden): neither has a KDW of its own.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

SHIPPED_KDW_FILE = Path(__file__).parent / "data" / "kdw.csv"
NO_HABITAT = "H0000"
SEARCH_AREA_PREFIX = "ZG"
# Habitat types (H + 4 characters such as H4030 or H91E0, + an optional subtype letter), leefgebieden (Lg + 2
# digits), each optionally as a search area (ZG...); H0000 none, H9999 "present" (IMNa) and HXXXX (veg2hab: not
# yet decided) included.
CODE_PATTERN = re.compile(r"^(ZG)?(H[0-9][0-9A-Z]{3}[A-Z]?|HXXXX|LG[0-9]{2})$")


def normalise_code(code: object) -> str | None:
    """One form of a habitat type code: 'h7140_b ' -> 'H7140B', 'ZGH4030' stays; None for empty."""
    if code is None:
        return None
    text = re.sub(r"[\s_\-]+", "", str(code)).upper()
    return text or None


def is_habitat_code(code: str | None) -> bool:
    """Whether a (normalised) code has the form of a habitat type or leefgebied code."""
    return code is not None and CODE_PATTERN.match(code) is not None


def is_search_area(code: str | None) -> bool:
    """A search area (zoekgebied) code such as ZGH4030: a place where the type may be, not a habitat."""
    return code is not None and code.startswith(SEARCH_AREA_PREFIX)


def read_kdw_file(path: Path | str) -> dict[str, float]:
    """The KDW per normalised code from one CSV (``code,kdw[,name_nl]``); ValueError names file and row."""
    path = Path(path)
    out: dict[str, float] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip().lower() for f in reader.fieldnames or ()]
            if "code" not in fields or "kdw" not in fields:
                raise ValueError(f"{path}: a KDW file needs the columns code and kdw (found: {', '.join(fields)})")
            for line, row in enumerate(reader, start=2):
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                code = normalise_code(row.get("code"))
                if code is None:
                    continue
                if not is_habitat_code(code):
                    raise ValueError(f"{path}, line {line}: code {row.get('code')!r} is not a habitat type code "
                                     "(like H4030, H7140B or Lg01)")
                try:
                    value = float(row.get("kdw", "").replace(",", "."))
                except ValueError:
                    raise ValueError(f"{path}, line {line}: kdw {row.get('kdw')!r} of {code} is not a number") \
                        from None
                if value <= 0:
                    raise ValueError(f"{path}, line {line}: kdw {value:g} of {code} must be positive (mol N/ha/yr)")
                out[code] = value
    except OSError as exc:
        raise ValueError(f"KDW file {path}: {exc.strerror or exc}") from None
    return out


@lru_cache(maxsize=8)
def kdw_table(extra: Path | str | None = None) -> dict[str, float]:
    """The shipped KDW list with a user's file (``TWIN_KDW_FILE``) merged over it."""
    table = read_kdw_file(SHIPPED_KDW_FILE)
    if extra:
        table.update(read_kdw_file(extra))
    return table
