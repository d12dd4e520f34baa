"""Tables of the cache. Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo; we re-attach it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One row per user whose list we asked GitHub for (or who turned out not to exist).
users = Table(
    "users",
    metadata,
    Column("login", String(39), primary_key=True, comment="lower-cased login"),
    Column("not_found", Boolean, nullable=False, default=False),
    Column("credential", String(64), nullable=False, comment="whose ETags list_pages holds"),
    Column("fetched_at", UTCDateTime, nullable=True, comment="last time GitHub sent a new list"),
    Column("checked_at", UTCDateTime, nullable=False, comment="last time GitHub confirmed it"),
)

# The pages GitHub split the list into, with their ETags, for conditional revalidation.
list_pages = Table(
    "list_pages",
    metadata,
    Column("login", String(39), ForeignKey("users.login", ondelete="CASCADE"), primary_key=True),
    Column("page_no", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text, nullable=True),
)

gists = Table(
    "gists",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "owner_login", String(39), ForeignKey("users.login", ondelete="CASCADE"), nullable=False
    ),
    Column("page_no", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("owner", String(39), nullable=True, comment="login as GitHub spells it"),
    Column("html_url", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("public", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("comments", Integer, nullable=False),
    Column("truncated", Boolean, nullable=False, default=False),
    Index("ix_gists_owner_login_position", "owner_login", "position"),
)

gist_files = Table(
    "gist_files",
    metadata,
    Column("gist_id", String(64), ForeignKey("gists.id", ondelete="CASCADE"), primary_key=True),
    Column("filename", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("language", Text, nullable=True),
    Column("type", Text, nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("raw_url", Text, nullable=True),
)
