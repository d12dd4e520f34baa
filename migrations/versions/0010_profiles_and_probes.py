"""GitHub's users (``GET /users/{username}``) cached per site for ``/api/v3``, with the
ETag to revalidate them; and what a shared rate-limit block needs so that it can be
lifted early: whether it is GitHub's primary limit spent (which ``GET /rate_limit``
sees renewed; a secondary limit it does not show) and when a server last asked.
Blocks stored before this are taken as not lifted early: they end at their time.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_profiles",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(39), nullable=False, comment="lower-cased login"),
        sa.Column("body", sa.Text(), nullable=False, comment="GitHub's JSON, as it sent it"),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("credential", sa.String(64), nullable=False, comment="whose ETag it is"),
        sa.Column("checked_at", TIMESTAMP, nullable=False, comment="last time GitHub confirmed it"),
        sa.Column(
            "retry_at",
            TIMESTAMP,
            nullable=True,
            comment="GitHub failed for this user; serve the cache until then",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_user_profiles_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("site_id", "login", name=op.f("pk_user_profiles")),
    )
    op.add_column(
        "github_blocks",
        sa.Column(
            "spent",
            sa.Boolean(),
            nullable=False,
            server_default=sa.false(),
            comment="the block is the primary limit spent (GET /rate_limit shows it renewed)",
        ),
    )
    op.add_column(
        "github_blocks",
        sa.Column(
            "probed_at",
            TIMESTAMP,
            nullable=True,
            comment="last time a server asked GET /rate_limit whether it is renewed",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("github_blocks") as batch:
        batch.drop_column("probed_at")
        batch.drop_column("spent")
    op.drop_table("user_profiles")
