"""Value maps: the labels that sources write for a field, mapped onto the twin's codes, kept as data.

One YAML file per source under ``layers/data/valuemaps/`` (``cim-vth-flo.yaml``, ``kvk.yaml``), each
``layers: {layer: {field: {value in the file: code in the twin}}}``. A user extends them without code with
files of the same shape (``TWIN_VALUE_MAPS`` or ``twin ingest --value-map``); those win over the shipped ones.
Values are compared ignoring case, accents and repeated spaces (:func:`normalise`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layers.registry import LAYERS

VALUE_MAP_DIR = Path(__file__).parent / "data" / "valuemaps"


def normalise(value: str) -> str:
    """Case-, accent- and space-insensitive form of a label: 'Coöperatie  X' -> 'cooperatie x'."""
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain.casefold()).strip()


@dataclass
class ValueMaps:
    """The merged value maps: per (layer, field) the normalised label -> code, and which files say so."""

    maps: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    files: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    natural_person_legal_forms: list[str] = field(default_factory=list)

    def get(self, layer: str, field_name: str) -> dict[str, str]:
        return self.maps.get((layer, field_name), {})

    def files_for(self, layer: str, field_name: str) -> list[Path]:
        """The files that map this field (the last is the one to extend); the shipped CIM-VTH-Flo map
        when none does."""
        return self.files.get((layer, field_name)) or [VALUE_MAP_DIR / "cim-vth-flo.yaml"]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"value map {path}: file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"value map {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("layers", {}), dict):
        raise ValueError(f"value map {path}: expected 'layers: {{LAYER: {{FIELD: {{value: code}}}}}}'")
    return data


def load_value_maps(extra: Iterable[Path | str] = ()) -> ValueMaps:
    """The shipped maps (which may not contradict each other), then the user's files in order (which win).
    ValueError names the file and the entry that is wrong."""
    out = ValueMaps()
    shipped = sorted(VALUE_MAP_DIR.glob("*.yaml"))
    for path, user in [*((p, False) for p in shipped), *((Path(p), True) for p in extra)]:
        data = _read(path)
        for layer_id, fields in (data.get("layers") or {}).items():
            spec = LAYERS.get(str(layer_id))
            if spec is None:
                raise ValueError(f"value map {path}: unknown layer {layer_id!r}; known: {', '.join(LAYERS)}")
            if not isinstance(fields, dict):
                raise ValueError(f"value map {path}: {layer_id} must map fields to {{value: code}}")
            for fname, values in fields.items():
                if str(fname) not in spec.field_names:
                    raise ValueError(f"value map {path}: layer {layer_id} has no field {fname!r}")
                f = spec.field(str(fname))
                target = out.maps.setdefault((spec.id, f.name), {})
                for raw, code in (values or {}).items():
                    code_text = str(code)
                    if f.enum is not None and code_text not in f.enum:
                        raise ValueError(f"value map {path}: {layer_id}.{fname}: {raw!r} maps to {code_text!r}, "
                                         f"which is not one of the twin's codes: {', '.join(f.enum)}")
                    key = normalise(str(raw))
                    if not user and key in target and target[key] != code_text:
                        raise ValueError(f"value map {path}: {layer_id}.{fname}: {raw!r} maps to {code_text!r} "
                                         f"here and to {target[key]!r} in another shipped map")
                    target[key] = code_text
                out.files.setdefault((spec.id, f.name), [])
                if path not in out.files[(spec.id, f.name)]:
                    out.files[(spec.id, f.name)].append(path)
        forms = data.get("natural_person_legal_forms") or []
        out.natural_person_legal_forms.extend(normalise(str(v)) for v in forms)
    return out
