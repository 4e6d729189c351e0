"""Data quality: the pieces of twin.quality_land know their municipality (municipality_code), so the
municipality-matches-location rules test a point against its own municipality's small pieces instead of the
whole municipality polygons.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    # Back to the 0005 trigger function (pieces without a code), then drop the column.
    op.execute(
        """
        DO $do$
        DECLARE postgis_schema text := (SELECT n.nspname FROM pg_extension e
                                        JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis');
        BEGIN
          EXECUTE format($f$
            CREATE OR REPLACE FUNCTION twin.quality_refresh_land() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, %I, pg_temp AS $body$
            BEGIN
              DELETE FROM twin.quality_land;
              INSERT INTO twin.quality_land (geom)
                SELECT p FROM (SELECT (ST_Dump(ST_Subdivide(m.geom, 128))).geom AS p FROM twin.municipalities m) s
                WHERE GeometryType(p) = 'POLYGON';
              RETURN NULL;
            END $body$;
          $f$, postgis_schema);
        END $do$;
        ALTER TABLE twin.quality_land DROP COLUMN IF EXISTS municipality_code;
        """
    )
