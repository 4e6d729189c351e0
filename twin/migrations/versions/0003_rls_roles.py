"""Security: row-level security per API role (SET LOCAL ROLE), so that each role's policy is simple enough
for the planner to use indexes (one OR-ed policy over all roles forced sequential scans).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from pathlib import Path

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    # Roles are cluster-wide (other databases may use them): they, and twin_reader's NOINHERIT, stay.
    op.execute(
        """
        DROP POLICY IF EXISTS inspections_admin ON twin.inspections;
        DROP POLICY IF EXISTS inspections_inspector ON twin.inspections;
        DROP POLICY IF EXISTS inspections_advisor ON twin.inspections;
        DROP POLICY IF EXISTS audit_log_api_admin ON twin.audit_log;
        CREATE POLICY inspections_reader ON twin.inspections FOR SELECT TO twin_reader USING (
          twin.request_role() = 'admin'
          OR (twin.request_role() = 'inspector' AND org_code = twin.request_org())
          OR (twin.request_role() = 'advisor' AND NOT EXISTS (
                SELECT 1 FROM twin.establishments e
                WHERE e.establishment_id = inspections.establishment_id AND e.sole_proprietor)));
        CREATE POLICY audit_log_admin ON twin.audit_log FOR SELECT TO twin_reader
          USING (twin.request_role() = 'admin');
        GRANT SELECT ON twin.audit_log TO twin_reader;
        ALTER DEFAULT PRIVILEGES IN SCHEMA twin REVOKE SELECT ON TABLES
          FROM twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
        REVOKE ALL ON ALL TABLES IN SCHEMA twin
          FROM twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
        REVOKE ALL ON FUNCTION twin.inspection_grid_counts(integer, integer, float8, float8, float8, float8, integer)
          FROM twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
        REVOKE USAGE ON SCHEMA twin FROM twin_api_public, twin_api_advisor, twin_api_inspector, twin_api_admin;
        """
    )
