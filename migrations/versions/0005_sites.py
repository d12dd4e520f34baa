"""Key everything that came from GitHub on its site (the API base URL); remember which
raw URL each file's contents were fetched from.

Until now users, lists, contents and the rate-limit block were keyed on the login (or
the credential) alone, so one database pointed at another GitHub served that GitHub's
rows. The rows already cached are kept under the site configured when this migration
runs (GISTCACHE_GITHUB_API_URL, by default https://api.github.com).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic import op

from gistcache.settings import Settings
from gistcache.store.sites import site_url

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


@dataclass(frozen=True)
class Key:
    """A table's primary key and the foreign keys that lead to its parent, before and after."""

    table: str
    columns: list[str]  # the primary key without site_id; empty: site_id is no key part
    parent: str | None = None  # the table whose key the old foreign key named
    old_fk: list[str] = field(default_factory=list)  # its columns, in the parent's key order

    @property
    def old_fk_name(self) -> str:
        return f"fk_{self.table}_{self.old_fk[0]}_{self.parent}"

    @property
    def new_fk_name(self) -> str:
        return f"fk_{self.table}_site_id_{self.parent or 'sites'}"


# parents before children
KEYS = [
    Key("users", ["login"]),
    Key("list_pages", ["login", "page_no"], "users", ["login"]),
    Key("refresh_leases", ["login"]),
    Key("github_blocks", ["credential"]),
    Key("gists", ["id"], "users", ["owner_login"]),
    Key("gist_files", ["gist_id", "filename"], "gists", ["gist_id"]),
    Key("file_contents", ["gist_id", "filename"], "gist_files", ["gist_id", "filename"]),
    Key(
        "file_chunks",
        ["gist_id", "filename", "generation", "chunk_no"],
        "gist_files",
        ["gist_id", "filename"],
    ),
    Key("search_jobs", []),
]
PARENT_KEY = {"users": ["login"], "gists": ["id"], "gist_files": ["gist_id", "filename"]}
OLD_INDEX = ("ix_gists_owner_login_position", ["owner_login", "position"])
NEW_INDEX = ("ix_gists_site_id_owner_login_position", ["site_id", "owner_login", "position"])


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _configured_site() -> str:
    return site_url(Settings.from_env().github_api_url)


def _old_fk(batch: Any, key: Key, *, create: bool) -> None:
    assert key.parent is not None  # noqa: S101 - KEYS below; for mypy
    if create:
        batch.create_foreign_key(
            key.old_fk_name, key.parent, key.old_fk, PARENT_KEY[key.parent], ondelete="CASCADE"
        )
    else:
        batch.drop_constraint(key.old_fk_name, type_="foreignkey")


def _new_fk(batch: Any, key: Key, *, create: bool) -> None:
    if create:
        if key.parent is None:
            batch.create_foreign_key(key.new_fk_name, "sites", ["site_id"], ["id"])
        else:
            batch.create_foreign_key(
                key.new_fk_name,
                key.parent,
                ["site_id", *key.old_fk],
                ["site_id", *PARENT_KEY[key.parent]],
                ondelete="CASCADE",
            )
    else:
        batch.drop_constraint(key.new_fk_name, type_="foreignkey")


def _index(batch: Any, table: str, *, old: bool, create: bool) -> None:
    if table != "gists":
        return
    name, columns = OLD_INDEX if old else NEW_INDEX
    if create:
        batch.create_index(name, columns)
    else:
        batch.drop_index(name)


