"""The search jobs' queue. Claiming is atomic: on PostgreSQL with ``FOR UPDATE SKIP
LOCKED``, on SQLite through its single writer. In the caller's session and transaction."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.results import JobStatus
from gistcache.store.models import search_jobs
from gistcache.store.sql import is_postgres

PENDING = JobStatus.PENDING.value
STARTED = JobStatus.STARTED.value
SUCCESS = JobStatus.SUCCESS.value
FAILURE = JobStatus.FAILURE.value


@dataclass(frozen=True, slots=True)
class JobRow:
    """A search job as stored (its status one of ``JobStatus``'s values)."""

    job_id: str
    status: str
    request: str  # the search as JSON
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None  # a failed job's failure as JSON (older versions: its problem JSON)
    result: str | None  # a finished job's answer as JSON
    attempts: int
    files_done: int | None  # the running search's progress, when known
    files_total: int | None
    client: str | None  # who submitted it; None for jobs queued before 0009


# the columns a JobRow is made of, named as its fields
_ROW = (
    search_jobs.c.id.label("job_id"),
    *(search_jobs.c[f.name] for f in fields(JobRow) if f.name != "job_id"),
)


def _job(row: Row[Any]) -> JobRow:
    return JobRow(**row._mapping)


class Jobs:
    """The site's queue of search jobs, in one session: what is queued, read and claimed
    is this site's (another site's jobs are not ours). What the holder of a claim does
    with its job is keyed on the job and the claim's token alone: the functions below."""

    def __init__(self, session: AsyncSession, site: int) -> None:
        self._session = session
        self._site = site

    async def create(
        self, job_id: str, request: str, now: datetime, client: str | None = None
    ) -> None:
        await self._session.execute(
            search_jobs.insert().values(
                id=job_id,
                site_id=self._site,
                status=PENDING,
                request=request,
                created_at=now,
                attempts=0,
                client=client,
            )
        )

    async def count_unfinished(self, client: str | None) -> tuple[int, int]:
        """How many jobs are waiting or running: ``client``'s (0 for None), and
        everyone's."""
        row = (
            await self._session.execute(
                select(func.count(), func.count().filter(search_jobs.c.client == client)).where(
                    search_jobs.c.site_id == self._site,
                    search_jobs.c.status.in_((PENDING, STARTED)),
                )
            )
        ).one()
        return (int(row[1]) if client is not None else 0), int(row[0])

    async def get(self, job_id: str) -> JobRow | None:
        row = (
            await self._session.execute(
                select(*_ROW).where(search_jobs.c.id == job_id, search_jobs.c.site_id == self._site)
            )
        ).one_or_none()
        return None if row is None else _job(row)

    async def claim(self, now: datetime, lease_until: datetime, token: str) -> JobRow | None:
        """Take the oldest job that is waiting, or whose runner's lease ran out.

        ``token`` names this claim: only its holder can renew or finish the job.
        """
        candidate = (
            select(search_jobs.c.id)
            .where(
                search_jobs.c.site_id == self._site,
                or_(
                    search_jobs.c.status == PENDING,
                    (search_jobs.c.status == STARTED) & (search_jobs.c.lease_until < now),
                ),
            )
            .order_by(search_jobs.c.created_at)
            .limit(1)
        )
        if is_postgres(self._session):
            candidate = candidate.with_for_update(skip_locked=True)
        row = (
            await self._session.execute(
                update(search_jobs)
                .where(search_jobs.c.id == candidate.scalar_subquery())
                .values(
                    status=STARTED,
                    started_at=now,
                    lease_until=lease_until,
                    lease_token=token,
                    attempts=search_jobs.c.attempts + 1,
                    files_done=None,  # a new attempt starts over
                    files_total=None,
                )
                .returning(*_ROW)
            )
        ).one_or_none()
        return None if row is None else _job(row)


def _held(job_id: str, token: str) -> tuple[Any, ...]:
    return (
        search_jobs.c.id == job_id,
        search_jobs.c.status == STARTED,
        search_jobs.c.lease_token == token,
    )


async def extend_lease(
    session: AsyncSession, job_id: str, token: str, lease_until: datetime
) -> bool:
    """Renew the claim; False when it was lost (another runner took the job over)."""
    result = await session.execute(
        update(search_jobs).where(*_held(job_id, token)).values(lease_until=lease_until)
    )
    return _changed(result)


async def set_progress(
    session: AsyncSession, job_id: str, token: str, files_done: int, files_total: int
) -> bool:
    """Record how far the search got; False when the claim was lost."""
    result = await session.execute(
        update(search_jobs)
        .where(*_held(job_id, token))
        .values(files_done=files_done, files_total=files_total)
    )
    return _changed(result)


async def finish_job(
    session: AsyncSession,
    job_id: str,
    token: str,
    now: datetime,
    *,
    result: str | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome; False when the claim was lost and the outcome dropped."""
    outcome = await session.execute(
        update(search_jobs)
        .where(*_held(job_id, token))
        .values(
            status=FAILURE if error is not None else SUCCESS,
            finished_at=now,
            lease_until=None,
            lease_token=None,
            result=result,
            error=error,
        )
    )
    return _changed(outcome)


async def release_job(session: AsyncSession, job_id: str, token: str) -> None:
    """Hand a job back to the queue (at shutdown), unless someone else holds it now."""
    await session.execute(
        update(search_jobs)
        .where(*_held(job_id, token))
        .values(
            status=PENDING,
            started_at=None,
            lease_until=None,
            lease_token=None,
            # a graceful stop is no failed attempt: rolling deploys must not give jobs up
            attempts=search_jobs.c.attempts - 1,
        )
    )


def _changed(result: Any) -> bool:
    return bool(getattr(result, "rowcount", 0))


async def delete_finished_before(session: AsyncSession, cutoff: datetime) -> int:
    result = await session.execute(
        delete(search_jobs).where(
            search_jobs.c.status.in_((SUCCESS, FAILURE)), search_jobs.c.finished_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    result = await session.execute(
        select(search_jobs.c.status, func.count()).group_by(search_jobs.c.status)
    )
    counts = {status: 0 for status in (PENDING, STARTED, SUCCESS, FAILURE)}
    counts.update({row[0]: int(row[1]) for row in result})
    return counts
