-- vth-twin data quality (issue #9): the measurements of the quality rules per ingest run, and the land of
-- the Netherlands cut into small pieces for the inside-the-Netherlands rule.

-- One row per rule per measurement. run_id is the latest successful ingest run of the rule's layer when it
-- was measured; input_runs the latest successful runs of the rule's layer and of every layer it reads, so a
-- report compares a measurement with the latest one made on other inputs (an earlier delivery).
CREATE TABLE twin.quality_results (
  id           bigserial PRIMARY KEY,
  rule_id      text NOT NULL,
  layer        text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('completeness', 'validity', 'consistency', 'linkage', 'timeliness',
                                             'signal')),
  run_id       bigint,
  input_runs   bigint[] NOT NULL DEFAULT '{}',
  source       text,
  checked      bigint NOT NULL CHECK (checked >= 0),
  failed       bigint NOT NULL CHECK (failed >= 0 AND failed <= checked),
  score        double precision NOT NULL CHECK (score BETWEEN 0 AND 1),
  examples     jsonb NOT NULL DEFAULT '[]'::jsonb,
  seconds      double precision,
  measured_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_results_rule_idx ON twin.quality_results (rule_id, measured_at DESC);
CREATE INDEX quality_results_layer_idx ON twin.quality_results (layer, measured_at DESC);

-- Written by the writer (after each ingest, 'twin quality report --record') and the owner. The API roles
-- read the counts; the examples (keys of failing records, also of restricted layers, measured as the
-- writer, who sees every row) only the admin role. The owner's default privileges granted SELECT on the
-- whole table to the reader and the API roles: replaced by column grants.
GRANT SELECT, INSERT ON twin.quality_results TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.quality_results_id_seq TO twin_writer;
REVOKE ALL ON twin.quality_results FROM twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector,
  twin_api_admin;
GRANT SELECT (id, rule_id, layer, kind, run_id, input_runs, source, checked, failed, score, seconds, measured_at)
  ON twin.quality_results TO twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector;
GRANT SELECT ON twin.quality_results TO twin_api_admin;

-- The municipalities cut by ST_Subdivide into pieces of at most 128 vertices: "does this geometry touch the
-- Netherlands" is then an index probe and a test against a small polygon (500,000 buildings in ~2 s instead of
-- ~8 s against the whole municipalities). Rebuilt by a trigger whenever the municipalities change.
CREATE TABLE twin.quality_land (
  id    serial PRIMARY KEY,
  geom  geometry(Polygon, 28992) NOT NULL
);
CREATE INDEX quality_land_geom_idx ON twin.quality_land USING gist (geom);
GRANT SELECT ON twin.quality_land TO twin_reader, twin_writer, twin_api_public, twin_api_advisor,
  twin_api_inspector, twin_api_admin;

-- SECURITY DEFINER (the writer does not own quality_land) with a fixed search_path: pg_catalog and the schema
-- PostGIS is installed in (public in the local cluster, perhaps another in an existing database).
DO $do$
DECLARE postgis_schema text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                                WHERE e.extname = 'postgis');
BEGIN
  EXECUTE format($f$
    CREATE FUNCTION twin.quality_refresh_land() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp AS $body$
    BEGIN
      DELETE FROM twin.quality_land;
      INSERT INTO twin.quality_land (geom)
        SELECT p FROM (SELECT (ST_Dump(ST_Subdivide(m.geom, 128))).geom AS p FROM twin.municipalities m) s
        WHERE GeometryType(p) = 'POLYGON';
      RETURN NULL;
    END $body$;
  $f$, postgis_schema);
END $do$;
REVOKE ALL ON FUNCTION twin.quality_refresh_land() FROM PUBLIC;
CREATE TRIGGER municipalities_quality_land AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON twin.municipalities
  FOR EACH STATEMENT EXECUTE FUNCTION twin.quality_refresh_land();
INSERT INTO twin.quality_land (geom)
  SELECT p FROM (SELECT (ST_Dump(ST_Subdivide(m.geom, 128))).geom AS p FROM twin.municipalities m) s
  WHERE GeometryType(p) = 'POLYGON';
