"""Organisations' public members as GitHub last listed them, with each page's ETag, so
that a watch of an organisation revalidates them with conditional requests.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "org_members",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("org", sa.String(39), nullable=False, comment="lower-cased login"),
        sa.Column(
            "pages",
            sa.Text(),
            nullable=False,
            comment="each page's URL, ETag, logins and next",
        ),
        sa.Column("checked_at", TIMESTAMP, nullable=False, comment="last time GitHub confirmed it"),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_org_members_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("site_id", "org", name=op.f("pk_org_members")),
    )


def downgrade() -> None:
    op.drop_table("org_members")
