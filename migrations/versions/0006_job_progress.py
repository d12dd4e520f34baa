"""Store a search job's progress on the job, so that any server can report it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "search_jobs",
        sa.Column("files_done", sa.Integer(), nullable=True, comment="files searched so far"),
    )
    op.add_column(
        "search_jobs",
        sa.Column("files_total", sa.Integer(), nullable=True, comment="files the search covers"),
    )


def downgrade() -> None:
    op.drop_column("search_jobs", "files_total")
    op.drop_column("search_jobs", "files_done")
