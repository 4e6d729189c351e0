-- vth-twin initial schema. All geometries in EPSG:28992 (RD New, metres) with GiST indexes.
-- Roles: twin_owner (owns everything, runs migrations), twin_writer (ingest), twin_reader (API,
-- read-only), twin_auditor (appends to the audit log only).

CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS postgis_raster;

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twin_writer') THEN CREATE ROLE twin_writer LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twin_reader') THEN CREATE ROLE twin_reader LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twin_auditor') THEN CREATE ROLE twin_auditor LOGIN; END IF;
END$$;
ALTER ROLE twin_reader SET default_transaction_read_only = on;

CREATE SCHEMA IF NOT EXISTS twin;

-- Provenance -----------------------------------------------------------------------------------------
CREATE TABLE twin.ingest_runs (
  id            bigserial PRIMARY KEY,
  layer         text NOT NULL,
  source        text NOT NULL,
  checksum      text,
  mode          text NOT NULL DEFAULT 'upsert' CHECK (mode IN ('upsert', 'replace')),
  status        text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'unchanged', 'refused', 'failed')),
  rows_read     integer NOT NULL DEFAULT 0,
  rows_inserted integer NOT NULL DEFAULT 0,
  rows_updated  integer NOT NULL DEFAULT 0,
  rows_unchanged integer NOT NULL DEFAULT 0,
  rows_deleted  integer NOT NULL DEFAULT 0,
  rows_rejected integer NOT NULL DEFAULT 0,
  warnings      integer NOT NULL DEFAULT 0,
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  timings       jsonb NOT NULL DEFAULT '{}'::jsonb,
  options       jsonb NOT NULL DEFAULT '{}'::jsonb,
  message       text
);
CREATE INDEX ingest_runs_layer_idx ON twin.ingest_runs (layer, started_at DESC);

CREATE TABLE twin.ingest_rejects (
  id          bigserial PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES twin.ingest_runs (id) ON DELETE CASCADE,
  source      text NOT NULL,
  row_number  integer,
  field       text,
  value       text,
  reason      text NOT NULL,
  severity    text NOT NULL DEFAULT 'error' CHECK (severity IN ('error', 'warning'))
);
CREATE INDEX ingest_rejects_run_idx ON twin.ingest_rejects (run_id);

-- Every loaded row carries the run that last wrote it (column run_id of the layer tables). It has no
-- foreign key on purpose: runs are never deleted, and the per-row check of a foreign key costs as much as
-- the rest of a bulk load (500,000 points: ~3 s of ~4.5 s; docs/ingest.md).

