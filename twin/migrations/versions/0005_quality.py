"""Data quality: twin.quality_results (the rules' measurements per ingest run) and twin.quality_land (the
municipalities subdivided for the inside-the-Netherlands rule).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from pathlib import Path

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS municipalities_quality_land ON twin.municipalities;
        DROP FUNCTION IF EXISTS twin.quality_refresh_land();
        DROP TABLE IF EXISTS twin.quality_land;
        DROP TABLE IF EXISTS twin.quality_results;
        """
    )
