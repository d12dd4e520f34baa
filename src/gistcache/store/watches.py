"""Watches, the revision of each gist their last run saw, their match events and their
webhook deliveries. Claiming a due watch or a due delivery is atomic, as for search
jobs: on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, on SQLite through its single
writer. In the caller's session and transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, true, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.store.models import (
    org_members,
    watch_events,
    watch_gists,
    watch_users,
    watches,
    webhook_attempts,
    webhook_deliveries,
)
from gistcache.store.sql import dialect_insert, in_chunks, is_postgres

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WatchRow:
    """A watch as stored, with its users in order."""

    id: str
    owner: str
    search: str  # the pattern and its options as JSON
    org: str | None
    interval: int
    report_existing: bool
    feed_token: str
    webhook_url: str | None
    webhook_secret: str | None
    created_at: datetime
    next_run_at: datetime
    last_run_at: datetime | None
    paused_until: datetime | None
    last_error: str | None
    runs: int
    users: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WatchUser:
    login: str
    baselined: bool


@dataclass(frozen=True, slots=True)
class SeenGist:
    login: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    watch_id: str
    gist_id: str
    revision: str
    login: str
    created_at: datetime
    body: str  # the match as JSON


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery claimed for its next attempt, with what sending it needs."""

    id: str
    watch_id: str
    event_id: int
    attempts: int
    created_at: datetime
    url: str
    secret: str
    event: EventRow


@dataclass(frozen=True, slots=True)
class AttemptRow:
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """A delivery and its attempts, as the deliveries endpoint lists it."""

    id: str
    event_id: int
    status: str
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: tuple[AttemptRow, ...]


_WATCH = tuple(watches.c[name] for name in WatchRow.__dataclass_fields__ if name != "users")
_EVENT = tuple(watch_events.c[name] for name in EventRow.__dataclass_fields__)


def _event(row: Row[Any]) -> EventRow:
    return EventRow(**{name: row._mapping[name] for name in EventRow.__dataclass_fields__})


