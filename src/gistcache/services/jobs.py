"""Use case: run searches as jobs. Jobs live in the database; workers inside each
server process claim them one at a time, so several processes sharing one database
never run a job twice, and a job survives a restart.

A failed job stores its failure as the use cases describe it (``services.failures``);
what that means to a client is said when the job is read."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from gistcache.domain.clock import Clock
from gistcache.domain.errors import FailureKind, JobGivenUp, JobQueueFull, TooManyJobs
from gistcache.domain.requests import ManySearchRequest, SearchRequest, stored_request
from gistcache.domain.results import JobStatus, SearchResult
from gistcache.github.gate import PAYER, Payer
from gistcache.observability.metrics import Metrics
from gistcache.services.failures import Failure, describe
from gistcache.services.lease import Lease
from gistcache.services.many import ManyAnswer, ManyResult, ManySearch
from gistcache.services.search import SearchAnswer, SearchService
from gistcache.store import jobs
from gistcache.store.bound import SiteStore
from gistcache.store.engine import Sessions
from gistcache.store.errors import StoreUnavailable
from gistcache.store.jobs import JobRow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # default: a runner that stops renewing loses its job after this
POLL_SECONDS = 1.0
PURGE_SECONDS = 60.0
MAX_ATTEMPTS = 3  # a job that keeps killing its runner is given up
JOB_PROGRESS_EVERY = 0.5  # seconds: a running job's progress is stored at most this often

# the stored answer of a finished job: the API's JSON for the result (one user's, or
# several users'), which the web layer makes and hands to ``SearchJobs.start`` (a
# service does not know HTTP)
RenderSearch = Callable[[SearchResult | ManyResult], dict[str, Any]]

# the account a client's GitHub requests are charged to (the same ledger the web layer
# charges its requests to), handed in by the application so that a job's search spends
# its submitter's budget, not GitHub's without a limit
PayerFor = Callable[[str], Payer]

# what a job failed by a bug stores: nothing of the bug reaches a client
UNEXPECTED = Failure(
    FailureKind.INTERNAL_ERROR, "Internal Server Error", "the search failed unexpectedly"
)


@dataclass(frozen=True, slots=True)
class FilesSearched:
    """How far a job's search has come."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class JobView:
    """A search job as its submitter sees it."""

    job_id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: FilesSearched | None  # None until the search knows the files it covers
    failure: Failure | None  # why a FAILURE failed
    result: str | None  # a SUCCESS's answer: the JSON text the job stored


