"""The counts of the audience-scoped quality rules as the public sees them, recorded with each measurement
(issue 24). The SQL file says why.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("ALTER TABLE twin.quality_results DROP COLUMN public_checked, DROP COLUMN public_failed")
