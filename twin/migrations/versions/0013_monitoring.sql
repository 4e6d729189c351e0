-- vth-twin monitoring (issue 22): KPI values recorded over time, and the bi schema for BI tools.
-- docs/monitoring.md defines the KPIs; docs/bi.md the views.

-- The KPI definitions as computed (written by `twin monitor compute` from twin/monitoring/definitions.py), so a
-- BI tool and the API trace every figure to its definition.
CREATE TABLE twin.kpi_definitions (
  id           text PRIMARY KEY,
  title        text NOT NULL,
  question     text NOT NULL,
  formula      text NOT NULL,
  unit         text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('proportion', 'mean', 'count')),
  restricted   boolean NOT NULL,  -- derived from restricted records (inspections): public figures pass the SDC
  dimensions   text[] NOT NULL,
  periods      text[] NOT NULL
);

-- The LHS matrix as configured (layers/data/lhs_matrix.csv or --lhs-matrix FILE), written with each run.
CREATE TABLE twin.lhs_matrix (
  cell                text PRIMARY KEY CHECK (cell ~ '^[A-D][1-4]$'),
  expected            text[] NOT NULL,
  escalate_on_repeat  boolean NOT NULL DEFAULT true,
  source              text NOT NULL
);

-- One row per `twin monitor compute`: the reference date, the data version (a snapshot of twin.layer_versions)
-- and the disclosure threshold the public figures were published under.
CREATE TABLE twin.kpi_runs (
  id            bigserial PRIMARY KEY,
  as_of         date NOT NULL,
  computed_at   timestamptz NOT NULL DEFAULT now(),
  data_version  jsonb NOT NULL,
  k             integer NOT NULL,
  seconds       double precision,
  values_count  bigint
);

-- One row per KPI, run, period, dimension value and scope. scope_org NULL: all organisations together;
-- else the figure of that organisation alone. audience: 'public' (anyone: from public layers, or passed the
-- statistical disclosure control of twin/disclosure.py), 'org' (inspectors of scope_org and admins),
-- 'admin' (admins only: suppressed public figures). change: the two-proportion z-test against the previous
-- period of the same series, flagged after the Benjamini-Hochberg correction (q < 0.05).
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
);
CREATE INDEX kpi_values_series_idx ON twin.kpi_values (run_id, kpi, period_type, dimension, period_start);

-- Written by the writer (`twin monitor compute`) and the owner; read by the API roles under row-level
-- security (the reader switches to them per request): public figures for everyone, an organisation's own
-- figures for its inspectors, everything for admins.
REVOKE ALL ON twin.kpi_values, twin.kpi_runs, twin.kpi_definitions, twin.lhs_matrix
  FROM twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT SELECT ON twin.kpi_values, twin.kpi_runs, twin.kpi_definitions, twin.lhs_matrix
  TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON twin.kpi_values, twin.kpi_runs, twin.kpi_definitions, twin.lhs_matrix
  TO twin_writer;
GRANT USAGE, SELECT ON SEQUENCE twin.kpi_runs_id_seq TO twin_writer;

ALTER TABLE twin.kpi_values ENABLE ROW LEVEL SECURITY;
CREATE POLICY kpi_values_writer ON twin.kpi_values FOR ALL TO twin_writer USING (true) WITH CHECK (true);
CREATE POLICY kpi_values_admin ON twin.kpi_values FOR SELECT TO twin_api_admin USING (true);
CREATE POLICY kpi_values_inspector ON twin.kpi_values FOR SELECT TO twin_api_inspector
  USING (audience = 'public' OR (audience = 'org' AND scope_org = twin.request_org()));
CREATE POLICY kpi_values_advisor ON twin.kpi_values FOR SELECT TO twin_api_advisor USING (audience = 'public');
CREATE POLICY kpi_values_public ON twin.kpi_values FOR SELECT TO twin_api_public USING (audience = 'public');

