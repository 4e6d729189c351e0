"""Analyses kept per data version (issue 24): twin.priority_rankings / twin.priority_ranking_items (the full
inspection-priority ranking, row-level security like the inspections) and twin.analysis_results (housing-nitrogen
over every site), written only through SECURITY DEFINER store functions; a partial GiST index of the 1 ha
deposition hexagons.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS twin.deposition_hexagons_1ha_geom_idx")
    op.execute("DROP FUNCTION IF EXISTS twin.analysis_result_store(text, text, jsonb, double precision, jsonb)")
    op.execute("DROP FUNCTION IF EXISTS twin.priority_ranking_store(text, date, integer, text, jsonb, "
               "double precision, text[], text[], boolean[], double precision[], double precision[])")
    op.execute("DROP TABLE IF EXISTS twin.analysis_results")
    op.execute("DROP TABLE IF EXISTS twin.priority_ranking_items")
    op.execute("DROP TABLE IF EXISTS twin.priority_rankings")
