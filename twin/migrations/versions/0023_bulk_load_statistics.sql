-- Statistics after a bulk load, and a history reference check that does not depend on them (issue 24:
-- `twin ingest-all` of the national demo).
--
-- The national permits' first load (939,925 rows) spent more than 10 minutes in one INSERT. The time was
-- in the permits' history trigger, in its check that every permit version refers to a current establishment
-- version (0015/0017 refcheck): the establishments had just been loaded, so history.establishments_versions
-- had no column statistics, and the planner probed it for each of the 939,925 permits through the gist
-- index of its EXCLUDE constraint. That index leads with the key's hash (0017); a probe by the key alone
-- cannot use the leading column and reads the whole index (perf: detoast_attr/gbt_var_decompress under
-- gistgettuple). Two changes, each enough on its own:
--   * the check also compares the key's hash, so that any index the planner picks is probed by its leading
--     column (the btree on the key is unaffected);
--   * twin.ingest_analyze: the loader gathers the statistics of a layer table and its version table after a
--     bulk write (50,000 rows or more), as the next loads, the quality measurement and the kept analyses plan
--     their queries right after it and autovacuum comes too late for them.

CREATE FUNCTION twin.ingest_analyze(layer_table text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM twin.layer_versions WHERE table_name = layer_table)
     OR to_regclass(format('twin.%I', layer_table)) IS NULL THEN
    RAISE EXCEPTION 'ingest_analyze: % is not a layer table', layer_table;
  END IF;
  EXECUTE format('ANALYZE twin.%I', layer_table);
  IF to_regclass(format('history.%I', layer_table || '_versions')) IS NOT NULL THEN
    EXECUTE format('ANALYZE history.%I', layer_table || '_versions');
  END IF;
END $$;
REVOKE ALL ON FUNCTION twin.ingest_analyze(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.ingest_analyze(text) TO twin_writer;

-- history.install with the hashed reference check (0017's function, this one condition changed), then the
-- triggers of the two layers that check references made again.
DO $patch$
DECLARE
  src text := pg_get_functiondef('history.install(text)'::regprocedure);
  old text := 'WHERE e.establishment_id = n.establishment_id AND';
  patched text;
BEGIN
  patched := replace(src, old, 'WHERE hashtextextended(e.establishment_id::text, 0) = '
                     'hashtextextended(n.establishment_id::text, 0) AND e.establishment_id = n.establishment_id AND');
  IF patched = src THEN
    RAISE EXCEPTION '0023: history.install has no reference check to change (%)', old;
  END IF;
  EXECUTE patched;
  PERFORM history.install('permits');
  PERFORM history.install('inspections');
END $patch$;
