"""KPI values partitioned by run (issue 22): each `twin monitor compute` run COPYs its values into a table of its own
that is indexed once and attached as the partition of its run id (no per-row foreign-key, security or index work
on the values of earlier runs); a default partition takes rows inserted directly.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS twin.kpi_values_new_partition(bigint), "
               "twin.kpi_values_attach_partition(bigint)")
    op.execute("ALTER TABLE twin.kpi_values RENAME TO kpi_values_0022")
    op.execute("ALTER INDEX twin.kpi_values_series_idx RENAME TO kpi_values_0022_series_idx")
    # unattached run tables (a run that failed before attaching) go with their transaction; none remain here
    op.execute("CREATE TABLE twin.kpi_values (LIKE twin.kpi_values_0022 INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute("ALTER TABLE twin.kpi_values ADD FOREIGN KEY (run_id) REFERENCES twin.kpi_runs (id) ON DELETE CASCADE")
    op.execute("INSERT INTO twin.kpi_values SELECT * FROM twin.kpi_values_0022")
    op.execute("CREATE INDEX kpi_values_series_idx ON twin.kpi_values "
               "(run_id, kpi, period_type, dimension, period_start)")
    op.execute("""
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
""")
    op.execute((Path(__file__).with_name("0021_bi_current_run.sql")).read_text())
    op.execute("DROP TABLE twin.kpi_values_0022 CASCADE")
