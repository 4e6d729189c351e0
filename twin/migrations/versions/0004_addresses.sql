-- BAG addresses (verblijfsobjecten with their nummeraanduiding) as a public layer, and the end date of an
-- establishment (beeindiging). Both feed the data-quality rules of issue #9: an establishment's point is
-- checked against the address that matches its postcode and house number, and permits that outlive the
-- establishment they belong to are signalled.

CREATE TABLE twin.addresses (
  id                     bigserial PRIMARY KEY,
  address_id             text NOT NULL UNIQUE CHECK (address_id ~ '^[0-9]{16}$'),
  street                 text,
  house_number           integer NOT NULL CHECK (house_number > 0),
  house_letter           text CHECK (house_letter ~ '^[A-Za-z]$'),
  house_number_addition  text,
  postcode               text CHECK (postcode ~ '^[1-9][0-9]{3}[A-Z]{2}$'),
  city                   text,
  municipality_code      text,
  geom                   geometry(Point, 28992) NOT NULL,
  run_id                 bigint,
  loaded_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_geom_idx ON twin.addresses USING gist (geom);
CREATE INDEX addresses_postcode_number_idx ON twin.addresses (postcode, house_number);

-- A public layer like the buildings: the owner's default privileges already give SELECT to twin_reader and
-- the API roles; the writer loads it. No row-level security (BAG addresses are open data).
GRANT SELECT ON twin.addresses TO twin_reader, twin_writer,
  twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT INSERT, UPDATE, DELETE ON twin.addresses TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.addresses_id_seq TO twin_writer;

-- The end date of an establishment (CIM-VTH-Flo VESTIGING beeindiging).
ALTER TABLE twin.establishments ADD COLUMN ended_on date;
ALTER TABLE twin.establishments ADD CONSTRAINT establishments_ended_after_start
  CHECK (ended_on IS NULL OR started_on IS NULL OR ended_on >= started_on);

-- The deferred-index load may set the indexes of the new layer table aside as well (0001 lists the tables).
CREATE OR REPLACE FUNCTION twin.ingest_defer_indexes(layer_table text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons', 'addresses') THEN
    RAISE EXCEPTION 'ingest_defer_indexes: % is not a layer table', layer_table;
  END IF;
  EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM twin.%I)', layer_table) INTO is_empty;
  IF NOT is_empty THEN
    RAISE EXCEPTION 'ingest_defer_indexes: twin.% is not empty', layer_table;
  END IF;
  FOR r IN
    SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = format('twin.%I', layer_table)::regclass
      AND NOT i.indisprimary AND NOT i.indisunique
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  LOOP
    INSERT INTO twin.ingest_deferred_indexes VALUES (r.name, layer_table, r.def);
    EXECUTE format('DROP INDEX twin.%I', r.name);
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
