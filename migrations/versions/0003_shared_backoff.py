"""GitHub back-off shared by every server: a user's retry time and a credential's block.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "retry_at",
            TIMESTAMP,
            nullable=True,
            comment="GitHub failed for this user; serve the cache until then",
        ),
    )
    op.create_table(
        "github_blocks",
        sa.Column("credential", sa.String(64), nullable=False),
        sa.Column(
            "blocked_until",
            TIMESTAMP,
            nullable=False,
            comment="no API request before this time",
        ),
        sa.Column(
            "hintless_strikes",
            sa.Integer(),
            nullable=False,
            comment="secondary limits in a row that named no wait",
        ),
        sa.PrimaryKeyConstraint("credential", name=op.f("pk_github_blocks")),
    )


def downgrade() -> None:
    op.drop_table("github_blocks")
    op.drop_column("users", "retry_at")
