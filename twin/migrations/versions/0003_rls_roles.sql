-- Row-level security per API role. The API (twin_reader) starts every request's transaction with
--   SET LOCAL ROLE twin_api_<public|advisor|inspector|admin>   (anonymous callers: twin_api_public)
--   set_config('twin.org_code', <organisation or ''>, true)
-- Each role has its own plain policy: the planner applies only the policies of the current role, so an
-- inspector's org_code = ... uses its index and an admin's queries use the GiST index of the bbox (PostGIS
-- operators are not leakproof, so behind a non-trivial policy they cannot drive an index scan). twin_reader
-- itself has no policy on inspections: a transaction without the role sees nothing (fail closed).
-- The roles are cluster-wide and NOLOGIN; twin_reader is a member of each so it may switch to them. They
-- get the reader's privileges here (SELECT on the layer tables), never those of twin_reader itself.

DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['twin_api_public', 'twin_api_advisor', 'twin_api_inspector', 'twin_api_admin'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
    EXECUTE format('GRANT %I TO twin_reader', r);
  END LOOP;
END$$;

-- The reader switches to these roles but does not inherit their privileges (audit_log for admins).
ALTER ROLE twin_reader NOINHERIT;

GRANT USAGE ON SCHEMA twin TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA twin TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
ALTER DEFAULT PRIVILEGES IN SCHEMA twin GRANT SELECT ON TABLES
  TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
REVOKE ALL ON twin.api_keys FROM twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
REVOKE ALL ON twin.audit_log FROM twin_reader, twin_api_public, twin_api_advisor, twin_api_inspector;
GRANT SELECT ON twin.audit_log TO twin_api_admin;
GRANT EXECUTE ON FUNCTION twin.inspection_grid_counts(integer, integer, float8, float8, float8, float8, integer)
  TO twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;

-- Inspections: admins all rows; inspectors their own organisation's; advisors all but those of sole
-- proprietors (an uncorrelated NOT IN: one hashed lookup per row); public and anonymous none.
DROP POLICY IF EXISTS inspections_reader ON twin.inspections;
CREATE POLICY inspections_admin ON twin.inspections FOR SELECT TO twin_api_admin USING (true);
CREATE POLICY inspections_inspector ON twin.inspections FOR SELECT TO twin_api_inspector
  USING (org_code = twin.request_org());
CREATE POLICY inspections_advisor ON twin.inspections FOR SELECT TO twin_api_advisor
  USING (establishment_id NOT IN (SELECT e.establishment_id FROM twin.establishments e WHERE e.sole_proprietor));

-- The audit log: admins read it through the API.
DROP POLICY IF EXISTS audit_log_admin ON twin.audit_log;
CREATE POLICY audit_log_api_admin ON twin.audit_log FOR SELECT TO twin_api_admin USING (true);
