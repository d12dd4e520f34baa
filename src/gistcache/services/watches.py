"""Use case: watches, saved searches re-run on their own that report each new match once.

One poller across every server sharing the database: a due watch is claimed in the
database (as search jobs are), its claim renewed while it runs, and the run recorded in
one transaction that checks the claim is still held, records each match event under its
unique key (watch, gist, revision) and advances the watch. A server killed half-way
recorded nothing; the next poller to claim the watch runs it again and finds the same
changes, and an event recorded twice is recorded once.

A run searches each user with the search service, a few users at a time. Its list is
revalidated as any search's is (a conditional request: free when GitHub answers 304 to
a token); only the gists that are new, or whose ``updated_at`` moved, since the run that
last succeeded for that user can make an event (the others' contents are cached and
scanned again locally). A user's first run is the baseline: its matches are recorded
but not told, unless the watch asks for ``report_existing``. A user whose search failed
keeps what the last run saw, so nothing changed meanwhile is lost; GitHub's rate limit
pauses the watch until GitHub's reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gistcache.domain.clock import Clock
from gistcache.domain.errors import FailureKind, TooManyWatches
from gistcache.domain.gists import Gist, format_timestamp
from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import (
    FileSkipped,
    GistFound,
    GistMatch,
    SearchStarted,
    SkipReason,
)
from gistcache.domain.watches import MAX_USERS, MAX_WATCHES, WatchSpec
from gistcache.observability.metrics import Metrics
from gistcache.services.failures import Failure, describe
from gistcache.services.lease import Lease
from gistcache.services.search import ScanOptions, SearchService
from gistcache.store import watches as watch_rows
from gistcache.store.bound import SiteStore
from gistcache.store.errors import StoreUnavailable
from gistcache.store.watches import DeliveryLog, EventRow, SeenGist, WatchRow

__all__ = ["DeliveryLog", "EventRow", "RunReport", "WatchRow", "WatchService", "owner_of"]

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # a poller that stops renewing loses its run after this
POLL_SECONDS = 5.0  # how often each server looks for a due watch
PRUNE_SECONDS = 60.0  # how often each server deletes the events past their TTL
USERS_AT_ONCE = 4  # users of one run searched at the same time
# the failures that pause a watch until GitHub's limit lets it ask again
PAUSING = frozenset(
    {FailureKind.GITHUB_RATE_LIMITED, FailureKind.GITHUB_RESERVE, FailureKind.GITHUB_BUDGET_SPENT}
)
PAUSE_SECONDS = 60  # a pause whose failure named no wait
# a file skipped for these may be searched by a later run: its gist is searched again
RETRIED = frozenset({SkipReason.UNAVAILABLE, SkipReason.CHANGED, SkipReason.DOWNLOAD_BUDGET})

# the members of an organisation, in GitHub's order (services.members)
MembersOf = Callable[[str], Awaitable[list[str]]]


def owner_of(token: str) -> str:
    """What a watch stores of the API token that made it: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UserRun:
    """What one user's search in a run found: the list (``None``: the search failed,
    ``failure`` says why) and the matching gists by id."""

    login: str
    gists: list[Gist] | None
    matches: dict[str, GistMatch] = field(default_factory=dict)
    failure: Failure | None = None
    # gists a file of which was not searched (too large, over the download budget):
    # they keep the revision the last run saw, so that a later run searches them again
    unsearched: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RunReport:
    """What a run recorded: the events told (their ids), the baseline's count, and the
    users whose search failed."""

    watch_id: str
    told: tuple[int, ...]
    baseline: int
    failed: tuple[str, ...]
    paused_until: datetime | None
    recorded: bool  # False: the claim was lost, another poller runs it


