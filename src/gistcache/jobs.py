"""Use case: run searches as jobs. Jobs live in the database; workers inside each
server process claim them one at a time, so several processes sharing one database
never run a job twice, and a job survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gistcache.errors import Problem, problem_for
from gistcache.searching import SearchRequest, SearchService
from gistcache.service import Clock
from gistcache.store import jobs as store
from gistcache.store.jobs import Job

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # a runner that stops renewing loses its job after this
POLL_SECONDS = 1.0


class SearchJobs:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        searches: SearchService,
        *,
        workers: int,
        result_ttl: float,
        clock: Clock,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._searches = searches
        self._workers = workers
        self._result_ttl = timedelta(seconds=result_ttl)
        self._clock = clock
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, request: SearchRequest) -> str:
        job_id = str(uuid.uuid4())
        async with self._sessions() as session, session.begin():
            await store.create_job(session, job_id, json.dumps(request.to_json()), self._clock())
        self._wake.set()
        return job_id

    async def get(self, job_id: str) -> Job | None:
        """The job, or None when there is no such job or its result expired."""
        async with self._sessions() as session:
            job = await store.get_job(session, job_id)
        if job is None or self._expired(job):
            return None
        return job

    def _expired(self, job: Job) -> bool:
        return job.finished_at is not None and job.finished_at + self._result_ttl < self._clock()

    def start(self) -> None:
        for n in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"search-worker-{n}"))

    async def stop(self) -> None:
        """Stop the workers; a job they were running goes back to the queue."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _work(self) -> None:
        while True:
            try:
                job = await self._claim()
            except Exception:
                log.exception("could not claim a search job")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                await self._purge()
                continue
            await self._run(job)

    async def _claim(self) -> Job | None:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            return await store.claim_job(session, now, now + LEASE)

    async def _run(self, job: Job) -> None:
        log.info("search job %s started", job.id)
        keep_lease = asyncio.create_task(self._keep_lease(job.id))
        try:
            request = SearchRequest(**json.loads(job.request))
            body = await self._searches.search(request)
        except asyncio.CancelledError:
            keep_lease.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(job.id))
            raise
        except Exception as exc:
            keep_lease.cancel()
            problem = problem_for(exc)
            if problem is None:
                log.exception("search job %s failed", job.id)
                problem = Problem(
                    500, "internal-error", "Internal Server Error", "the search failed unexpectedly"
                )
            else:
                log.info("search job %s failed: %s", job.id, problem.detail)
            await self._finish(job.id, error=json.dumps(problem.to_json()))
            return
        keep_lease.cancel()
        await self._finish(job.id, result=json.dumps(body, ensure_ascii=False))
        log.info("search job %s finished: %d matches", job.id, body["total"])

    async def _keep_lease(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            try:
                async with self._sessions() as session, session.begin():
                    await store.extend_lease(session, job_id, self._clock() + LEASE)
            except Exception:
                log.warning("could not renew the lease of search job %s", job_id)

    async def _finish(
        self, job_id: str, *, result: str | None = None, error: str | None = None
    ) -> None:
        async with self._sessions() as session, session.begin():
            await store.finish_job(session, job_id, self._clock(), result=result, error=error)

    async def _release(self, job_id: str) -> None:
        async with self._sessions() as session, session.begin():
            await store.release_job(session, job_id)
        log.info("search job %s handed back to the queue", job_id)

    async def _purge(self) -> None:
        cutoff: datetime = self._clock() - self._result_ttl
        try:
            async with self._sessions() as session, session.begin():
                await store.delete_finished_before(session, cutoff)
        except Exception:
            log.warning("could not purge expired search jobs", exc_info=True)
