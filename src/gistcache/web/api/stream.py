"""``POST /api/v1/search`` with ``Accept: application/x-ndjson``: the search as it goes,
one JSON object a line.

The answer starts (200) once the user's list is known, before any file is fetched;
failures before that (a bad body, a pattern RE2 refuses, an unknown user, every search
slot taken) are ordinary problem answers. After it, a failure travels in-band as an
``error`` event. ``page`` and ``per_page`` do not apply: the stream tells every
matching gist, each with its ``index`` in the user's list. A client that goes away
stops the search, and the downloads no other search waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gistcache.domain.requests import ManySearchRequest, SearchRequest
from gistcache.domain.results import (
    FileSkipped,
    GistFound,
    SearchDone,
    SearchEvent,
    SearchProgress,
    SearchStarted,
)
from gistcache.services.many import (
    ManyEvent,
    UserDone,
    UserFileSkipped,
    UserGistFound,
    UsersKnown,
    UsersProgress,
)
from gistcache.web.answers import ClientGone, write_sliced
from gistcache.web.api.render import failed_user, render_cut, render_gist, render_skipped
from gistcache.web.app_keys import CLOCK, MANY, REQUEST_ID, SEARCHES, SETTINGS
from gistcache.web.http import NDJSON, cache_headers
from gistcache.web.problems import internal_error, problem_body, problem_for

log = logging.getLogger(__name__)


def wants_stream(request: web.Request) -> bool:
    """Whether the client's ``Accept`` names NDJSON."""
    return any(
        part.split(";", 1)[0].strip().lower() == NDJSON
        for value in request.headers.getall("Accept", [])
        for part in value.split(",")
    )


def event_json(event: SearchEvent) -> dict[str, Any] | None:
    """The stream's line for an event (None: the event is not written)."""
    if isinstance(event, SearchProgress):
        return {
            "event": "progress",
            "files_done": event.files_done,
            "files_total": event.files_total,
            "bytes": event.bytes,
        }
    if isinstance(event, GistFound):
        return {"event": "match", "index": event.index, "gist": render_gist(event.match)}
    if isinstance(event, FileSkipped):
        return {"event": "skipped", "index": event.index, **render_skipped(event.skipped)}
    if isinstance(event, SearchDone):
        cut = render_cut(event.cut)
        return {"event": "done", "total": event.total, "status": "success", "cut": cut}
    return None


def many_event_json(event: ManyEvent) -> dict[str, Any]:
    """The stream's line for an event of a many-user search."""
    if isinstance(event, UsersKnown):
        return {"event": "users", "usernames": list(event.logins), "left_out": event.left_out}
    if isinstance(event, UsersProgress):
        return {
            "event": "progress",
            "users_done": event.users_done,
            "users_total": event.users_total,
            "files_done": event.files_done,
            "files_total": event.files_total,
            "bytes": event.bytes,
        }
    if isinstance(event, UserGistFound):
        found = event.found
        return {
            "event": "match",
            "username": event.login,
            "index": found.index,
            "gist": render_gist(found.match),
        }
    if isinstance(event, UserFileSkipped):
        skipped = event.skipped
        return {
            "event": "skipped",
            "username": event.login,
            "index": skipped.index,
            **render_skipped(skipped.skipped),
        }
    if isinstance(event, UserDone):
        if event.failure is not None:
            failed = failed_user(event.login, event.failure)
            return {
                "event": "user",
                "username": event.login,
                "status": failed["status"],
                "total": 0,
                "cut": None,
                "problem": failed.get("problem"),
            }
        return {
            "event": "user",
            "username": event.login,
            "status": "success",
            "total": event.total,
            "cut": render_cut(event.cut),
        }
    return {"event": "done", "total": event.total, "status": "success", "users": event.users}


async def many_stream(request: web.Request, search: ManySearchRequest) -> web.StreamResponse:
    """A many-user search as it goes: ``users`` first (the users in order, once an
    organisation's members are known: their failures are ordinary problem answers),
    then each user's matches and skips (with ``username``), ``progress`` over users
    and files, a ``user`` line when a user's part is complete, last ``done``."""
    many = request.app[MANY]
    limit = request.app[SEARCHES].max_answer_bytes
    events = many.stream(search, answer_limit=limit)
    async with contextlib.aclosing(events):
        first = await anext(events)
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": f"{NDJSON}; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            },
        )
        await response.prepare(request)
        try:
            stall = request.app[SETTINGS].search_timeout
            await write_sliced(response, _line(many_event_json(first)), stall)
            await _write_events(request, response, events, stall, many_event_json)
        except ClientGone as exc:
            log.info("search stream [%s]: %s", request.get(REQUEST_ID), exc)
            if request.transport is not None:
                request.transport.abort()
            return response
        except ConnectionError:
            log.info("search stream [%s]: the client went away", request.get(REQUEST_ID))
            return response
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def _line(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


async def search_stream(request: web.Request, search: SearchRequest) -> web.StreamResponse:
    searches = request.app[SEARCHES]
    events = searches.stream(search, queue_if_busy=False, answer_limit=searches.max_answer_bytes)
    async with contextlib.aclosing(events):
        # the list first: its failures are ordinary problem answers
        first = await anext(events)
        assert isinstance(first, SearchStarted)  # noqa: S101 - stream() begins with it
        headers = cache_headers(first.listing, request.app[CLOCK]())
        del headers["Cache-Control"]
        response = web.StreamResponse(
            status=200,
            headers={
                **headers,
                "Content-Type": f"{NDJSON}; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a proxy must not hold the stream back
            },
        )
        await response.prepare(request)
        try:
            await _write_events(request, response, events, request.app[SETTINGS].search_timeout)
        except ClientGone as exc:
            # the client took nothing for as long as a search may run: what it did not
            # take goes with the connection
            log.info("search stream [%s]: %s", request.get(REQUEST_ID), exc)
            if request.transport is not None:
                request.transport.abort()  # a close would wait for a reader that never reads
            return response
        except ConnectionError:
            log.info("search stream [%s]: the client went away", request.get(REQUEST_ID))
            return response
        except asyncio.CancelledError:
            # aiohttp cancels the handler when its client's connection closes (the
            # server runs with handler_cancellation): the search stops with it
            if request.transport is None or request.transport.is_closing():
                log.info("search stream [%s]: the client went away", request.get(REQUEST_ID))
            raise
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _write_events(
    request: web.Request,
    response: web.StreamResponse,
    events: Any,
    stall: float,
    to_json: Callable[[Any], dict[str, Any] | None] = event_json,
) -> None:
    """Write each event as it comes: the search waits while its reader does (up to
    ``stall`` seconds without taking anything: then TimeoutError)."""
    try:
        async for event in events:
            body = to_json(event)
            if body is not None:
                await write_sliced(response, _line(body), stall)
    except (asyncio.CancelledError, ConnectionError, ClientGone):
        raise
    except Exception as exc:
        problem = problem_for(exc)
        if problem is None:
            log.exception("search stream [%s] failed", request.get(REQUEST_ID))
            problem = internal_error("the search failed unexpectedly")
        elif problem.status in (502, 503, 504):
            log.warning("search stream [%s]: %s", request.get(REQUEST_ID), exc)
        event = {"event": "error", "problem": problem_body(request, problem)}
        await write_sliced(response, _line(event), stall)
