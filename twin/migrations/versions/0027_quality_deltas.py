"""The quality measurement over changed rows only (issue 24): what a load changed in the counts of its layer's
row-local rules. The SQL file says why.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08
"""

from pathlib import Path

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP TABLE twin.quality_deltas")
