-- twin.kpi_values partitioned by run (issue 22): a `twin monitor compute` of the medium twin stores 2.2 million
-- values. Inserted into one table they paid, per row, the foreign-key check against twin.kpi_runs, the row-level
-- security check and an insertion into an index over every earlier run (13 s of a 60 s run). Now each run is
-- written by COPY into a table of its own (twin.kpi_values_new_partition, as the owner), indexed once and
-- attached as the partition of its run id (twin.kpi_values_attach_partition; the foreign key is then checked in
-- one query). Reads name a run, so they read one partition; old runs can be dropped whole. Rows inserted into
-- twin.kpi_values directly (runs written by hand) land in the default partition, as before.
ALTER TABLE twin.kpi_values RENAME TO kpi_values_0013;
ALTER INDEX twin.kpi_values_series_idx RENAME TO kpi_values_0013_series_idx;

CREATE TABLE twin.kpi_values (
  run_id           bigint NOT NULL REFERENCES twin.kpi_runs (id) ON DELETE CASCADE,
  kpi              text NOT NULL,
  period_type      text NOT NULL CHECK (period_type IN ('month', 'quarter', 'year')),
  period_start     date NOT NULL,
  period_end       date NOT NULL,
  dimension        text NOT NULL,
  dimension_value  text NOT NULL,
  scope_org        text,
  numerator        double precision,
  denominator      double precision,
  value            double precision,
  ci_low           double precision,
  ci_high          double precision,
  audience         text NOT NULL CHECK (audience IN ('public', 'org', 'admin')),
  change_z         double precision,
  change_q         double precision,
  change           text CHECK (change IN ('up', 'down'))
) PARTITION BY LIST (run_id);
CREATE INDEX kpi_values_series_idx ON twin.kpi_values (run_id, kpi, period_type, dimension, period_start);
CREATE TABLE twin.kpi_values_default PARTITION OF twin.kpi_values DEFAULT;

DO $$
DECLARE r bigint;
BEGIN
  FOR r IN SELECT DISTINCT run_id FROM twin.kpi_values_0013 ORDER BY 1 LOOP
    EXECUTE format('CREATE TABLE twin.%I PARTITION OF twin.kpi_values FOR VALUES IN (%s)', 'kpi_values_run_' || r, r);
  END LOOP;
END $$;
INSERT INTO twin.kpi_values SELECT * FROM twin.kpi_values_0013;

-- The same access as 0013: written by the writer, read by the API roles under row-level security (the policies of
-- the partitioned table apply to every read through it; the partitions themselves are granted to no one).
REVOKE ALL ON twin.kpi_values FROM twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT SELECT ON twin.kpi_values TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON twin.kpi_values TO twin_writer;
ALTER TABLE twin.kpi_values ENABLE ROW LEVEL SECURITY;
CREATE POLICY kpi_values_writer ON twin.kpi_values FOR ALL TO twin_writer USING (true) WITH CHECK (true);
CREATE POLICY kpi_values_admin ON twin.kpi_values FOR SELECT TO twin_api_admin USING (true);
CREATE POLICY kpi_values_inspector ON twin.kpi_values FOR SELECT TO twin_api_inspector
  USING (audience = 'public' OR (audience = 'org' AND scope_org = twin.request_org()));
CREATE POLICY kpi_values_advisor ON twin.kpi_values FOR SELECT TO twin_api_advisor USING (audience = 'public');
CREATE POLICY kpi_values_public ON twin.kpi_values FOR SELECT TO twin_api_public USING (audience = 'public');

-- The BI view of 0021, unchanged, now over the partitioned table (CREATE OR REPLACE keeps its grants).
CREATE OR REPLACE VIEW bi.fact_kpi_values_v1 WITH (security_barrier) AS
  SELECT v.run_id, r.as_of, r.computed_at, r.data_version, v.kpi, v.period_type, v.period_start, v.period_end,
         v.dimension, v.dimension_value, v.scope_org, v.numerator, v.denominator, v.value, v.ci_low, v.ci_high,
         v.audience, v.change_z, v.change_q, v.change
  FROM twin.kpi_values v JOIN twin.kpi_runs r ON r.id = v.run_id
  WHERE v.run_id = (SELECT c.id FROM twin.kpi_runs c WHERE NOT c.from_history
                    ORDER BY c.known_on DESC, c.id DESC LIMIT 1)
    AND (v.audience = 'public' OR (v.audience = 'org' AND v.scope_org = bi.viewer_org()));
DROP TABLE twin.kpi_values_0013;

-- A new run's table, for the writer to COPY into: the columns and checks of twin.kpi_values and its run id.
CREATE FUNCTION twin.kpi_values_new_partition(run bigint) RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  part text := 'kpi_values_run_' || run;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM twin.kpi_runs WHERE id = run) THEN
    RAISE EXCEPTION 'no KPI run %', run USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF to_regclass(format('twin.%I', part)) IS NOT NULL OR EXISTS (SELECT 1 FROM twin.kpi_values WHERE run_id = run) THEN
    RAISE EXCEPTION 'KPI run % already has values', run USING ERRCODE = 'unique_violation';
  END IF;
  EXECUTE format('CREATE TABLE twin.%I (LIKE twin.kpi_values INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                 'CHECK (run_id = %s))', part, run);
  EXECUTE format('GRANT INSERT ON twin.%I TO twin_writer', part);
  RETURN format('twin.%I', part)::regclass;
END $$;

-- The run's table indexed and attached as its partition; the writer's direct access ends here.
CREATE FUNCTION twin.kpi_values_attach_partition(run bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  part text := 'kpi_values_run_' || run;
BEGIN
  IF to_regclass(format('twin.%I', part)) IS NULL OR EXISTS (
      SELECT 1 FROM pg_inherits WHERE inhrelid = format('twin.%I', part)::regclass) THEN
    RAISE EXCEPTION 'no unattached table of KPI run %', run;
  END IF;
  EXECUTE format('REVOKE ALL ON twin.%I FROM twin_writer', part);
  EXECUTE format('CREATE INDEX ON twin.%I (run_id, kpi, period_type, dimension, period_start)', part);
  EXECUTE format('ALTER TABLE twin.kpi_values ATTACH PARTITION twin.%I FOR VALUES IN (%s)', part, run);
  EXECUTE format('ANALYZE twin.%I', part);  -- the API reads it next; autovacuum would come later
END $$;
REVOKE ALL ON FUNCTION twin.kpi_values_new_partition(bigint), twin.kpi_values_attach_partition(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.kpi_values_new_partition(bigint), twin.kpi_values_attach_partition(bigint)
  TO twin_writer;
