"""BAG addresses (twin.addresses, a public layer) and the end date of an establishment (ended_on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from pathlib import Path

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS twin.addresses;
        DELETE FROM twin.ingest_deferred_indexes WHERE table_name = 'addresses';
        ALTER TABLE twin.establishments DROP CONSTRAINT IF EXISTS establishments_ended_after_start;
        ALTER TABLE twin.establishments DROP COLUMN IF EXISTS ended_on;
        CREATE OR REPLACE FUNCTION twin.ingest_defer_indexes(layer_table text) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          r record;
          n integer := 0;
          is_empty boolean;
        BEGIN
          IF layer_table NOT IN ('municipalities', 'establishments', 'permits', 'inspections',
                                 'natura2000_habitats', 'housing_sites', 'buildings', 'deposition_hexagons') THEN
            RAISE EXCEPTION 'ingest_defer_indexes: % is not a layer table', layer_table;
          END IF;
          EXECUTE format('SELECT NOT EXISTS (SELECT 1 FROM twin.%I)', layer_table) INTO is_empty;
          IF NOT is_empty THEN
            RAISE EXCEPTION 'ingest_defer_indexes: twin.% is not empty', layer_table;
          END IF;
          FOR r IN
            SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = format('twin.%I', layer_table)::regclass
              AND NOT i.indisprimary AND NOT i.indisunique
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
          LOOP
            INSERT INTO twin.ingest_deferred_indexes VALUES (r.name, layer_table, r.def);
            EXECUTE format('DROP INDEX twin.%I', r.name);
            n := n + 1;
          END LOOP;
          RETURN n;
        END $$;
        """
    )
