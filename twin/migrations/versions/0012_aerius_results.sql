-- AERIUS receptor results (IMAER GML from AERIUS Calculator / Connect), 'twin ingest aerius-results FILE':
-- one row per receptor, calculation year, situation, result type and substance, joined to the deposition
-- hexagons on receptor_id (deposition_hexagons.receptor_id at resolution '1ha').
CREATE TABLE twin.aerius_results (
  id                   bigserial PRIMARY KEY,
  receptor_id          bigint NOT NULL CHECK (receptor_id BETWEEN 1 AND 9462981),  -- 1,529 x 6,189 receptors
  year                 integer NOT NULL,
  situation_type       text NOT NULL CHECK (situation_type IN ('REFERENCE', 'PROPOSED', 'TEMPORARY',
                         'OFF_SITE_REDUCTION', 'COMBINATION_REFERENCE', 'COMBINATION_PROPOSED', 'NETTING',
                         'UNSPECIFIED')),
  situation            text NOT NULL,  -- the situation's name, else the file name
  result_type          text NOT NULL CHECK (result_type IN ('DEPOSITION', 'CONCENTRATION', 'EXCEEDANCE_DAYS',
                         'EXCEEDANCE_HOURS')),
  substance            text NOT NULL CHECK (substance IN ('NH3', 'NOX', 'NO2', 'PM10', 'PM25', 'EC', 'NOXNH3')),
  value                double precision NOT NULL,  -- deposition mol/ha/yr, concentration ug/m3, days, hours
  situation_reference  text,
  aerius_version       text,
  database_version     text,
  imaer_version        text NOT NULL,
  source_file          text NOT NULL,
  grid_offset_m        double precision,  -- distance of the file's point from the receptor's grid centre
  x                    double precision NOT NULL,
  y                    double precision NOT NULL,
  geom                 geometry(Point, 28992) NOT NULL,
  run_id               bigint,
  loaded_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (receptor_id, year, situation_type, situation, result_type, substance)
);
CREATE INDEX aerius_results_geom_idx ON twin.aerius_results USING gist (geom);
CREATE INDEX aerius_results_situation_idx ON twin.aerius_results (year, situation_type, situation);

-- A public table like the buildings and addresses (0004): readable by the reader and the API roles, loaded by
-- the writer; no row-level security.
GRANT SELECT ON twin.aerius_results TO twin_reader, twin_writer,
  twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT INSERT, UPDATE, DELETE ON twin.aerius_results TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.aerius_results_id_seq TO twin_writer;
