"""A user's gists: ``GET /{username}`` and ``GET /api/v1/users/{username}/gists``."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gistcache.domain.gists import digest, render_gists
from gistcache.domain.requests import parse_paging, validate_username
from gistcache.domain.results import CacheStatus
from gistcache.services.listing import ListAnswer
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
        answer = await listing.list_rendered(username, revalidate=revalidate)
        return _whole_list(request, answer)

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


def _whole_list(request: web.Request, answer: ListAnswer) -> web.Response:
    """The whole list: its body, entity tag and headers were made once for this version
    (while the memory tier holds it); only the countdown of its freshness is new."""
    rendered, cache = answer.rendered, answer.cache
    headers = rendered.derived.get(cache)
    if headers is None:
        headers = rendered.derived[cache] = CIMultiDict(
            whole_list_headers(rendered.listing, cache, rendered.etag)
        )
    if request.if_none_match is not None and etag_matches(request, rendered.etag):
        response = web.Response(status=304, headers=headers)
        del response.headers["Content-Type"]
    else:
        response = web.Response(body=rendered.body, headers=headers)
    if cache is CacheStatus.STALE:
        response.headers.update(cache_headers(rendered.listing, request.app[CLOCK]()))
    else:
        response.headers["Cache-Control"] = fresh_cache_control(answer.fresh_for)
    return response
