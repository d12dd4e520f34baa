"""HTTP caching and negotiation, in one place: revalidation directives, the cache headers
of a list answer, conditional requests, RFC 8288 links, ``Prefer`` and bounded bodies."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from aiohttp import web
from yarl import URL

from gistcache.domain.results import CacheStatus, GistList
from gistcache.web.failures import BodyTooLarge, MalformedJSON

MAX_BODY_BYTES = 64 * 1024
NDJSON = "application/x-ndjson"  # the search stream's media type


def wants_revalidation(request: web.Request) -> bool:
    """``Cache-Control: no-cache`` or ``max-age=0`` (or ``Pragma: no-cache``): the client
    wants the list checked with GitHub first."""
    headers = request.headers
    if "Cache-Control" not in headers and "Pragma" not in headers:
        return False  # most requests: nothing to parse
    directives = _tokens(request, "Cache-Control")
    pragma = request.headers.get("Pragma", "").lower()
    return "no-cache" in directives or "max-age=0" in directives or "no-cache" in pragma


def cache_headers(result: GistList, now: datetime) -> dict[str, str]:
    """``X-Cache`` and ``Cache-Control`` (and ``Age`` for a stale copy) of a list answer."""
    if result.cache is CacheStatus.STALE:
        # Age tells how old the stale copy is; it must not be reused downstream
        return {
            "X-Cache": result.cache.value,
            "Age": str(int(result.age(now))),
            "Cache-Control": "public, max-age=0, must-revalidate",
        }
    # max-age already counts down the freshness left, so no Age header: a shared
    # cache would subtract the age a second time
    return {"X-Cache": result.cache.value, "Cache-Control": fresh_cache_control(result.fresh_for)}


def whole_list_headers(result: GistList, cache: CacheStatus, etag: str) -> dict[str, str]:
    """The headers every whole-list answer of this version of the list carries when it
    was obtained as ``cache`` says, with its entity tag (``etag``, unquoted).
    ``Cache-Control`` (and ``Age``) count down with time: :func:`cache_headers`."""
    return {
        "X-Cache": cache.value,
        "X-Total-Count": str(len(result.gists)),
        "Content-Type": "application/json",
        "ETag": f'"{etag}"',
    }


def fresh_cache_control(fresh_for: float) -> str:
    return f"public, max-age={int(fresh_for)}"


def etag_matches(request: web.Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names the entity tag ``etag`` (unquoted; compared weakly,
    as RFC 9110 wants for GET), or is ``*``: then the answer is 304."""
    return any(tag.value in ("*", etag) for tag in request.if_none_match or ())


def link_header(url: URL, page: int, per_page: int, total: int) -> str:
    """RFC 8288 ``Link`` to the next, last, first and previous pages, as GitHub orders them."""
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


def prefers_async(request: web.Request) -> bool:
    """``Prefer: respond-async`` (RFC 7240)."""
    return "respond-async" in _tokens(request, "Prefer")


def _tokens(request: web.Request, header: str) -> set[str]:
    """The comma-separated parts of every ``header`` line, lower-cased."""
    return {
        part.strip().lower()
        for value in request.headers.getall(header, [])
        for part in value.split(",")
    }


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, at most ``MAX_BODY_BYTES``; a problem otherwise."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise body_too_large()  # refused before a byte of it is read
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise body_too_large() from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise MalformedJSON("the body is not valid JSON") from None


def body_too_large() -> BodyTooLarge:
    return BodyTooLarge(f"a request body may hold at most {MAX_BODY_BYTES} bytes")
