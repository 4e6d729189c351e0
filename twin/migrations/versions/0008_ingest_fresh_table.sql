-- A first load into an empty layer table writes no WAL when the server runs with wal_level = minimal.
--
-- PostgreSQL skips the WAL of a table whose storage was created in the current transaction (CREATE TABLE or
-- TRUNCATE) when wal_level is minimal, and syncs the file at COMMIT instead. The loader copies into an empty
-- layer table directly (no staging table), so it calls this function first: when the table is empty, no
-- foreign key points at it and wal_level is minimal, the table is truncated (it holds nothing, so nothing is
-- lost) inside the loader's transaction and the COPY and the index builds that follow skip the WAL.
-- 500,000 buildings: COPY 0.55 s instead of 0.93 s, the three index builds 0.93 s instead of 1.12 s.
-- The cost: TRUNCATE holds an ACCESS EXCLUSIVE lock until COMMIT, so readers of the (empty) table wait for
-- the first load instead of seeing no rows. With another wal_level the function does nothing.
-- SECURITY DEFINER: the writer may not TRUNCATE layer tables itself.
CREATE FUNCTION twin.ingest_fresh_table(layer_table text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons', 'addresses') THEN
    RAISE EXCEPTION 'ingest_fresh_table: % is not a layer table', layer_table;
  END IF;
  IF current_setting('wal_level') <> 'minimal' THEN
    RETURN false;
  END IF;
  -- TRUNCATE refuses a table that a foreign key references (even when both are empty).
  IF EXISTS (SELECT 1 FROM pg_constraint
             WHERE contype = 'f' AND confrelid = format('twin.%I', layer_table)::regclass) THEN
    RETURN false;
  END IF;
  EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM twin.%I)', layer_table) INTO is_empty;
  IF NOT is_empty THEN
    RETURN false;
  END IF;
  EXECUTE format('TRUNCATE ONLY twin.%I', layer_table);
  RETURN true;
END $$;
REVOKE ALL ON FUNCTION twin.ingest_fresh_table(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.ingest_fresh_table(text) TO twin_writer;
