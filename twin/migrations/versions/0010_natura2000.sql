-- Natura 2000 areas (PDOK/RVO) as a public layer, and the habitat map as BIJ12 delivers it: every complex part
-- of a polygon (Habtype1..n, Perc1..n, Kwal1..n) kept in natura2000_habitats.habitat_types, and no area name
-- required (the BIJ12 map has none: natura2000_areas names the area).

ALTER TABLE twin.natura2000_habitats
  ALTER COLUMN area_name DROP NOT NULL,
  ADD COLUMN IF NOT EXISTS habitat_types text;

CREATE TABLE twin.natura2000_areas (
  id          bigserial PRIMARY KEY,
  area_id     text NOT NULL UNIQUE,
  name        text NOT NULL,
  number      integer NOT NULL CHECK (number > 0),
  status      text,
  protection  text,
  sitecode_h  text,
  sitecode_v  text,
  geom        geometry(MultiPolygon, 28992) NOT NULL,
  run_id      bigint,
  loaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX natura2000_areas_geom_idx ON twin.natura2000_areas USING gist (geom);
CREATE INDEX natura2000_areas_number_idx ON twin.natura2000_areas (number);

-- A public layer like the addresses (0004): readable by the reader and the API roles, loaded by the writer, no
-- row-level security (open data).
GRANT SELECT ON twin.natura2000_areas TO twin_reader, twin_writer,
  twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT INSERT, UPDATE, DELETE ON twin.natura2000_areas TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.natura2000_areas_id_seq TO twin_writer;

-- Its version for the API's caches (0007).
CREATE TRIGGER natura2000_areas_version AFTER INSERT OR UPDATE OR DELETE ON twin.natura2000_areas
  FOR EACH STATEMENT EXECUTE FUNCTION twin.layer_version_bump();
CREATE TRIGGER natura2000_areas_version_truncate AFTER TRUNCATE ON twin.natura2000_areas
  FOR EACH STATEMENT EXECUTE FUNCTION twin.layer_version_bump();
INSERT INTO twin.layer_versions (table_name) VALUES ('natura2000_areas') ON CONFLICT DO NOTHING;

-- The parts of each habitat polygon as rows: habitat_types is written 'H4030 70% G; ZGH3130 30% (search area)'.
CREATE VIEW twin.natura2000_habitat_types AS
SELECT h.habitat_id, p.part::integer AS part, m[1] AS habitat_type, m[2]::double precision AS share,
       m[3] AS quality, m[1] LIKE 'ZG%' AS search_area
FROM twin.natura2000_habitats h,
     regexp_split_to_table(h.habitat_types, '; ') WITH ORDINALITY AS p(txt, part),
     regexp_match(p.txt, '^(\S+)(?: ([0-9.]+)%)?(?: ([^ (]+))?(?: \(search area\))?$') AS m
WHERE h.habitat_types IS NOT NULL;
GRANT SELECT ON twin.natura2000_habitat_types TO twin_reader, twin_writer,
  twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;

-- The loader's helpers accept the new layer table (0004 and 0008 list the layer tables).
CREATE OR REPLACE FUNCTION twin.ingest_defer_indexes(layer_table text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons', 'addresses', 'natura2000_areas') THEN
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

CREATE OR REPLACE FUNCTION twin.ingest_fresh_table(layer_table text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons', 'addresses', 'natura2000_areas') THEN
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

CREATE OR REPLACE FUNCTION twin.ingest_defer_constraints(layer_table text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons', 'addresses', 'natura2000_areas') THEN
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
