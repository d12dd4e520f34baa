"""The transport to GitHub: one injected ``ClientSession``, the API's headers, bounded
retries, list pagination along ``rel="next"`` links, and raw files streamed in pieces.

What the answers mean is read by :mod:`gistcache.github.parse`; whether a request may
go out at all is the :class:`~gistcache.github.gate.RateLimitGate`'s to say.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from gistcache.domain.gists import Gist
from gistcache.github.errors import (
    ForbiddenRawHost,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubReserveKept,
    GitHubTimeout,
    GitHubUnavailable,
)
from gistcache.github.gate import PAYER, Payer, RateLimitGate
from gistcache.github.parse import (
    PageKey,
    RateLimit,
    core_rate_limit,
    failure,
    json_body,
    names_a_wait,
    next_page,
    page_key,
    pages_between,
    parse_rate_limit,
    public_gists,
    request_target,
)
from gistcache.github.skim import OWNER_FIELDS, FieldSkimmer, SkimError, gist_owner, owner_known
from gistcache.observability.metrics import Metrics

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
PER_PAGE = 100
# a stale list's known pages asked for again at once; GitHub asks API clients for no
# more than 100 concurrent requests, and a list rarely has more pages than this
KNOWN_PAGES_AT_ONCE = 4
RAW_HOST = "gist.githubusercontent.com"
RAW_PIECE_BYTES = 64 * 1024
MAX_JSON_BYTES = 32 * 1024 * 1024
# reads a 200's body its own way (the owner fields of a gist, say): the bytes for json_body
_BodyReader = Callable[[aiohttp.ClientResponse], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class KnownPage:
    """A page we fetched before: its URL and the ETag GitHub gave it."""

    url: str
    etag: str | None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a user's gist list as GitHub answered it.

    ``gists`` is None when GitHub answered 304: the page is unchanged since ``etag``.
    """

    url: str
    etag: str | None
    gists: list[Gist] | None

    @property
    def not_modified(self) -> bool:
        return self.gists is None


