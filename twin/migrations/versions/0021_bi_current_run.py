"""BI feed of the current KPI run (issue 22): bi.fact_kpi_values_v1 shows the newest run computed from the current
state (twin.kpi_runs.from_history false) rather than the highest run id, which may be an as-of recomputation.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("""CREATE OR REPLACE VIEW bi.fact_kpi_values_v1 WITH (security_barrier) AS
  SELECT v.run_id, r.as_of, r.computed_at, r.data_version, v.kpi, v.period_type, v.period_start, v.period_end,
         v.dimension, v.dimension_value, v.scope_org, v.numerator, v.denominator, v.value, v.ci_low, v.ci_high,
         v.audience, v.change_z, v.change_q, v.change
  FROM twin.kpi_values v JOIN twin.kpi_runs r ON r.id = v.run_id
  WHERE v.run_id = (SELECT max(id) FROM twin.kpi_runs)
    AND (v.audience = 'public' OR (v.audience = 'org' AND v.scope_org = bi.viewer_org()))""")
    op.execute("COMMENT ON VIEW bi.fact_kpi_values_v1 IS 'KPI values of the latest twin monitor compute run: public "
               "figures and the viewer organisation''s'")