class WatchService:
    """Create, read and delete watches; run the due ones (``run_due``, or the poller
    ``start`` starts); read their events."""

    def __init__(
        self,
        store: SiteStore,
        searches: SearchService,
        *,
        clock: Clock,
        metrics: Metrics | None = None,
        members_of: MembersOf | None = None,
        event_ttl: float = 30 * 86_400.0,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        deliveries: bool = True,
    ) -> None:
        self._store = store
        self._searches = searches
        self._clock = clock
        self._metrics = metrics
        self._members_of = members_of
        self._event_ttl = timedelta(seconds=event_ttl)
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._deliveries = deliveries
        self._tasks: list[asyncio.Task[None]] = []
        self.wake = asyncio.Event()  # a new watch is due at once
        self._database_away = False
        self._pruned_at: float | None = None  # loop time of the last prune
        self._streams: Counter[str] = Counter()  # readers streaming each watch's events

    # --- the API's side

    async def create(self, owner: str, spec: WatchSpec) -> WatchRow:
        now = self._clock()
        row = WatchRow(
            id=str(uuid.uuid4()),
            owner=owner,
            search=json.dumps(spec.search_json()),
            org=spec.org,
            interval=spec.interval,
            report_existing=spec.report_existing,
            feed_token=secrets.token_urlsafe(32),
            webhook_url=None if spec.webhook is None else spec.webhook.url,
            webhook_secret=None if spec.webhook is None else spec.webhook.secret,
            created_at=now,
            next_run_at=now,
            last_run_at=None,
            paused_until=None,
            last_error=None,
            runs=0,
            users=spec.usernames,
        )
        async with self._store.write() as db:
            if await db.watches.count_owned(owner) >= MAX_WATCHES:
                raise TooManyWatches(MAX_WATCHES)
            await db.watches.create(row)
        self.wake.set()
        return row

    async def owned(self, owner: str) -> list[WatchRow]:
        async with self._store.read() as db:
            return await db.watches.owned_by(owner)

    async def get(self, owner: str, watch_id: str) -> WatchRow | None:
        """The watch, when ``owner`` made it (another token's is not there for it)."""
        async with self._store.read() as db:
            row = await db.watches.get(watch_id)
        return row if row is not None and row.owner == owner else None

    async def delete(self, owner: str, watch_id: str) -> bool:
        async with self._store.write() as db:
            return await db.watches.delete(watch_id, owner)

    async def by_feed_token(self, watch_id: str, token: str) -> WatchRow | None:
        """The watch whose feed token this is (compared in constant time, as bytes: a
        token that is not ASCII is a wrong token, not an error)."""
        async with self._store.read() as db:
            row = await db.watches.get(watch_id)
        if row is None or not secrets.compare_digest(
            row.feed_token.encode(), token.encode("utf-8", "surrogateescape")
        ):
            return None
        return row

    def open_stream(self, watch_id: str, *, per_watch: int, overall: int) -> bool:
        """Count one more reader streaming the watch's events on this server; False (and
        nothing counted) when the watch, or the server, has as many as it may."""
        if sum(self._streams.values()) >= overall or self._streams[watch_id] >= per_watch:
            return False
        self._streams[watch_id] += 1
        return True

    def close_stream(self, watch_id: str) -> None:
        self._streams[watch_id] -= 1
        if self._streams[watch_id] <= 0:
            del self._streams[watch_id]

    async def events(
        self, watch_id: str, *, after: int = 0, limit: int = 100, newest_first: bool = False
    ) -> list[EventRow]:
        async with self._store.read() as db:
            return await db.watches.events(
                watch_id, after=after, limit=limit, newest_first=newest_first
            )

    async def deliveries(self, watch_id: str) -> list[DeliveryLog]:
        async with self._store.read() as db:
            return await db.watches.deliveries(watch_id)

    # --- the poller

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._poller(), name="watch-poller"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _poller(self) -> None:
        while True:
            try:
                await self.run_due()
                now = asyncio.get_running_loop().time()
                if self._pruned_at is None or now - self._pruned_at >= PRUNE_SECONDS:
                    await self.prune()
                    self._pruned_at = now
                self._database_answers()
            except StoreUnavailable as exc:
                if not self._database_away:
                    self._database_away = True
                    log.warning("watches wait: %s; trying again every %g s", exc, self._poll)
            except Exception:
                log.exception("watch poller error")  # a bug must not end the poller
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._poll)

    def _database_answers(self) -> None:
        if self._database_away:
            self._database_away = False
            log.warning("watches resume: the cache database answers again")

    async def run_due(self) -> list[RunReport]:
        """Run every watch that is due and that no other poller runs, one after another;
        what each run recorded."""
        reports = []
        while (claimed := await self._claim()) is not None:
            watch, token = claimed
            reports.append(await self._run_claimed(watch, token))
        return reports

    async def prune(self) -> int:
        """Delete the events (and their deliveries) older than the events' TTL."""
        async with self._store.write() as db:
            return await db.watches.prune(self._clock() - self._event_ttl)

    async def _claim(self) -> tuple[WatchRow, str] | None:
        now = self._clock()
        token = str(uuid.uuid4())
        async with self._store.write() as db:
            row = await db.watches.claim_due(now, now + self._lease, token)
        return None if row is None else (row, token)

    async def _run_claimed(self, watch: WatchRow, token: str) -> RunReport:
        """Run the watch while its claim is renewed; hand the claim back when stopped."""
        lease = Lease(
            self._store.sessions.transaction,
            renew=lambda s, until: watch_rows.extend_lease(s, watch.id, token, until),
            length=self._lease,
            clock=self._clock,
            what=f"watch {watch.id}",
        )
        renewal = asyncio.create_task(lease.kept())
        run = asyncio.create_task(self._run(watch, token))
        try:
            await asyncio.wait({run, renewal}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # shutdown: the run is due still, for any poller
            await _cancel(run, renewal)
            with contextlib.suppress(Exception):
                async with self._store.sessions.transaction() as session:
                    await watch_rows.release(session, watch.id, token)
            raise
        if not run.done():  # the claim was lost: another poller runs the watch
            await _cancel(run, renewal)
            self._count_run("lost")
            return RunReport(watch.id, (), 0, (), None, recorded=False)
        await _cancel(renewal)
        exc = run.exception()
        if exc is None:
            return run.result()
        # a bug: logged, and the watch goes on at its interval rather than every time
        # its claim runs out
        log.error("watch %s: the run failed unexpectedly", watch.id, exc_info=exc)
        now = self._clock()
        async with self._store.sessions.transaction() as session:
            recorded = await watch_rows.finish_run(
                session,
                watch.id,
                token,
                now=now,
                next_run_at=now + timedelta(seconds=watch.interval),
                paused_until=None,
                last_error="the run failed unexpectedly (logged)",
            )
        self._count_run("failed")
        return RunReport(watch.id, (), 0, (), None, recorded=recorded)

    async def _run(self, watch: WatchRow, token: str) -> RunReport:
        logins: Sequence[str] = watch.users
        members_failure = None
        cut = None
        if watch.org is not None and self._members_of is not None:
            try:
                logins = await self._members_of(watch.org)
            except Exception as exc:
                members_failure = describe(exc)
                if members_failure is None:
                    raise
            if len(logins) > MAX_USERS:  # a watch searches as many users as any may name
                cut = (
                    f"{watch.org}: {len(logins)} public members, only the first {MAX_USERS} "
                    "are watched"
                )
                logins = logins[:MAX_USERS]
        search = json.loads(watch.search)
        runs: list[UserRun] = []
        if members_failure is None:
            gate = asyncio.Semaphore(USERS_AT_ONCE)

            async def one(login: str) -> UserRun:
                async with gate:
                    return await self._search_user(login, search)

            runs = list(await asyncio.gather(*(one(login) for login in logins)))
        return await self._record(watch, token, logins, runs, members_failure, cut)

    async def _search_user(self, login: str, search: dict[str, Any]) -> UserRun:
        request = SearchRequest(login, **search)
        gists: list[Gist] | None = None
        matches: dict[str, GistMatch] = {}
        unsearched: set[str] = set()
        events = self._searches.stream(
            request, options=ScanOptions(line_limit=20), progress_every=0
        )
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, SearchStarted):
                        gists = list(event.listing.gists)
                    elif isinstance(event, GistFound):
                        matches[event.match.gist.id] = event.match
                    elif isinstance(event, FileSkipped) and event.skipped.reason in RETRIED:
                        unsearched.add(event.skipped.gist_id)
        except Exception as exc:
            failure = describe(exc)
            if failure is None:
                raise
            return UserRun(login, None, failure=failure)
        return UserRun(login, gists or [], matches, unsearched=frozenset(unsearched))

    async def _record(
        self,
        watch: WatchRow,
        token: str,
        logins: Sequence[str],
        runs: list[UserRun],
        members_failure: Failure | None,
        cut: str | None = None,
    ) -> RunReport:
        now = self._clock()
        failures = [(run.login, run.failure) for run in runs if run.failure is not None]
        if members_failure is not None:
            failures.append((watch.org or "", members_failure))
        pausing = [f for _, f in failures if f.kind in PAUSING]
        paused_until = None
        if pausing:
            wait = max((f.retry_after or PAUSE_SECONDS) for f in pausing)
            paused_until = now + timedelta(seconds=wait)
        next_run = paused_until or now + timedelta(seconds=watch.interval)
        told_of = [f"{who}: {f.detail}" for who, f in failures]
        last_error = "; ".join([*told_of, *([cut] if cut else [])]) or None
        told: list[int] = []
        baseline = 0
        async with self._store.write() as db:
            held = await watch_rows.finish_run(
                db.session,
                watch.id,
                token,
                now=now,
                next_run_at=next_run,
                paused_until=paused_until,
                last_error=last_error,
            )
            if not held:
                self._count_run("lost")
                return RunReport(watch.id, (), 0, (), None, recorded=False)
            if members_failure is None and watch.org is not None:
                await db.watches.set_users(watch.id, logins)
            users = {user.login: user.baselined for user in await db.watches.users(watch.id)}
            seen = await db.watches.seen(watch.id, [run.login for run in runs])
            for run in runs:
                if run.gists is None:
                    continue  # what the last run saw stays: nothing is lost
                hidden = not users.get(run.login, False) and not watch.report_existing
                for gist in run.gists:
                    before = seen.get(gist.id)
                    match = run.matches.get(gist.id)
                    if match is None or (
                        before is not None and before.updated_at == gist.updated_at
                    ):
                        continue
                    event_id = await db.watches.add_event(
                        watch.id,
                        gist.id,
                        format_timestamp(gist.updated_at),
                        run.login,
                        now,
                        baseline=hidden,
                        body=json.dumps(_match_json(run.login, match), ensure_ascii=False),
                    )
                    if event_id is None:
                        continue
                    if hidden:
                        baseline += 1
                        continue
                    told.append(event_id)
                    if watch.webhook_url is not None and self._deliveries:
                        await db.watches.add_delivery(str(uuid.uuid4()), watch.id, event_id, now)
                await db.watches.replace_seen(watch.id, run.login, _seen_now(run, seen))
        self._count_run("paused" if pausing else "partial" if failures else "ok")
        if self._metrics is not None:
            self._metrics.watch_events.labels("told").inc(len(told))
            self._metrics.watch_events.labels("baseline").inc(baseline)
        if told or failures:
            log.info(
                "watch %s: %d new match(es), %d user(s) failed%s",
                watch.id,
                len(told),
                len(failures),
                f", paused until {format_timestamp(paused_until)}" if paused_until else "",
            )
        return RunReport(
            watch.id,
            tuple(told),
            baseline,
            tuple(who for who, _ in failures),
            paused_until,
            recorded=True,
        )

    def _count_run(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.watch_runs.labels(outcome).inc()


def _seen_now(run: UserRun, before: dict[str, SeenGist]) -> list[tuple[str, datetime]]:
    """Each of the user's gists at the revision this run searched, or at the one the last
    run did for a gist not searched whole (a new one left out: it stays new)."""
    seen = []
    for gist in run.gists or ():
        if gist.id not in run.unsearched:
            seen.append((gist.id, gist.updated_at))
        elif (earlier := before.get(gist.id)) is not None:
            seen.append((gist.id, earlier.updated_at))
    return seen


def _match_json(login: str, match: GistMatch) -> dict[str, Any]:
    """An event's match, as the feed, the events stream and the webhook tell it."""
    gist = match.gist
    return {
        "user": login,
        "gist": {
            "id": gist.id,
            "html_url": gist.html_url,
            "description": gist.description,
            "owner": gist.owner,
            "updated_at": format_timestamp(gist.updated_at),
        },
        "files": [
            {
                "filename": file.file.filename,
                "match_count": file.match_count,
                "lines": [
                    {"line_number": line.line_number, "text": line.text, "url": line.url}
                    for line in file.lines
                ],
            }
            for file in match.files
        ],
    }


def event_json(event: EventRow) -> dict[str, Any]:
    """An event as every delivery tells it: its id, the watch, when, and the match."""
    return {
        "id": event.id,
        "type": "match",
        "watch_id": event.watch_id,
        "created_at": format_timestamp(event.created_at),
        "revision": event.revision,
        **json.loads(event.body),
    }


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
