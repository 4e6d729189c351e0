"""History triggers, set-based and cheaper (issue 20): the history of the register layers (migration 0015) kept
by statement-level AFTER triggers whose work per load is a few set-based statements, so that a first bulk load
and a re-delivery cost little more than without history. docs/history.md has the design and the figures.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    # 0015's history.install and its constraint (the key itself, no hash) and index on upper(registered).
    text = Path(__file__).with_name("0015_history.sql").read_text()
    start = text.index("CREATE FUNCTION history.install(")
    end = text.index("END $inst$;", start) + len("END $inst$;")
    op.execute("CREATE OR REPLACE FUNCTION" + text[start + len("CREATE FUNCTION"):end])
    op.execute("""DO $$
        DECLARE l record;
        BEGIN
          FOR l IN SELECT * FROM history.layers ORDER BY table_name = 'establishments' DESC, table_name LOOP
            EXECUTE format('ALTER TABLE history.%1$I DROP CONSTRAINT IF EXISTS %2$I, ADD CONSTRAINT %2$I '
                           'EXCLUDE USING gist (%3$I WITH =, valid WITH &&, registered WITH &&)',
                           l.table_name || '_versions', l.table_name || '_versions_no_overlap', l.key);
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON history.%I (upper(registered))',
                           l.table_name || '_versions_ended_idx', l.table_name || '_versions');
            PERFORM history.install(l.table_name);
          END LOOP;
        END $$""")
    op.execute("DROP FUNCTION IF EXISTS history.set_aside(text), history.restore(text[])")
