"""KPI runs as of a date (issues 20 and 22): twin.kpi_runs records the registration time (known_on) next to the
reference date (as_of) and whether the run read the history; the writer may read the history to compute them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS inspections_writer_read ON history.inspections_versions")
    op.execute("""DO $do$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT table_name FROM history.layers LOOP
    EXECUTE format('REVOKE SELECT ON history.%I, history.%I FROM twin_writer', l.table_name,
                   l.table_name || '_versions');
    EXECUTE format('REVOKE EXECUTE ON FUNCTION history.%I(date, timestamptz) FROM twin_writer', l.table_name || '_at');
  END LOOP;
END $do$""")
    op.execute("REVOKE EXECUTE ON FUNCTION history.valid_on(), history.known_on() FROM twin_writer")
    op.execute("REVOKE USAGE ON SCHEMA history FROM twin_writer")
    op.execute("DROP INDEX IF EXISTS twin.kpi_runs_as_of_idx")
    op.execute("ALTER TABLE twin.kpi_runs DROP COLUMN IF EXISTS from_history, DROP COLUMN IF EXISTS known_on")
