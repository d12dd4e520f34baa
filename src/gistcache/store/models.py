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
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
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
        assert isinstance(value, datetime)  # noqa: S101 - the column type; for mypy
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The GitHub APIs the cache has talked to. Everything that came from GitHub is keyed
# on its site: one database can serve github.com and a GitHub Enterprise side by side.
sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("api_url", Text, nullable=False, unique=True, comment="normalised API base URL"),
)


def _site(*, key: bool = True) -> Column[int]:
    return Column("site_id", Integer, ForeignKey("sites.id"), primary_key=key, nullable=False)


# One row per user whose list we asked GitHub for (or who turned out not to exist).
users = Table(
    "users",
    metadata,
    _site(),
    Column("login", String(39), primary_key=True, comment="lower-cased login"),
    Column("not_found", Boolean, nullable=False, default=False),
    Column("credential", String(64), nullable=False, comment="whose ETags list_pages holds"),
    Column("fetched_at", UTCDateTime, nullable=True, comment="last time GitHub sent a new list"),
    Column("checked_at", UTCDateTime, nullable=False, comment="last time GitHub confirmed it"),
    Column(
        "retry_at",
        UTCDateTime,
        nullable=True,
        comment="GitHub failed for this user; serve the cache until then",
    ),
    Column("github_id", BigInteger, nullable=True, comment="GitHub's numeric id"),
    Column(
        "searched_at",
        UTCDateTime,
        nullable=True,
        comment="last time a search read its contents (to within a few minutes)",
    ),
)

# The pages GitHub split the list into, with their ETags, for conditional revalidation.
list_pages = Table(
    "list_pages",
    metadata,
    Column("site_id", Integer, primary_key=True),
    Column("login", String(39), primary_key=True),
    Column("page_no", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text, nullable=True),
    ForeignKeyConstraint(
        ["site_id", "login"], ["users.site_id", "users.login"], ondelete="CASCADE"
    ),
)

# Which process is refreshing a user right now (so that others do not as well).
refresh_leases = Table(
    "refresh_leases",
    metadata,
    _site(),
    Column("login", String(39), primary_key=True),
    Column("owner", String(32), nullable=False),
    Column("until", UTCDateTime, nullable=False),
)

# GitHub's rate limit as every server sharing the database has learnt it, per credential.
github_blocks = Table(
    "github_blocks",
    metadata,
    _site(),
    Column("credential", String(64), primary_key=True),
    Column("blocked_until", UTCDateTime, nullable=False, comment="no API request before this time"),
    Column(
        "hintless_strikes",
        Integer,
        nullable=False,
        comment="secondary limits in a row that named no wait",
    ),
    Column(
        "spent",
        Boolean,
        nullable=False,
        default=False,
        server_default=false(),
        comment="the block is the primary limit spent (GET /rate_limit shows it renewed)",
    ),
    Column(
        "probed_at",
        UTCDateTime,
        nullable=True,
        comment="last time a server asked GET /rate_limit whether it is renewed",
    ),
)

# GitHub's users (GET /users/{username}) as /api/v3 serves them, revalidated by ETag.
user_profiles = Table(
    "user_profiles",
    metadata,
    _site(),
    Column("login", String(39), primary_key=True, comment="lower-cased login"),
    Column("body", Text, nullable=False, comment="GitHub's JSON, as it sent it"),
    Column("etag", Text, nullable=True),
    Column("credential", String(64), nullable=False, comment="whose ETag it is"),
    Column("checked_at", UTCDateTime, nullable=False, comment="last time GitHub confirmed it"),
    Column(
        "retry_at",
        UTCDateTime,
        nullable=True,
        comment="GitHub failed for this user; serve the cache until then",
    ),
)

gists = Table(
    "gists",
    metadata,
    Column("site_id", Integer, primary_key=True),
    Column("id", String(64), primary_key=True),  # unique per site only
    Column("owner_login", String(39), nullable=False),
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
    Column("raw", Text, nullable=True, comment="the list item as GitHub sent it"),
    ForeignKeyConstraint(
        ["site_id", "owner_login"], ["users.site_id", "users.login"], ondelete="CASCADE"
    ),
    Index("ix_gists_site_id_owner_login_position", "site_id", "owner_login", "position"),
)

