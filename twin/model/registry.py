"""The model registry: every trained model in ``<data dir>/models/<id>/`` as ``model.joblib`` (the
calibrated model) and ``model.json`` (cut-off, features, metrics, fairness report, training-data hash,
library versions), so that any stored visit plan can be explained later by the model it names."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from twin.errors import NotFound
from twin.model.estimator import Model

LIBRARIES = ("vth-twin", "lightgbm", "scikit-learn", "numpy", "pandas", "joblib")


def folder(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def cache_folder(data_dir: Path) -> Path:
    """Where the location context of the features is cached (twin.model.features.context)."""
    return folder(data_dir) / "cache"


def versions() -> dict[str, str]:
    """The versions of Python and the libraries that make the model."""
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out


def data_hash(frame: pd.DataFrame, y: Any) -> str:
    """sha256 of the training rows (ids, features, labels): the same data gives the same hash."""
    h = hashlib.sha256()
    cols = [c for c in frame.columns if not c.startswith("_")]
    h.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    h.update(pd.util.hash_pandas_object(pd.Series(list(y)), index=False).to_numpy().tobytes())
    return h.hexdigest()


def save(data_dir: Path, model: Model, meta: dict[str, Any]) -> str:
    """Store ``model`` with ``meta``; returns its id (``m`` + UTC time + a short hash)."""
    import joblib

    now = datetime.now(UTC)
    model_id = f"m{now:%Y%m%dT%H%M%S}-{meta.get('training_data_sha256', '')[:8]}"
    where = folder(data_dir) / model_id
    where.mkdir(parents=True, exist_ok=False)
    meta = {"id": model_id, "created_at": now.isoformat(timespec="seconds"), "versions": versions(),
            "features": model.features, "params": model.params} | meta
    model.meta = meta
    joblib.dump(model, where / "model.joblib", compress=3)
    (where / "model.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return model_id


def list_models(data_dir: Path) -> list[dict[str, Any]]:
    """The stored models' metadata, newest first."""
    root = folder(data_dir)
    if not root.is_dir():
        return []
    metas = [json.loads(p.read_text(encoding="utf-8")) for p in root.glob("*/model.json")]
    return sorted(metas, key=lambda m: m["id"], reverse=True)


def load(data_dir: Path, model_id: str | None = None) -> Model:
    """A stored model (the newest when ``model_id`` is None); NotFound names what is there."""
    import joblib

    metas = list_models(data_dir)
    if not metas:
        raise NotFound("no model is trained yet: run 'twin model train' first")
    if model_id is None:
        model_id = metas[0]["id"]
    path = folder(data_dir) / model_id / "model.joblib"
    if not path.is_file():
        raise NotFound(f"model {model_id!r} is not in the registry; see 'twin model list'")
    model: Model = joblib.load(path)
    return model
