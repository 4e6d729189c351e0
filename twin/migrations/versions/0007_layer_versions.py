"""A version number per layer and raster table (twin.layer_versions), raised by statement-level triggers on every
change, so that the API's caches (tiles, the housing analysis) know when a cached answer is stale.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from pathlib import Path

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("municipalities", "establishments", "permits", "inspections", "natura2000_habitats", "housing_sites",
          "buildings", "addresses", "deposition_hexagons", "nitrogen_deposition", "nitrogen_deposition_years")


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    for t in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {t}_version ON twin.{t}")
        op.execute(f"DROP TRIGGER IF EXISTS {t}_version_truncate ON twin.{t}")
    op.execute("DROP FUNCTION IF EXISTS twin.layer_version_bump()")
    op.execute("DROP TABLE IF EXISTS twin.layer_versions")
