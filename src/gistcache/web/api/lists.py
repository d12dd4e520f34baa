"""A user's gists: ``GET /{username}`` and ``GET /api/v1/users/{username}/gists``."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from gistcache.domain.gists import digest, render_gists
from gistcache.domain.requests import parse_paging, validate_username
from gistcache.domain.results import CacheStatus
from gistcache.services.memory import RenderedList
from gistcache.web.app_keys import CLOCK, LISTING
from gistcache.web.http import (
    cache_headers,
    etag_matches,
    fresh_cache_control,
    link_header,
    wants_revalidation,
    whole_list_headers,
)


async def list_gists(request: web.Request) -> web.StreamResponse:
    username = validate_username(request.match_info["username"])
    # most requests have no query string: no query to parse
    paging = parse_paging(request.query) if request.query_string else None
    listing = request.app[LISTING]
    revalidate = wants_revalidation(request)
    if paging is None:
        rendered = await listing.list_rendered(username, revalidate=revalidate)
        return _whole_list(request, rendered, request.app[CLOCK]())

    result = await listing.list_gists(username, revalidate=revalidate)
    headers = cache_headers(result, request.app[CLOCK]())
    items = result.gists
    headers["X-Total-Count"] = str(len(items))
    page, per_page = paging
    items = items[(page - 1) * per_page : page * per_page]
    link = link_header(request.url, page, per_page, len(result.gists))
    if link:
        headers["Link"] = link
    body = render_gists(items)
    fingerprint = digest(body)
    if etag_matches(request, fingerprint):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=body, content_type="application/json", headers=headers)
    response.etag = fingerprint
    return response


def _whole_list(request: web.Request, rendered: RenderedList, now: datetime) -> web.Response:
    """The whole list: its body and entity tag were made once for this version (while
    the memory tier holds it); only the countdown of its freshness is new."""
    result, fingerprint = rendered.listing, rendered.etag
    headers = whole_list_headers(result, fingerprint)
    if result.cache is CacheStatus.STALE:
        headers.update(cache_headers(result, now))
    else:
        headers["Cache-Control"] = fresh_cache_control(result.fresh_for)
    if request.if_none_match is not None and etag_matches(request, fingerprint):
        del headers["Content-Type"]
        return web.Response(status=304, headers=headers)
    return web.Response(body=rendered.body, headers=headers)
