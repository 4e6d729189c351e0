"""The 3D BAG GeoPackage (3dbag.nl) as one source of buildings: the layer ``pand`` joined with one LoD
layer (``lod12_2d`` by default), the LoD layer's roof parts combined per building.

The 3D BAG keeps the BAG attributes and the building-wide 3D BAG attributes (``b3_h_maaiveld``,
``b3_dak_type``, ``b3_volume_lod12`` ...) on ``pand`` and the roof heights (``b3_h_dak_70p`` ...) on the LoD
layers, one row per roof part, joined to ``pand`` on ``fid``. This reader yields one record per building:
the columns of ``pand`` as they are (the volumes of the other LoDs left out) plus the roof heights of the
chosen LoD, each the mean of its roof parts weighted by the part's footprint area (parts without a value
are left out; a building without any keeps NULL). Column names stay the source's, so the layer's aliases
and the 3D BAG height rule in validation map them; releases before 2023 (names without ``b3_``) too.

A LoD layer read on its own (``3dbag.gpkg:lod12_2d`` in a file without ``pand``) is combined per
``identificatie`` the same way, its footprint the union of its parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from pyogrio.raw import open_arrow
from pyproj import CRS

from ingest.sources import RawBatch, VectorSource, arrow_storage, horizontal_crs
from twin.errors import IngestError

# --lod -> the 2D layer of that LoD.
LOD_LAYERS = {"1.2": "lod12_2d", "1.3": "lod13_2d", "2.2": "lod22_2d"}
DEFAULT_LOD = "1.2"
# The merge a 3D BAG asks for when the user names none (ingest/merge.py): existing buildings get only
# these fields, and only where the 3D BAG has a value; buildings it does not match are inserted whole.
MERGE_MODE = "enrich"
ENRICHES = ("height_m", "roof_type", "volume_m3")
# Height columns of a LoD layer (b3_h_dak_70p, h_dak_70p, b3_h_70p, h_maaiveld ...): combined per building.
HEIGHT_COLUMN = re.compile(r"^(b3_)?h_", re.IGNORECASE)
VOLUME_COLUMN = re.compile(r"^(b3_)?volume_(lod\d+)$", re.IGNORECASE)


def is_3dbag(layers: list[str]) -> bool:
    """A GeoPackage with the 3D BAG's layers: ``pand`` and at least one LoD 2D layer."""
    return "pand" in layers and any(name in layers for name in LOD_LAYERS.values())


def lod_layer(lod: str | None) -> str:
    """The 2D layer of ``--lod`` (1.2, 1.3, 2.2; also 12 or lod12)."""
    key = (lod or DEFAULT_LOD).lower().removeprefix("lod").replace(",", ".")
    if "." not in key and len(key) == 2:
        key = f"{key[0]}.{key[1]}"
    if key not in LOD_LAYERS:
        raise IngestError(f"--lod {lod!r} is not a 3D BAG LoD: use 1.2, 1.3 or 2.2", parameter="lod")
    return LOD_LAYERS[key]


def open_3dbag(path: Path, layers: list[str], layer: str | None, lod: str | None) -> VectorSource:
    """The 3D BAG in ``path`` as one vector source of buildings (see the module docstring)."""
    if layer in LOD_LAYERS.values():
        if lod is not None and lod_layer(lod) != layer:
            raise IngestError(f"{path}:{layer} and --lod {lod} name different LoD layers: give one of them",
                              parameter="lod")
        chosen = layer
    else:
        chosen = lod_layer(lod)
    if chosen not in layers:
        raise IngestError(f"{path}: has no layer {chosen!r} for LoD {lod or DEFAULT_LOD}; its layers are "
                          f"{', '.join(layers)}")
    if "pand" not in layers:
        return _lod_only(path, chosen)
    pand = _info(path, "pand")
    lod_info = _info(path, chosen)
    pand_fields = [str(c) for c in pand["fields"]]
    lod_fields = [str(c) for c in lod_info["fields"]]
    pand_key, lod_key, key_label = _join_keys(pand, pand_fields, lod_info, lod_fields)
    lod_level = chosen.split("_")[0]  # lod12
    dropped = [c for c in pand_fields if (m := VOLUME_COLUMN.match(c)) and m.group(2).lower() != lod_level]
    taken = {c.lower() for c in pand_fields}
    heights = [c for c in lod_fields if HEIGHT_COLUMN.match(c) and c.lower() not in taken]
    agg, parts = _combine(path, chosen, lod_key, heights)
    read = [c for c in pand_fields if c not in dropped]
    crs, crs_note = _crs(pand, path)
    total = pand.get("features")
    src = VectorSource(
        path=path, layer=f"pand+{chosen}", format="gpkg", crs=crs, columns=[*read, *heights], column_types={},
        has_geometry=pand.get("geometry_type") not in (None, "None"),
        total_rows=int(total) if total is not None and total >= 0 else None, files=[path],
        geometry_name=str(pand.get("geometry_name") or "") or None, merge_mode=MERGE_MODE, update_fields=ENRICHES,
    )
    src.notes.append(
        f"3D BAG GeoPackage: read layer pand joined with {chosen} on {key_label} (LoD {_lod_text(chosen)}; "
        f"choose with --lod 1.2|1.3|2.2); {parts:,} roof-part rows of {chosen} combined into {agg.num_rows:,} "
        "buildings (roof heights: mean weighted by each part's footprint area)")
    if crs_note:
        src.notes.append(crs_note)
    keys = agg.column("key")

    def reader(batch_size: int) -> Iterator[RawBatch]:
        next_row = 1
        with open_arrow(path, layer="pand", batch_size=batch_size, use_pyarrow=True, columns=read,
                        return_fids=pand_key is None) as (meta, stream):
            geom_name = meta.get("geometry_name") or "wkb_geometry"
            fid_name = meta.get("fid_column") or "fid"
            for batch in stream:
                table = pa.Table.from_batches([batch])
                join = table.column(fid_name if pand_key is None else pand_key).combine_chunks()
                if pa.types.is_string(keys.type):
                    join = pc.cast(join, pa.string())
                else:
                    join = pc.cast(join, pa.int64())
                idx = pc.index_in(join, value_set=keys)
                geometry = None
                if geom_name in table.column_names:
                    geometry = arrow_storage(table.column(geom_name))
                    table = table.drop_columns([geom_name])
                if pand_key is None and fid_name in table.column_names and fid_name not in read:
                    table = table.drop_columns([fid_name])
                for h in heights:
                    table = table.append_column(h, pc.take(agg.column(h), idx))
                rows = np.arange(next_row, next_row + table.num_rows, dtype=np.int64)
                next_row += table.num_rows
                yield RawBatch(table, geometry, rows)

    src.reader = reader
    return src


