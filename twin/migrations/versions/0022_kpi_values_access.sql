-- The access of twin.kpi_values, as 0013 set it (run by 0022's upgrade on the partitioned table and by its
-- downgrade on the plain one): written by the writer, read by the API roles under row-level security. On the
-- partitioned table the policies apply to every read through it; the partitions are granted to no one.
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
