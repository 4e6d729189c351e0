-- KPI runs as of a date (issues 20 and 22; docs/monitoring.md "As of a date"): `twin monitor compute --as-of DATE
-- [--known-on TIMESTAMP]` computes from the history (the register tables as valid on the reference date and as
-- registered at the moment known_on), and every run records both times: as_of (valid time, the reference date,
-- already there) and known_on (registration time: what the twin knew; for a run on the current state the moment
-- it read the data). `/monitoring/kpis/{id}?geldigOp=&beschikbaarOp=` chooses a run by them.
ALTER TABLE twin.kpi_runs ADD COLUMN IF NOT EXISTS known_on timestamptz;
ALTER TABLE twin.kpi_runs ADD COLUMN IF NOT EXISTS from_history boolean NOT NULL DEFAULT false;
UPDATE twin.kpi_runs SET known_on = computed_at WHERE known_on IS NULL;
ALTER TABLE twin.kpi_runs ALTER COLUMN known_on SET DEFAULT now(), ALTER COLUMN known_on SET NOT NULL;
CREATE INDEX IF NOT EXISTS kpi_runs_as_of_idx ON twin.kpi_runs (as_of, computed_at);
COMMENT ON COLUMN twin.kpi_runs.as_of IS 'reference date (geldigOp): the day the figures describe';
COMMENT ON COLUMN twin.kpi_runs.known_on IS 'registration time (beschikbaarOp): what the twin knew when the run read its data';
COMMENT ON COLUMN twin.kpi_runs.from_history IS 'computed from the history (history.<table>_at(as_of, known_on)), not the current state';

-- The writer computes the KPIs; as of a date it reads the history (read only: the versions are written by the
-- triggers of migration 0015 alone). Inspections' versions have forced row-level security: the writer reads all,
-- as it reads all of twin.inspections.
GRANT USAGE ON SCHEMA history TO twin_writer;
DO $do$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT table_name FROM history.layers LOOP
    EXECUTE format('GRANT SELECT ON history.%I, history.%I TO twin_writer', l.table_name, l.table_name || '_versions');
    EXECUTE format('GRANT EXECUTE ON FUNCTION history.%I(date, timestamptz) TO twin_writer', l.table_name || '_at');
  END LOOP;
END $do$;
GRANT EXECUTE ON FUNCTION history.valid_on(), history.known_on() TO twin_writer;
DROP POLICY IF EXISTS inspections_writer_read ON history.inspections_versions;
CREATE POLICY inspections_writer_read ON history.inspections_versions FOR SELECT TO twin_writer USING (true);
