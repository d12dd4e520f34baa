"""Remember which client asked for each search job, so that the jobs one client may
have waiting or running can be bounded across servers. Jobs queued before this have
no client: they count towards the overall bound only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "search_jobs",
        sa.Column(
            "client", sa.String(64), nullable=True, comment="who asked for it, for its bound"
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("search_jobs") as batch:
        batch.drop_column("client")
