"""3D BAG: the buildings' roof type and volume (twin ingest buildings 3dbag.gpkg), and the ingest mode
``enrich`` (update only the values a file has, insert the rest) in the runs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("ALTER TABLE twin.buildings DROP COLUMN IF EXISTS roof_type, DROP COLUMN IF EXISTS volume_m3")
    op.execute("UPDATE twin.ingest_runs SET mode = 'upsert' WHERE mode = 'enrich'")
    op.execute("ALTER TABLE twin.ingest_runs DROP CONSTRAINT ingest_runs_mode_check, "
               "ADD CONSTRAINT ingest_runs_mode_check CHECK (mode IN ('upsert', 'replace'))")
