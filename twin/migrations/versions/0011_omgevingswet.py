"""Real deliveries (issue 16): establishments.bal_regime (the Bal's vergunningplichtig / meldingsplichtig /
informatieplichtig next to the Activiteitenbesluit type), establishments.natural_person_owner (eenmanszaak, vof,
maatschap, cv), and inspections.repaired_on (CIM-VTH-Flo Hersteldatum: the date the violation was found ended).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute((Path(__file__).with_suffix(".sql")).read_text())


def downgrade() -> None:
    op.execute("ALTER TABLE twin.inspections DROP COLUMN IF EXISTS repaired_on")
    op.execute("ALTER TABLE twin.establishments DROP COLUMN IF EXISTS natural_person_owner, "
               "DROP COLUMN IF EXISTS bal_regime")
