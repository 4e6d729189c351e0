-- twin.kpi_values partitioned by run (issue 22): a `twin monitor compute` of the medium twin stores 2.2 million
-- values. Inserted into one table they paid, per row, the foreign-key check against twin.kpi_runs, the row-level
-- security check and an insertion into an index over every earlier run (13 s of a 60 s run). Now each run is
-- written by COPY into a table of its own (twin.kpi_values_new_partition, as the owner), indexed once and
-- attached as the partition of its run id (twin.kpi_values_attach_partition; the foreign key is then checked in
-- one query). Reads name a run, so they read one partition; old runs can be dropped whole. Rows inserted into
-- twin.kpi_values directly (runs written by hand) land in the default partition, as before.
ALTER TABLE twin.kpi_values RENAME TO kpi_values_0013;
ALTER INDEX twin.kpi_values_series_idx RENAME TO kpi_values_0013_series_idx;

-- the columns and checks of 0013's table, partitioned (the foreign key is not copied by LIKE)
CREATE TABLE twin.kpi_values (LIKE twin.kpi_values_0013 INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
  PARTITION BY LIST (run_id);
ALTER TABLE twin.kpi_values ADD FOREIGN KEY (run_id) REFERENCES twin.kpi_runs (id) ON DELETE CASCADE;
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

-- The access of 0013 (0022_kpi_values_access.sql), the BI view of 0021 rebound to this table and the old table
-- dropped follow in 0022_kpi_values_by_run.py.

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