-- ---------------------------------------------------------------------------------------------------------
-- The bi schema: documented, versioned views in a star shape (docs/bi.md). A view's name carries its version
-- (_v1); a change of its columns or types makes a new version (tests/monitoring/test_bi_contract.py checks
-- twin/monitoring/bi_contract.json). The views are the owner's and mask by themselves (the API's masking lives
-- in application code): an organisation's login role (`twin bi grant --org CODE`, listed in bi.org_roles) sees
-- what the API shows that organisation's inspectors; twin_bi itself (and any role not listed) what an anonymous
-- caller sees: the public layers with natural persons' fields masked, and the public KPI figures.
CREATE SCHEMA bi;
COMMENT ON SCHEMA bi IS 'vth-twin BI feeds: versioned star-schema views (facts and dimensions), see docs/bi.md';

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'twin_bi') THEN
    CREATE ROLE twin_bi NOLOGIN;
  END IF;
END$$;

CREATE TABLE bi.org_roles (
  role_name   text PRIMARY KEY,
  org_code    text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON bi.org_roles FROM PUBLIC;

-- The organisation the session may see: its login role's (bi.org_roles); for the schema's owner the setting
-- twin.bi_org (the exports of `twin bi export --org`); else none. session_user, not current_user: SET ROLE
-- cannot borrow another organisation's role.
CREATE FUNCTION bi.viewer_org() RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT coalesce(
      (SELECT o.org_code FROM bi.org_roles o WHERE o.role_name = session_user::text),
      CASE WHEN session_user::text = (SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = 'bi')
           THEN nullif(current_setting('twin.bi_org', true), '') END)
  $$;
REVOKE ALL ON FUNCTION bi.viewer_org() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bi.viewer_org() TO twin_bi;

-- A natural person's establishment (twin.access.personal_row_sql: a sole proprietor, or a partnership of
-- natural persons by its legal form); the regular expression is twin.access.NATURAL_PERSON_FORMS_RE (a test
-- keeps them equal).
CREATE FUNCTION bi.is_personal(sole_proprietor boolean, legal_form text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT sole_proprietor IS NOT FALSE OR coalesce(lower(legal_form) ~
    '^\s*(eenmanszaak|vennootschap onder firma|maatschap|commanditaire vennootschap|v\.?o\.?f\.?|c\.?v\.?)(\s|$|[^a-z])',
    false) $$;
GRANT EXECUTE ON FUNCTION bi.is_personal(boolean, text) TO twin_bi;

-- Every bi view is a security barrier: a caller's own (leaky) function in a WHERE must not run before the view's
-- filters, since the views run as their owner and the tables' row-level security does not apply inside them.
CREATE VIEW bi.dim_establishment_v1 WITH (security_barrier) AS
  SELECT e.establishment_id,
         CASE WHEN s.sees THEN e.name END AS name,
         CASE WHEN s.sees THEN e.kvk_number END AS kvk_number,
         CASE WHEN s.sees THEN e.vestigingsnummer END AS vestigingsnummer,
         e.sbi_code, left(e.sbi_code, 2) AS sbi_division, e.sbi_description, e.legal_form,
         NOT s.sees AS masked,
         CASE WHEN s.sees THEN e.street END AS street,
         CASE WHEN s.sees THEN e.house_number END AS house_number,
         CASE WHEN s.sees THEN e.postcode ELSE nullif(left(upper(replace(e.postcode, ' ', '')), 4), '') END AS postcode,
         e.city, e.municipality_code, e.environmental_category, e.activiteitenbesluit_type, e.bal_regime, e.brzo,
         e.visit_frequency_years, e.org_code, e.started_on, e.ended_on,
         ST_X(g.g) AS lon, ST_Y(g.g) AS lat, ST_X(e.geom) AS x_rd, ST_Y(e.geom) AS y_rd, ST_AsText(g.g) AS wkt,
         g.g::geometry(Point, 4326) AS geom
  FROM twin.establishments e
  CROSS JOIN LATERAL (SELECT NOT (bi.is_personal(e.sole_proprietor, e.legal_form) OR e.natural_person_owner)
                             OR e.org_code IS NOT DISTINCT FROM bi.viewer_org() AND e.org_code IS NOT NULL AS sees) s
  CROSS JOIN LATERAL (SELECT ST_Transform(e.geom, 4326) AS g) g;

CREATE VIEW bi.dim_sector_v1 WITH (security_barrier) AS
  SELECT e.sbi_code, left(e.sbi_code, 2) AS sbi_division, left(e.sbi_code, 4) AS sbi_class,
         mode() WITHIN GROUP (ORDER BY e.sbi_description) AS sbi_description,
         left(e.sbi_code, 3) = '014' AS livestock, count(*) AS establishments
  FROM twin.establishments e GROUP BY e.sbi_code;

CREATE VIEW bi.dim_municipality_v1 WITH (security_barrier) AS
  SELECT m.code AS municipality_code, m.name AS municipality_name, m.province_name,
         ST_X(p.g) AS lon, ST_Y(p.g) AS lat, ST_X(p.rd) AS x_rd, ST_Y(p.rd) AS y_rd,
         ST_AsText(ST_Transform(m.geom, 4326)) AS wkt,
         ST_Transform(m.geom, 4326)::geometry(MultiPolygon, 4326) AS geom
  FROM twin.municipalities m
  CROSS JOIN LATERAL (SELECT ST_PointOnSurface(m.geom) AS rd) p0
  CROSS JOIN LATERAL (SELECT p0.rd, ST_Transform(p0.rd, 4326) AS g) p;

CREATE VIEW bi.dim_organisation_v1 WITH (security_barrier) AS
  SELECT e.org_code, count(*) AS establishments, count(DISTINCT e.municipality_code) AS municipalities,
         e.org_code = bi.viewer_org() AS is_viewer
  FROM twin.establishments e WHERE e.org_code IS NOT NULL GROUP BY e.org_code;

CREATE VIEW bi.dim_date_v1 WITH (security_barrier) AS
  SELECT d::date AS date, extract(year FROM d)::int AS year, extract(quarter FROM d)::int AS quarter,
         extract(month FROM d)::int AS month, to_char(d, 'YYYY-"Q"Q') AS year_quarter, to_char(d, 'YYYY-MM') AS year_month,
         extract(isoyear FROM d)::int AS iso_year, extract(week FROM d)::int AS iso_week,
         extract(isodow FROM d)::int AS iso_weekday
  FROM generate_series(date '2000-01-01', date '2040-12-31', interval '1 day') d;

CREATE VIEW bi.dim_kpi_v1 WITH (security_barrier) AS
  SELECT id AS kpi, title, question, formula, unit, kind, restricted, dimensions, periods FROM twin.kpi_definitions;

-- Inspections, violations and interventions: the viewer organisation's own records only (row-level security of
-- the API: an organisation's inspectors see their own organisation's inspections, with every field).
CREATE VIEW bi.fact_inspections_v1 WITH (security_barrier) AS
  SELECT i.inspection_id, i.establishment_id, i.inspected_on, i.kind, i.result,
         i.result = 'voorschriften nageleefd' AS compliant,
         i.result IN ('voorschriften overtreden', 'akkoord na aanwijzing') AS violation_found,
         i.gedrag, i.gevolg, i.lhs_cell, i.violation, i.intervention, i.repair_deadline, i.repaired_on,
         i.follow_up_status, i.inspector, i.org_code, e.municipality_code, e.sbi_code, e.environmental_category,
         ST_X(g.g) AS lon, ST_Y(g.g) AS lat, ST_X(i.geom) AS x_rd, ST_Y(i.geom) AS y_rd, ST_AsText(g.g) AS wkt,
         g.g::geometry(Point, 4326) AS geom
  FROM twin.inspections i
  JOIN twin.establishments e ON e.establishment_id = i.establishment_id
  CROSS JOIN LATERAL (SELECT ST_Transform(i.geom, 4326) AS g) g
  WHERE i.org_code = bi.viewer_org();

