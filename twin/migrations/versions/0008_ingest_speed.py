"""Ingest speed: twin.ingest_fresh_table (a first load into an empty layer table truncates it inside its
transaction, so that with wal_level = minimal, the local cluster's setting, its COPY and index builds write no
WAL), the identifier CHECKs in a form the server evaluates faster (the same values pass), and
twin.ingest_defer_constraints (a bulk load into an empty table sets aside the keys and foreign keys it checks
itself, and adds them back before COMMIT).

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


# The CHECKs as 0001 and 0004 wrote them.
ORIGINAL_CHECKS = (("addresses", "address_id", "address_id ~ '^[0-9]{16}$'"),
                   ("establishments", "kvk_number", "kvk_number ~ '^[0-9]{8}$'"),
                   ("establishments", "vestigingsnummer", "vestigingsnummer ~ '^[0-9]{12}$'"),
                   ("establishments", "sbi_code", "sbi_code ~ '^[0-9]{2,5}$'"))


def downgrade() -> None:
    for table, column, check in ORIGINAL_CHECKS:
        op.execute(f"ALTER TABLE twin.{table} DROP CONSTRAINT {table}_{column}_check, "
                   f"ADD CONSTRAINT {table}_{column}_check CHECK ({check})")
    op.execute("DROP FUNCTION IF EXISTS twin.ingest_fresh_table(text)")
    op.execute("DROP FUNCTION IF EXISTS twin.ingest_defer_constraints(text)")
