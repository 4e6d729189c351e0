-- vth-twin security: who sees which rows, an append-only audit log, API key lookup, the public grid.
--
-- The API connects as twin_reader and sets, at the start of every request's transaction,
--   set_config('twin.role', <anonymous|public|advisor|inspector|admin>, true)
--   set_config('twin.org_code', <organisation code or ''>, true)
-- Both are transaction-local: a pooled connection carries nothing into the next request, and a
-- transaction that did not set them sees what an anonymous caller sees (fail closed).
-- FORCE ROW LEVEL SECURITY makes the policies apply to the table owner too; the owner (migrations,
-- fixtures) and twin_writer (ingest) get policies that allow every row, since BYPASSRLS cannot be
-- granted by a non-superuser.

CREATE OR REPLACE FUNCTION twin.request_role() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT coalesce(nullif(current_setting('twin.role', true), ''), 'anonymous') $$;

CREATE OR REPLACE FUNCTION twin.request_org() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('twin.org_code', true), '') $$;

-- Inspections: admins all rows; inspectors their own organisation's; advisors all but those of sole
-- proprietors (their inspection results are personal data); anonymous and public none (they get the
-- k-anonymous grid through twin.inspection_grid_counts).
ALTER TABLE twin.inspections ENABLE ROW LEVEL SECURITY;
ALTER TABLE twin.inspections FORCE ROW LEVEL SECURITY;
CREATE POLICY inspections_owner ON twin.inspections FOR ALL TO twin_owner USING (true) WITH CHECK (true);
CREATE POLICY inspections_writer ON twin.inspections FOR ALL TO twin_writer USING (true) WITH CHECK (true);
CREATE POLICY inspections_reader ON twin.inspections FOR SELECT TO twin_reader USING (
  twin.request_role() = 'admin'
  OR (twin.request_role() = 'inspector' AND org_code = twin.request_org())
  OR (twin.request_role() = 'advisor' AND NOT EXISTS (
        SELECT 1 FROM twin.establishments e
        WHERE e.establishment_id = inspections.establishment_id AND e.sole_proprietor))
);

-- The audit log: appended by twin_auditor only (its columns, never `at` or `id`), read by admins
-- (through the API as twin_reader with twin.role = admin) and the owner (the CLI). No UPDATE, DELETE or
-- TRUNCATE grants, and a trigger that refuses them for everyone, the owner included.
ALTER TABLE twin.audit_log ALTER COLUMN records DROP NOT NULL;
ALTER TABLE twin.audit_log ALTER COLUMN records DROP DEFAULT;
ALTER TABLE twin.audit_log ADD COLUMN method text;
ALTER TABLE twin.audit_log ADD COLUMN status integer;
ALTER TABLE twin.audit_log ADD COLUMN layers text[];
CREATE INDEX audit_log_principal_idx ON twin.audit_log (principal, at DESC);

REVOKE ALL ON twin.audit_log FROM PUBLIC, twin_writer, twin_reader, twin_auditor;
GRANT SELECT ON twin.audit_log TO twin_reader;
GRANT INSERT (principal, role, org_code, method, endpoint, parameters, records, status, layers)
  ON twin.audit_log TO twin_auditor;
GRANT USAGE ON SEQUENCE twin.audit_log_id_seq TO twin_auditor;
REVOKE ALL ON SEQUENCE twin.audit_log_id_seq FROM twin_writer;

ALTER TABLE twin.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE twin.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_append ON twin.audit_log FOR INSERT TO twin_auditor WITH CHECK (true);
CREATE POLICY audit_log_admin ON twin.audit_log FOR SELECT TO twin_reader USING (twin.request_role() = 'admin');
CREATE POLICY audit_log_owner ON twin.audit_log FOR SELECT TO twin_owner USING (true);

CREATE OR REPLACE FUNCTION twin.audit_log_refuse() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  RAISE EXCEPTION 'twin.audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON twin.audit_log
  FOR EACH ROW EXECUTE FUNCTION twin.audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON twin.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION twin.audit_log_refuse();

-- API keys: the reader may not read the table (hashes, labels, the list of keys); it resolves one key
-- by its public id through this function.
REVOKE ALL ON twin.api_keys FROM PUBLIC, twin_reader, twin_writer, twin_auditor;
CREATE OR REPLACE FUNCTION twin.api_key_lookup(p_key_id text)
  RETURNS TABLE (key_hash text, role text, org_code text, expires_at timestamptz, revoked_at timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT k.key_hash, k.role, k.org_code, k.expires_at, k.revoked_at
    FROM twin.api_keys k WHERE k.key_id = p_key_id
  $$;
REVOKE ALL ON FUNCTION twin.api_key_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.api_key_lookup(text) TO twin_reader;

-- The public view of inspections: counts per cell of a fixed RD New grid, cells with fewer than k
-- records left out. A bbox selects whole cells only (it is snapped outwards to the grid and points are
-- assigned by cell), so moving a bbox edge cannot reveal where a single record lies.
CREATE OR REPLACE FUNCTION twin.inspection_grid_counts(
    p_cell_m integer, p_k integer,
    p_xmin float8, p_ymin float8, p_xmax float8, p_ymax float8,
    p_year integer)
  RETURNS TABLE (cx bigint, cy bigint, n bigint)
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, public, pg_temp
  AS $$
DECLARE
  cx0 bigint; cy0 bigint; cx1 bigint; cy1 bigint;
BEGIN
  IF p_cell_m IS NULL OR p_cell_m < 100 THEN
    RAISE EXCEPTION 'the grid cell must be at least 100 m' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_k IS NULL OR p_k < 2 THEN
    RAISE EXCEPTION 'k must be at least 2' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF p_xmin IS NULL THEN
    RETURN QUERY
      SELECT floor(ST_X(i.geom) / p_cell_m)::bigint, floor(ST_Y(i.geom) / p_cell_m)::bigint, count(*)
      FROM twin.inspections i
      WHERE p_year IS NULL OR (i.inspected_on >= make_date(p_year, 1, 1)
                               AND i.inspected_on < make_date(p_year + 1, 1, 1))
      GROUP BY 1, 2 HAVING count(*) >= p_k;
    RETURN;
  END IF;
  cx0 := floor(p_xmin / p_cell_m)::bigint;
  cy0 := floor(p_ymin / p_cell_m)::bigint;
  cx1 := greatest(ceil(p_xmax / p_cell_m)::bigint, cx0 + 1);
  cy1 := greatest(ceil(p_ymax / p_cell_m)::bigint, cy0 + 1);
  RETURN QUERY
    SELECT g.gx, g.gy, g.cnt FROM (
      SELECT floor(ST_X(i.geom) / p_cell_m)::bigint AS gx, floor(ST_Y(i.geom) / p_cell_m)::bigint AS gy,
             count(*) AS cnt
      FROM twin.inspections i
      WHERE i.geom && ST_MakeEnvelope(cx0 * p_cell_m, cy0 * p_cell_m, cx1 * p_cell_m, cy1 * p_cell_m, 28992)
        AND (p_year IS NULL OR (i.inspected_on >= make_date(p_year, 1, 1)
                                AND i.inspected_on < make_date(p_year + 1, 1, 1)))
      GROUP BY 1, 2) g
    WHERE g.gx >= cx0 AND g.gx < cx1 AND g.gy >= cy0 AND g.gy < cy1 AND g.cnt >= p_k;
END $$;
REVOKE ALL ON FUNCTION twin.inspection_grid_counts(integer, integer, float8, float8, float8, float8, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION twin.inspection_grid_counts(integer, integer, float8, float8, float8, float8, integer)
  TO twin_reader;
