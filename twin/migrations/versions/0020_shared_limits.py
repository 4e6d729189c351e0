"""Stateless API replicas (issue 23): twin.rate_buckets (UNLOGGED, the rate limits shared by every API process)
and twin.key_epoch (bumped by every change of twin.api_keys, so that every process forgets revoked keys).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_keys_epoch ON twin.api_keys")
    op.execute("DROP FUNCTION IF EXISTS twin.key_epoch_bump()")
    op.execute("DROP TABLE IF EXISTS twin.key_epoch")
    op.execute("DROP TABLE IF EXISTS twin.rate_buckets")
