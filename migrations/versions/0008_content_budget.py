"""Bound the cached contents: when each user's contents were last searched (the least
recently searched are evicted first when the contents outgrow their budget), and how
many bytes each file's chunks hold (UTF-8 as stored, which invalid bytes in a download
make larger than the bytes received). Rows cached before this have no size of their
chunks: they are counted by their ``size`` until their file is fetched again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "searched_at",
            TIMESTAMP,
            nullable=True,
            comment="last time a search read its contents (to within a few minutes)",
        ),
    )
    op.add_column(
        "file_contents",
        sa.Column("chunk_bytes", sa.BigInteger(), nullable=True, comment="bytes its chunks hold"),
    )


def downgrade() -> None:
    op.drop_column("file_contents", "chunk_bytes")
    op.drop_column("users", "searched_at")
