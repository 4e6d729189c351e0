"""Initial schema: every layer of DESIGN.md, the deposition coverage, provenance, access and roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS twin CASCADE")
