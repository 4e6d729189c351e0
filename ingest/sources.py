"""Readers of vector sources (CSV, GeoJSON, GeoPackage, Shapefile, GeoParquet), streamed as Arrow batches.

A reader does not interpret the columns: it yields the attribute columns as they are in the file, the
geometry as WKB when the format has one, and the 1-based row number of every record, so that validation
can name the row of every problem. Memory stays bounded by the batch size.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyogrio
from pyogrio.raw import open_arrow
from pyproj import CRS

from twin.errors import IngestError

FORMATS: dict[str, str] = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".geojson": "geojson", ".json": "geojson",
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".parquet": "parquet", ".geoparquet": "parquet",
    ".tif": "raster", ".tiff": "raster", ".asc": "raster",
}
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


@dataclass
class RawBatch:
    """One batch of records as read: attribute columns, WKB geometry (or None) and 1-based row numbers."""

    columns: pa.Table
    geometry: pa.Array | None
    rows: np.ndarray


@dataclass
class VectorSource:
    """An opened vector source: what it holds and how to stream it."""

    path: Path
    layer: str | None
    format: str
    crs: CRS | None
    columns: list[str]
    column_types: dict[str, pa.DataType]
    has_geometry: bool
    total_rows: int | None
    files: list[Path]
    notes: list[str] = field(default_factory=list)
    reader: Callable[[int], Iterator[RawBatch]] | None = None
    invalid_rows: list[tuple[int | None, str]] = field(default_factory=list)
    geometry_name: str | None = None
    # A source profile (the 3D BAG, ingest/bag3d.py) may ask for a merge mode when the user gives none, and
    # name the fields that mode updates in rows that exist (ingest/merge.py).
    merge_mode: str | None = None
    update_fields: tuple[str, ...] | None = None
    separator_lines: int = 0  # CSV lines of only separators (Excel writes ';;;;;' after the data): skipped

    @property
    def label(self) -> str:
        """The source as users name it: the path, plus ``:layer`` for a chosen GeoPackage layer."""
        return f"{self.path}:{self.layer}" if self.layer and self.format == "gpkg" else str(self.path)

    def batches(self, batch_size: int = 65536) -> Iterator[RawBatch]:
        """Stream the records in batches of at most ``batch_size``."""
        assert self.reader is not None
        return self.reader(batch_size)


def split_layer(path: str | Path) -> tuple[Path, str | None]:
    """``data.gpkg:pand`` -> (data.gpkg, "pand"); a path that exists as given is never split."""
    text = str(path)
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    head, _, tail = text.rpartition(":")
    if head and Path(head).exists() and tail:
        return Path(head), tail
    return Path(text), None


def detect_format(path: Path) -> str:
    """The format of a file by its extension; IngestError names the supported ones."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise IngestError(f"{path}: unknown file type {path.suffix or '(none)'!r}; supported: {known}")
    return fmt


def checksum(files: list[Path], extra: str = "") -> str:
    """SHA-256 over the bytes of the files (in order) and an extra label (e.g. the chosen layer)."""
    h = hashlib.sha256()
    for f in files:
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    if extra:
        h.update(extra.encode())
    return h.hexdigest()


class ChecksumThread(threading.Thread):
    """Computes the checksum next to the load (hashlib releases the GIL on large blocks)."""

    def __init__(self, files: list[Path], extra: str = "") -> None:
        super().__init__(daemon=True)
        self.files, self.extra, self.value = files, extra, ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = checksum(self.files, self.extra)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller in result()
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error:
            raise self.error
        return self.value


def open_source(path: str | Path) -> VectorSource:
    """Open a vector file (``PATH`` or ``PATH:layer`` for a GeoPackage) for streaming, as its format has it.
    Sources that span several layers (the 3D BAG) are opened by :func:`ingest.profiles.open_delivery`."""
    p, layer = split_layer(path)
    if not p.exists():
        raise IngestError(f"{p}: file not found")
    if p.is_dir():
        raise IngestError(f"{p} is a folder: give a file (for a folder with manifest.json use 'twin ingest-all')")
    fmt = detect_format(p)
    if fmt == "raster":
        raise IngestError(f"{p} is a raster: only the coverage 'nitrogen-deposition' takes rasters")
    if fmt == "csv":
        return _open_csv(p)
    if fmt == "parquet":
        return _open_parquet(p)
    return _open_ogr(p, fmt, layer)


# --- GDAL formats (GeoPackage, GeoJSON, Shapefile) ------------------------------------------------------


def horizontal_crs(crs: CRS, name: str) -> tuple[CRS, str | None]:
    """The horizontal part of a compound CRS (EPSG:7415 = RD New + NAP height -> EPSG:28992) and a note
    saying so; other CRSs as they are."""
    if crs.is_compound and crs.sub_crs_list:
        flat = crs.sub_crs_list[0]
        return flat, (f"{name}: the compound CRS {_crs_label(crs)} ({crs.name}): read its horizontal part "
                      f"{_crs_label(flat)}")
    return crs, None


