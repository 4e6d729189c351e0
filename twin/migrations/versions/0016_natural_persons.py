"""Natural persons (issue 17): one predicate twin.is_natural_person (sole proprietors and partnerships of natural
persons: vof, maatschap, cv) for the advisors' row-level security on inspections; a trigger keeps
establishments.natural_person_owner complete so that masking reads one column.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS establishments_natural_person ON twin.establishments")
    op.execute("DROP FUNCTION IF EXISTS twin.establishments_natural_person()")
    op.execute("DROP POLICY IF EXISTS inspections_advisor ON twin.inspections")
    op.execute("CREATE POLICY inspections_advisor ON twin.inspections FOR SELECT TO twin_api_advisor USING "
               "(establishment_id NOT IN (SELECT e.establishment_id FROM twin.establishments e "
               "WHERE e.sole_proprietor))")
    op.execute("DROP FUNCTION IF EXISTS twin.is_natural_person(boolean, boolean, text)")