@dataclass(frozen=True, slots=True)
class UserAnswer:
    """GitHub's answer to ``GET /users/{login}``: the user's JSON, or None when GitHub
    answered 304 (unchanged since the ETag asked with)."""

    body: dict[str, Any] | None
    etag: str | None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any  # the JSON of a 200; None for a 304
    next: URL | None  # the Link header's rel="next" on the API's origin (parse.next_page)
    last: URL | None = None  # its rel="last", likewise


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


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
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self._api = URL(api_url.rstrip("/"))
        self._token = token
        self._user_agent = user_agent
        self._max_pages = max_pages
        self._max_json_bytes = max_json_bytes
        self.credential = credential_fingerprint(token)
        self.rate_limit: RateLimit | None = None
        self.gate = RateLimitGate(renewed=self._budget_renewed)
        self._retries = retries
        self._retry_backoff = retry_backoff
        # the share of GitHub's rate limit kept for revalidating what is cached
        self._reserve_percent = reserve_percent
        self._metrics = metrics
        # origins (scheme, host, port) that file contents may come from
        self.raw_origins = frozenset(
            _origin(url) for url in (self._api.origin(), URL(f"https://{RAW_HOST}"), *raw_hosts)
        )
        # a raw file may take long as a whole; only a stalled read is a timeout
        self._raw_timeout = aiohttp.ClientTimeout(
            total=None, sock_read=raw_read_timeout, connect=session.timeout.connect
        )

    def user_gists_url(self, login: str) -> str:
        """The first page of a user's public gists; later pages come only from Link headers."""
        path = self._api.path.rstrip("/") + "/users/" + quote(login, safe="") + "/gists"
        return str(self._api.with_path(path, encoded=False).with_query(per_page=PER_PAGE))

    def _headers(self, etag: str | None) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": self._user_agent,
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if etag:
            headers["If-None-Match"] = etag
        return headers

    async def list_user_gists(
        self, login: str, known: Sequence[KnownPage] = (), *, cached: bool = False
    ) -> list[ListPage]:
        """Every page of a user's public gists, following ``rel="next"`` links.

        A list that is not ``cached`` is not asked for while GitHub's remaining budget is
        down to the reserve (GitHubReserveKept); one whose walk began is finished.

        Pages in ``known`` (from an earlier walk, in order) are asked for with
        ``If-None-Match`` all at once (at most ``KNOWN_PAGES_AT_ONCE`` in flight, well
        within GitHub's guidance of no more than 100 concurrent requests), so that a
        stale list costs one round trip; GitHub answers 304 for those unchanged, and
        then the page that followed last time follows again. The walk still goes by
        the answers, in order: an answer for a page the walk no longer reaches is
        dropped, and a page it reaches that was not known is asked for then. Pages are
        told apart by :func:`~gistcache.github.parse.page_key` (their query's pairs in
        any order), and no page is asked for twice in one walk.
        """
        if not cached:
            self._keep_reserve()
        by_url = {page_key(page.url): (index, page.etag) for index, page in enumerate(known)}
        first = self.user_gists_url(login)
        ahead: dict[PageKey, asyncio.Task[_Answer]] = {}
        slots = asyncio.Semaphore(KNOWN_PAGES_AT_ONCE)

        async def asked(url: str, etag: str | None) -> _Answer:
            async with slots:
                return await self._get_json(url, etag)

        if known and page_key(known[0].url) == page_key(first):
            ahead = {
                page_key(page.url): asyncio.ensure_future(asked(page.url, page.etag))
                for page in known
            }
        try:
            return await self._walk(first, known, by_url, ahead, asked)
        finally:
            for task in ahead.values():  # answers the walk did not reach, or a failure
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # retrieved: an unreached page's failure is no news
            if ahead:
                await asyncio.gather(*ahead.values(), return_exceptions=True)

    async def _walk(
        self,
        url: str | None,
        known: Sequence[KnownPage],
        by_url: Mapping[PageKey, tuple[int, str | None]],
        ahead: dict[PageKey, asyncio.Task[_Answer]],
        ask: Callable[[str, str | None], Awaitable[_Answer]],
    ) -> list[ListPage]:
        pages: list[ListPage] = []
        seen: set[PageKey] = set()
        while url is not None:
            key = page_key(url)
            if key in seen or len(pages) >= self._max_pages:
                raise GitHubUnavailable("GitHub's pagination did not end")
            seen.add(key)
            index, etag = by_url.get(key, (None, None))
            asked = ahead.get(key)
            answer = await asked if asked is not None else await self._get_json(url, etag)
            if answer.status == 304:
                if index is None:
                    raise GitHubUnavailable("GitHub answered 304 to an unconditional request")
                etag = answer.headers.get("etag") or etag
                # the page as the caller knows it, however this walk's link spelt it
                pages.append(ListPage(url=known[index].url, etag=etag, gists=None))
                url = known[index + 1].url if index + 1 < len(known) else None
                continue
            gists = public_gists(answer.body)
            if not known and not pages and answer.next is not None and answer.last is not None:
                # a list not seen before: its first page names the last one, so the pages
                # in between are asked for now, together, rather than one after another
                between = pages_between(answer.next, answer.last, self._max_pages)
                ahead.update({page_key(u): asyncio.ensure_future(ask(u, None)) for u in between})
            pages.append(ListPage(url=url, etag=answer.headers.get("etag"), gists=gists))
            url = None if answer.next is None else str(answer.next)
        return pages

    async def user(self, login: str, etag: str | None, *, cached: bool) -> UserAnswer:
        """GitHub's ``GET /users/{login}``, conditional on ``etag`` when given. One not
        ``cached`` is not asked for while GitHub's remaining budget is down to the reserve
        (GitHubReserveKept). GitHubNotFound when GitHub has no such user."""
        if not cached:
            self._keep_reserve()
        path = self._api.path.rstrip("/") + "/users/" + quote(login, safe="")
        answer = await self._get_json(str(self._api.with_path(path, encoded=False)), etag)
        if answer.status == 304:
            if etag is None:
                raise GitHubUnavailable("GitHub answered 304 to an unconditional request")
            return UserAnswer(None, answer.headers.get("etag") or etag)
        if not isinstance(answer.body, dict) or not isinstance(answer.body.get("login"), str):
            raise GitHubUnavailable("GitHub sent a user that is not a JSON object with a login")
        return UserAnswer(answer.body, answer.headers.get("etag"))

    async def gist_owner(self, gist_id: str) -> str | None:
        """The login of a public gist's owner, asked of ``GET /gists/{id}``; None when
        the gist is secret or names no owner. GitHubNotFound when there is no such gist;
        GitHubReserveKept while GitHub's remaining budget is down to the reserve."""
        self._keep_reserve()
        path = self._api.path.rstrip("/") + "/gists/" + quote(gist_id, safe="")
        url = str(self._api.with_path(path, encoded=False))
        answer = await self._get_json(url, None, read=self._read_owner_fields)
        return gist_owner(answer.body)

    async def _read_owner_fields(self, resp: aiohttp.ClientResponse) -> bytes:
        """The owner fields of a gist as a small JSON object, read from the streamed
        answer: the files' contents before them (up to 300 MiB) are skipped, never held,
        and the read stops once the owner is known."""
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
        try:
            parsed = URL(url)
            origin = _origin(parsed)
        except ValueError:
            return False
        return origin in self.raw_origins and not parsed.user and not parsed.password

    async def iter_raw(self, url: str) -> AsyncIterator[bytes]:
        """Stream a file's raw contents in pieces; never from a host we do not trust.

        Raw URLs do not count against the API rate limit. No token is sent: public
        gists need none, and it must never reach a host other than the API's.
        """
        if not self.raw_url_allowed(url):
            raise ForbiddenRawHost(f"raw URL host is not allowed: {URL(url).host!r}")
        try:
            async with self._session.get(
                URL(request_target(url), encoded=True),
                headers={"User-Agent": self._user_agent},
                allow_redirects=False,
                timeout=self._raw_timeout,
            ) as resp:
                self._count("raw", str(resp.status))
                if resp.status == 404:
                    raise GitHubNotFound("raw file not found")
                if resp.status != 200:
                    raise GitHubUnavailable(f"raw file answered {resp.status}")
                async for piece in resp.content.iter_chunked(RAW_PIECE_BYTES):
                    if self._metrics is not None:
                        self._metrics.fetched_bytes.inc(len(piece))
                    yield piece
        except TimeoutError as exc:
            self._count("raw", "timeout")
            raise GitHubTimeout("raw file download stalled") from exc
        except aiohttp.ClientError as exc:
            self._count("raw", "error")
            raise GitHubUnavailable(f"raw file download failed ({type(exc).__name__})") from exc

    async def _get_json(
        self, url: str, etag: str | None, *, read: _BodyReader | None = None
    ) -> _Answer:
        """GET with bounded, jittered retries on refused connections and 502/503/504.
        ``read`` reads a 200's body instead of reading it whole (at most the JSON limit).

        The context's payer is charged once for the request, however many attempts it
        takes: GitHub counts no refused connection and no 502/503/504, so an outage must
        not cost a client its budget several times over."""
        payer = PAYER.get()
        for attempt in range(self._retries + 1):
            try:
                return await self._get_json_once(url, etag, read, payer, charge=attempt == 0)
            except GitHubUnavailable as exc:
                if not exc.retryable or attempt == self._retries:
                    raise
                delay = random.uniform(0, self._retry_backoff * 2**attempt)  # noqa: S311 - retry jitter, not a secret
                log.info("GitHub failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _get_json_once(
        self,
        url: str,
        etag: str | None,
        read: _BodyReader | None,
        payer: Payer | None,
        *,
        charge: bool,
    ) -> _Answer:
        self.gate.check()
        if payer is not None and charge:
            payer.pay()
        started = time.monotonic()
        try:
            async with self._session.get(
                URL(url, encoded=True), headers=self._headers(etag), allow_redirects=False
            ) as resp:
                self._record_rate_limit(resp.headers)
                if resp.status == 304:
                    raw = b""
                elif resp.status == 200 and read is not None:
                    raw = await read(resp)
                else:
                    raw = await self._read_limited(resp)
                status, headers = resp.status, resp.headers
        except TimeoutError as exc:
            self._count("api", "timeout")
            raise GitHubTimeout("GitHub did not answer in time") from exc
        except aiohttp.ClientError as exc:
            self._count("api", "error")
            # a connection that failed or broke off: safe to retry a GET
            raise GitHubUnavailable(
                f"could not reach GitHub ({type(exc).__name__})", retryable=True
            ) from exc
        self._count("api", str(status))
        log.debug(
            "github GET %s -> %s in %.0f ms",
            URL(url).path,
            status,
            (time.monotonic() - started) * 1000,
        )
        if status == 304:
            self.gate.answered()
            if payer is not None and self._token:
                payer.refund()  # GitHub counts no 304 to an authorized request
            return _Answer(status, headers, None, None)
        body = json_body(raw)
        if status == 200:
            self.gate.answered()
            if body is None:
                raise GitHubUnavailable("GitHub sent an empty or malformed JSON body")
            links = headers.getall("link", [])
            following = next_page(links, URL(url, encoded=True), self._api)
            last = None
            if following is not None:
                try:  # only a hint for asking ahead: a bad one is ignored, not a failure
                    last = next_page(links, URL(url, encoded=True), self._api, rel="last")
                except GitHubUnavailable:
                    last = None
            return _Answer(status, headers, body, following, last)
        error = failure(status, headers, body, time.time())
        if isinstance(error, GitHubRateLimited):
            wait = self.gate.limited(
                error.retry_after,
                named=names_a_wait(headers),
                spent=headers.get("x-ratelimit-remaining") == "0",
            )
            raise GitHubRateLimited(str(error), wait)
        raise error

    async def _budget_renewed(self) -> bool:
        """Whether GitHub's primary budget has requests again, asked of ``GET
        /rate_limit`` (which GitHub does not count, so it goes out while blocked and is
        charged to no one). What it says of the budget is recorded; a failure says no."""
        url = str(self._api.with_path(self._api.path.rstrip("/") + "/rate_limit", encoded=False))
        try:
            async with self._session.get(
                URL(url, encoded=True), headers=self._headers(None), allow_redirects=False
            ) as resp:
                raw = await self._read_limited(resp)
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, GitHubUnavailable) as exc:
            self._count("rate_limit", "error")
            log.info("could not ask GitHub whether its rate limit is renewed: %s", exc)
            return False
        self._count("rate_limit", str(status))
        core = core_rate_limit(json_body(raw)) if status == 200 else None
        if core is None:
            log.info("GitHub's GET /rate_limit answered %s without a core budget", status)
            return False
        self._remember_rate_limit(core)
        if core.remaining <= 0:
            return False
        log.warning(
            "GitHub's rate limit is renewed (%d of %d requests remain): asking again",
            core.remaining,
            core.limit,
        )
        return True

    def _count(self, kind: str, status: str) -> None:
        if self._metrics is not None:
            self._metrics.github_requests.labels(kind, status).inc()

    async def _read_limited(self, resp: aiohttp.ClientResponse) -> bytes:
        if resp.content_length is not None and resp.content_length > self._max_json_bytes:
            raise GitHubUnavailable("GitHub's response is larger than we accept")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > self._max_json_bytes:
                raise GitHubUnavailable("GitHub's response is larger than we accept")
        return bytes(data)

    def _record_rate_limit(self, headers: Mapping[str, str]) -> None:
        parsed = parse_rate_limit(headers)
        if parsed is None:
            return
        self._remember_rate_limit(parsed)
        if parsed.remaining == 0 and parsed.reset is not None:
            self.gate.spent_until(parsed.reset.timestamp())
            log.warning("GitHub rate limit spent; no requests until %s", parsed.reset.isoformat())

    def _remember_rate_limit(self, parsed: RateLimit) -> None:
        self.rate_limit = parsed
        if self._metrics is not None:
            reset = parsed.reset.timestamp() if parsed.reset is not None else None
            self._metrics.github_rate_limit(parsed.remaining, reset)
