-- vth-twin: a version number per layer table (and the deposition raster's tables), raised by every statement
-- that changes the table, so that the API can cache what it computes from a table (vector tiles, the housing
-- analysis) and know for certain when the cache is stale:
-- a cached tile is keyed by the version it was cut from. Statement-level triggers (one row update per
-- INSERT, UPDATE, DELETE, COPY or TRUNCATE statement, not per row), SECURITY DEFINER because the writer and
-- the API roles may not write twin.layer_versions themselves. The version row stays locked until the writing
-- transaction ends, so two transactions writing the same table at once take turns (readers never wait).
-- A new layer table needs the trigger too
-- (tests/api/test_tile_cache.py checks every table of the layer and coverage registries).
CREATE TABLE twin.layer_versions (
  table_name  text PRIMARY KEY,
  version     bigint NOT NULL DEFAULT 1,
  changed_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON twin.layer_versions TO twin_reader, twin_writer, twin_api_public, twin_api_advisor,
  twin_api_inspector, twin_api_admin;

CREATE FUNCTION twin.layer_version_bump() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO twin.layer_versions AS v (table_name) VALUES (TG_TABLE_NAME)
  ON CONFLICT (table_name) DO UPDATE SET version = v.version + 1, changed_at = now();
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION twin.layer_version_bump() FROM PUBLIC;

DO $do$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                           'housing_sites', 'buildings', 'addresses', 'deposition_hexagons',
                           'nitrogen_deposition', 'nitrogen_deposition_years'] LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON twin.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION twin.layer_version_bump()', t || '_version', t);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON twin.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION twin.layer_version_bump()', t || '_version_truncate', t);
    INSERT INTO twin.layer_versions (table_name) VALUES (t);
  END LOOP;
END $do$;
