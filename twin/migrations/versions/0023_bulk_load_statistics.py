"""Statistics after a bulk load and a history reference check that does not depend on them (issue 24: the
national permits' first load spent more than 10 minutes in its history trigger). The SQL file says why.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    # 0017's history.install (the check by the key alone) and the two layers' triggers made by it again.
    op.execute(Path(__file__).with_name("0017_history_statement_triggers.sql").read_text())
    op.execute("SELECT history.install('permits'), history.install('inspections')")
    op.execute("DROP FUNCTION twin.ingest_analyze(text)")