def _set_key(batch: Any, key: Key, columns: list[str]) -> None:
    if key.columns:
        batch.drop_constraint(f"pk_{key.table}", type_="primary")
        batch.create_primary_key(f"pk_{key.table}", columns)


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("api_url", sa.Text(), nullable=False, comment="normalised API base URL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("api_url", name=op.f("uq_sites_api_url")),
    )
    sites = sa.table("sites", sa.column("id", sa.Integer()), sa.column("api_url", sa.Text()))
    name = _configured_site()
    op.execute(sites.insert().values(api_url=name))
    site = op.get_bind().execute(sa.select(sites.c.id).where(sites.c.api_url == name)).scalar_one()
    # the rows cached so far came from the configured GitHub (a constant default fills
    # them in without rewriting the table; it is dropped at once)
    for key in KEYS:
        op.add_column(
            key.table,
            sa.Column("site_id", sa.Integer(), nullable=False, server_default=str(int(site))),
        )
    op.add_column(
        "file_contents",
        sa.Column("raw_url", sa.Text(), nullable=True, comment="where they were fetched from"),
    )
    # contents current for their gist's updated_at were fetched from the listed raw URL
    op.execute(
        "UPDATE file_contents SET raw_url = (SELECT gf.raw_url FROM gist_files gf"
        " JOIN gists g ON g.id = gf.gist_id"
        " WHERE gf.gist_id = file_contents.gist_id AND gf.filename = file_contents.filename"
        " AND g.updated_at = file_contents.updated_at)"
    )
    if _sqlite():
        # SQLite alters a key only by copying the table: once per table, all at once
        for key in KEYS:
            with op.batch_alter_table(key.table, recreate="always") as batch:
                batch.alter_column("site_id", server_default=None, existing_type=sa.Integer())
                if key.parent is not None:
                    _old_fk(batch, key, create=False)
                _index(batch, key.table, old=True, create=False)
                _set_key(batch, key, ["site_id", *key.columns])
                _new_fk(batch, key, create=True)
                _index(batch, key.table, old=False, create=True)
        return
    # PostgreSQL alters in place; a parent's key can change only once no foreign key
    # leans on it
    for key in reversed(KEYS):
        if key.parent is not None:
            _old_fk(_OnTable(key.table), key, create=False)
    _index(_OnTable("gists"), "gists", old=True, create=False)
    for key in KEYS:
        op.alter_column(key.table, "site_id", server_default=None, existing_type=sa.Integer())
        if key.columns:
            op.execute(
                f"ALTER TABLE {key.table} DROP CONSTRAINT pk_{key.table},"
                f" ADD CONSTRAINT pk_{key.table} PRIMARY KEY"
                f" ({', '.join(['site_id', *key.columns])})"
            )
    for key in KEYS:
        _new_fk(_OnTable(key.table), key, create=True)
    _index(_OnTable("gists"), "gists", old=False, create=True)


class _OnTable:
    """``op``'s constraint and index calls for one table, shaped like a batch's."""

    def __init__(self, table: str) -> None:
        self.table = table

    def create_foreign_key(
        self, name: str, referent: str, local: list[str], remote: list[str], **kw: Any
    ) -> None:
        op.create_foreign_key(name, self.table, referent, local, remote, **kw)

    def drop_constraint(self, name: str, type_: str) -> None:
        op.drop_constraint(name, self.table, type_=type_)

    def create_index(self, name: str, columns: list[str]) -> None:
        op.create_index(name, self.table, columns)

    def drop_index(self, name: str) -> None:
        op.drop_index(name, table_name=self.table)


def downgrade() -> None:
    # only the configured site's rows fit the narrower keys; the other sites' go
    name = _configured_site()
    bind = op.get_bind()
    site = bind.execute(
        sa.text("SELECT id FROM sites WHERE api_url = :name"), {"name": name}
    ).scalar_one_or_none()
    for key in reversed(KEYS):
        if site is None:
            op.execute(f"DELETE FROM {key.table}")  # noqa: S608 - table names of KEYS
        else:
            op.execute(f"DELETE FROM {key.table} WHERE site_id <> {int(site)}")  # noqa: S608 - KEYS, an int
    if _sqlite():
        for key in KEYS:
            with op.batch_alter_table(key.table, recreate="always") as batch:
                _new_fk(batch, key, create=False)
                _index(batch, key.table, old=False, create=False)
                if key.columns:
                    batch.drop_constraint(f"pk_{key.table}", type_="primary")
                batch.drop_column("site_id")
                if key.table == "file_contents":
                    batch.drop_column("raw_url")
                if key.columns:
                    batch.create_primary_key(f"pk_{key.table}", key.columns)
                if key.parent is not None:
                    _old_fk(batch, key, create=True)
                _index(batch, key.table, old=True, create=True)
    else:
        for key in reversed(KEYS):
            _new_fk(_OnTable(key.table), key, create=False)
        _index(_OnTable("gists"), "gists", old=False, create=False)
        for key in KEYS:
            if key.columns:
                op.execute(
                    f"ALTER TABLE {key.table} DROP CONSTRAINT pk_{key.table},"
                    f" DROP COLUMN site_id,"
                    f" ADD CONSTRAINT pk_{key.table} PRIMARY KEY ({', '.join(key.columns)})"
                )
            else:
                op.drop_column(key.table, "site_id")
        op.drop_column("file_contents", "raw_url")
        for key in KEYS:
            if key.parent is not None:
                _old_fk(_OnTable(key.table), key, create=True)
        _index(_OnTable("gists"), "gists", old=True, create=True)
    op.drop_table("sites")
