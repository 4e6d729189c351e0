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


HERE = Path(__file__).parent
ACCESS = HERE / "0022_kpi_values_access.sql"
BI_VIEW = HERE / "0021_bi_current_run.sql"  # CREATE OR REPLACE keeps the view's grants; rebinds it to the new table


def upgrade() -> None:
    op.execute((HERE / "0022_kpi_values_by_run.sql").read_text())
    op.execute(ACCESS.read_text())
    op.execute(BI_VIEW.read_text())
    op.execute("DROP TABLE twin.kpi_values_0013")


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
    op.execute(ACCESS.read_text())
    op.execute(BI_VIEW.read_text())
    op.execute("DROP TABLE twin.kpi_values_0022 CASCADE")