-- Bulk loads into an EMPTY layer table may set its secondary indexes aside for the length of the load's
-- transaction and rebuild them before COMMIT: a sorted GiST build is several times faster than inserting
-- row by row (docs/ingest.md has the figures). The writer does not own the tables, so two SECURITY
-- DEFINER functions do it: only for layer tables, only when the table is empty, only indexes that back no
-- constraint, and the rebuild runs exactly the definitions that were dropped. Being DDL inside the load's
-- transaction, a rollback (refused, failed or killed load) restores the indexes by itself.
CREATE TABLE twin.ingest_deferred_indexes (
  index_name  text PRIMARY KEY,
  table_name  text NOT NULL,
  definition  text NOT NULL
);
CREATE FUNCTION twin.ingest_defer_indexes(layer_table text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
  is_empty boolean;
BEGIN
  IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections', 'natura2000_habitats',
                         'housing_sites', 'buildings', 'deposition_hexagons') THEN
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
CREATE FUNCTION twin.ingest_restore_indexes(layer_table text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
BEGIN
  FOR r IN DELETE FROM twin.ingest_deferred_indexes WHERE table_name = layer_table RETURNING definition LOOP
    EXECUTE r.definition;
    n := n + 1;
  END LOOP;
  RETURN n;
END $$;
REVOKE ALL ON FUNCTION twin.ingest_defer_indexes(text), twin.ingest_restore_indexes(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.ingest_defer_indexes(text), twin.ingest_restore_indexes(text) TO twin_writer;

-- Layers ---------------------------------------------------------------------------------------------
CREATE TABLE twin.municipalities (
  id            bigserial PRIMARY KEY,
  code          text NOT NULL UNIQUE,
  name          text NOT NULL,
  province_name text,
  geom          geometry(MultiPolygon, 28992) NOT NULL,
  run_id        bigint,
  loaded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX municipalities_geom_idx ON twin.municipalities USING gist (geom);

CREATE TABLE twin.establishments (
  id                        bigserial PRIMARY KEY,
  establishment_id          text NOT NULL UNIQUE,
  name                      text NOT NULL,
  kvk_number                text CHECK (kvk_number ~ '^[0-9]{8}$'),
  vestigingsnummer          text CHECK (vestigingsnummer ~ '^[0-9]{12}$'),
  sbi_code                  text NOT NULL CHECK (sbi_code ~ '^[0-9]{2,5}$'),
  sbi_description           text,
  legal_form                text,
  sole_proprietor           boolean NOT NULL DEFAULT false,
  street                    text,
  house_number              text,
  postcode                  text,
  city                      text,
  municipality_code         text,
  activities                text,
  environmental_category    text CHECK (environmental_category IN
                            ('1', '2', '3.1', '3.2', '4.1', '4.2', '5.1', '5.2', '5.3', '6')),
  activiteitenbesluit_type  text CHECK (activiteitenbesluit_type IN ('A', 'B', 'C')),
  brzo                      boolean NOT NULL DEFAULT false,
  visit_frequency_years     integer CHECK (visit_frequency_years IN (1, 3, 5, 10)),
  org_code                  text,
  started_on                date,
  geom                      geometry(Point, 28992) NOT NULL,
  run_id                    bigint,
  loaded_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX establishments_geom_idx ON twin.establishments USING gist (geom);
CREATE INDEX establishments_kvk_idx ON twin.establishments (kvk_number);
CREATE INDEX establishments_sbi_idx ON twin.establishments (sbi_code);
CREATE INDEX establishments_municipality_idx ON twin.establishments (municipality_code);
CREATE INDEX establishments_org_idx ON twin.establishments (org_code);

CREATE TABLE twin.permits (
  id                 bigserial PRIMARY KEY,
  permit_id          text NOT NULL UNIQUE,
  establishment_id   text NOT NULL REFERENCES twin.establishments (establishment_id)
                     ON UPDATE CASCADE ON DELETE CASCADE,
  permit_type        text NOT NULL,
  procedure          text,
  activities         text,
  status             text NOT NULL,
  applied_on         date,
  decided_on         date,
  valid_from         date,
  valid_until        date,
  nh3_kg_per_year    double precision CHECK (nh3_kg_per_year >= 0),
  nox_kg_per_year    double precision CHECK (nox_kg_per_year >= 0),
  org_code           text,
  geom               geometry(Geometry, 28992) NOT NULL,
  run_id             bigint,
  loaded_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (decided_on IS NULL OR applied_on IS NULL OR decided_on >= applied_on),
  CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from)
);
CREATE INDEX permits_geom_idx ON twin.permits USING gist (geom);
CREATE INDEX permits_establishment_idx ON twin.permits (establishment_id);
CREATE INDEX permits_decided_idx ON twin.permits (decided_on);

CREATE TABLE twin.inspections (
  id                 bigserial PRIMARY KEY,
  inspection_id      text NOT NULL UNIQUE,
  establishment_id   text NOT NULL REFERENCES twin.establishments (establishment_id)
                     ON UPDATE CASCADE ON DELETE CASCADE,
  inspected_on       date NOT NULL,
  kind               text NOT NULL,
  result             text NOT NULL,
  gedrag             text CHECK (gedrag IN ('A', 'B', 'C', 'D')),
  gevolg             text CHECK (gevolg IN ('1', '2', '3', '4')),
  lhs_cell           text CHECK (lhs_cell ~ '^[A-D][1-4]$'),
  violation          text,
  intervention       text,
  repair_deadline    date,
  follow_up_status   text,
  inspector          text,
  org_code           text,
  geom               geometry(Point, 28992) NOT NULL,
  run_id             bigint,
  loaded_at          timestamptz NOT NULL DEFAULT now(),
  CHECK (lhs_cell IS NULL OR gedrag IS NULL OR gevolg IS NULL OR lhs_cell = gedrag || gevolg)
);
CREATE INDEX inspections_geom_idx ON twin.inspections USING gist (geom);
CREATE INDEX inspections_establishment_idx ON twin.inspections (establishment_id, inspected_on DESC);
CREATE INDEX inspections_date_idx ON twin.inspections (inspected_on);
CREATE INDEX inspections_org_idx ON twin.inspections (org_code);

CREATE TABLE twin.natura2000_habitats (
  id              bigserial PRIMARY KEY,
  habitat_id      text NOT NULL UNIQUE,
  area_name       text NOT NULL,
  area_number     integer,
  protection      text,
  habitat_type    text NOT NULL,
  habitat_share   double precision CHECK (habitat_share BETWEEN 0 AND 100),
  quality         text,
  kdw             double precision CHECK (kdw > 0),
  geom            geometry(MultiPolygon, 28992) NOT NULL,
  run_id          bigint,
  loaded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX natura2000_habitats_geom_idx ON twin.natura2000_habitats USING gist (geom);
CREATE INDEX natura2000_habitats_type_idx ON twin.natura2000_habitats (habitat_type);

CREATE TABLE twin.housing_sites (
  id                 bigserial PRIMARY KEY,
  site_id            text NOT NULL UNIQUE,
  name               text NOT NULL,
  municipality_code  text,
  municipality_name  text,
  planned_dwellings  integer NOT NULL CHECK (planned_dwellings > 0),
  phase              text,
  planned_year       integer CHECK (planned_year BETWEEN 1900 AND 2100),
  geom               geometry(MultiPolygon, 28992) NOT NULL,
  run_id             bigint,
  loaded_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX housing_sites_geom_idx ON twin.housing_sites USING gist (geom);

CREATE TABLE twin.buildings (
  id                 bigserial PRIMARY KEY,
  building_id        text NOT NULL UNIQUE,
  construction_year  integer,
  status             text,
  use                text,
  height_m           double precision CHECK (height_m >= 0),
  geom               geometry(Polygon, 28992) NOT NULL,
  run_id             bigint,
  loaded_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX buildings_geom_idx ON twin.buildings USING gist (geom);

CREATE TABLE twin.deposition_hexagons (
  id               bigserial PRIMARY KEY,
  hexagon_id       text NOT NULL UNIQUE,
  resolution       text NOT NULL CHECK (resolution IN ('1ha', 'national')),
  receptor_id      bigint NOT NULL,
  year             integer NOT NULL,
  deposition       double precision,
  lowest_kdw       double precision,
  exceedance       double precision,
  overloaded       boolean,
  approaching      boolean,
  geom             geometry(Polygon, 28992) NOT NULL,
  run_id           bigint,
  loaded_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (resolution, receptor_id, year)
);
CREATE INDEX deposition_hexagons_geom_idx ON twin.deposition_hexagons USING gist (geom);
CREATE INDEX deposition_hexagons_year_idx ON twin.deposition_hexagons (resolution, year);

-- Coverage: nitrogen deposition, one row per tile per year (or scenario) -----------------------------
CREATE TABLE twin.nitrogen_deposition (
  rid        bigserial PRIMARY KEY,
  year       integer NOT NULL,
  label      text NOT NULL,
  rast       raster NOT NULL,
  run_id     bigint,
  loaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nitrogen_deposition_rast_idx ON twin.nitrogen_deposition USING gist (ST_ConvexHull(rast));
CREATE INDEX nitrogen_deposition_year_idx ON twin.nitrogen_deposition (year);

-- Overviews for small-scale maps: the same tiles (same tile size in pixels) of the raster averaged over
-- 4 x 4 and 16 x 16 cells (nodata-aware), written by the same load.
CREATE TABLE twin.nitrogen_deposition_o4 (
  rid        bigserial PRIMARY KEY,
  year       integer NOT NULL,
  label      text NOT NULL,
  rast       raster NOT NULL,
  run_id     bigint,
  loaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nitrogen_deposition_o4_rast_idx ON twin.nitrogen_deposition_o4 USING gist (ST_ConvexHull(rast));
CREATE INDEX nitrogen_deposition_o4_year_idx ON twin.nitrogen_deposition_o4 (year);
CREATE TABLE twin.nitrogen_deposition_o16 (
  rid        bigserial PRIMARY KEY,
  year       integer NOT NULL,
  label      text NOT NULL,
  rast       raster NOT NULL,
  run_id     bigint,
  loaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nitrogen_deposition_o16_rast_idx ON twin.nitrogen_deposition_o16 USING gist (ST_ConvexHull(rast));
CREATE INDEX nitrogen_deposition_o16_year_idx ON twin.nitrogen_deposition_o16 (year);

CREATE TABLE twin.nitrogen_deposition_years (
  year        integer PRIMARY KEY,
  label       text NOT NULL,
  unit        text NOT NULL DEFAULT 'mol N/ha/yr',
  pixel_size  double precision,
  nodata      double precision,
  source      text,
  run_id      bigint,
  checksum    text,     -- SHA-256 of the stored grid: a reload of the same data changes nothing
  tile_size   integer   -- pixels per tile side
);

-- Supervision planning: coordinator overrides of the priority ranking ----------------------------------
CREATE TABLE twin.priority_overrides (
  id                bigserial PRIMARY KEY,
  establishment_id  text NOT NULL REFERENCES twin.establishments (establishment_id) ON DELETE CASCADE,
  rank              integer NOT NULL CHECK (rank > 0),
  reason            text NOT NULL CHECK (length(trim(reason)) > 0),
  author            text NOT NULL DEFAULT current_user,
  created_at        timestamptz NOT NULL DEFAULT now(),
  active            boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX priority_overrides_active_idx ON twin.priority_overrides (establishment_id) WHERE active;

-- Access: API keys and the audit log -----------------------------------------------------------------
CREATE TABLE twin.api_keys (
  id          bigserial PRIMARY KEY,
  key_id      text NOT NULL UNIQUE,
  key_hash    text NOT NULL,
  role        text NOT NULL CHECK (role IN ('public', 'advisor', 'inspector', 'admin')),
  org_code    text,
  label       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz
);

CREATE TABLE twin.audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  principal   text NOT NULL,
  role        text NOT NULL,
  org_code    text,
  endpoint    text NOT NULL,
  parameters  jsonb NOT NULL DEFAULT '{}'::jsonb,
  records     integer NOT NULL DEFAULT 0
);
CREATE INDEX audit_log_at_idx ON twin.audit_log (at DESC);

-- Grants ---------------------------------------------------------------------------------------------
GRANT USAGE ON SCHEMA twin TO twin_writer, twin_reader, twin_auditor;
GRANT SELECT ON ALL TABLES IN SCHEMA twin TO twin_reader, twin_writer;
REVOKE SELECT ON twin.api_keys, twin.audit_log FROM twin_writer;
GRANT INSERT, UPDATE, DELETE ON
  twin.ingest_runs, twin.ingest_rejects, twin.municipalities, twin.establishments, twin.permits,
  twin.inspections, twin.natura2000_habitats, twin.housing_sites, twin.buildings,
  twin.deposition_hexagons, twin.nitrogen_deposition, twin.nitrogen_deposition_years,
  twin.nitrogen_deposition_o4, twin.nitrogen_deposition_o16
  TO twin_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA twin TO twin_writer;
-- Coordinators record priority overrides through the CLI, which connects as the writer.
GRANT INSERT, UPDATE ON twin.priority_overrides TO twin_writer;
GRANT INSERT ON twin.audit_log TO twin_auditor;
GRANT USAGE ON SEQUENCE twin.audit_log_id_seq TO twin_auditor;
ALTER DEFAULT PRIVILEGES IN SCHEMA twin GRANT SELECT ON TABLES TO twin_reader;
