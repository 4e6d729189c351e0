-- Ingest speed: three changes that make bulk loads cheaper for the server, with the same guarantees.
--
-- 1. A first load into an empty layer table writes no WAL when the server runs with wal_level = minimal.
--
-- PostgreSQL skips the WAL of a table whose storage was created in the current transaction (CREATE TABLE or
-- TRUNCATE) when wal_level is minimal, and syncs the file at COMMIT instead. The loader calls this function
-- before it writes into an empty layer table (the direct COPY, the plain INSERT from its stage, the first
-- hexagon derive): when the table is empty, no foreign key points at it and wal_level is minimal, the table
-- is truncated (it holds nothing, so nothing is lost) inside the loader's transaction, and the writes and
-- index builds that follow skip the WAL.
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

-- 2. The same CHECKs on identifiers, in a form the server evaluates ~4x faster.
--
-- PostgreSQL's regular expressions run a bounded repetition such as [0-9]{16} far slower than [0-9]+: on the
-- 786,906 demo addresses 'address_id ~ ''^[0-9]{16}$''' costs 0.65 s, 'octet_length(address_id) = 16 AND
-- address_id ~ ''^[0-9]+$''' 0.14 s (one backend, no parallel workers). A COPY pays that for every row. Both
-- accept exactly the same values: 16 bytes that are all ASCII digits are 16 digits, and NULL passes both.
-- tests/ingest/test_loader.py checks each pair on the same values.
ALTER TABLE twin.addresses
  DROP CONSTRAINT addresses_address_id_check,
  ADD CONSTRAINT addresses_address_id_check CHECK (octet_length(address_id) = 16 AND address_id ~ '^[0-9]+$');
ALTER TABLE twin.establishments
  DROP CONSTRAINT establishments_kvk_number_check,
  ADD CONSTRAINT establishments_kvk_number_check CHECK (octet_length(kvk_number) = 8 AND kvk_number ~ '^[0-9]+$'),
  DROP CONSTRAINT establishments_vestigingsnummer_check,
  ADD CONSTRAINT establishments_vestigingsnummer_check
    CHECK (octet_length(vestigingsnummer) = 12 AND vestigingsnummer ~ '^[0-9]+$'),
  DROP CONSTRAINT establishments_sbi_code_check,
  ADD CONSTRAINT establishments_sbi_code_check CHECK (octet_length(sbi_code) BETWEEN 2 AND 5 AND sbi_code ~ '^[0-9]+$');

-- 3. A bulk load into an empty table may also set aside its constraints that cost per row and add them back at
-- the end, like ingest_defer_indexes does with the other indexes (ingest_restore_indexes adds them back: it
-- runs every definition recorded in twin.ingest_deferred_indexes):
-- - the primary and unique keys that no foreign key depends on: a unique B-tree maintained row by row costs
--   the server more than building it once (786,906 addresses: the unique address_id key 0.75 s during the
--   COPY, 0.26 s built afterwards). The loader has refused duplicate keys before writing anything;
-- - the table's own foreign keys: kept, each row is checked by a trigger (281,983 inspections: 0.94 s of a
--   3.3 s INSERT); added back, the key is validated by one join. The loader has checked every reference
--   against the twin (and rejected the rows that failed).
-- If a duplicate or a dangling reference got through anyway, adding the constraint back fails and the whole
-- load rolls back. The loader calls this only when it writes into the empty table without ON CONFLICT (which
-- needs the key).
CREATE FUNCTION twin.ingest_defer_constraints(layer_table text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons', 'addresses') THEN
    RAISE EXCEPTION 'ingest_defer_constraints: % is not a layer table', layer_table;
  END IF;
  EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM twin.%I)', layer_table) INTO is_empty;
  IF NOT is_empty THEN
    RAISE EXCEPTION 'ingest_defer_constraints: twin.% is not empty', layer_table;
  END IF;
  FOR r IN
    SELECT k.conname AS name, pg_get_constraintdef(k.oid) AS def
    FROM pg_constraint k
    WHERE k.conrelid = format('twin.%I', layer_table)::regclass
      AND (k.contype = 'f' OR (k.contype IN ('p', 'u') AND NOT EXISTS (
             SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = k.conindid)))
  LOOP
    INSERT INTO twin.ingest_deferred_indexes
      VALUES (r.name, layer_table, format('ALTER TABLE twin.%I ADD CONSTRAINT %I %s', layer_table, r.name, r.def));
    EXECUTE format('ALTER TABLE twin.%I DROP CONSTRAINT %I', layer_table, r.name);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
REVOKE ALL ON FUNCTION twin.ingest_defer_constraints(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.ingest_defer_constraints(text) TO twin_writer;
