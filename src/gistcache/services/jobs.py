"""Use case: run searches as jobs. Jobs live in the database; workers inside each
server process claim them one at a time, so several processes sharing one database
never run a job twice, and a job survives a restart.

A failed job stores the problem JSON of its failure; what a failure means to a client
is the web layer's to say, so the service is handed a ``describe_failure`` function."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from gistcache.domain.clock import Clock
from gistcache.domain.errors import JobGivenUp, JobQueueFull, TooManyJobs
from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import JobStatus, SearchResult
from gistcache.github.gate import PAYER, Payer
from gistcache.observability.metrics import Metrics
from gistcache.services.lease import Lease
from gistcache.services.search import SearchService
from gistcache.store import jobs as store
from gistcache.store.engine import Sessions
from gistcache.store.errors import StoreUnavailable
from gistcache.store.jobs import Job
from gistcache.store.sites import Site

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # default: a runner that stops renewing loses its job after this
POLL_SECONDS = 1.0
PURGE_SECONDS = 60.0
MAX_ATTEMPTS = 3  # a job that keeps killing its runner is given up
JOB_PROGRESS_EVERY = 0.5  # seconds: a running job's progress is stored at most this often

# the problem JSON stored for a failure: status 500 (and opaque) for a bug
DescribeFailure = Callable[[BaseException], dict[str, Any]]


# the stored answer of a finished job: the API's JSON for the result, which the web
# layer makes and the application hands in (a service does not know HTTP)
RenderSearch = Callable[[SearchResult], dict[str, Any]]

# the account a client's GitHub requests are charged to (the same ledger the web layer
# charges its requests to), handed in by the application so that a job's search spends
# its submitter's budget, not GitHub's without a limit
PayerFor = Callable[[str], Payer]


class SearchJobs:
    def __init__(
        self,
        sessions: Sessions,
        searches: SearchService,
        site: Site,
        *,
        describe_failure: DescribeFailure | None = None,
        workers: int,
        result_ttl: float,
        clock: Clock,
        render: RenderSearch | None = None,
        poll_seconds: float = POLL_SECONDS,
        purge_seconds: float = PURGE_SECONDS,
        metrics: Metrics | None = None,
        progress_every: float = JOB_PROGRESS_EVERY,
        lease_seconds: float = LEASE.total_seconds(),
        max_per_client: int = 20,
        max_queued: int = 1000,
        payer_for: PayerFor | None = None,
    ) -> None:
        self._payer_for = payer_for
        self._max_per_client = max_per_client
        self._max_queued = max_queued
        self._progress_every = progress_every
        self._sessions = sessions
        self._searches = searches
        self._site = site
        self._describe_failure = describe_failure
        self._workers = workers
        self._result_ttl = timedelta(seconds=result_ttl)
        self._clock = clock
        self._render = render
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
            return await store.count_by_status(session)

    async def submit(self, request: SearchRequest, client: str | None = None) -> str:
        """Queue the search; raises TooManyJobs when ``client`` has as many jobs waiting
        or running as one client may, JobQueueFull when everyone together has. (Two
        submissions at the same moment may both pass the count: the bounds are held to
        within the submissions in flight, which is what they are for.)"""
        job_id = str(uuid.uuid4())
        site = await self._site.id()
        async with self._sessions() as session, session.begin():
            mine, everyone = await store.count_unfinished(session, site, client)
            if mine >= self._max_per_client:
                raise TooManyJobs(self._max_per_client)
            if everyone >= self._max_queued:
                raise JobQueueFull(self._max_queued)
            await store.create_job(
                session, site, job_id, json.dumps(request.to_json()), self._clock(), client
            )
        self._wake.set()
        return job_id

    async def get(self, job_id: str) -> Job | None:
        """The job, or None when there is no such job or its result expired."""
        async with self._sessions() as session:
            job = await store.get_job(session, await self._site.id(), job_id)
        if job is None or self._expired(job):
            return None
        return job

    def _expired(self, job: Job) -> bool:
        return job.finished_at is not None and job.finished_at + self._result_ttl < self._clock()

    def start(self) -> None:
        """Start the workers, and the janitor that deletes expired jobs."""
        if self._workers and (self._render is None or self._describe_failure is None):
            raise RuntimeError("search jobs cannot run without a way to render their outcomes")
        self._tasks.append(asyncio.create_task(self._janitor(), name="search-janitor"))
        for n in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"search-worker-{n}"))

    async def stop(self) -> None:
        """Stop the workers; a job they were running goes back to the queue."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def purge(self) -> int:
        """Delete the jobs that finished longer than the result TTL ago."""
        async with self._sessions() as session, session.begin():
            return await store.delete_finished_before(session, self._clock() - self._result_ttl)

    async def _janitor(self) -> None:
        while True:
            try:
                await self.purge()
            except StoreUnavailable as exc:
                self._database_failed(exc)
            except Exception:
                log.warning("could not purge expired search jobs", exc_info=True)
            await asyncio.sleep(self._purge_every)

    async def _work(self) -> None:
        while True:
            try:
                job = await self._claim()
                self._database_answers()
                if job is not None:
                    await self._run(job)
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

    async def _claim(self) -> tuple[Job, str] | None:
        now = self._clock()
        token = str(uuid.uuid4())
        async with self._sessions() as session, session.begin():
            job = await store.claim_job(
                session, await self._site.id(), now, now + self._lease, token
            )
        return None if job is None else (job, token)

    async def _run(self, claim: tuple[Job, str]) -> None:
        job, token = claim
        if job.attempts > MAX_ATTEMPTS:
            log.error("search job %s given up after %d attempts", job.id, MAX_ATTEMPTS)
            assert self._describe_failure is not None  # noqa: S101 - start() set it; for mypy
            given_up = self._describe_failure(JobGivenUp(MAX_ATTEMPTS))
            await self._finish(job.id, token, error=json.dumps(given_up))
            return
        log.info("search job %s started (attempt %d)", job.id, job.attempts)
        progress = _ProgressWriter(self._sessions, job.id, token, self._progress_every)
        search = asyncio.create_task(
            self._searches.search(SearchRequest(**json.loads(job.request)), progress=progress),
            context=self._charged_to(job),
        )
        lease = asyncio.create_task(self._keep_lease(job.id, token))
        try:
            await asyncio.wait({search, lease}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # shutdown: the job goes back to the queue
            search.cancel()
            lease.cancel()
            progress.cancel()
            await asyncio.gather(search, lease, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(job.id, token))
            raise
        lease.cancel()
        if not search.done():  # the lease was lost: another runner has the job now
            search.cancel()
            progress.cancel()
            await asyncio.gather(search, lease, return_exceptions=True)
            log.warning("search job %s: lease lost, stopped", job.id)
            return
        await asyncio.gather(lease, return_exceptions=True)
        await progress.close()  # the last counts, before the outcome
        exc = search.exception()
        if exc is None:
            assert self._render is not None  # noqa: S101 - start() set it; for mypy
            result: SearchResult = search.result().result
            body = self._render(result)
            if await self._finish(job.id, token, result=json.dumps(body, ensure_ascii=False)):
                log.info("search job %s finished: %d matches", job.id, result.total)
            return
        assert self._describe_failure is not None  # noqa: S101 - start() set it; for mypy
        problem = self._describe_failure(exc)
        recorded = await self._finish(job.id, token, error=json.dumps(problem))
        if problem["status"] == 500:  # a bug: logged even when the outcome was dropped
            log.error(
                "search job %s failed%s", job.id, "" if recorded else " (dropped)", exc_info=exc
            )
        elif recorded:
            log.info("search job %s failed: %s", job.id, problem["detail"])

    def _charged_to(self, job: Job) -> contextvars.Context:
        """The context a job's search runs in: its GitHub requests charged to the client
        that submitted it, as they would be had it searched without a job. A job queued
        before jobs recorded their client (migration 0009) has none, and is charged to
        no one."""
        context = contextvars.copy_context()
        if self._payer_for is not None and job.client is not None:
            context.run(PAYER.set, self._payer_for(job.client))
        return context

    async def _keep_lease(self, job_id: str, token: str) -> None:
        """Renew the lease until the job ends; return when it was lost."""
        lease = Lease(
            self._sessions.transaction,
            renew=lambda session, until: store.extend_lease(session, job_id, token, until),
            length=self._lease,
            clock=self._clock,
            what=f"search job {job_id}",
        )
        await lease.kept()

    async def _finish(
        self, job_id: str, token: str, *, result: str | None = None, error: str | None = None
    ) -> bool:
        """Record the outcome; False when the lease was lost and the outcome dropped."""
        for attempt in range(3):
            try:
                async with self._sessions() as session, session.begin():
                    held = await store.finish_job(
                        session, job_id, token, self._clock(), result=result, error=error
                    )
                if not held:
                    log.warning("search job %s: lease lost, outcome dropped", job_id)
                elif self._metrics is not None:
                    state = JobStatus.FAILURE if error is not None else JobStatus.SUCCESS
                    self._metrics.search_jobs_finished.labels(state.value).inc()
                return held
            except Exception:
                if attempt == 2:
                    raise  # the lease will run out and another runner will retry
                await asyncio.sleep(0.5 * (attempt + 1))
        return False  # not reached: the last attempt returns or raises

    async def _release(self, job_id: str, token: str) -> None:
        async with self._sessions() as session, session.begin():
            await store.release_job(session, job_id, token)
        log.info("search job %s handed back to the queue", job_id)


class _ProgressWriter:
    """Store a running job's progress (files done of files total) as it is told, at most
    every ``every`` seconds, and the last counts on ``close``."""

    def __init__(self, sessions: Sessions, job_id: str, token: str, every: float) -> None:
        self._sessions = sessions
        self._job_id = job_id
        self._token = token
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
            async with self._sessions() as session, session.begin():
                await store.set_progress(session, self._job_id, self._token, *value)
        except Exception:
            log.warning("could not store the progress of search job %s", self._job_id)
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
