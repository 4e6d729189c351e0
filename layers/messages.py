"""The message catalogue of the map and the reports: every user-visible text in Dutch (the default) and
English, in ``layers/data/messages/{nl,en}.json`` (pure data, so that ``frontend``, ``api`` and the reports in
``twin`` all read the same words).

A message is a string with ``{name}`` placeholders, or a plural form ``{"one": ..., "other": ...}`` chosen by
the ``n`` parameter. Dutch domain words stay as inspectors use them (inrichting, gebiedsrapport, KDW, LHS).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

MESSAGES_DIR = Path(__file__).resolve().parent / "data" / "messages"
LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def language(value: str | None) -> str:
    """A supported language code from a request value (``?lang=en``); Dutch for anything else."""
    code = (value or "").strip().lower()[:2]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


@cache
def catalogue(lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """All messages of a language (a missing key falls back to Dutch)."""
    own: dict[str, Any] = json.loads((MESSAGES_DIR / f"{language(lang)}.json").read_text(encoding="utf-8"))
    if language(lang) == DEFAULT_LANGUAGE:
        return own
    return {**catalogue(DEFAULT_LANGUAGE), **own}


def number(value: float, lang: str = DEFAULT_LANGUAGE, digits: int = 0) -> str:
    """A number as the language writes it: ``2.030`` and ``4,5`` in Dutch, ``2,030`` and ``4.5`` in English."""
    text = f"{value:,.{digits}f}"
    if language(lang) == "nl":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def text(lang: str, key: str, /, **params: Any) -> str:
    """The message ``key`` in ``lang`` with its placeholders filled; the key itself when unknown.

    Numbers (not years or ids: pass those as strings) are written with :func:`number`."""
    message = catalogue(lang).get(key, key)
    if isinstance(message, dict):
        message = message["one" if params.get("n") == 1 else "other"]

    def fill(m: re.Match[str]) -> str:
        value = params.get(m.group(1))
        if value is None:
            return m.group(0)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return number(value, lang, 0 if float(value).is_integer() else 1)
        return str(value)

    return _PLACEHOLDER.sub(fill, str(message))


def field_label(lang: str, name: str, fallback: str | None = None) -> str:
    """The label of a field (``kvk_number`` -> "KvK-nummer"); ``fallback`` (or the name) when the catalogue has none."""
    key = f"field.{name}"
    found = catalogue(lang).get(key)
    return str(found) if found is not None else (fallback or name)


def rule_title(lang: str, rule_id: str, fallback: str | None = None) -> str:
    """The title of a data-quality rule (``quality.rule.<id>.title``) in the language; ``fallback`` (the
    rule's own English title) or the id when the catalogue has none."""
    found = catalogue(lang).get(f"quality.rule.{rule_id}.title")
    return str(found) if found is not None else (fallback or rule_id)


def unit(lang: str, value: str | None) -> str | None:
    """A unit in the language (``mol N/ha/yr`` -> ``mol N/ha/jaar``)."""
    if value is None:
        return None
    return str(catalogue(lang).get(f"unit.{value}", value))
