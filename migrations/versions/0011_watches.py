"""Watches: saved searches re-run by one poller across the servers, their users, the
revision of each gist the last run saw, their match events (one per watch, gist and
revision: the unique key that makes a run killed half-way report nothing twice), and
their webhook deliveries with every attempt.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column(
            "owner", sa.String(64), nullable=False, comment="SHA-256 of the API token that made it"
        ),
        sa.Column(
            "search", sa.Text(), nullable=False, comment="the pattern and its options as JSON"
        ),
        sa.Column("org", sa.String(39), nullable=True, comment="an organisation's public members"),
        sa.Column("interval", sa.Integer(), nullable=False, comment="seconds between two runs"),
        sa.Column(
            "report_existing", sa.Boolean(), nullable=False, comment="the baseline is reported"
        ),
        sa.Column(
            "feed_token", sa.String(64), nullable=False, comment="reads the feed and the events"
        ),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=True, comment="signs the webhook's bodies"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("next_run_at", TIMESTAMP, nullable=False),
        sa.Column("last_run_at", TIMESTAMP, nullable=True),
        sa.Column(
            "paused_until", TIMESTAMP, nullable=True, comment="GitHub's rate limit blocks it"
        ),
        sa.Column("last_error", sa.Text(), nullable=True, comment="why the last run fell short"),
        sa.Column("runs", sa.Integer(), nullable=False, comment="runs recorded"),
        sa.Column("lease_until", TIMESTAMP, nullable=True, comment="a running poller's claim"),
        sa.Column("lease_token", sa.String(36), nullable=True, comment="who holds the claim"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_watches_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watches")),
    )
    op.create_index("ix_watches_owner", "watches", ["owner"])
    op.create_index("ix_watches_next_run_at", "watches", ["next_run_at"])
    op.create_table(
        "watch_users",
        sa.Column("watch_id", sa.String(36), nullable=False),
        sa.Column("login", sa.String(39), nullable=False, comment="lower-cased login"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("baselined", sa.Boolean(), nullable=False, comment="a run recorded its baseline"),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["watches.id"],
            name=op.f("fk_watch_users_watch_id_watches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("watch_id", "login", name=op.f("pk_watch_users")),
    )
    op.create_table(
        "watch_gists",
        sa.Column("watch_id", sa.String(36), nullable=False),
        sa.Column("gist_id", sa.String(64), nullable=False),
        sa.Column("login", sa.String(39), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["watches.id"],
            name=op.f("fk_watch_gists_watch_id_watches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("watch_id", "gist_id", name=op.f("pk_watch_gists")),
    )
    op.create_table(
        "watch_events",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("watch_id", sa.String(36), nullable=False),
        sa.Column("gist_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.String(32), nullable=False, comment="the gist's updated_at"),
        sa.Column("login", sa.String(39), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column(
            "baseline",
            sa.Boolean(),
            nullable=False,
            comment="recorded by the first run, not told",
        ),
        sa.Column("body", sa.Text(), nullable=False, comment="the match as JSON"),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["watches.id"],
            name=op.f("fk_watch_events_watch_id_watches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_events")),
        sa.UniqueConstraint("watch_id", "gist_id", "revision", name="uq_watch_events_key"),
        sqlite_autoincrement=True,  # ids never given again once pruned
    )
    op.create_index("ix_watch_events_watch_id_id", "watch_events", ["watch_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), nullable=False, comment="the delivery id header"),
        sa.Column("watch_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, comment="pending, delivered or failed"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True, comment="a sender's claim"),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["watches.id"],
            name=op.f("fk_webhook_deliveries_watch_id_watches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["watch_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_watch_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_webhook_deliveries_watch_id", "webhook_deliveries", ["watch_id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True, comment="the receiver's answer"),
        sa.Column("error", sa.Text(), nullable=True, comment="why no answer, or a refused address"),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name=op.f("pk_webhook_attempts")),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("watch_events")
    op.drop_table("watch_gists")
    op.drop_table("watch_users")
    op.drop_table("watches")
