"""Stored visit plans (issue 21): twin.visit_plans (dated, versioned: method, model id and version, data
cut-off, capacity, random share) and twin.visit_plan_items (rank, selection, probability, reasons),
written by `twin priority plan` and read by /analysis/inspection-priority?method=model|rules|blend.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS twin.visit_plan_items")
    op.execute("DROP TABLE IF EXISTS twin.visit_plans")
