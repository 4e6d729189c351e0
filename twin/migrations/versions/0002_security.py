"""Security: row-level security on restricted tables, the append-only audit log, API key lookup, the
k-anonymous grid of inspections.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from pathlib import Path

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION IF EXISTS twin.inspection_grid_counts(integer, integer, float8, float8, float8, float8, integer);
        DROP FUNCTION IF EXISTS twin.api_key_lookup(text);
        DROP POLICY IF EXISTS inspections_owner ON twin.inspections;
        DROP POLICY IF EXISTS inspections_writer ON twin.inspections;
        DROP POLICY IF EXISTS inspections_reader ON twin.inspections;
        ALTER TABLE twin.inspections NO FORCE ROW LEVEL SECURITY;
        ALTER TABLE twin.inspections DISABLE ROW LEVEL SECURITY;
        DROP POLICY IF EXISTS audit_log_append ON twin.audit_log;
        DROP POLICY IF EXISTS audit_log_admin ON twin.audit_log;
        DROP POLICY IF EXISTS audit_log_owner ON twin.audit_log;
        ALTER TABLE twin.audit_log NO FORCE ROW LEVEL SECURITY;
        ALTER TABLE twin.audit_log DISABLE ROW LEVEL SECURITY;
        DROP TRIGGER IF EXISTS audit_log_append_only ON twin.audit_log;
        DROP TRIGGER IF EXISTS audit_log_no_truncate ON twin.audit_log;
        DROP FUNCTION IF EXISTS twin.audit_log_refuse();
        DROP FUNCTION IF EXISTS twin.request_role();
        DROP FUNCTION IF EXISTS twin.request_org();
        GRANT SELECT ON twin.api_keys TO twin_reader;
        DROP INDEX IF EXISTS twin.audit_log_principal_idx;
        ALTER TABLE twin.audit_log DROP COLUMN IF EXISTS method, DROP COLUMN IF EXISTS status,
          DROP COLUMN IF EXISTS layers;
        UPDATE twin.audit_log SET records = 0 WHERE records IS NULL;
        ALTER TABLE twin.audit_log ALTER COLUMN records SET DEFAULT 0, ALTER COLUMN records SET NOT NULL;
        GRANT SELECT ON twin.audit_log TO twin_reader;
        GRANT INSERT ON twin.audit_log TO twin_auditor;
        """
    )