gist_files = Table(
    "gist_files",
    metadata,
    Column("site_id", Integer, primary_key=True),
    Column("gist_id", String(64), primary_key=True),
    Column("filename", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("language", Text, nullable=True),
    Column("type", Text, nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("raw_url", Text, nullable=True),
    ForeignKeyConstraint(["site_id", "gist_id"], ["gists.site_id", "gists.id"], ondelete="CASCADE"),
)

# Whether a file's contents are cached, and for which of the gist's updated_at and the
# file's raw URL (which names the content's revision).
file_contents = Table(
    "file_contents",
    metadata,
    Column("site_id", Integer, primary_key=True),
    Column("gist_id", String(64), primary_key=True),
    Column("filename", Text, primary_key=True),
    Column("updated_at", UTCDateTime, nullable=False, comment="the gist's, when fetched"),
    Column("status", String(16), nullable=False, comment="text, binary or too_large"),
    Column("size", BigInteger, nullable=False, comment="bytes received"),
    Column("chunks", Integer, nullable=False),
    Column("generation", String(32), nullable=False, comment="which fetch's chunks are current"),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("raw_url", Text, nullable=True, comment="where they were fetched from"),
    Column("chunk_bytes", BigInteger, nullable=True, comment="bytes its chunks hold"),
    ForeignKeyConstraint(
        ["site_id", "gist_id", "filename"],
        ["gist_files.site_id", "gist_files.gist_id", "gist_files.filename"],
        ondelete="CASCADE",
    ),
)

# Text contents in chunks of about 1 MiB, each ending on a line boundary. Every fetch
# writes under a generation of its own; file_contents says which one is current.
file_chunks = Table(
    "file_chunks",
    metadata,
    Column("site_id", Integer, primary_key=True),
    Column("gist_id", String(64), primary_key=True),
    Column("filename", Text, primary_key=True),
    Column("generation", String(32), primary_key=True),
    Column("chunk_no", Integer, primary_key=True),
    Column("first_line", Integer, nullable=False),
    Column("size", Integer, nullable=False, comment="bytes in data"),
    Column("data", LargeBinary, nullable=False, comment="UTF-8"),
    ForeignKeyConstraint(
        ["site_id", "gist_id", "filename"],
        ["gist_files.site_id", "gist_files.gist_id", "gist_files.filename"],
        ondelete="CASCADE",
    ),
)

search_jobs = Table(
    "search_jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    _site(key=False),
    Column("status", String(16), nullable=False),
    Column("request", Text, nullable=False, comment="the search as JSON"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True, comment="a running job's claim"),
    Column("lease_token", String(36), nullable=True, comment="who holds the claim"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True, comment="problem details as JSON"),
    Column("result", Text, nullable=True, comment="the search's answer as JSON"),
    Column("files_done", Integer, nullable=True, comment="files searched so far"),
    Column("files_total", Integer, nullable=True, comment="files the search covers"),
    Column("client", String(64), nullable=True, comment="who asked for it, for its bound"),
    Index("ix_search_jobs_status_created_at", "status", "created_at"),
)

# Watches: saved searches the poller re-runs (services.watches), each owned by the API
# token that made it (``owner`` is a digest of it, never the token).
watches = Table(
    "watches",
    metadata,
    Column("id", String(36), primary_key=True),
    _site(key=False),
    Column("owner", String(64), nullable=False, comment="SHA-256 of the API token that made it"),
    Column("search", Text, nullable=False, comment="the pattern and its options as JSON"),
    Column("org", String(39), nullable=True, comment="an organisation's public members"),
    Column("interval", Integer, nullable=False, comment="seconds between two runs"),
    Column("report_existing", Boolean, nullable=False, comment="the baseline is reported"),
    Column("feed_token", String(64), nullable=False, comment="reads the feed and the events"),
    Column("webhook_url", Text, nullable=True),
    Column("webhook_secret", Text, nullable=True, comment="signs the webhook's bodies"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_run_at", UTCDateTime, nullable=False),
    Column("last_run_at", UTCDateTime, nullable=True),
    Column("paused_until", UTCDateTime, nullable=True, comment="GitHub's rate limit blocks it"),
    Column("last_error", Text, nullable=True, comment="why the last run fell short"),
    Column("runs", Integer, nullable=False, comment="runs recorded"),
    Column("lease_until", UTCDateTime, nullable=True, comment="a running poller's claim"),
    Column("lease_token", String(36), nullable=True, comment="who holds the claim"),
    Index("ix_watches_owner", "owner"),
    Index("ix_watches_next_run_at", "next_run_at"),
)

# The users a watch searches (given, or its organisation's members as last seen).
watch_users = Table(
    "watch_users",
    metadata,
    Column("watch_id", String(36), ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True),
    Column("login", String(39), primary_key=True, comment="lower-cased login"),
    Column("position", Integer, nullable=False),
    Column("baselined", Boolean, nullable=False, comment="a run recorded its baseline"),
)

# Each watched gist's revision (its updated_at) as the last run saw it: a gist is searched
# again only when it is new or this moved.
watch_gists = Table(
    "watch_gists",
    metadata,
    Column("watch_id", String(36), ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True),
    Column("gist_id", String(64), primary_key=True),
    Column("login", String(39), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Match events: one per (watch, gist, revision), whatever runs saw it.
watch_events = Table(
    "watch_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watch_id", String(36), ForeignKey("watches.id", ondelete="CASCADE"), nullable=False),
    Column("gist_id", String(64), nullable=False),
    Column("revision", String(32), nullable=False, comment="the gist's updated_at"),
    Column("login", String(39), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("baseline", Boolean, nullable=False, comment="recorded by the first run, not told"),
    Column("body", Text, nullable=False, comment="the match as JSON"),
    UniqueConstraint("watch_id", "gist_id", "revision", name="uq_watch_events_key"),
    Index("ix_watch_events_watch_id_id", "watch_id", "id"),
    # ids only grow, on SQLite too (AUTOINCREMENT): feed readers and resumed streams
    # would drop an event given the id of one pruned
    sqlite_autoincrement=True,
)

# One webhook delivery per event told, tried until it succeeds or its time runs out.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True, comment="the delivery id header"),
    Column("watch_id", String(36), ForeignKey("watches.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, ForeignKey("watch_events.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False, comment="pending, delivered or failed"),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True, comment="a sender's claim"),
    Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_watch_id", "watch_id"),
)

# Every attempt of a delivery, as the deliveries endpoint lists it.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "delivery_id",
        String(36),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("attempt", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True, comment="the receiver's answer"),
    Column("error", Text, nullable=True, comment="why no answer, or a refused address"),
    Column("duration_ms", Integer, nullable=False),
)

# Organisations' public members as GitHub last listed them, page by page with the ETags
# that revalidate them (for watches of an organisation).
org_members = Table(
    "org_members",
    metadata,
    _site(),
    Column("org", String(39), primary_key=True, comment="lower-cased login"),
    Column("pages", Text, nullable=False, comment="each page's URL, ETag, logins and next"),
    Column("checked_at", UTCDateTime, nullable=False, comment="last time GitHub confirmed it"),
)
