"""Keep each listed gist's item as GitHub sent it, and the user's numeric id, for
answers in GitHub's own shape. Rows cached before this have no item; they are filled
at the user's next revalidation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "gists",
        sa.Column("raw", sa.Text(), nullable=True, comment="the list item as GitHub sent it"),
    )
    op.add_column(
        "users",
        sa.Column("github_id", sa.BigInteger(), nullable=True, comment="GitHub's numeric id"),
    )


def downgrade() -> None:
    op.drop_column("users", "github_id")
    op.drop_column("gists", "raw")