CREATE VIEW bi.fact_violations_v1 WITH (security_barrier) AS
  SELECT f.inspection_id, f.establishment_id, f.inspected_on, f.result, f.gedrag, f.gevolg, f.lhs_cell, f.violation,
         f.intervention, f.repair_deadline, f.repaired_on,
         f.repaired_on - f.inspected_on AS days_to_repair,
         f.repaired_on IS NOT NULL AND f.repair_deadline IS NOT NULL AND f.repaired_on <= f.repair_deadline
           AS repaired_within_term,
         f.follow_up_status, f.org_code, f.municipality_code, f.sbi_code, f.environmental_category,
         f.lon, f.lat, f.x_rd, f.y_rd, f.wkt, f.geom
  FROM bi.fact_inspections_v1 f WHERE f.result = 'voorschriften overtreden';

CREATE VIEW bi.fact_interventions_v1 WITH (security_barrier) AS
  SELECT f.inspection_id, f.establishment_id, f.inspected_on, f.lhs_cell, f.gedrag, f.gevolg, f.intervention,
         m.expected AS expected_interventions,
         CASE WHEN m.cell IS NULL OR f.lhs_cell IS NULL THEN NULL ELSE f.intervention = ANY (m.expected) END
           AS matches_lhs_matrix,
         f.follow_up_status, f.org_code, f.municipality_code, f.sbi_code, f.environmental_category,
         f.lon, f.lat, f.x_rd, f.y_rd, f.wkt, f.geom
  FROM bi.fact_inspections_v1 f LEFT JOIN twin.lhs_matrix m ON m.cell = f.lhs_cell
  WHERE f.intervention IS NOT NULL AND f.intervention <> 'geen';