def _crs_label(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _open_ogr(path: Path, fmt: str, layer: str | None) -> VectorSource:
    notes: list[str] = []
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001 - GDAL raises several types; the message matters
        raise IngestError(f"{path}: cannot be read as {fmt} ({exc})") from exc
    if not layers:
        raise IngestError(f"{path}: holds no layers")
    if layer is None:
        layer = layers[0]
        if len(layers) > 1:
            notes.append(f"{path.name} holds layers {', '.join(layers)}; read {layer!r} (choose with PATH:layer)")
    elif layer not in layers:
        raise IngestError(f"{path}: has no layer {layer!r}; its layers are {', '.join(layers)}")
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as exc:  # noqa: BLE001
        raise IngestError(f"{path}: cannot read layer {layer!r} ({exc})") from exc
    crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None
    if crs is not None:
        crs, note = horizontal_crs(crs, path.name)
        if note:
            notes.append(note)
    files = [path]
    if fmt == "shp":
        files = [path.with_suffix(s) for s in SHAPEFILE_PARTS if path.with_suffix(s).exists()]
    columns = [str(c) for c in info["fields"]]
    has_geometry = info.get("geometry_type") not in (None, "None")
    total = info.get("features")
    src = VectorSource(
        path=path, layer=layer, format=fmt, crs=crs, columns=columns, column_types={}, has_geometry=has_geometry,
        total_rows=int(total) if total is not None and total >= 0 else None, files=files, notes=notes,
        geometry_name=str(info.get("geometry_name") or "") or None,
    )

    def reader(batch_size: int) -> Iterator[RawBatch]:
        next_row = 1
        try:
            with open_arrow(path, layer=layer, batch_size=batch_size, use_pyarrow=True) as (meta, stream):
                geom_name = meta.get("geometry_name") or "wkb_geometry"
                for batch in stream:
                    table = pa.Table.from_batches([batch])
                    geometry = None
                    if has_geometry and geom_name in table.column_names:
                        geometry = arrow_storage(table.column(geom_name).combine_chunks())
                        table = table.drop_columns([geom_name])
                    rows = np.arange(next_row, next_row + table.num_rows, dtype=np.int64)
                    next_row += table.num_rows
                    yield RawBatch(table, geometry, rows)
        except IngestError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt file: name it and the row reached
            raise IngestError(f"{path}: reading stopped near row {next_row} ({exc})") from exc

    src.reader = reader
    # Column types are known once the first batch is read; GDAL gives them already, in info["dtypes"].
    return src


def arrow_storage(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array of a column, extension types (GeoArrow WKB) as their storage."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    return arr


# --- GeoParquet ---------------------------------------------------------------------------------------------


def _open_parquet(path: Path) -> VectorSource:
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001
        raise IngestError(f"{path}: cannot be read as Parquet ({exc})") from exc
    meta = pf.schema_arrow.metadata or {}
    geo = json.loads(meta[b"geo"]) if b"geo" in meta else None
    crs: CRS | None = None
    geom_col: str | None = None
    if geo:
        geom_col = geo.get("primary_column")
        col_meta = geo.get("columns", {}).get(geom_col, {})
        encoding = str(col_meta.get("encoding", "WKB")).upper()
        if encoding != "WKB":
            raise IngestError(
                f"{path}: the geometry column {geom_col!r} is encoded as {encoding}; this loader reads WKB "
                "GeoParquet (write it with geopandas.to_parquet or 'ogr2ogr -lco GEOMETRY_ENCODING=WKB')"
            )
        if "crs" not in col_meta:
            crs = CRS.from_user_input("OGC:CRS84")  # the GeoParquet default when the key is absent
        elif col_meta["crs"] is not None:
            crs = CRS.from_user_input(col_meta["crs"])
    columns = [n for n in pf.schema_arrow.names if n != geom_col]
    src = VectorSource(
        path=path, layer=None, format="parquet", crs=crs, columns=columns,
        column_types={n: pf.schema_arrow.field(n).type for n in columns}, has_geometry=geom_col is not None,
        total_rows=pf.metadata.num_rows, files=[path], geometry_name=geom_col,
    )

    def reader(batch_size: int) -> Iterator[RawBatch]:
        next_row = 1
        for batch in pf.iter_batches(batch_size=batch_size):
            table = pa.Table.from_batches([batch])
            geometry = None
            if geom_col:
                geometry = arrow_storage(table.column(geom_col))
                table = table.drop_columns([geom_col])
            rows = np.arange(next_row, next_row + table.num_rows, dtype=np.int64)
            next_row += table.num_rows
            yield RawBatch(table, geometry, rows)

    src.reader = reader
    return src


# --- CSV ----------------------------------------------------------------------------------------------------


def _is_utf8(path: Path, start: int) -> bool:
    """Whether the file's bytes from ``start`` on are valid UTF-8 (read in blocks; memory stays small)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        fh.seek(start)
        try:
            while block := fh.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def sniff_csv(path: Path) -> tuple[str, str, list[str]]:
    """(encoding, delimiter, header) of a CSV: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's
    "Unicode text", tab-separated) or else Windows-1252 (any byte that is not UTF-8); the delimiter among
    ; , tab | that the header line uses most (Dutch Excel writes ';')."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
        head = head[:len(head) // 2 * 2]
    elif head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig" if _is_utf8(path, 0) else "cp1252"
    else:
        try:
            head.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the end of the sample is still UTF-8.
            encoding = "utf-8" if exc.start >= len(head) - 3 else "cp1252"
        if encoding == "utf-8" and not _is_utf8(path, 0):
            encoding = "cp1252"  # an accent after the first 64 kB that is not UTF-8
    text = head.decode(encoding, errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    if not first:
        raise IngestError(f"{path}: the file is empty (a CSV needs a header line)")
    delimiter = max(";,\t|", key=first.count)
    header = next(csv.reader([first], delimiter=delimiter))
    header = [h.strip() for h in header]
    if len(header) < 2 and delimiter not in first:
        raise IngestError(f"{path}: the header line has one column; separate columns with ';' or ','")
    return encoding, delimiter, header


def _open_csv(path: Path) -> VectorSource:
    encoding, delimiter, header = sniff_csv(path)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise IngestError(f"{path}: the header names column(s) {', '.join(dupes)} more than once")
    src = VectorSource(
        path=path, layer=None, format="csv", crs=None, columns=header,
        column_types={h: pa.string() for h in header}, has_geometry=False, total_rows=None, files=[path],
    )
    if encoding == "cp1252":
        src.notes.append(f"{path.name} is not UTF-8; read it as Windows-1252")
    elif encoding == "utf-16":
        src.notes.append(f"{path.name} is UTF-16 (Excel's 'Unicode text'); read it as such")
    separators = frozenset(delimiter + '" \t\r\n')

    def reader(batch_size: int) -> Iterator[RawBatch]:
        skipped: list[int] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            line = row.number
            if not set(row.text) - separators:  # a line of only separators: no row, no reject
                src.separator_lines += 1
                if line:
                    skipped.append(line - 1)
                return "skip"
            src.invalid_rows.append(
                (line - 1 if line else None,
                 f"has {row.actual_columns} values where the header has {row.expected_columns} columns")
            )
            if line:
                skipped.append(line - 1)
            return "skip"

        read_opts = pacsv.ReadOptions(
            encoding="utf8" if encoding.startswith("utf-8") else encoding, block_size=max(1 << 20, batch_size * 64),
            column_names=header, skip_rows=1, use_threads=False,
        )
        parse_opts = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid)
        convert_opts = pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True, null_values=[""],
            quoted_strings_can_be_null=True,
        )
        try:
            stream = pacsv.open_csv(path, read_options=read_opts, parse_options=parse_opts,
                                    convert_options=convert_opts)
        except pa.ArrowInvalid as exc:
            raise IngestError(f"{path}: cannot be read as CSV ({exc})") from exc
        next_row = 1
        while True:
            try:
                batch = stream.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise IngestError(f"{path}: reading stopped near row {next_row} ({exc})") from exc
            # Row numbers skip the records that were refused as malformed (they are rejects of their own).
            n = batch.num_rows
            if skipped:
                cand = np.arange(next_row, next_row + n + len(skipped), dtype=np.int64)
                rows = cand[~np.isin(cand, np.asarray(skipped, dtype=np.int64))][:n]
            else:
                rows = np.arange(next_row, next_row + n, dtype=np.int64)
            if n:
                next_row = int(rows[-1]) + 1
            if n and batch.num_columns and batch.column(0).null_count:
                blank = _all_null(batch)
                if blank.any():  # lines of only separators, as many as the header has columns
                    src.separator_lines += int(blank.sum())
                    batch, rows = batch.filter(pa.array(~blank)), rows[~blank]
            for start in range(0, batch.num_rows, batch_size):
                part = batch.slice(start, batch_size)
                yield RawBatch(pa.Table.from_batches([part]), None, rows[start:start + part.num_rows])

    src.reader = reader
    return src


def _all_null(batch: pa.RecordBatch) -> np.ndarray:
    """Rows whose every value is empty (a CSV line of only separators)."""
    out = np.ones(batch.num_rows, dtype=bool)
    for col in batch.columns:
        out &= np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)
        if not out.any():
            break
    return out
