"""Handlers of the GitHub-compatible API: each answers as GitHub would, from the cache.

Bodies are GitHub's own items (kept as GitHub sent them, ``Gist.raw``) with GitHub's
API URLs pointing back at gistcache; paging is GitHub's (``per_page`` 30 by default,
at most 100, ``page``, ``since``), with GitHub's ``Link`` headers; every answer has a
strong ``ETag`` of its body and honours ``If-None-Match``. A client's ``Authorization``
is accepted and ignored: it never leaves gistcache.

A request's ``Cache-Control: no-cache`` is ignored too (unlike on gistcache's own API):
GitHub's clients send it on every request (githubkit does), and GitHub itself answers
the same with or without it; the cache's TTL says when GitHub is asked again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from gistcache.domain.errors import InvalidLogin, UserNotFound
from gistcache.domain.gists import Gist, GistFile, digest, parse_timestamp
from gistcache.domain.requests import validate_username
from gistcache.domain.results import CacheStatus, GistList
from gistcache.github.errors import GitHubError, GitHubUnavailable
from gistcache.services.gists import CONTENT_LIMIT, FileContent, GistContents, GistReader
from gistcache.web.answers import ClientGone, write_pieces
from gistcache.web.app_keys import (
    ANSWERS,
    CLOCK,
    GISTS,
    GITHUB_ACCOUNT,
    LISTING,
    PROFILES,
    REQUEST_ID,
    SETTINGS,
)
from gistcache.web.ghcompat.errors import github_error
from gistcache.web.ghcompat.links import Rewriter, github_link_header, public_origin
from gistcache.web.ghcompat.versions import V2026_03_10, list_item, version_of
from gistcache.web.http import cache_headers, etag_matches, fresh_cache_control

log = logging.getLogger(__name__)

GHCOMPAT_PREFIX = "/api/v3"
GITHUB_DEFAULT_PER_PAGE = 30
GITHUB_MAX_PER_PAGE = 100
LIST_DOCS = "/gists/gists#list-gists-for-a-user"
USER_DOCS = "/users/users#get-a-user"
# the query parameters a list's Link targets repeat
PAGING_PARAMS = ("per_page", "page", "since")


def _number(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default  # as GitHub: a value that is no number is not there


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
    per_page = _number(query.get("per_page"), GITHUB_DEFAULT_PER_PAGE)
    per_page = GITHUB_DEFAULT_PER_PAGE if per_page < 1 else min(per_page, GITHUB_MAX_PER_PAGE)
    return max(1, _number(query.get("page"), 1)), per_page


def _since(query: Mapping[str, str]) -> datetime | None:
    raw = query.get("since")
    if raw is None:
        return None
    try:
        # a "+" of an offset arrives as a space when the client did not escape it
        return parse_timestamp(raw.strip().replace(" ", "+"))
    except ValueError:
        raise _InvalidSince(raw) from None


class _InvalidSince(Exception):
    """``since`` is no ISO 8601 timestamp (GitHub's 422)."""

    def __init__(self, raw: str) -> None:
        super().__init__(raw)
        self.raw = raw


def _json(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate GitHub sent escaped: keep it escaped
        return json.dumps(value, separators=(",", ":")).encode()


def _answer(request: web.Request, body: bytes, headers: dict[str, str]) -> web.Response:
    """200 with the body, or 304 when the client holds it already; a strong ETag."""
    fingerprint = digest(body)
    if etag_matches(request, fingerprint):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(
            body=body, content_type="application/json", charset="utf-8", headers=headers
        )
    response.etag = fingerprint
    return response


def _rewriter(request: web.Request) -> Rewriter:
    settings = request.config_dict[SETTINGS]
    origin = public_origin(request, settings.trusted_proxies)
    return Rewriter(settings.github_api_url, origin + GHCOMPAT_PREFIX)


def _items(gists: Sequence[Gist], version: str) -> list[Any]:
    if any(gist.raw is None for gist in gists):
        # only a STALE list, GitHub failing, can still lack GitHub's items
        raise GitHubUnavailable("GitHub failed, and the cache holds no items of this list yet")
    return [list_item(json.loads(gist.raw), version) for gist in gists if gist.raw is not None]


async def get_user(request: web.Request) -> web.StreamResponse:
    """``GET /users/{username}``: the user as GitHub gives them (PyGithub's
    ``get_user(login)`` asks it before the user's gists), revalidated like a list."""
    try:
        login = validate_username(request.match_info["username"])
    except InvalidLogin:
        return github_error(404, "Not Found", doc=USER_DOCS)  # GitHub has no such user
    try:
        profile = await request.config_dict[PROFILES].get(login)
    except UserNotFound:
        return github_error(404, "Not Found", doc=USER_DOCS)
    body = _json(_rewriter(request).body(json.loads(profile.body)))
    now = request.config_dict[CLOCK]()
    if profile.cache is CacheStatus.STALE:
        headers = {
            "X-Cache": profile.cache.value,
            "Age": str(int(profile.age(now))),
            "Cache-Control": "public, max-age=0, must-revalidate",
        }
    else:
        headers = {
            "X-Cache": profile.cache.value,
            "Cache-Control": fresh_cache_control(profile.fresh_for),
        }
    return _answer(request, body, headers)


async def list_for_login(request: web.Request) -> web.StreamResponse:
    """``GET /users/{username}/gists``."""
    try:
        login = validate_username(request.match_info["username"])
    except InvalidLogin:
        return github_error(404, "Not Found", doc=LIST_DOCS)  # GitHub has no such user
    return await _list(request, login)


async def list_for_id(request: web.Request) -> web.StreamResponse:
    """``GET /user/{id}/gists``: the form of GitHub's ``Link`` targets. Users are known
    by id once one of their lists was cached (any ``Link`` gistcache gave names one)."""
    user_id = int(request.match_info["user_id"])
    login = await request.config_dict[LISTING].login_of(user_id) if user_id < 2**63 else None
    if login is None:
        return github_error(404, "Not Found", doc=LIST_DOCS)
    return await _list(request, login)


async def _list(request: web.Request, login: str) -> web.StreamResponse:
    query = request.query
    try:
        since = _since(query)
    except _InvalidSince as exc:
        return github_error(
            422,
            "Validation Failed",
            doc=LIST_DOCS,
            errors=[{"resource": "Gist", "field": "since", "code": "invalid", "value": exc.raw}],
        )
    page, per_page = _paging(query)
    listing = request.config_dict[LISTING]
    try:
        result = await listing.list_gists(login, need_items=True)
    except UserNotFound:
        return github_error(404, "Not Found", doc=LIST_DOCS)
    gists = result.gists
    if since is not None:
        gists = [gist for gist in gists if gist.updated_at >= since]
    last = max(1, math.ceil(len(gists) / per_page))
    rewriter = _rewriter(request)
    shown = gists[(page - 1) * per_page : page * per_page]
    body = _json(rewriter.body(_items(shown, version_of(request))))

    headers = cache_headers(result, request.config_dict[CLOCK]())
    link = github_link_header(
        rewriter.url(_list_url(request, result)),
        [(k, v) for k, v in query.items() if k in PAGING_PARAMS],
        page,
        last,
    )
    if link is not None:
        headers["Link"] = link
    return _answer(request, body, headers)


def _list_url(request: web.Request, result: GistList) -> str:
    """Where GitHub's ``Link`` headers send a client for more of this list (before the
    rewrite): ``/user/{id}/gists``, or by login while the id is not known."""
    api = request.config_dict[SETTINGS].github_api_url.rstrip("/")
    if result.github_id is not None:
        return f"{api}/user/{result.github_id}/gists"
    return f"{api}/users/{result.login}/gists"


async def get_gist(request: web.Request) -> web.StreamResponse:
    """``GET /gists/{gist_id}``: the gist with each file's ``content`` (at most 1 MB of
    it, and ``truncated``), as GitHub gives it.

    Up to 300 files of 1 MiB: the body is written in pieces, one file's contents at a
    time as the client takes them. Its ETag is the digest of the body without the
    contents, which the files' raw URLs (their revisions) settle."""
    reader = request.config_dict[GISTS]
    # the owner's contents stay in the cache until the answer is written
    async with reader.read(request.match_info["gist_id"]) as found:
        return await _write_gist(request, reader, found)


async def _write_gist(
    request: web.Request, reader: GistReader, found: GistContents
) -> web.StreamResponse:
    """The gist's answer (or a 304), its contents read from the cache as it is written."""
    assert found.gist.raw is not None  # noqa: S101 - the reader raises when the item is missing
    item = json.loads(found.gist.raw)
    # each file's "truncated" and "content" stand in the item as a placeholder, unguessable
    # (a gist's own text cannot forge one), until the contents are written in its place
    # (every file of the item is one of the gist's files, in the same order)
    token = secrets.token_hex(16)
    files = item.get("files")
    if isinstance(files, dict):
        for n, meta in enumerate(files.values()):
            if isinstance(meta, dict):
                meta.pop("content", None)
                meta.pop("encoding", None)  # said again with the contents, for a binary file
                meta["truncated"] = f"{token}:{n}"
    skeleton = _json(_rewriter(request).body(item))
    headers = cache_headers(found.listing, request.config_dict[CLOCK]())
    fingerprint = digest(skeleton.replace(token.encode(), b""))
    if etag_matches(request, fingerprint):
        unchanged = web.Response(status=304, headers=headers)
        unchanged.etag = fingerprint
        return unchanged
    largest = max((min(f.size or 0, CONTENT_LIMIT) for f in found.gist.files), default=0)
    # what it holds at once: the body without contents, and one file's (as text and JSON)
    with request.config_dict[ANSWERS].hold(len(skeleton) + 2 * largest):
        response = web.StreamResponse(
            headers={**headers, "Content-Type": "application/json; charset=utf-8"}
        )
        response.etag = fingerprint
        pieces = _gist_pieces(skeleton, token, reader.contents(found))
        try:
            await write_pieces(
                request, response, pieces, stall=request.config_dict[SETTINGS].search_timeout
            )
        except ClientGone as exc:
            log.info("gist answer [%s]: %s", request.get(REQUEST_ID), exc)
        except GitHubError as exc:  # after the answer began: it can only be broken off
            log.warning("gist answer [%s] broken off: %s", request.get(REQUEST_ID), exc)
            if request.transport is not None:
                request.transport.close()
        return response


async def _gist_pieces(
    skeleton: bytes, token: str, contents: AsyncGenerator[tuple[GistFile, FileContent], None]
) -> AsyncIterator[bytes]:
    """The gist's body: the skeleton with each placeholder replaced by its file's
    ``truncated`` and ``content``, read one file at a time."""
    parts = re.split(rb'"' + token.encode() + rb':\d+"', skeleton)
    async with contextlib.aclosing(contents):
        yield parts[0]
        for part in parts[1:]:
            _, held = await anext(contents)
            yield b"true" if held.truncated else b"false"
            yield b',"content":' + _json(held.content)
            if held.encoding is not None:  # a binary file's, as GitHub marks it
                yield b',"encoding":' + _json(held.encoding)
            yield part


async def rate_limit(request: web.Request) -> web.StreamResponse:
    """``GET /rate_limit``: the client's budget of GitHub API requests it may cause
    (every resource shares it); asking spends none. With the budget off, GitHub
    Enterprise's answer when rate limiting is off: 404 "Rate limiting is not enabled."."""
    account = request.get(GITHUB_ACCOUNT)
    if account is None:
        return github_error(
            404,
            "Rate limiting is not enabled.",
            doc="/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user",
        )

    budget = account.budget()
    # every resource shares the one budget (the resource's name is in the headers)
    one = {
        "limit": budget.limit,
        "used": budget.used,
        "remaining": budget.remaining,
        "reset": budget.reset,
    }
    body: dict[str, Any] = {"resources": {name: one for name in ("core", "search", "graphql")}}
    if version_of(request) != V2026_03_10:  # the deprecated copy of core, gone since
        body["rate"] = one
    return _answer(request, _json(body), {"Cache-Control": "no-cache"})
