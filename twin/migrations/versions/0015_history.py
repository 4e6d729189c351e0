"""History and as-of (issue 20): a `history` schema with one version table per register layer
(establishments, permits, inspections, natura2000_habitats, housing_sites), kept by statement-level triggers
on the current tables (every load path: upsert, replace, enrich, the first bulk COPY, TRUNCATE), with valid
time (`valid` daterange) and registration time (`registered` tstzrange), no overlapping versions of a key
(EXCLUDE with btree_gist), as-of views read by the API and the analyses, and retention (history.prune).
docs/history.md describes the model.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("""DO $$
        DECLARE t text;
        BEGIN
          FOREACH t IN ARRAY ARRAY['establishments', 'permits', 'inspections', 'natura2000_habitats',
                                   'housing_sites'] LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', t || '_history_ins', t);
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', t || '_history_upd', t);
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', t || '_history_del', t);
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON twin.%I', t || '_history_trunc', t);
          END LOOP;
        END $$""")
    op.execute("DROP SCHEMA IF EXISTS history CASCADE")
