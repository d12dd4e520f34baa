"""A user's gists: ``GET /{username}`` and ``GET /api/v1/users/{username}/gists``."""

from __future__ import annotations

from aiohttp import web

from gistcache.domain.gists import digest, render_gists
from gistcache.keys import SERVICE
from gistcache.web.http import cache_headers, etag_matches, link_header, wants_revalidation
from gistcache.web.validation import parse_paging, validate_username


async def list_gists(request: web.Request) -> web.StreamResponse:
    username = validate_username(request.match_info["username"])
    paging = parse_paging(request.query)
    service = request.app[SERVICE]
    result = await service.list_gists(username, revalidate=wants_revalidation(request))

    headers = cache_headers(result, service.clock())
    items = result.gists
    headers["X-Total-Count"] = str(len(items))
    if paging is not None:
        page, per_page = paging
        items = items[(page - 1) * per_page : page * per_page]
        link = link_header(request.url, page, per_page, len(result.gists))
        if link:
            headers["Link"] = link

    if paging is None:
        body, fingerprint = result.rendered()  # made once per version of the list
    else:
        body = render_gists(items)
        fingerprint = digest(body)
    if etag_matches(request, fingerprint):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=body, content_type="application/json", headers=headers)
    response.etag = fingerprint
    return response
