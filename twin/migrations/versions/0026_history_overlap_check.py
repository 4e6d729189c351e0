"""The versions of a key may not overlap: checked by a statement trigger per version table instead of an EXCLUDE
constraint, whose rebuild after a first bulk load was the slowest step of the national load (issue 24). The SQL
file says why.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    # 0025's state: no triggers, 0017's history.install with 0023's hashed reference check, whose calls add the
    # EXCLUDE constraints back (built row by row: minutes on a national twin).
    op.execute("""DO $$
DECLARE
  l record;
BEGIN
  FOR l IN SELECT table_name FROM history.layers LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON history.%I', l.table_name || '_versions_no_overlap_ins',
                   l.table_name || '_versions');
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON history.%I', l.table_name || '_versions_no_overlap_upd',
                   l.table_name || '_versions');
  END LOOP;
END $$""")
    op.execute("DROP FUNCTION history.no_overlap()")
    op.execute(Path(__file__).with_name("0017_history_statement_triggers.sql").read_text())
    text = Path(__file__).with_name("0023_bulk_load_statistics.sql").read_text()
    op.execute(text[text.index("DO $patch$"):])