def _lod_text(layer: str) -> str:
    return next(k for k, v in LOD_LAYERS.items() if v == layer)


def _info(path: Path, layer: str) -> dict:
    try:
        return dict(pyogrio.read_info(path, layer=layer))
    except Exception as exc:  # noqa: BLE001 - GDAL raises several types; the message matters
        raise IngestError(f"{path}: cannot read layer {layer!r} ({exc})") from exc


def _crs(info: dict, path: Path) -> tuple[CRS | None, str | None]:
    if not info.get("crs"):
        return None, None
    return horizontal_crs(CRS.from_user_input(info["crs"]), path.name)


def _join_keys(pand: dict, pand_fields: list[str], lod: dict, lod_fields: list[str]) -> tuple[str | None, str, str]:
    """(pand's join column, None for its FID; the LoD layer's join column; a label): ``fid`` as the 3D BAG
    documents it, else ``identificatie`` when both layers have it."""
    lower = {c.lower(): c for c in lod_fields}
    pand_lower = {c.lower(): c for c in pand_fields}
    if "fid" in lower:
        return pand_lower.get("fid"), lower["fid"], "fid"
    if "identificatie" in lower and "identificatie" in pand_lower:
        return pand_lower["identificatie"], lower["identificatie"], "identificatie"
    if str(lod.get("fid_column") or "").lower() == "fid":
        return pand_lower.get("fid"), "", "fid"
    raise IngestError("the 3D BAG LoD layer has no fid or identificatie column to join it to pand")


def _read_lod(path: Path, layer: str, columns: list[str], fids: bool, batch_size: int = 65536
              ) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """The LoD layer's columns and each row's footprint area, in batches."""
    with open_arrow(path, layer=layer, batch_size=batch_size, use_pyarrow=True, columns=columns,
                    return_fids=fids) as (meta, stream):
        geom_name = meta.get("geometry_name") or "wkb_geometry"
        fid_name = meta.get("fid_column") or "fid"
        for batch in stream:
            table = pa.Table.from_batches([batch])
            geoms = shapely.from_wkb(arrow_storage(table.column(geom_name)).to_numpy(zero_copy_only=False))
            area = np.nan_to_num(shapely.area(geoms))
            if fids:
                table = table.rename_columns([c if c != fid_name else "fid" for c in table.column_names])
            yield table, area


