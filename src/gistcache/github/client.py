"""GitHub as the services ask it: a user's gist list (every page), a user, a gist's
owner, raw files and (with a token) batches of files' texts over GraphQL, over one
injected ``ClientSession``; and the reserve of GitHub's budget kept for what is cached.

The requests go out through :mod:`~gistcache.github.transport` (headers, retries, the
:class:`~gistcache.github.gate.RateLimitGate`), lists are walked by
:mod:`~gistcache.github.pages`, raw files come through :mod:`~gistcache.github.raw`,
and what the answers mean is read by :mod:`gistcache.github.parse`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from gistcache.github.errors import GitHubReserveKept, GitHubUnavailable
from gistcache.github.gate import RateLimitGate
from gistcache.github.graphql import graphql_endpoint
from gistcache.github.graphql_transport import GraphQLTransport
from gistcache.github.members import MembersPage, walk_members
from gistcache.github.pages import KnownPage, ListPage, walk_list
from gistcache.github.parse import RateLimit
from gistcache.github.raw import Origin, RawFiles
from gistcache.github.skim import OWNER_FIELDS, FieldSkimmer, SkimError, gist_owner, owner_known
from gistcache.github.transport import MAX_JSON_BYTES, ApiTransport
from gistcache.observability.metrics import Metrics

__all__ = ["GitHubClient", "KnownPage", "ListPage", "UserAnswer", "credential_fingerprint"]

PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class UserAnswer:
    """GitHub's answer to ``GET /users/{login}``: the user's JSON, or None when GitHub
    answered 304 (unchanged since the ETag asked with)."""

    body: dict[str, Any] | None
    etag: str | None


def credential_fingerprint(token: str | None) -> str:
    """A stable, non-reversible name for the credential; ETags are only valid for it."""
    if not token:
        return "anonymous"
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:24]


class GitHubClient:
    """GitHub's REST API for gists, over one shared ``ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        token: str | None = None,
        *,
        user_agent: str,
        max_pages: int = 100,
        max_json_bytes: int = MAX_JSON_BYTES,
        raw_hosts: Sequence[URL] = (),
        raw_read_timeout: float = 30.0,
        retries: int = 2,
        retry_backoff: float = 0.25,
        reserve_percent: int = 0,
        graphql: bool = True,
        metrics: Metrics | None = None,
    ) -> None:
        api = URL(api_url.rstrip("/"))
        self._api = ApiTransport(
            session,
            api,
            token,
            user_agent=user_agent,
            max_json_bytes=max_json_bytes,
            retries=retries,
            retry_backoff=retry_backoff,
            metrics=metrics,
        )
        self._raw = RawFiles(
            session,
            api,
            user_agent=user_agent,
            raw_hosts=raw_hosts,
            read_timeout=raw_read_timeout,
            metrics=metrics,
        )
        # files' texts in batches, with a token only: GraphQL answers no one without
        self.graphql: GraphQLTransport | None = None
        if graphql and token:
            self.graphql = GraphQLTransport(
                session,
                graphql_endpoint(api),
                token,
                user_agent=user_agent,
                renewed=functools.partial(self._api.renewed, "graphql"),
                metrics=metrics,
            )
        self._max_pages = max_pages
        # the share of GitHub's rate limit kept for revalidating what is cached
        self._reserve_percent = reserve_percent
        self.credential = credential_fingerprint(token)
        self.gate: RateLimitGate = self._api.gate

    @property
    def rate_limit(self) -> RateLimit | None:
        """What GitHub last said of its budget, or None before it said anything."""
        return self._api.rate_limit

    @property
    def raw_origins(self) -> frozenset[Origin]:
        """The origins (scheme, host, port) that file contents may come from."""
        return self._raw.origins

    def user_gists_url(self, login: str) -> str:
        """The first page of a user's public gists; later pages come only from Link headers."""
        url = self._api.url("/users/" + quote(login, safe="") + "/gists")
        return str(url.with_query(per_page=PER_PAGE))

    async def list_user_gists(
        self, login: str, known: Sequence[KnownPage] = (), *, cached: bool = False
    ) -> list[ListPage]:
        """Every page of a user's public gists (see :func:`~gistcache.github.pages.walk_list`
        for how ``known`` pages are asked for again).

        A list that is not ``cached`` is not asked for while GitHub's remaining budget is
        down to the reserve (GitHubReserveKept); one whose walk began is finished.
        """
        if not cached:
            self._keep_reserve()
        return await walk_list(self._api.get, self.user_gists_url(login), known, self._max_pages)

    async def org_public_members(
        self, org: str, known: Sequence[MembersPage] = ()
    ) -> list[MembersPage]:
        """An organisation's public members, in GitHub's order, every page (``known``
        pages asked for again with their ETags); GitHubNotFound for no such organisation.
        Not asked for while GitHub's remaining budget is down to the reserve, unless
        ``known``."""
        if not known:
            self._keep_reserve()
        first = self._api.url("/orgs/" + quote(org, safe="") + "/public_members")
        first_url = str(first.with_query(per_page=PER_PAGE))
        return await walk_members(self._api.get, first_url, known, self._max_pages)

    async def user(self, login: str, etag: str | None, *, cached: bool) -> UserAnswer:
        """GitHub's ``GET /users/{login}``, conditional on ``etag`` when given. One not
        ``cached`` is not asked for while GitHub's remaining budget is down to the reserve
        (GitHubReserveKept). GitHubNotFound when GitHub has no such user."""
        if not cached:
            self._keep_reserve()
        answer = await self._api.get(str(self._api.url("/users/" + quote(login, safe=""))), etag)
        if answer.not_modified:
            if etag is None:
                raise GitHubUnavailable("GitHub answered 304 to an unconditional request")
            return UserAnswer(None, answer.etag or etag)
        if not isinstance(answer.body, dict) or not isinstance(answer.body.get("login"), str):
            raise GitHubUnavailable("GitHub sent a user that is not a JSON object with a login")
        return UserAnswer(answer.body, answer.etag)

    async def gist_owner(self, gist_id: str) -> str | None:
        """The login of a public gist's owner, asked of ``GET /gists/{id}``; None when
        the gist is secret or names no owner. GitHubNotFound when there is no such gist;
        GitHubReserveKept while GitHub's remaining budget is down to the reserve."""
        self._keep_reserve()
        url = str(self._api.url("/gists/" + quote(gist_id, safe="")))
        answer = await self._api.get(url, None, read=_read_owner_fields)
        return gist_owner(answer.body)

    def reserve(self) -> int | None:
        """How many of GitHub's remaining API requests are kept for revalidating cached
        lists, or None while GitHub's budget is not known (no answer yet in this window)."""
        known = self.rate_limit
        if known is None or known.reset is None or known.reset.timestamp() <= time.time():
            return None  # not heard of yet, or a new window has begun since
        return known.limit * self._reserve_percent // 100  # rounded down

    def _keep_reserve(self) -> None:
        """Refuse a request for what is not cached once GitHub's remaining budget is down
        to the reserve: a flood of new names must not stop cached users being served."""
        self.gate.check()  # a spent limit is GitHub's to say, not the reserve's
        reserve = self.reserve()
        known = self.rate_limit
        if reserve is None or known is None or known.reset is None or reserve == 0:
            return
        if known.remaining == 0 and not self.gate.blocked_for():
            return  # spent, yet the block was lifted: GitHub renewed the budget since
        if known.remaining <= reserve:
            wait = max(1, math.ceil(known.reset.timestamp() - time.time()))
            raise GitHubReserveKept(
                f"GitHub's remaining rate limit ({known.remaining} of {known.limit}) is kept "
                "for revalidating the users already cached",
                wait,
            )

    def raw_url_allowed(self, url: str) -> bool:
        """Only the API's own origin, GitHub's raw host and configured ones; no credentials."""
        return self._raw.allowed(url)

    def iter_raw(self, url: str) -> AsyncIterator[bytes]:
        """Stream a file's raw contents in pieces; never from a host we do not trust.
        Raw URLs do not count against the API rate limit, and no token is sent."""
        return self._raw.pieces(url)


async def _read_owner_fields(resp: aiohttp.ClientResponse) -> bytes:
    """The owner fields of a gist as a small JSON object, read from the streamed answer:
    the files' contents before them (up to 300 MiB) are skipped, never held, and the
    read stops once the owner is known."""
    skimmer = FieldSkimmer(OWNER_FIELDS)
    try:
        async for chunk in resp.content.iter_chunked(64 * 1024):
            skimmer.feed(chunk)
            if owner_known(skimmer):
                break
    except SkimError as exc:
        raise GitHubUnavailable(f"GitHub sent a malformed gist ({exc})") from exc
    if not skimmer.fields and not skimmer.ended:
        raise GitHubUnavailable("GitHub sent an empty or malformed JSON body")
    return json.dumps(skimmer.fields).encode()
