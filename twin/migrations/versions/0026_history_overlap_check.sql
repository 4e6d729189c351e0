-- vth-twin history: the versions of one key may not overlap in both valid and registration time, checked by a
-- statement trigger on each version table instead of an EXCLUDE constraint (issue 24: `twin ingest-all` of the
-- national demo under 5 minutes). Same rule, same error (SQLSTATE 23P01 exclusion_violation, the constraint's
-- name), for every writer of a version table (the history triggers and the owner alike).
--
-- Why: a first load of a register layer writes all its versions at once (0017 history.set_aside/restore), and
-- adding the EXCLUDE constraint back is PostgreSQL's slowest step of the whole national load. Its GiST index
-- (btree_gist int8 and text, two ranges) has no sorted build in PostgreSQL 15, so it is built by inserting row
-- after row, and then every row is checked against it: 1,683,885 inspections 44 s alone (49 s in `ingest-all`),
-- 939,925 permits 29 s, 300,000 establishments 7 s; 85 of the 96 s that history.restore took. The trigger asks
-- only about the keys the statement wrote, through the btree on the key (or, on a first load, a hash join of
-- the version table with itself): a few seconds for the national inspections, milliseconds for a delivery.
--
-- Concurrency: the constraint also made a second transaction that wrote an overlapping version of the same key
-- wait for the first. The history triggers write a key's versions while holding the row lock (or the unique
-- index entry) of that key in the layer table, so their writes of one key never run side by side; only the
-- owner, writing versions by hand in two sessions at once, could now get past the check.
--
-- The reference check of the permits' and inspections' triggers (0015/0023) now looks up each establishment once
-- instead of once per new row (1,683,885 inspections: 300,000 lookups instead of 1.7 million; 17 s in
-- `ingest-all` for both layers before).

CREATE FUNCTION history.no_overlap() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  k text := TG_ARGV[0];
  bad text;
BEGIN
  -- Every pair of versions of a key the statement wrote; a pair that was there before cannot overlap (the check
  -- held when it was written), so this is what the constraint checked for the same rows.
  EXECUTE format('SELECT a.%1$I::text FROM %2$s a JOIN %2$s b ON b.%1$I = a.%1$I AND b.version_id > a.version_id '
                 'AND b.valid && a.valid AND b.registered && a.registered '
                 'WHERE a.%1$I IN (SELECT n.%1$I FROM new_versions n) LIMIT 1', k, TG_RELID::regclass) INTO bad;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'conflicting key value violates exclusion constraint "%"', TG_TABLE_NAME || '_no_overlap'
      USING ERRCODE = 'exclusion_violation', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
            CONSTRAINT = TG_TABLE_NAME || '_no_overlap',
            DETAIL = format('Two versions of %s %s overlap in both valid and registration time.', k, bad);
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION history.no_overlap() FROM PUBLIC;

-- history.install: a new version table gets the triggers instead of the constraint, an existing one is no longer
-- given the constraint back, and the triggers are made (again) on every call; the reference check reads each
-- establishment once. 0017's function with these lines changed, as 0023 changed it.
DO $patch$
DECLARE
  src text := pg_get_functiondef('history.install(text)'::regprocedure);
  patched text := src;
  edits text[][] := ARRAY[
    ARRAY['''ADD COLUMN ended_run_id bigint, ADD CONSTRAINT %I %s'', v, v || ''_no_overlap'', excl);',
          '''ADD COLUMN ended_run_id bigint'', v);'],
    ARRAY['AND conname = v || ''_no_overlap'' AND pg_get_constraintdef(oid) ~ ''hashtextextended'') THEN',
          'AND conname = v || ''_no_overlap'' AND pg_get_constraintdef(oid) ~ ''hashtextextended'') AND false THEN'],
    ARRAY['SELECT 1 FROM new_rows n WHERE NOT EXISTS (',
          'SELECT 1 FROM (SELECT DISTINCT n0.establishment_id FROM new_rows n0) n WHERE NOT EXISTS ('],
    ARRAY['  EXECUTE format(''REVOKE ALL ON FUNCTION history.%I(), history.%I(), history.%I() FROM PUBLIC'',',
          '  EXECUTE format(''ALTER TABLE history.%I DROP CONSTRAINT IF EXISTS %I'', v, v || ''_no_overlap'');
  EXECUTE format(''DROP TRIGGER IF EXISTS %I ON history.%I'', v || ''_no_overlap_ins'', v);
  EXECUTE format(''DROP TRIGGER IF EXISTS %I ON history.%I'', v || ''_no_overlap_upd'', v);
  EXECUTE format(''CREATE TRIGGER %I AFTER INSERT ON history.%I REFERENCING NEW TABLE AS new_versions ''
                 ''FOR EACH STATEMENT EXECUTE FUNCTION history.no_overlap(%L)'', v || ''_no_overlap_ins'', v, k);
  EXECUTE format(''CREATE TRIGGER %I AFTER UPDATE ON history.%I REFERENCING NEW TABLE AS new_versions ''
                 ''FOR EACH STATEMENT EXECUTE FUNCTION history.no_overlap(%L)'', v || ''_no_overlap_upd'', v, k);
  EXECUTE format(''REVOKE ALL ON FUNCTION history.%I(), history.%I(), history.%I() FROM PUBLIC'',']];
  i int;
BEGIN
  FOR i IN 1 .. array_length(edits, 1) LOOP
    IF position(edits[i][1] IN patched) = 0 THEN
      RAISE EXCEPTION '0026: history.install lacks %', edits[i][1];
    END IF;
    patched := replace(patched, edits[i][1], edits[i][2]);
  END LOOP;
  EXECUTE patched;
END $patch$;

DO $do$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT * FROM history.layers ORDER BY table_name = 'establishments' DESC, table_name LOOP
    PERFORM history.install(l.table_name);
  END LOOP;
END $do$;
