"""Staging and merging, shared by the vector load and the hexagon derivation: the TEMP table
``ingest_stage`` merged into a layer by its natural key, and, for a bulk write into an empty layer, its
indexes, keys and foreign keys set aside and added back before COMMIT."""

from __future__ import annotations

import psycopg
from psycopg import sql

from ingest.runs import RunResult
from layers.registry import SCHEMA, LayerSpec

# From this many rows on, a load into an empty table sets the secondary indexes aside and rebuilds them
# at the end, and the keys and foreign keys with them (set_aside): below it the rebuild costs more than it
# saves.
DEFER_INDEXES_MIN_ROWS = 50_000


def table_ident(table: str) -> sql.Composed:
    """``twin.<table>`` as a quoted identifier."""
    return sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(table))


def set_aside(conn: psycopg.Connection, table: str) -> int:
    """Before a bulk write into an empty layer table that needs no ON CONFLICT: set its secondary indexes aside
    (twin.ingest_defer_indexes), and the keys and foreign keys that the loader checks itself
    (twin.ingest_defer_constraints, migration 0008: 786,906 addresses 4.51-4.66 -> 4.21-4.34 s wall, 2 runs
    each; 500,000 buildings the same, 2.95-3.00 against 2.92-3.05 s). twin.ingest_restore_indexes adds them
    all back before COMMIT. Returns how many were set aside."""
    row = conn.execute("SELECT twin.ingest_defer_indexes(%(t)s) + twin.ingest_defer_constraints(%(t)s)",
                       {"t": table}).fetchone()
    return int(row[0]) if row else 0


def _stage_sql(cols: list[str], fill_geometry_from: LayerSpec | None) -> sql.Composable:
    """The staged rows as the merge reads them: ``ingest_stage``, or with the geometry of rows without one taken
    from ``fill_geometry_from`` by the key of that layer (a derived table with the same column names)."""
    if fill_geometry_from is None or "geom" not in cols:
        return sql.SQL("ingest_stage")
    k = sql.Identifier(fill_geometry_from.key)
    return sql.SQL("(SELECT {cols}, coalesce(s.geom, r.geom) AS geom FROM ingest_stage s LEFT JOIN {t} r "
                   "ON s.geom IS NULL AND r.{k} = s.{k}) ingest_stage").format(
        cols=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in cols if c != "geom"),
        t=table_ident(fill_geometry_from.table), k=k)


def merge_staged(conn: psycopg.Connection, spec: LayerSpec, cols: list[str], result: RunResult,
                 keep: list[str] | None = None, *, into_empty: bool = False,
                 update_fields: tuple[str, ...] | None = None,
                 fill_geometry_from: LayerSpec | None = None) -> None:
    """Merge the TEMP table ``ingest_stage`` into a layer by its natural key: insert new keys, update rows
    whose content differs (IS DISTINCT FROM: unchanged rows are not rewritten and keep their run), and in
    replace mode delete the keys the stage does not hold (except ``keep``, the keys of rejected rows).
    ``enrich`` mode inserts new keys whole but updates in existing rows only ``update_fields`` (default: every
    staged column but the geometry), and only where the staged value is not NULL: a 3D BAG adds heights to
    the BAG's buildings without touching their BAG attributes or footprints.
    ``into_empty``: the layer is empty (and locked), so every staged row is new: a plain INSERT, which needs
    no unique key (a bulk load may have set it aside). ``fill_geometry_from``: a staged row without a geometry
    takes that of its row in this layer (an inspection the location of its establishment), joined here, in every
    mode. Sets rows_inserted/updated/deleted of ``result``."""
    key = sql.Identifier(spec.key)
    target = table_ident(spec.table)
    stage = _stage_sql(cols, fill_geometry_from)
    if into_empty:
        cur = conn.execute(sql.SQL("INSERT INTO {t} ({cols}, run_id) SELECT {cols}, %s FROM {stage}").format(
            t=target, cols=sql.SQL(", ").join(map(sql.Identifier, cols)), stage=stage), (result.run_id,))
        result.rows_inserted, result.rows_updated, result.rows_deleted = cur.rowcount, 0, 0
        return
    if result.mode == "replace":
        cur = conn.execute(sql.SQL(
            "DELETE FROM {t} t WHERE NOT EXISTS (SELECT 1 FROM ingest_stage s WHERE s.{k} = t.{k}) "
            "AND NOT (t.{k} = ANY(%s))").format(t=target, k=key), (keep or [],))
        result.rows_deleted = cur.rowcount
    non_key = [c for c in cols if c != spec.key]
    ident = [sql.Identifier(c) for c in cols]
    if result.mode == "enrich":
        _enrich(conn, target, key, cols, [c for c in non_key if c != "geom" and
                                          (update_fields is None or c in update_fields)], result, stage)
        return
    stmt = sql.SQL(
        """WITH m AS (
             INSERT INTO {t} AS t ({cols}, run_id)
             SELECT {cols}, %(run)s FROM {stage}
             ON CONFLICT ({k}) DO UPDATE SET {sets}, run_id = excluded.run_id, loaded_at = now()
             WHERE ({old}) IS DISTINCT FROM ({new})
             RETURNING (xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m"""
    ).format(
        t=target, cols=sql.SQL(", ").join(ident), k=key, stage=stage,
        sets=sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in non_key),
        old=_columns("t", non_key), new=_columns("excluded", non_key),
    )
    row = conn.execute(stmt, {"run": result.run_id}).fetchone()
    assert row is not None
    result.rows_inserted, result.rows_updated = int(row[0]), int(row[1])


