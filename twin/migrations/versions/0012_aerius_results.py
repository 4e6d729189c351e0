"""AERIUS receptor results from IMAER GML (twin ingest aerius-results FILE): twin.aerius_results, joined to
the deposition hexagons on receptor_id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from pathlib import Path

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS twin.aerius_results")
