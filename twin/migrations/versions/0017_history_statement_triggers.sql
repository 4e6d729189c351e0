-- vth-twin history, cheaper to keep (issue 20; docs/history.md "Trigger design"). Migration 0015 kept the
-- version tables with statement-level AFTER triggers over transition tables already; what made a load slow was
-- the work per version row, not the number of trigger calls (bench/history.py, medium twin):
--   * the EXCLUDE constraint on (key text, valid, registered): btree_gist's text opclass costs ~0.2 ms per
--     inserted version (a first load of 50,000 establishments spent 11 of its 13 s of history there). It now
--     leads with a 64-bit hash of the key (btree_gist int8, cheap to compare and well spread) and keeps the key
--     itself as the second column, so that it forbids exactly what it forbade: two versions of the same key
--     overlapping in both valid and registration time (equal keys have equal hashes; a hash collision of two
--     keys only makes the index look at the text too).
--   * the index on upper(registered), which the triggers used to find the versions they had just ended: the
--     versions ended by a statement are now collected by the UPDATE's RETURNING (by version_id), so that index
--     is gone: one index less to keep for every version row. history.prune reads the table once a night.
--   * trigger calls with empty transition tables (an upsert fires the INSERT and the UPDATE trigger both, a
--     re-delivery mostly only updates) now return at once instead of planning and scanning the history.
-- Same semantics, same functions and views; history.install keeps its signature (a later migration that adds
-- a column to a register table calls it again).

-- A first load (the version table of the layer still empty, 10,000 new rows or more) writes its versions
-- the way the loader writes an empty layer (ingest/merge.py set_aside): the version table's keys, EXCLUDE
-- constraint and indexes set aside, the rows inserted, and all of them built again before the statement
-- ends, which checks the constraint on every row as before. 50,000 establishments: the history's part of the
-- load ~4-6 s (row by row) -> ~2.5 s. The table is locked for the rest of the load (nobody can read an empty
-- history anyway).
CREATE OR REPLACE FUNCTION history.set_aside(v text) RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  redo text[] := '{}';
  r record;
BEGIN
  FOR r IN
    SELECT c.conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
    WHERE c.conrelid = format('history.%I', v)::regclass AND c.contype IN ('p', 'u', 'x') ORDER BY c.contype
  LOOP
    redo := redo || format('ALTER TABLE history.%I ADD CONSTRAINT %I %s', v, r.conname, r.def);
    EXECUTE format('ALTER TABLE history.%I DROP CONSTRAINT %I', v, r.conname);
  END LOOP;
  FOR r IN
    SELECT pg_get_indexdef(i.indexrelid) AS def, i.indexrelid::regclass::text AS idx FROM pg_index i
    WHERE i.indrelid = format('history.%I', v)::regclass
  LOOP
    redo := redo || r.def;
    EXECUTE 'DROP INDEX ' || r.idx;
  END LOOP;
  RETURN redo;