-- Permits are a public layer: every viewer sees all of them.
CREATE VIEW bi.fact_permits_v1 WITH (security_barrier) AS
  SELECT p.permit_id, p.establishment_id, p.permit_type, p.procedure, p.status, p.applied_on, p.decided_on,
         p.valid_from, p.valid_until,
         p.status = 'verleend' AND (p.valid_from IS NULL OR p.valid_from <= current_date)
           AND (p.valid_until IS NULL OR p.valid_until >= current_date) AS in_force_today,
         p.nh3_kg_per_year, p.nox_kg_per_year, p.org_code,
         ST_X(g.g) AS lon, ST_Y(g.g) AS lat, ST_X(g.rd) AS x_rd, ST_Y(g.rd) AS y_rd,
         ST_AsText(ST_Transform(p.geom, 4326)) AS wkt, ST_Transform(p.geom, 4326)::geometry(Geometry, 4326) AS geom
  FROM twin.permits p
  CROSS JOIN LATERAL (SELECT ST_PointOnSurface(p.geom) AS rd) g0
  CROSS JOIN LATERAL (SELECT g0.rd, ST_Transform(g0.rd, 4326) AS g) g;

-- KPI values of the latest run that the viewer may see (as the API: public figures, plus the viewer
-- organisation's own).
CREATE VIEW bi.fact_kpi_values_v1 WITH (security_barrier) AS
  SELECT v.run_id, r.as_of, r.computed_at, r.data_version, v.kpi, v.period_type, v.period_start, v.period_end,
         v.dimension, v.dimension_value, v.scope_org, v.numerator, v.denominator, v.value, v.ci_low, v.ci_high,
         v.audience, v.change_z, v.change_q, v.change
  FROM twin.kpi_values v JOIN twin.kpi_runs r ON r.id = v.run_id
  WHERE v.run_id = (SELECT max(id) FROM twin.kpi_runs)
    AND (v.audience = 'public' OR (v.audience = 'org' AND v.scope_org = bi.viewer_org()));

COMMENT ON VIEW bi.dim_establishment_v1 IS 'Establishments; natural persons'' name, KvK, address masked (postcode PC4) except for their own organisation';
COMMENT ON VIEW bi.fact_inspections_v1 IS 'Inspections of the viewer organisation only (twin bi grant --org)';
COMMENT ON VIEW bi.fact_kpi_values_v1 IS 'KPI values of the latest twin monitor compute run: public figures and the viewer organisation''s';

GRANT USAGE ON SCHEMA bi TO twin_bi;
GRANT SELECT ON bi.dim_establishment_v1, bi.dim_sector_v1, bi.dim_municipality_v1, bi.dim_organisation_v1,
  bi.dim_date_v1, bi.dim_kpi_v1, bi.fact_inspections_v1, bi.fact_violations_v1, bi.fact_interventions_v1,
  bi.fact_permits_v1, bi.fact_kpi_values_v1 TO twin_bi;
ALTER ROLE twin_bi SET default_transaction_read_only = on;