def _columns(alias: str, cols: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c)) for c in cols)


def changing_rows(spec: LayerSpec, cols: list[str], mode: str, keep: list[str] | None = None,
                  fill_geometry_from: LayerSpec | None = None) -> sql.Composed | None:
    """A SELECT of the records (as they are, every column) that :func:`merge_staged` (not ``into_empty``) with the
    same arguments will update or delete, by the same conditions, for the quality measurement over changed rows
    (twin.quality.delta); None for ``enrich``, whose updates it does not list. One more column,
    ``quality_changed``: the names of the columns an update changes (NULL for a record to delete)."""
    if mode == "enrich":
        return None
    key = sql.Identifier(spec.key)
    non_key = [c for c in cols if c != spec.key]
    changed = sql.SQL(", ").join(
        sql.SQL("CASE WHEN t.{c} IS DISTINCT FROM s.{c} THEN {name} END").format(
            c=sql.Identifier(c), name=sql.Literal(c)) for c in non_key)
    out = sql.SQL("SELECT t.*, array_remove(ARRAY[{changed}]::text[], NULL) AS quality_changed "
                  "FROM {t} t JOIN {stage} s ON s.{k} = t.{k} WHERE ({old}) IS DISTINCT FROM ({new})").format(
        changed=changed, t=table_ident(spec.table), stage=_stage_sql(cols, fill_geometry_from), k=key,
        old=_columns("t", non_key), new=_columns("s", non_key))
    if mode == "replace":
        out = sql.SQL("{} UNION ALL SELECT t.*, NULL::text[] FROM {} t WHERE NOT EXISTS (SELECT 1 FROM ingest_stage "
                      "s WHERE s.{k} = t.{k}) AND NOT (t.{k} = ANY({keep}))").format(
            out, table_ident(spec.table), k=key, keep=sql.Literal(keep or []))
    return out


def _enrich(conn: psycopg.Connection, target: sql.Composed, key: sql.Identifier, cols: list[str],
            update: list[str], result: RunResult, stage: sql.Composable) -> None:
    """The ``enrich`` merge: insert new keys; in existing rows set ``update`` where the stage has a value."""
    action: sql.Composable
    if update:
        new = [sql.SQL("coalesce(excluded.{c}, t.{c})").format(c=sql.Identifier(c)) for c in update]
        action = sql.SQL("DO UPDATE SET {sets}, run_id = excluded.run_id, loaded_at = now() "
                         "WHERE ({old}) IS DISTINCT FROM ({new})").format(
            sets=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c), v)
                                    for c, v in zip(update, new, strict=True)),
            old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in update),
            new=sql.SQL(", ").join(new))
    else:
        action = sql.SQL("DO NOTHING")
    stmt = sql.SQL(
        """WITH m AS (
             INSERT INTO {t} AS t ({cols}, run_id)
             SELECT {cols}, %(run)s FROM {stage}
             ON CONFLICT ({k}) {action}
             RETURNING (xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m"""
    ).format(t=target, cols=sql.SQL(", ").join(map(sql.Identifier, cols)), k=key, action=action, stage=stage)
    row = conn.execute(stmt, {"run": result.run_id}).fetchone()
    assert row is not None
    result.rows_inserted, result.rows_updated = int(row[0]), int(row[1])
