"""Monitoring the quality of supervision (issue 22): KPI runs and values recorded over time
(twin.kpi_runs, twin.kpi_values, twin.kpi_definitions, twin.lhs_matrix) and the `bi` schema of versioned
star-shaped views for BI tools, read by the role twin_bi and per-organisation login roles.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS bi CASCADE")
    op.execute("DROP TABLE IF EXISTS twin.kpi_values, twin.kpi_runs, twin.kpi_definitions, twin.lhs_matrix")
