"""Cache of users' gist lists: users, their list pages, gists and file metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("login", sa.String(39), nullable=False, comment="lower-cased login"),
        sa.Column("not_found", sa.Boolean(), nullable=False),
        sa.Column(
            "credential", sa.String(64), nullable=False, comment="whose ETags list_pages holds"
        ),
        sa.Column(
            "fetched_at", TIMESTAMP, nullable=True, comment="last time GitHub sent a new list"
        ),
        sa.Column("checked_at", TIMESTAMP, nullable=False, comment="last time GitHub confirmed it"),
        sa.PrimaryKeyConstraint("login", name=op.f("pk_users")),
    )
    op.create_table(
        "list_pages",
        sa.Column("login", sa.String(39), nullable=False),
        sa.Column("page_no", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["login"],
            ["users.login"],
            name=op.f("fk_list_pages_login_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("login", "page_no", name=op.f("pk_list_pages")),
    )
    op.create_table(
        "refresh_leases",
        sa.Column("login", sa.String(39), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("until", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("login", name=op.f("pk_refresh_leases")),
    )
    op.create_table(
        "gists",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner_login", sa.String(39), nullable=False),
        sa.Column("page_no", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(39), nullable=True, comment="login as GitHub spells it"),
        sa.Column("html_url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("comments", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_login"],
            ["users.login"],
            name=op.f("fk_gists_owner_login_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gists")),
    )
    op.create_index("ix_gists_owner_login_position", "gists", ["owner_login", "position"])
    op.create_table(
        "gist_files",
        sa.Column("gist_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("raw_url", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["gist_id"],
            ["gists.id"],
            name=op.f("fk_gist_files_gist_id_gists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gist_id", "filename", name=op.f("pk_gist_files")),
    )


def downgrade() -> None:
    op.drop_table("gist_files")
    op.drop_index("ix_gists_owner_login_position", table_name="gists")
    op.drop_table("gists")
    op.drop_table("refresh_leases")
    op.drop_table("list_pages")
    op.drop_table("users")
