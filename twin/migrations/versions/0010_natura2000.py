"""Natura 2000 areas (PDOK) as a layer, and BIJ12 habitat maps as they come: all habitat types of a polygon
kept (natura2000_habitats.habitat_types, the view natura2000_habitat_types), no area name required.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None



def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    sql = (Path(__file__).with_suffix(".sql")).read_text()
    functions = sql[sql.index("CREATE OR REPLACE FUNCTION"):]
    op.execute(functions.replace(", 'natura2000_areas') THEN", ") THEN"))
    op.execute("DROP VIEW IF EXISTS twin.natura2000_habitat_types")
    op.execute("DELETE FROM twin.layer_versions WHERE table_name = 'natura2000_areas'")
    op.execute("DROP TABLE IF EXISTS twin.natura2000_areas")
    op.execute("ALTER TABLE twin.natura2000_habitats DROP COLUMN IF EXISTS habitat_types")
    op.execute("UPDATE twin.natura2000_habitats SET area_name = '' WHERE area_name IS NULL")
    op.execute("ALTER TABLE twin.natura2000_habitats ALTER COLUMN area_name SET NOT NULL")