class SearchJobs:
    """Submit, read and run search jobs.

    A finished job's answer is stored as the API's JSON text, made once by the web
    layer's ``render`` (handed to ``start``: only running workers need it), and served as
    stored. Rendering it at each read instead would cost the event loop about 140 ms per
    MB of answer (measured: 2.2 s for 15.7 MB, against 14 ms to encode the stored text),
    hold the typed result (several times its JSON) while it is written, and could not
    serve the answers older versions stored. A failed job stores its ``Failure``: what it
    means to a client is said when the job is read.
    """

    def __init__(
        self,
        store: SiteStore,
        searches: SearchService,
        *,
        workers: int,
        result_ttl: float,
        clock: Clock,
        poll_seconds: float = POLL_SECONDS,
        purge_seconds: float = PURGE_SECONDS,
        metrics: Metrics | None = None,
        progress_every: float = JOB_PROGRESS_EVERY,
        lease_seconds: float = LEASE.total_seconds(),
        max_per_client: int = 20,
        max_queued: int = 1000,
        payer_for: PayerFor | None = None,
        many: ManySearch | None = None,
    ) -> None:
        self._many = many
        self._payer_for = payer_for
        self._max_per_client = max_per_client
        self._max_queued = max_queued
        self._progress_every = progress_every
        self._store = store
        self._sessions = store.sessions
        self._searches = searches
        self._workers = workers
        self._result_ttl = timedelta(seconds=result_ttl)
        self._clock = clock
        self._poll = poll_seconds
        self._purge_every = purge_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics = metrics
        self._lease = timedelta(seconds=lease_seconds)
        # while the database is away every worker fails every poll: that is told once
        # when it begins and once when it ends, not as a traceback twice a second
        self._database_away = False

    async def count_by_status(self) -> dict[str, int]:
        async with self._sessions() as session:
            return await jobs.count_by_status(session)

    async def submit(
        self, request: SearchRequest | ManySearchRequest, client: str | None = None
    ) -> str:
        """Queue the search and return its job's id; raises TooManyJobs when ``client``
        has as many jobs waiting or running as one client may, JobQueueFull when everyone
        together has. (Two submissions at the same moment may both pass the count: the
        bounds are held to within the submissions in flight, which is what they are for.)"""
        job_id = str(uuid.uuid4())
        async with self._store.write() as db:
            mine, everyone = await db.jobs.count_unfinished(client)
            if mine >= self._max_per_client:
                raise TooManyJobs(self._max_per_client)
            if everyone >= self._max_queued:
                raise JobQueueFull(self._max_queued)
            await db.jobs.create(job_id, json.dumps(request.to_json()), self._clock(), client)
        self._wake.set()
        return job_id

    async def get(self, job_id: str) -> JobView | None:
        """The job, or None when there is no such job or its result expired."""
        async with self._store.read() as db:
            row = await db.jobs.get(job_id)
        if row is None or self._expired(row):
            return None
        return _view(row)

    def _expired(self, row: JobRow) -> bool:
        return row.finished_at is not None and row.finished_at + self._result_ttl < self._clock()

    def start(self, render: RenderSearch) -> None:
        """Start the workers, which store a finished search's answer as ``render`` makes
        it, and the janitor that deletes expired jobs."""
        runner = _JobRunner(
            self._searches,
            render,
            many=self._many,
            progress_every=self._progress_every,
            metrics=self._metrics,
            payer_for=self._payer_for,
        )
        self._tasks.append(asyncio.create_task(self._janitor(), name="search-janitor"))
        for n in range(self._workers):
            worker = self._work(runner)
            self._tasks.append(asyncio.create_task(worker, name=f"search-worker-{n}"))

    async def stop(self) -> None:
        """Stop the workers; a job they were running goes back to the queue."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def purge(self) -> int:
        """Delete the jobs that finished longer than the result TTL ago."""
        async with self._sessions() as session, session.begin():
            return await jobs.delete_finished_before(session, self._clock() - self._result_ttl)

    async def _janitor(self) -> None:
        while True:
            try:
                await self.purge()
            except StoreUnavailable as exc:
                self._database_failed(exc)
            except Exception:
                log.warning("could not purge expired search jobs", exc_info=True)
            await asyncio.sleep(self._purge_every)

    async def _work(self, runner: _JobRunner) -> None:
        while True:
            try:
                claim = await self._claim()
                self._database_answers()
                if claim is not None:
                    await runner.run(claim)
                    continue
            except StoreUnavailable as exc:  # the worker waits, then carries on
                self._database_failed(exc)
            except Exception:
                # a bug must not end the worker either
                log.exception("search worker error")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    def _database_failed(self, exc: StoreUnavailable) -> None:
        if not self._database_away:
            self._database_away = True
            log.warning("search jobs wait: %s; trying again every %g s", exc, self._poll)

    def _database_answers(self) -> None:
        if self._database_away:
            self._database_away = False
            log.warning("search jobs resume: the cache database answers again")

    async def _claim(self) -> _Claim | None:
        now = self._clock()
        token = str(uuid.uuid4())
        async with self._store.write() as db:
            row = await db.jobs.claim(now, now + self._lease, token)
        return None if row is None else _Claim(self._sessions, row, token, self._clock, self._lease)


class _JobRunner:
    """Run a claimed job to its outcome: its search, charged to its submitter, while its
    lease is renewed and its progress stored; then its answer or failure recorded."""

    def __init__(
        self,
        searches: SearchService,
        render: RenderSearch,
        *,
        progress_every: float,
        metrics: Metrics | None,
        payer_for: PayerFor | None,
        many: ManySearch | None = None,
    ) -> None:
        self._many = many
        self._searches = searches
        self._render = render
        self._progress_every = progress_every
        self._metrics = metrics
        self._payer_for = payer_for

    async def run(self, claim: _Claim) -> None:
        job = claim.job
        if job.attempts > MAX_ATTEMPTS:
            log.error("search job %s given up after %d attempts", job.job_id, MAX_ATTEMPTS)
            await self._finish(claim, failure=describe(JobGivenUp(MAX_ATTEMPTS)) or UNEXPECTED)
            return
        log.info("search job %s started (attempt %d)", job.job_id, job.attempts)
        progress = _ProgressWriter(claim, self._progress_every)
        search = await self._search(claim, progress)
        if search is None:
            return
        await progress.close()  # the last counts, before the outcome
        await self._record(claim, search)

    async def _search(
        self, claim: _Claim, progress: _ProgressWriter
    ) -> asyncio.Task[SearchAnswer | ManyAnswer] | None:
        """Run the job's search while its lease is renewed: the finished search, or None
        when the lease was lost (another runner has the job now)."""
        request = stored_request(json.loads(claim.job.request))
        search = asyncio.create_task(
            self._run(request, progress), context=self._charged_to(claim.job)
        )
        lease = asyncio.create_task(claim.keep())
        try:
            await asyncio.wait({search, lease}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # shutdown: the job goes back to the queue
            progress.cancel()
            await _cancel(search, lease)
            with contextlib.suppress(Exception):
                await asyncio.shield(claim.release())
            raise
        if not search.done():  # the lease was lost
            progress.cancel()
            await _cancel(search, lease)
            log.warning("search job %s: lease lost, stopped", claim.job.job_id)
            return None
        await _cancel(lease)
        return search

    async def _run(
        self, request: SearchRequest | ManySearchRequest, progress: _ProgressWriter
    ) -> SearchAnswer | ManyAnswer:
        if isinstance(request, SearchRequest):
            return await self._searches.search(request, progress=progress)
        if self._many is None:  # pragma: no cover - the components always hand one
            raise RuntimeError("no many-user search to run this job")
        return await self._many.search(request, progress=progress)

    async def _record(self, claim: _Claim, search: asyncio.Task[SearchAnswer | ManyAnswer]) -> None:
        job_id = claim.job.job_id
        exc = search.exception()
        if exc is None:
            result = search.result().result
            answer = json.dumps(self._render(result), ensure_ascii=False)
            if await self._finish(claim, result=answer):
                log.info("search job %s finished: %d matches", job_id, result.total)
            return
        failure = describe(exc)
        recorded = await self._finish(claim, failure=failure or UNEXPECTED)
        if failure is None:  # a bug: logged even when the outcome was dropped
            dropped = "" if recorded else " (dropped)"
            log.error("search job %s failed%s", job_id, dropped, exc_info=exc)
        elif recorded:
            log.info("search job %s failed: %s", job_id, failure.detail)

    async def _finish(
        self, claim: _Claim, *, result: str | None = None, failure: Failure | None = None
    ) -> bool:
        """Record the outcome; False when the lease was lost and the outcome dropped."""
        error = None if failure is None else _failure_json(failure)
        recorded = await claim.finish(result=result, error=error)
        if recorded and self._metrics is not None:
            status = JobStatus.FAILURE if failure is not None else JobStatus.SUCCESS
            self._metrics.search_jobs_finished.labels(status.value).inc()
        return recorded

    def _charged_to(self, job: JobRow) -> contextvars.Context:
        """The context a job's search runs in: its GitHub requests charged to the client
        that submitted it, as they would be had it searched without a job. A job queued
        before jobs recorded their client (migration 0009) has none, and is charged to
        no one."""
        context = contextvars.copy_context()
        if self._payer_for is not None and job.client is not None:
            context.run(PAYER.set, self._payer_for(job.client))
        return context


class _Claim:
    """A job this runner claimed, and what only the claim's holder may do with it: renew
    its lease, store its progress, record its outcome, hand it back to the queue."""

    def __init__(
        self, sessions: Sessions, job: JobRow, token: str, clock: Clock, lease: timedelta
    ) -> None:
        self.job = job
        self._sessions = sessions
        self._token = token
        self._clock = clock
        self._lease = Lease(
            sessions.transaction,
            renew=lambda session, until: jobs.extend_lease(session, job.job_id, token, until),
            length=lease,
            clock=clock,
            what=f"search job {job.job_id}",
        )

    async def keep(self) -> None:
        """Renew the lease until the job ends; return when it was lost."""
        await self._lease.kept()

    async def set_progress(self, files_done: int, files_total: int) -> None:
        async with self._sessions.transaction() as session:
            await jobs.set_progress(session, self.job.job_id, self._token, files_done, files_total)

    async def finish(self, *, result: str | None, error: str | None) -> bool:
        """Record the outcome; False when the lease was lost and the outcome dropped."""
        for attempt in range(3):
            try:
                async with self._sessions.transaction() as session:
                    held = await jobs.finish_job(
                        session,
                        self.job.job_id,
                        self._token,
                        self._clock(),
                        result=result,
                        error=error,
                    )
                if not held:
                    log.warning("search job %s: lease lost, outcome dropped", self.job.job_id)
                return held
            except Exception:
                if attempt == 2:
                    raise  # the lease will run out and another runner will retry
                await asyncio.sleep(0.5 * (attempt + 1))
        return False  # not reached: the last attempt returns or raises

    async def release(self) -> None:
        async with self._sessions.transaction() as session:
            await jobs.release_job(session, self.job.job_id, self._token)
        log.info("search job %s handed back to the queue", self.job.job_id)


class _ProgressWriter:
    """Store a running job's progress (files done of files total) as it is told, at most
    every ``every`` seconds, and the last counts on ``close``."""

    def __init__(self, claim: _Claim, every: float) -> None:
        self._claim = claim
        self._every = every
        self._latest: tuple[int, int] | None = None
        self._written: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self, files_done: int, files_total: int) -> None:
        self._latest = (files_done, files_total)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_on())

    async def _write_on(self) -> None:
        while self._latest is not None and self._latest != self._written:
            await self._write()
            await asyncio.sleep(self._every)

    async def _write(self) -> None:
        value = self._latest
        if value is None or value == self._written:
            return
        try:
            await self._claim.set_progress(*value)
        except Exception:
            log.warning("could not store the progress of search job %s", self._claim.job.job_id)
            return
        self._written = value

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._write()


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _view(row: JobRow) -> JobView:
    progress = None
    if row.files_total is not None:
        progress = FilesSearched(row.files_done or 0, row.files_total)
    return JobView(
        job_id=row.job_id,
        status=JobStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        progress=progress,
        failure=None if row.error is None else _stored_failure(row.error),
        result=row.result,
    )


def _failure_json(failure: Failure) -> str:
    return json.dumps(asdict(failure))


def _stored_failure(text: str) -> Failure:
    """The failure ``_failure_json`` stored, or the problem JSON of an older version."""
    stored = json.loads(text)
    if "type" in stored:
        # stored before jobs kept the failure itself: the problem JSON the API answered
        # with, whose type ends in the kind (and whose status is the kind's)
        stored["kind"] = str(stored["type"]).rsplit(":", 1)[-1]
    # older versions named the input at fault on its own, not among the members
    field = stored.get("field")
    members = stored.get("members") or ({"field": field} if field is not None else {})
    kind = FailureKind(stored["kind"])
    return Failure(kind, stored["title"], stored["detail"], stored.get("retry_after"), members)
