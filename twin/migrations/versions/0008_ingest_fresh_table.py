"""twin.ingest_fresh_table: a first load into an empty layer table truncates it inside its transaction, so that
with wal_level = minimal (the local cluster's setting) its COPY and index builds write no WAL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from pathlib import Path

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS twin.ingest_fresh_table(text)")
