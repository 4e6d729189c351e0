"""PostgreSQL's binary COPY format, built from Arrow tables.

The server parses binary COPY ~30% faster than CSV with hex geometry (500,000 buildings: 1.0 s against
1.4 s), and in a large load the server is the bottleneck. Rows are assembled with Arrow's element-wise
binary join (no Python loop per row). Column types without an encoder here keep the CSV path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from ingest.validation import bool_mask

PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
PGCOPY_TRAILER = b"\xff\xff"
_FIXED = {"integer": ">i4", "bigint": ">i8", "smallint": ">i2", "double precision": ">f8", "real": ">f4",
          "boolean": "u1", "date": ">i4"}
BINARY_TYPES = frozenset({*_FIXED, "text", "geometry"})
_DAYS_1970_TO_2000 = 10957
_EMPTY = pa.scalar(b"", pa.binary())


def _binary_field(arr: pa.Array, pg_type: str) -> tuple[pa.Array, pa.Array]:
    """(4-byte big-endian length prefix, payload) of one column for binary COPY; a null is length -1 and no
    payload. ``geometry`` arrives and is sent as EWKB bytes."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    valid = bool_mask(pc.is_valid(arr))
    if pg_type in _FIXED:
        width = np.dtype(_FIXED[pg_type]).itemsize
        if pg_type == "boolean":
            values = bool_mask(arr).astype(np.uint8)
        elif pg_type == "date":
            days = pc.fill_null(pc.cast(arr, pa.int32()), 0).to_numpy(zero_copy_only=False)
            values = (days.astype(np.int64) - _DAYS_1970_TO_2000).astype(_FIXED[pg_type])
        else:
            zero = 0.0 if pg_type in ("double precision", "real") else 0
            values = pc.fill_null(arr, zero).to_numpy(zero_copy_only=False).astype(_FIXED[pg_type])
        fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(values.tobytes())])
        payload = pc.if_else(pa.array(valid), fixed.cast(pa.binary()), _EMPTY)
        lengths = np.full(n, width, dtype=np.int64)
    else:  # text (its UTF-8 bytes) and geometry (EWKB bytes, never hex: binary COPY takes the bytes)
        payload = pc.fill_null(arr.cast(pa.binary()), _EMPTY)
        lengths = pc.binary_length(payload).to_numpy(zero_copy_only=False).astype(np.int64)
    prefix = np.where(valid, lengths, -1).astype(">i4")
    prefix_arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), n, [None, pa.py_buffer(prefix.tobytes())])
    return prefix_arr.cast(pa.binary()), payload


def binary_copy_rows(table: pa.Table, pg_types: list[str]) -> memoryview:
    """The rows of ``table`` (columns in COPY order, of the given PostgreSQL types) as binary COPY tuples."""
    n = table.num_rows
    header = pa.scalar(len(pg_types).to_bytes(2, "big"), pa.binary())
    parts: list[Any] = [header]
    for column, pg_type in zip(table.columns, pg_types, strict=True):
        parts.extend(_binary_field(column, pg_type))
    rows = pc.binary_join_element_wise(*parts, _EMPTY)
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    if pa.types.is_large_binary(rows.type):
        rows = rows.cast(pa.binary())
    bufs = rows.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=rows.offset * 4)
    return memoryview(bufs[2])[int(offsets[0]):int(offsets[-1])]


def column_types(conn: psycopg.Connection, relation: str, columns: list[str]) -> list[str]:
    """The PostgreSQL type names (format_type, no typmod) of a relation's columns, in the given order."""
    found: dict[str, str] = dict(conn.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped", (relation,)).fetchall())
    return [str(found.get(c, "")) for c in columns]
