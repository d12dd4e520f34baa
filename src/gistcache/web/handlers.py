"""Thin handlers: validate input, call the service, render JSON."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from gistcache.domain.gists import digest, format_timestamp, render_gists
from gistcache.errors import Problem
from gistcache.keys import JOBS, METRICS, SEARCHES, SERVICE, SESSIONS
from gistcache.services.listing import CacheStatus, GistList
from gistcache.store import lists as store
from gistcache.store.jobs import FAILURE, SUCCESS, Job
from gistcache.web.openapi import build_openapi
from gistcache.web.render import render_search
from gistcache.web.validation import parse_paging, parse_search, validate_username

READY_TIMEOUT = 2.0


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            counts = await request.app[JOBS].count_by_status()
    except Exception:  # metrics must answer even when the database does not
        counts = {}
    for state, count in counts.items():
        registry.search_jobs.labels(state).set(count)
    return web.Response(
        body=generate_latest(registry.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


OPENAPI = build_openapi()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(READY_TIMEOUT), request.app[SESSIONS]() as session:
            await store.ping(session)
    except Exception as exc:
        raise Problem(
            503,
            "not-ready",
            "Not ready",
            "the cache database is not answering",
            headers={"Retry-After": "5"},
        ) from exc
    return web.json_response({"status": "ready"})


async def list_gists(request: web.Request) -> web.StreamResponse:
    username = validate_username(request.match_info["username"])
    paging = parse_paging(request.query)
    service = request.app[SERVICE]
    result = await service.list_gists(username, revalidate=_wants_revalidation(request))

    headers = _cache_headers(result, service.clock())
    items = result.gists
    headers["X-Total-Count"] = str(len(items))
    if paging is not None:
        page, per_page = paging
        items = items[(page - 1) * per_page : page * per_page]
        link = _link_header(request.url, page, per_page, len(result.gists))
        if link:
            headers["Link"] = link

    if paging is None:
        body, fingerprint = result.rendered()  # made once per version of the list
    else:
        body = render_gists(items)
        fingerprint = digest(body)
    etag = f'"{fingerprint}"'
    headers["ETag"] = etag
    if _etag_matches(request.headers.getall("If-None-Match", []), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def _wants_revalidation(request: web.Request) -> bool:
    directives = {
        part.strip().lower()
        for value in request.headers.getall("Cache-Control", [])
        for part in value.split(",")
    }
    pragma = request.headers.get("Pragma", "").lower()
    return "no-cache" in directives or "max-age=0" in directives or "no-cache" in pragma


def _cache_headers(result: GistList, now: datetime) -> dict[str, str]:
    if result.cache is CacheStatus.STALE:
        # Age tells how old the stale copy is; it must not be reused downstream
        return {
            "X-Cache": result.cache.value,
            "Age": str(int(result.age(now))),
            "Cache-Control": "public, max-age=0, must-revalidate",
        }
    # max-age already counts down the freshness left, so no Age header: a shared
    # cache would subtract the age a second time
    return {
        "X-Cache": result.cache.value,
        "Cache-Control": f"public, max-age={int(result.fresh_for)}",
    }


def _etag_matches(values: list[str], etag: str) -> bool:
    for value in values:
        for candidate in value.split(","):
            candidate = candidate.strip()
            if candidate == "*" or candidate.removeprefix("W/") == etag:
                return True
    return False


def _link_header(url: URL, page: int, per_page: int, total: int) -> str:
    last = max(1, math.ceil(total / per_page))
    rels = {"first": 1, "last": last}
    if page > 1:
        rels["prev"] = min(page - 1, last)
    if page < last:
        rels["next"] = page + 1
    order = ("next", "last", "first", "prev")
    return ", ".join(
        f'<{url.update_query(page=rels[rel], per_page=per_page)}>; rel="{rel}"'
        for rel in order
        if rel in rels
    )


MAX_BODY_BYTES = 64 * 1024


async def search(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _too_large()  # refused before a byte of it is read
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large() from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Problem(400, "invalid-json", "Malformed JSON", "the body is not valid JSON") from None
    search_request, run_async = parse_search(body)
    if run_async or _prefers_async(request):
        job_id = await request.app[JOBS].submit(search_request)
        return web.json_response(
            {"request_id": job_id},
            status=202,
            headers={
                "Location": f"/api/v1/search/{job_id}",
                "Preference-Applied": "respond-async",
            },
        )
    answer = await request.app[SEARCHES].search(search_request, wait=False)
    # the searched list's freshness, as for the list itself (STALE when GitHub failed)
    headers = _cache_headers(answer.listing, request.app[SERVICE].clock())
    del headers["Cache-Control"]  # a POST answer is not for shared caches
    return web.json_response(render_search(answer.result), headers=headers)


def _too_large() -> Problem:
    return Problem(
        413,
        "body-too-large",
        "Request body too large",
        f"a request body may hold at most {MAX_BODY_BYTES} bytes",
    )


def _prefers_async(request: web.Request) -> bool:
    return any(
        part.strip().lower() == "respond-async"
        for value in request.headers.getall("Prefer", [])
        for part in value.split(",")
    )


async def search_status(request: web.Request) -> web.Response:
    job = await _job(request)
    return web.json_response(
        {
            "request_id": job.id,
            "status": job.status,
            "created_at": format_timestamp(job.created_at),
            "started_at": _timestamp(job.started_at),
            "finished_at": _timestamp(job.finished_at),
            "error": json.loads(job.error) if job.error else None,
        }
    )


async def search_result(request: web.Request) -> web.Response:
    job = await _job(request)
    if job.status == SUCCESS and job.result is not None:
        return web.Response(text=job.result, content_type="application/json")
    if job.status == FAILURE and job.error is not None:
        raise Problem.from_json(json.loads(job.error))
    raise Problem(
        409,
        "search-not-finished",
        "Search not finished",
        f"the search is {job.status}; ask again later",
        job_status=job.status,
        headers={"Retry-After": "1"},
    )


async def _job(request: web.Request) -> Job:
    raw = request.match_info["request_id"]
    try:
        job_id = str(uuid.UUID(raw))
    except ValueError:
        job_id = ""
    job = await request.app[JOBS].get(job_id) if job_id == raw.lower() else None
    if job is None:
        raise Problem(404, "search-not-found", "No such search", "no search has this request id")
    return job


def _timestamp(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None
