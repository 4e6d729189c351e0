"""What a recorded quality measurement was measured on: a fingerprint of its query, date and input versions
(issue 24). The SQL file says why.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("ALTER TABLE twin.quality_results DROP COLUMN fingerprint")
