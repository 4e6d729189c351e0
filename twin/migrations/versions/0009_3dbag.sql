-- 3D BAG attributes of a building (the height above ground is height_m, already there). The table's grants
-- (twin_reader SELECT, twin_writer INSERT/UPDATE/DELETE) cover new columns.
ALTER TABLE twin.buildings
  ADD COLUMN IF NOT EXISTS roof_type text,
  ADD COLUMN IF NOT EXISTS volume_m3 double precision CHECK (volume_m3 >= 0);

-- enrich: insert new keys, update existing rows only where the file has a value (the 3D BAG's default).
ALTER TABLE twin.ingest_runs DROP CONSTRAINT IF EXISTS ingest_runs_mode_check,
  ADD CONSTRAINT ingest_runs_mode_check CHECK (mode IN ('upsert', 'replace', 'enrich'));
