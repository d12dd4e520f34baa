"""Key file chunks on their fetch generation too, as the models always said.

0002 made the primary key (gist_id, filename, chunk_no), so two fetches of one file
overlapping in time collided on their first chunk and the later one was dropped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _set_key(["gist_id", "filename", "generation", "chunk_no"])


def downgrade() -> None:
    # only the current generation of each file can stay under the narrower key
    op.execute(
        "DELETE FROM file_chunks WHERE NOT EXISTS (SELECT 1 FROM file_contents fc"
        " WHERE fc.gist_id = file_chunks.gist_id AND fc.filename = file_chunks.filename"
        " AND fc.generation = file_chunks.generation)"
    )
    _set_key(["gist_id", "filename", "chunk_no"])


def _set_key(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        # in place, one statement: the table is locked while the new index is built,
        # but nothing is copied and no other table is locked
        op.execute(
            "ALTER TABLE file_chunks DROP CONSTRAINT pk_file_chunks,"
            f" ADD CONSTRAINT pk_file_chunks PRIMARY KEY ({', '.join(columns)})"
        )
        return
    # SQLite cannot alter a primary key: batch mode copies the table into a new one
    with op.batch_alter_table("file_chunks", recreate="always") as batch:
        batch.drop_constraint("pk_file_chunks", type_="primary")
        batch.create_primary_key("pk_file_chunks", columns)