def _combine(path: Path, layer: str, key: str, heights: list[str]) -> tuple[pa.Table, int]:
    """Per join key: each height column as the area-weighted mean of its roof parts. Returns (a table with
    ``key`` and the heights, the number of part rows read)."""
    fids = key == ""
    col = "fid" if fids else key
    partials: list[pa.Table] = []
    parts = 0
    for table, area in _read_lod(path, layer, heights if fids else [key, *heights], fids):
        parts += table.num_rows
        data: dict[str, pa.Array] = {"key": table.column(col).combine_chunks()}
        for h in heights:
            v = pc.cast(table.column(h).combine_chunks(), pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            present = ~np.isnan(v)
            w = np.where(present, area, 0.0)
            data[f"{h}:w"] = pa.array(w)
            data[f"{h}:wh"] = pa.array(np.where(present, v * w, 0.0))
            data[f"{h}:n"] = pa.array(present.astype(np.int64))
            data[f"{h}:s"] = pa.array(np.where(present, v, 0.0))
        partials.append(pa.table(data).group_by("key").aggregate([(c, "sum") for c in data if c != "key"]))
    if not partials:
        return pa.table({"key": pa.array([], pa.int64())}), 0
    whole = pa.concat_tables(partials)
    whole = whole.rename_columns([c.removesuffix("_sum") for c in whole.column_names])
    whole = whole.group_by("key").aggregate([(c, "sum") for c in whole.column_names if c != "key"])
    whole = whole.rename_columns([c.removesuffix("_sum") for c in whole.column_names])
    out: dict[str, pa.Array] = {"key": whole.column("key").combine_chunks()}
    if pa.types.is_string(out["key"].type) or pa.types.is_large_string(out["key"].type):
        out["key"] = pc.cast(out["key"], pa.string())
    else:
        out["key"] = pc.cast(out["key"], pa.int64())
    for h in heights:
        w = whole.column(f"{h}:w").to_numpy()
        n = whole.column(f"{h}:n").to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            # Parts of no area (degenerate) count equally when the whole building has no area.
            mean = np.where(w > 0, whole.column(f"{h}:wh").to_numpy() / w, whole.column(f"{h}:s").to_numpy() / n)
        out[h] = pa.array(np.round(mean, 3), mask=n == 0)
    return pa.table(out), parts


def _lod_only(path: Path, layer: str) -> VectorSource:
    """A LoD 2D layer without ``pand``: its roof parts combined per ``identificatie``; the footprint is the
    union of the parts; other columns (dak_type, h_maaiveld in older releases) from the building's first
    part."""
    info = _info(path, layer)
    fields = [str(c) for c in info["fields"]]
    lower = {c.lower(): c for c in fields}
    if "identificatie" not in lower:
        raise IngestError(f"{path}:{layer}: no identificatie column to combine the roof parts by (read it "
                          "together with the layer pand of the same 3D BAG file)")
    key = lower["identificatie"]
    heights = [c for c in fields if HEIGHT_COLUMN.match(c)]
    others = [c for c in fields if c != key and c not in heights]
    tables = []
    for table, area in _read_lod(path, layer, fields, False):
        tables.append(table.append_column("_area", pa.array(area)))
    whole = pa.concat_tables(tables) if tables else None
    crs, crs_note = _crs(info, path)
    src = VectorSource(
        path=path, layer=layer, format="gpkg", crs=crs, columns=[key, *others, *heights], column_types={},
        has_geometry=True, total_rows=None, files=[path], geometry_name=str(info.get("geometry_name") or "geom"),
        merge_mode=MERGE_MODE, update_fields=ENRICHES,
    )
    src.notes.append(f"3D BAG GeoPackage: read layer {layer} alone; its roof parts combined per identificatie "
                     "(roof heights: mean weighted by each part's footprint area; footprint: the union of the parts)")
    if crs_note:
        src.notes.append(crs_note)

    def reader(batch_size: int) -> Iterator[RawBatch]:
        if whole is None or not whole.num_rows:
            return
        geom_name = src.geometry_name or "geom"
        ids = whole.column(key).to_pylist()
        order = sorted(range(len(ids)), key=lambda i: (ids[i] is None, ids[i] or ""))
        groups: list[list[int]] = []
        for i in order:
            if groups and ids[groups[-1][0]] == ids[i] and ids[i] is not None:
                groups[-1].append(i)
            else:
                groups.append([i])
        geoms = shapely.from_wkb(arrow_storage(whole.column(geom_name)).to_numpy(zero_copy_only=False))
        area = whole.column("_area").to_numpy()
        hv = {h: pc.cast(whole.column(h), pa.float64(), safe=False).to_numpy(zero_copy_only=False) for h in heights}
        for start in range(0, len(groups), batch_size):
            chunk = groups[start:start + batch_size]
            first = pa.array([g[0] for g in chunk])
            cols = {c: pc.take(whole.column(c), first) for c in [key, *others]}
            for h in heights:
                means: list[float | None] = []
                for g in chunk:
                    v, a = hv[h][g], area[g]
                    ok = ~np.isnan(v)
                    if not ok.any():
                        means.append(None)
                    elif a[ok].sum() > 0:
                        means.append(round(float((v[ok] * a[ok]).sum() / a[ok].sum()), 3))
                    else:
                        means.append(round(float(v[ok].mean()), 3))
                cols[h] = pa.array(means, pa.float64())
            union = [shapely.union_all(geoms[g]) if len(g) > 1 else geoms[g[0]] for g in chunk]
            table = pa.table(cols)
            rows = np.arange(start + 1, start + 1 + table.num_rows, dtype=np.int64)
            yield RawBatch(table, pa.array(shapely.to_wkb(np.array(union, dtype=object)), pa.binary()), rows)

    src.reader = reader
    return src
