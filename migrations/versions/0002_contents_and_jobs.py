"""File contents in line-aligned chunks keyed on the gist's updated_at; search jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "file_contents",
        sa.Column("gist_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False, comment="the gist's, when fetched"),
        sa.Column("status", sa.String(16), nullable=False, comment="text, binary or too_large"),
        sa.Column("size", sa.BigInteger(), nullable=False, comment="bytes received"),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column(
            "generation",
            sa.String(32),
            nullable=False,
            comment="which fetch's chunks are current",
        ),
        sa.Column("fetched_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["gist_id", "filename"],
            ["gist_files.gist_id", "gist_files.filename"],
            name=op.f("fk_file_contents_gist_id_gist_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gist_id", "filename", name=op.f("pk_file_contents")),
    )
    op.create_table(
        "file_chunks",
        sa.Column("gist_id", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("generation", sa.String(32), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("first_line", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False, comment="bytes in data"),
        sa.Column("data", sa.LargeBinary(), nullable=False, comment="UTF-8"),
        sa.ForeignKeyConstraint(
            ["gist_id", "filename"],
            ["gist_files.gist_id", "gist_files.filename"],
            name=op.f("fk_file_chunks_gist_id_gist_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("gist_id", "filename", "chunk_no", name=op.f("pk_file_chunks")),
    )
    op.create_table(
        "search_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request", sa.Text(), nullable=False, comment="the search as JSON"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True, comment="a running job's claim"),
        sa.Column("lease_token", sa.String(36), nullable=True, comment="who holds the claim"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True, comment="problem details as JSON"),
        sa.Column("result", sa.Text(), nullable=True, comment="the search's answer as JSON"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_jobs")),
    )
    op.create_index("ix_search_jobs_status_created_at", "search_jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_search_jobs_status_created_at", table_name="search_jobs")
    op.drop_table("search_jobs")
    op.drop_table("file_chunks")
    op.drop_table("file_contents")