class Watches:
    """The site's watches in one session. A watch's owner is the digest of the token that
    made it: the API's reads and deletes name it, so that another token's watches are
    not there for it."""

    def __init__(self, session: AsyncSession, site: int) -> None:
        self._session = session
        self._site = site

    async def create(self, row: WatchRow) -> None:
        values = {column.name: getattr(row, column.name) for column in _WATCH}
        await self._session.execute(
            watches.insert().values(site_id=self._site, lease_until=None, **values)
        )
        await self.set_users(row.id, row.users)

    async def set_users(self, watch_id: str, logins: Sequence[str]) -> None:
        """The watch's users, in order: new ones are not baselined yet, those that
        stay keep what they were, those gone are forgotten with their gists."""
        known = {user.login: user.baselined for user in await self.users(watch_id)}
        gone = set(known) - set(logins)
        if gone:
            await self._session.execute(
                delete(watch_users).where(
                    watch_users.c.watch_id == watch_id, watch_users.c.login.in_(gone)
                )
            )
            await self._session.execute(
                delete(watch_gists).where(
                    watch_gists.c.watch_id == watch_id, watch_gists.c.login.in_(gone)
                )
            )
        rows = [
            {
                "watch_id": watch_id,
                "login": login,
                "position": position,
                "baselined": known.get(login, False),
            }
            for position, login in enumerate(logins)
        ]
        if not rows:
            return
        stmt = dialect_insert(self._session)(watch_users)
        stmt = stmt.on_conflict_do_update(
            index_elements=["watch_id", "login"], set_={"position": stmt.excluded.position}
        )
        for chunk in in_chunks(rows):
            await self._session.execute(stmt, list(chunk))

    async def users(self, watch_id: str) -> list[WatchUser]:
        rows = await self._session.execute(
            select(watch_users.c.login, watch_users.c.baselined)
            .where(watch_users.c.watch_id == watch_id)
            .order_by(watch_users.c.position)
        )
        return [WatchUser(row.login, bool(row.baselined)) for row in rows]

    async def get(self, watch_id: str) -> WatchRow | None:
        row = (
            await self._session.execute(
                select(*_WATCH).where(watches.c.id == watch_id, watches.c.site_id == self._site)
            )
        ).one_or_none()
        return None if row is None else await self._with_users(row)

    async def count_owned(self, owner: str) -> int:
        count = await self._session.scalar(
            select(func.count())
            .select_from(watches)
            .where(watches.c.owner == owner, watches.c.site_id == self._site)
        )
        return int(count or 0)

    async def owned_by(self, owner: str) -> list[WatchRow]:
        rows = await self._session.execute(
            select(*_WATCH)
            .where(watches.c.owner == owner, watches.c.site_id == self._site)
            .order_by(watches.c.created_at, watches.c.id)
        )
        return [await self._with_users(row) for row in rows.all()]

    async def _with_users(self, row: Row[Any]) -> WatchRow:
        users = tuple(user.login for user in await self.users(row.id))
        return WatchRow(**row._mapping, users=users)

    async def delete(self, watch_id: str, owner: str) -> bool:
        result = await self._session.execute(
            delete(watches).where(
                watches.c.id == watch_id, watches.c.owner == owner, watches.c.site_id == self._site
            )
        )
        return _changed(result)

    async def count(self) -> int:
        return int(
            await self._session.scalar(
                select(func.count()).select_from(watches).where(watches.c.site_id == self._site)
            )
            or 0
        )

    async def claim_due(self, now: datetime, lease_until: datetime, token: str) -> WatchRow | None:
        """Take the watch due longest ago whose run no poller holds (or whose poller's
        lease ran out); ``token`` names the claim."""
        candidate = (
            select(watches.c.id)
            .where(
                watches.c.site_id == self._site,
                watches.c.next_run_at <= now,
                or_(watches.c.lease_until.is_(None), watches.c.lease_until < now),
            )
            .order_by(watches.c.next_run_at)
            .limit(1)
        )
        if is_postgres(self._session):
            candidate = candidate.with_for_update(skip_locked=True)
        row = (
            await self._session.execute(
                update(watches)
                .where(watches.c.id == candidate.scalar_subquery())
                .values(lease_until=lease_until, lease_token=token)
                .returning(*_WATCH)
            )
        ).one_or_none()
        return None if row is None else await self._with_users(row)

    async def seen(self, watch_id: str, logins: Iterable[str]) -> dict[str, SeenGist]:
        """The revision of each of these users' gists the last run recorded, by gist id."""
        rows = await self._session.execute(
            select(watch_gists.c.gist_id, watch_gists.c.login, watch_gists.c.updated_at).where(
                watch_gists.c.watch_id == watch_id, watch_gists.c.login.in_(list(logins))
            )
        )
        return {row.gist_id: SeenGist(row.login, row.updated_at) for row in rows}

    async def replace_seen(
        self, watch_id: str, login: str, gists: Sequence[tuple[str, datetime]]
    ) -> None:
        """The user's gists as this run saw them (``(gist id, updated_at)``), baselined."""
        await self._session.execute(
            delete(watch_gists).where(
                watch_gists.c.watch_id == watch_id, watch_gists.c.login == login
            )
        )
        rows = [
            {"watch_id": watch_id, "gist_id": gist_id, "login": login, "updated_at": updated}
            for gist_id, updated in gists
        ]
        for chunk in in_chunks(rows):
            await self._session.execute(watch_gists.insert(), list(chunk))
        await self._session.execute(
            update(watch_users)
            .where(watch_users.c.watch_id == watch_id, watch_users.c.login == login)
            .values(baselined=True)
        )

    async def add_event(
        self,
        watch_id: str,
        gist_id: str,
        revision: str,
        login: str,
        now: datetime,
        *,
        baseline: bool,
        body: str,
    ) -> int | None:
        """Record the match under its key (watch, gist, revision): its new id, or None
        when it was recorded before (by this run's predecessor, or a racing poller)."""
        stmt = (
            dialect_insert(self._session)(watch_events)
            .values(
                watch_id=watch_id,
                gist_id=gist_id,
                revision=revision,
                login=login,
                created_at=now,
                baseline=baseline,
                body=body,
            )
            .on_conflict_do_nothing(index_elements=["watch_id", "gist_id", "revision"])
            .returning(watch_events.c.id)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def events(
        self, watch_id: str, *, after: int = 0, limit: int = 100, newest_first: bool = False
    ) -> list[EventRow]:
        """The watch's events told (not the baseline's), by id: those after ``after``
        oldest first, or the latest ``limit`` newest first."""
        order = watch_events.c.id.desc() if newest_first else watch_events.c.id
        rows = await self._session.execute(
            select(*_EVENT)
            .where(
                watch_events.c.watch_id == watch_id,
                watch_events.c.baseline.is_(False),
                watch_events.c.id > after,
            )
            .order_by(order)
            .limit(limit)
        )
        return [_event(row) for row in rows]

    async def add_delivery(
        self, delivery_id: str, watch_id: str, event_id: int, now: datetime
    ) -> None:
        await self._session.execute(
            webhook_deliveries.insert().values(
                id=delivery_id,
                watch_id=watch_id,
                event_id=event_id,
                status=PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )

    async def deliveries(self, watch_id: str, limit: int = 100) -> list[DeliveryLog]:
        """The watch's latest deliveries, newest first, each with its attempts."""
        rows = (
            await self._session.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.watch_id == watch_id)
                .order_by(webhook_deliveries.c.event_id.desc())
                .limit(limit)
            )
        ).all()
        ids = [row.id for row in rows]
        attempts: dict[str, list[AttemptRow]] = {delivery: [] for delivery in ids}
        if ids:
            found = await self._session.execute(
                select(webhook_attempts)
                .where(webhook_attempts.c.delivery_id.in_(ids))
                .order_by(webhook_attempts.c.attempt)
            )
            for a in found:
                attempts[a.delivery_id].append(
                    AttemptRow(a.attempt, a.at, a.status_code, a.error, a.duration_ms)
                )
        return [
            DeliveryLog(
                row.id,
                row.event_id,
                row.status,
                row.created_at,
                row.next_attempt_at,
                tuple(attempts[row.id]),
            )
            for row in rows
        ]

    async def claim_delivery(
        self, now: datetime, lease_until: datetime, *, busy: Collection[str] = ()
    ) -> DeliveryRow | None:
        """Take the pending delivery due longest ago that no sender holds, of a watch
        not in ``busy`` (those whose deliveries the caller is sending)."""
        candidate = (
            select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.status == PENDING,
                webhook_deliveries.c.watch_id.not_in(busy) if busy else true(),
                webhook_deliveries.c.next_attempt_at <= now,
                or_(
                    webhook_deliveries.c.lease_until.is_(None),
                    webhook_deliveries.c.lease_until < now,
                ),
                webhook_deliveries.c.watch_id.in_(
                    select(watches.c.id).where(watches.c.site_id == self._site)
                ),
            )
            .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.event_id)
            .limit(1)
        )
        if is_postgres(self._session):
            candidate = candidate.with_for_update(skip_locked=True)
        claimed = (
            await self._session.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == candidate.scalar_subquery())
                .values(lease_until=lease_until, attempts=webhook_deliveries.c.attempts + 1)
                .returning(webhook_deliveries.c.id)
            )
        ).scalar_one_or_none()
        if claimed is None:
            return None
        row = (
            await self._session.execute(
                select(
                    webhook_deliveries.c.id.label("delivery_id"),
                    webhook_deliveries.c.attempts,
                    webhook_deliveries.c.created_at.label("delivery_created_at"),
                    watches.c.webhook_url,
                    watches.c.webhook_secret,
                    *_EVENT,
                )
                .select_from(
                    webhook_deliveries.join(
                        watch_events, watch_events.c.id == webhook_deliveries.c.event_id
                    ).join(watches, watches.c.id == webhook_deliveries.c.watch_id)
                )
                .where(webhook_deliveries.c.id == claimed)
            )
        ).one()
        return DeliveryRow(
            row.delivery_id,
            row.watch_id,
            row.id,
            row.attempts,
            row.delivery_created_at,
            row.webhook_url or "",
            row.webhook_secret or "",
            _event(row),
        )

    async def record_attempt(
        self,
        delivery_id: str,
        attempt: AttemptRow,
        *,
        status: str,
        next_attempt_at: datetime | None,
    ) -> None:
        """Log the attempt and what follows it: delivered, failed for good, or pending
        again at ``next_attempt_at``."""
        await self._session.execute(
            webhook_attempts.insert().values(
                delivery_id=delivery_id,
                attempt=attempt.attempt,
                at=attempt.at,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
        )
        await self._session.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id)
            .values(status=status, next_attempt_at=next_attempt_at, lease_until=None)
        )

    async def prune(self, before: datetime) -> int:
        """Delete the events recorded before ``before`` (their deliveries go with them),
        but the baseline's, which say what was already there."""
        mine = select(watches.c.id).where(watches.c.site_id == self._site)
        result = await self._session.execute(
            delete(watch_events).where(
                watch_events.c.created_at < before,
                watch_events.c.baseline.is_(False),
                watch_events.c.watch_id.in_(mine),
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


class OrgMembers:
    """Organisations' public members as last listed, in one session."""

    def __init__(self, session: AsyncSession, site: int) -> None:
        self._session = session
        self._site = site

    async def get(self, org: str) -> tuple[str, datetime] | None:
        """The pages as stored (JSON) and when GitHub last confirmed them."""
        row = (
            await self._session.execute(
                select(org_members.c.pages, org_members.c.checked_at).where(
                    org_members.c.site_id == self._site, org_members.c.org == org
                )
            )
        ).one_or_none()
        return None if row is None else (row.pages, row.checked_at)

    async def save(self, org: str, pages: str, now: datetime) -> None:
        stmt = dialect_insert(self._session)(org_members).values(
            site_id=self._site, org=org, pages=pages, checked_at=now
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=["site_id", "org"],
                set_={"pages": stmt.excluded.pages, "checked_at": stmt.excluded.checked_at},
            )
        )


def _held(watch_id: str, token: str) -> Any:
    return and_(watches.c.id == watch_id, watches.c.lease_token == token)


async def extend_lease(session: AsyncSession, watch_id: str, token: str, until: datetime) -> bool:
    """Renew the claim on a watch's run; False when it was lost."""
    result = await session.execute(
        update(watches).where(_held(watch_id, token)).values(lease_until=until)
    )
    return _changed(result)


async def finish_run(
    session: AsyncSession,
    watch_id: str,
    token: str,
    *,
    now: datetime,
    next_run_at: datetime,
    paused_until: datetime | None,
    last_error: str | None,
) -> bool:
    """Advance the watch to its next run and hand its claim back; False (and nothing
    changed) when the claim was lost. Run first in the transaction that records the
    run: on PostgreSQL the row stays locked until it commits."""
    result = await session.execute(
        update(watches)
        .where(_held(watch_id, token))
        .values(
            last_run_at=now,
            next_run_at=next_run_at,
            paused_until=paused_until,
            last_error=last_error,
            runs=watches.c.runs + 1,
            lease_until=None,
            lease_token=None,
        )
    )
    return _changed(result)


async def release(session: AsyncSession, watch_id: str, token: str) -> None:
    """Hand the claim back with nothing recorded (at shutdown): the run is due still."""
    await session.execute(
        update(watches).where(_held(watch_id, token)).values(lease_until=None, lease_token=None)
    )


def _changed(result: Any) -> bool:
    return bool(getattr(result, "rowcount", 0))
