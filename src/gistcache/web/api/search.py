"""Searches: ``POST /api/v1/search`` (at once, or as a job) and a job's status and result."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime
from typing import cast

from aiohttp import web

from gistcache.domain.gists import format_timestamp
from gistcache.domain.requests import ManySearchRequest
from gistcache.domain.results import JobStatus
from gistcache.services.failures import Failure
from gistcache.services.jobs import JobView
from gistcache.web.answers import LARGE_ANSWER_BYTES, ClientGone, send_bytes, write_pieces
from gistcache.web.api import schemas
from gistcache.web.api.render import answer_weight, many_body, search_body, search_pieces
from gistcache.web.api.schemas import parse_search
from gistcache.web.api.stream import many_stream, search_stream, wants_stream
from gistcache.web.app_keys import ANSWERS, CLOCK, JOBS, MANY, REQUEST_ID, SEARCHES, SETTINGS
from gistcache.web.failures import SearchNotFinished, SearchNotFound
from gistcache.web.http import cache_headers, prefers_async, read_json
from gistcache.web.problems import failure_problem, problem_response
from gistcache.web.ratelimit import client_of

log = logging.getLogger(__name__)


async def search(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    search_request, run_async = parse_search(body)
    # a job when asked for one (the body's "async" or Prefer: respond-async), else a
    # stream when the client accepts one, else the answer at once
    run_async = run_async or prefers_async(request)
    if not run_async and wants_stream(request):
        if isinstance(search_request, ManySearchRequest):
            return await many_stream(request, search_request)
        return await search_stream(request, search_request)
    if run_async:
        client = client_of(request, request.app[SETTINGS].trusted_proxies)
        job_id = await request.app[JOBS].submit(search_request, client)
        return _json(
            # the job's id, under its public name (X-Request-ID is this HTTP request's)
            schemas.JOB_ACCEPTED.dump_json({"request_id": job_id}),
            status=202,
            headers={
                "Location": f"/api/v1/search/{job_id}",
                "Preference-Applied": "respond-async",
            },
        )
    if isinstance(search_request, ManySearchRequest):
        many = await request.app[MANY].search(search_request)
        return _json(many_body(many.result))
    answer = await request.app[SEARCHES].search(search_request, queue_if_busy=False)
    # the searched list's freshness, as for the list itself (STALE when GitHub failed)
    headers = cache_headers(answer.listing, request.app[CLOCK]())
    del headers["Cache-Control"]  # a POST answer is not for shared caches
    if answer_weight(answer.result) <= LARGE_ANSWER_BYTES:
        return _json(search_body(answer.result), headers=headers)
    # a large answer: its JSON (more compact than the result it is made from, which is
    # let go) is counted while it is written, in pieces that the client's reading paces
    pieces = list(search_pieces(answer.result))
    del answer
    with request.app[ANSWERS].hold(sum(len(piece) for piece in pieces)):
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "application/json; charset=utf-8"}
        )
        try:
            await write_pieces(
                request, response, pieces, stall=request.app[SETTINGS].search_timeout
            )
        except ClientGone as exc:
            log.info("search answer [%s]: %s", request.get(REQUEST_ID), exc)
        return response


async def search_status(request: web.Request) -> web.Response:
    job = await _job(request)
    state: schemas.JobJSON = {
        "request_id": job.job_id,
        "status": job.status,
        "created_at": format_timestamp(job.created_at),
        "started_at": _timestamp(job.started_at),
        "finished_at": _timestamp(job.finished_at),
        "error": None if job.failure is None else _problem_json(job.failure),
        # null until the search knows how many files it covers
        "progress": None
        if job.progress is None
        else {"files_done": job.progress.done, "files_total": job.progress.total},
    }
    return _json(schemas.JOB.dump_json(state))


async def search_result(request: web.Request) -> web.StreamResponse:
    job = await _job(request)
    if job.status is JobStatus.SUCCESS and job.result is not None:
        # the text the job stored, as it was stored (results of older versions too); a
        # large one is counted while it is written, in pieces the client's reading paces
        body = job.result.encode()
        del job  # its text: the bytes alone are held while they are written
        if len(body) <= LARGE_ANSWER_BYTES:
            return _json(body)
        with request.app[ANSWERS].hold(len(body)):
            response = web.StreamResponse(
                headers={"Content-Type": "application/json; charset=utf-8"}
            )
            stall = request.app[SETTINGS].search_timeout
            what = f"search result [{request.get(REQUEST_ID)}]"
            return await send_bytes(request, response, body, stall=stall, what=what)
    if job.status is JobStatus.FAILURE and job.failure is not None:
        # no Retry-After: the wait a failure asks for counts from when the job failed
        return problem_response(request, failure_problem(replace(job.failure, retry_after=None)))
    raise SearchNotFinished(
        f"the search is {job.status.value}; ask again later",
        retry_after=1,
        job_status=job.status.value,
    )


async def _job(request: web.Request) -> JobView:
    raw = request.match_info["job_id"]
    try:
        job_id = str(uuid.UUID(raw))
    except ValueError:
        job_id = ""
    job = await request.app[JOBS].get(job_id) if job_id == raw.lower() else None
    if job is None:
        raise SearchNotFound("no search has this request id")
    return job


def _json(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=body, status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def _problem_json(failure: Failure) -> schemas.ProblemJSON:
    """A failed job's ``error``: the problem its result answers with, as JSON."""
    return cast("schemas.ProblemJSON", failure_problem(failure).to_json())


def _timestamp(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None