END $$;
CREATE OR REPLACE FUNCTION history.restore(redo text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q text;
BEGIN
  FOREACH q IN ARRAY redo LOOP
    EXECUTE q;
  END LOOP;
END $$;
REVOKE ALL ON FUNCTION history.set_aside(text), history.restore(text[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION history.install(tbl text) RETURNS void LANGUAGE plpgsql AS $inst$
DECLARE
  v text := tbl || '_versions';
  k text;
  s text;
  r record;
  excl text;
  cols text;     -- every column of the layer table
  ncols text;    -- n.<col>
  hcols text;    -- h.<col>
  cmp_o text;    -- the content (no id, run_id, loaded_at) of o
  cmp_n text;
  refcheck text := '';
BEGIN
  SELECT key, coalesce(start_expr, 'NULL::date') INTO k, s FROM history.layers WHERE table_name = tbl;
  IF k IS NULL THEN
    RAISE EXCEPTION 'history.install: % is not in history.layers', tbl;
  END IF;
  excl := format('EXCLUDE USING gist (hashtextextended(%1$I::text, 0) WITH =, %1$I WITH =, valid WITH &&, '
                 'registered WITH &&)', k);
  IF to_regclass(format('history.%I', v)) IS NULL THEN
    EXECUTE format('CREATE TABLE history.%I (LIKE twin.%I)', v, tbl);
    EXECUTE format('ALTER TABLE history.%I ADD COLUMN version_id bigserial PRIMARY KEY, '
                   'ADD COLUMN valid daterange NOT NULL, ADD COLUMN registered tstzrange NOT NULL, '
                   'ADD COLUMN ended_run_id bigint, ADD CONSTRAINT %I %s', v, v || '_no_overlap', excl);
    EXECUTE format('CREATE INDEX %I ON history.%I (%I)', v || '_key_idx', v, k);
    -- The secondary indexes of the current table (geometry, references, dates), so that the same queries
    -- find the same paths on the as-of functions.
    FOR r IN
      SELECT substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$') AS how
      FROM pg_index i WHERE i.indrelid = format('twin.%I', tbl)::regclass AND NOT i.indisprimary AND NOT i.indisunique
    LOOP
      EXECUTE format('CREATE INDEX ON history.%I', v) || r.how;
    END LOOP;
  ELSIF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = format('history.%I', v)::regclass
                      AND conname = v || '_no_overlap' AND pg_get_constraintdef(oid) ~ 'hashtextextended') THEN
    -- A version table of migration 0015: the cheaper constraint (built once here), no index on upper(registered).
    EXECUTE format('ALTER TABLE history.%I DROP CONSTRAINT IF EXISTS %I, ADD CONSTRAINT %I %s',
                   v, v || '_no_overlap', v || '_no_overlap', excl);
    EXECUTE format('DROP INDEX IF EXISTS history.%I', v || '_ended_idx');
  END IF;
  FOR r IN
    SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS typ
    FROM pg_attribute a
    WHERE a.attrelid = format('twin.%I', tbl)::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND NOT EXISTS (SELECT 1 FROM pg_attribute b WHERE b.attrelid = format('history.%I', v)::regclass
                      AND b.attname = a.attname AND NOT b.attisdropped)
  LOOP
    EXECUTE format('ALTER TABLE history.%I ADD COLUMN %I %s', v, r.attname, r.typ);
  END LOOP;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
         string_agg('n.' || quote_ident(attname), ', ' ORDER BY attnum),
         string_agg('h.' || quote_ident(attname), ', ' ORDER BY attnum),
         string_agg('o.' || quote_ident(attname), ', ' ORDER BY attnum)
           FILTER (WHERE attname NOT IN ('id', 'run_id', 'loaded_at')),
         string_agg('n.' || quote_ident(attname), ', ' ORDER BY attnum)
           FILTER (WHERE attname NOT IN ('id', 'run_id', 'loaded_at'))
    INTO cols, ncols, hcols, cmp_o, cmp_n
    FROM pg_attribute WHERE attrelid = format('twin.%I', tbl)::regclass AND attnum > 0 AND NOT attisdropped;

  EXECUTE format('CREATE OR REPLACE VIEW history.%I WITH (security_invoker = true) AS SELECT %s FROM history.%I '
                 'WHERE valid @> history.valid_on() AND registered @> history.known_on()', tbl, cols, v);
  EXECUTE format('GRANT SELECT ON history.%I, history.%I TO twin_api_public, twin_api_advisor, '
                 'twin_api_inspector, twin_api_admin', tbl, v);
  -- The same as a function of both dates, which the planner inlines with the dates as constants, written
  -- as comparisons of the bounds (it misjudged `valid @> d` at 7 of 252,892 rows and chose a bitmap scan of
  -- the whole history for a page of 100). twin/history.py points the register tables of a query at it.
  EXECUTE format('CREATE OR REPLACE FUNCTION history.%I(valid_on date, known_on timestamptz) '
                 'RETURNS SETOF history.%I LANGUAGE sql STABLE AS $q$ SELECT %s FROM history.%I '
                 'WHERE lower(valid) <= valid_on AND (upper_inf(valid) OR upper(valid) > valid_on) '
                 'AND lower(registered) <= known_on AND (upper_inf(registered) OR upper(registered) > known_on) $q$',
                 tbl || '_at', tbl, cols, v);
  EXECUTE format('GRANT EXECUTE ON FUNCTION history.%I(date, timestamptz) TO twin_api_public, twin_api_advisor, '
                 'twin_api_inspector, twin_api_admin', tbl || '_at');

  -- A permit's or inspection's version refers to an establishment version registered at the same time
  -- (PostgreSQL 15 has no temporal foreign keys). Not for cascaded writes (trigger depth > 1), whose
  -- establishment is written by the same statement.
  IF tbl IN ('permits', 'inspections') THEN
    refcheck := $chk$
  IF pg_trigger_depth() = 1 AND EXISTS (
      SELECT 1 FROM new_rows n WHERE NOT EXISTS (
        SELECT 1 FROM history.establishments_versions e
        WHERE e.establishment_id = n.establishment_id AND upper_inf(e.registered) AND upper_inf(e.valid))) THEN
    RAISE EXCEPTION 'history: a % version refers to an establishment without a current version', TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation';
  END IF;$chk$;
  END IF;

  -- New keys: one version from the source's start date (not after the reference date), never overlapping an
  -- ended earlier life of the same key (looked up for the keys of this statement only).
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION history.%1$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $b$
DECLARE
  t timestamptz := clock_timestamp();
  d date := history.load_valid_from();
  redo text[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
    RETURN NULL;
  END IF;
  %7$s
  IF NOT EXISTS (SELECT 1 FROM history.%2$I) AND (SELECT count(*) FROM new_rows) >= 10000 THEN
    redo := history.set_aside(%2$L);
  END IF;
  INSERT INTO history.%2$I (%3$s, valid, registered)
  SELECT %4$s, daterange(greatest(least(%5$s, d), p.last_end), NULL), tstzrange(t, NULL)
  FROM new_rows n LEFT JOIN (
    SELECT h.%6$I AS k, max(upper(h.valid)) AS last_end FROM history.%2$I h
    WHERE upper_inf(h.registered) AND NOT upper_inf(h.valid) AND h.%6$I IN (SELECT n2.%6$I FROM new_rows n2)
    GROUP BY h.%6$I) p ON p.k = n.%6$I;
  IF redo IS NOT NULL THEN
    PERFORM history.restore(redo);
  END IF;
  RETURN NULL;
END $b$$f$, tbl || '_history_ins', v, cols, ncols, s, k, refcheck);

  -- Changed rows: the current version's registration ends; unless a correction, a version of the old content
  -- up to the reference date is registered, and the new content is valid from it (a correction keeps the
  -- validity). Rows whose content did not change (only run_id or loaded_at) make no version. The versions
  -- ended here are found again by their version_id (RETURNING), not by an index on the end of registration.
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION history.%1$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $b$
DECLARE
  t timestamptz := clock_timestamp();
  d date := history.load_valid_from();
  run bigint := history.load_run();
  corr boolean := history.load_correction();
  ended bigint[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
    RETURN NULL;
  END IF;
  %9$s
  WITH e AS (
    UPDATE history.%2$I h SET registered = tstzrange(lower(h.registered), t), ended_run_id = run
    FROM old_rows o JOIN new_rows n USING (id)
    WHERE h.%6$I = o.%6$I AND upper_inf(h.registered) AND upper_inf(h.valid) AND (%7$s) IS DISTINCT FROM (%8$s)
    RETURNING h.version_id)
  SELECT array_agg(version_id) INTO ended FROM e;
  IF ended IS NULL THEN
    RETURN NULL;
  END IF;
  IF NOT corr THEN
    INSERT INTO history.%2$I (%3$s, valid, registered, ended_run_id)
    SELECT %10$s, daterange(lower(h.valid), d), tstzrange(t, NULL), run
    FROM history.%2$I h WHERE h.version_id = ANY (ended) AND lower(h.valid) < d;
  END IF;
  INSERT INTO history.%2$I (%3$s, valid, registered)
  SELECT %4$s, CASE WHEN h.valid IS NULL THEN daterange(least(%5$s, d), NULL)
                    WHEN corr OR lower(h.valid) >= d THEN h.valid ELSE daterange(d, NULL) END, tstzrange(t, NULL)
  FROM old_rows o JOIN new_rows n USING (id)
  LEFT JOIN (SELECT h.%6$I, h.valid FROM history.%2$I h WHERE h.version_id = ANY (ended)) h ON h.%6$I = o.%6$I
  WHERE (%7$s) IS DISTINCT FROM (%8$s);
  RETURN NULL;
END $b$$f$, tbl || '_history_upd', v, cols, ncols, s, k, cmp_o, cmp_n, refcheck, hcols);

  -- Deleted rows (a record missing from a replace delivery, a cascade, TRUNCATE): ended, not deleted. The
  -- registration of the current version ends, and unless a correction the old content stays registered as
  -- valid up to the reference date.
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION history.%1$I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $b$
DECLARE
  t timestamptz := clock_timestamp();
  d date := history.load_valid_from();
  run bigint := history.load_run();
  ended bigint[];
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    WITH e AS (
      UPDATE history.%2$I h SET registered = tstzrange(lower(h.registered), t), ended_run_id = run
      WHERE upper_inf(h.registered) AND upper_inf(h.valid)
      RETURNING h.version_id)
    SELECT array_agg(version_id) INTO ended FROM e;
  ELSE
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
      RETURN NULL;
    END IF;
    WITH e AS (
      UPDATE history.%2$I h SET registered = tstzrange(lower(h.registered), t), ended_run_id = run
      FROM old_rows o WHERE h.%4$I = o.%4$I AND upper_inf(h.registered) AND upper_inf(h.valid)
      RETURNING h.version_id)
    SELECT array_agg(version_id) INTO ended FROM e;
  END IF;
  IF ended IS NOT NULL AND NOT history.load_correction() THEN
    INSERT INTO history.%2$I (%3$s, valid, registered, ended_run_id)
    SELECT %5$s, daterange(lower(h.valid), d), tstzrange(t, NULL), run
    FROM history.%2$I h WHERE h.version_id = ANY (ended) AND lower(h.valid) < d;
  END IF;
  RETURN NULL;
END $b$$f$, tbl || '_history_del', v, cols, k, hcols);

  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_ins', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_upd', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_del', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', tbl || '_history_trunc', tbl);
  EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON twin.%I REFERENCING NEW TABLE AS new_rows '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_ins', tbl, tbl || '_history_ins');
  EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON twin.%I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_upd', tbl, tbl || '_history_upd');
  EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON twin.%I REFERENCING OLD TABLE AS old_rows '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_del', tbl, tbl || '_history_del');
  EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON twin.%I '
                 'FOR EACH STATEMENT EXECUTE FUNCTION history.%I()', tbl || '_history_trunc', tbl, tbl || '_history_del');
  EXECUTE format('REVOKE ALL ON FUNCTION history.%I(), history.%I(), history.%I() FROM PUBLIC',
                 tbl || '_history_ins', tbl || '_history_upd', tbl || '_history_del');
END $inst$;
REVOKE ALL ON FUNCTION history.install(text) FROM PUBLIC;

DO $do$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT * FROM history.layers ORDER BY table_name = 'establishments' DESC, table_name LOOP
    PERFORM history.install(l.table_name);
  END LOOP;
END $do$;
