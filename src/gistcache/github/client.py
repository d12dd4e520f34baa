"""The only code that talks to GitHub.

Pure parsing (Link, rate-limit headers, gist payloads) is kept apart from the
small transport in :class:`GitHubClient`, which takes an injected ``ClientSession``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from gistcache.domain.gists import Gist, GistFile, parse_timestamp
from gistcache.observability.metrics import Metrics

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
PER_PAGE = 100
RAW_HOST = "gist.githubusercontent.com"
RAW_PIECE_BYTES = 64 * 1024
DEFAULT_RETRY_AFTER = 60
MAX_HINTLESS_WAIT = 15 * 60
# GitHub's windows are an hour: a longer wait is a broken or hostile answer, and would
# shut every server out of GitHub (the block is shared through the database)
MAX_RATE_LIMIT_WAIT = 60 * 60
MAX_JSON_BYTES = 32 * 1024 * 1024
_GIST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
# what may not stand as it is in a request target's path or query (RFC 3986: pchar,
# "/" and "?" may), and a "%" that does not begin a %XX escape
_UNSAFE_IN_TARGET = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})")


class GitHubError(Exception):
    """GitHub could not give us what we asked for."""


class GitHubNotFound(GitHubError):
    """GitHub answered 404."""


class GitHubRateLimited(GitHubError):
    """GitHub refused us for rate limiting; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitHubUnavailable(GitHubError):
    """GitHub failed: a 5xx, a refused connection, or a body we cannot use."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable  # a refused connection or a 502/503/504


class GitHubTimeout(GitHubError):
    """GitHub did not answer in time."""


class ForbiddenRawHost(GitHubError):
    """A raw URL points outside the hosts we fetch contents from (no SSRF)."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    remaining: int
    used: int | None
    reset: datetime | None
    resource: str | None


@dataclass(frozen=True, slots=True)
class Block:
    """What the client knows of GitHub's rate limit, to share with other servers."""

    until: float  # epoch seconds; no API request goes out before it
    strikes: int  # secondary limits in a row that named no wait


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


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each ``rel`` of an RFC 8288 Link header to its target URL."""
    links: dict[str, str] = {}
    if not value:
        return links
    for part in value.split(","):
        section = part.strip()
        if not section.startswith("<") or ">" not in section:
            continue
        target, _, params = section[1:].partition(">")
        for param in params.split(";"):
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in raw.strip().strip('"').split():
                    links.setdefault(rel.lower(), target.strip())
    return links


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """Read the ``x-ratelimit-*`` headers, or None when they are absent or malformed."""
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
    except (KeyError, ValueError):
        return None
    used = headers.get("x-ratelimit-used")
    reset = headers.get("x-ratelimit-reset")
    return RateLimit(
        limit=limit,
        remaining=remaining,
        used=int(used) if used and used.isdigit() else None,
        reset=datetime.fromtimestamp(int(reset), UTC) if reset and reset.isdigit() else None,
        resource=headers.get("x-ratelimit-resource"),
    )


def rate_limit_retry_after(
    status: int, headers: Mapping[str, str], message: str, now: float
) -> int | None:
    """Seconds to wait when a 403/429 is a rate limit, or None when it is not one."""
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        return min(MAX_RATE_LIMIT_WAIT, max(1, int(retry_after.strip())))
    if headers.get("x-ratelimit-remaining") == "0":
        reset = headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            return min(MAX_RATE_LIMIT_WAIT, max(1, int(reset) - int(now)))
        return DEFAULT_RETRY_AFTER
    if status == 429 or "rate limit" in message.lower():
        return DEFAULT_RETRY_AFTER  # a secondary limit that gave no hint
    return None


def _has_hint(headers: Mapping[str, str]) -> bool:
    return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"


def parse_gist(item: Any) -> Gist:
    """Turn one item of GitHub's gist list into a Gist; raise ValueError if it is malformed."""
    if not isinstance(item, dict):
        raise ValueError("gist is not an object")
    try:
        files_obj = item["files"]
        if not isinstance(files_obj, dict):
            raise ValueError("files is not an object")
        files = []
        for name, meta in files_obj.items():
            if not isinstance(meta, dict):
                raise ValueError("file is not an object")
            files.append(
                GistFile(
                    filename=_opt_str(meta.get("filename")) or _opt_str(str(name)) or "",
                    language=_opt_str(meta.get("language")),
                    type=_opt_str(meta.get("type")),
                    size=_opt_int(meta.get("size")),
                    raw_url=_opt_str(meta.get("raw_url")),
                )
            )
        owner = item.get("owner")
        if not isinstance(owner, dict):
            owner = item.get("user")  # older payloads name the owner only there
        description = item.get("description")
        gist_id, html_url = item["id"], item["html_url"]
        if not isinstance(gist_id, str) or not _GIST_ID_RE.fullmatch(gist_id):
            raise ValueError("gist id is not an id")
        html_url = _opt_str(html_url)
        if html_url is None:
            raise ValueError("html_url is not a string")
        comments = item.get("comments", 0)
        if isinstance(comments, bool) or not isinstance(comments, int):
            raise ValueError("comments is not an integer")
        return Gist(
            id=gist_id,
            html_url=html_url,
            description=_opt_str(description),
            # only a plain true is public: anything else counts as secret
            public=item.get("public") is True,
            created_at=parse_timestamp(item["created_at"]),
            updated_at=parse_timestamp(item["updated_at"]),
            comments=comments,
            owner=_login(owner.get("login")) if isinstance(owner, dict) else None,
            files=tuple(files),
            truncated=bool(item.get("truncated", False)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed gist: {exc!r}") from exc


def _login(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 39 else None


def _opt_str(value: Any) -> str | None:
    # PostgreSQL text cannot hold NUL (SQLite can): keep both databases alike
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def request_target(url: str) -> str:
    """``url`` fit to be sent: what a path or query may not hold as it is (a space,
    non-ASCII, a stray ``%``) percent-encoded as UTF-8, existing %XX escapes left as
    they are, nothing else rewritten (unlike yarl, which also decodes and normalises).
    The fragment is never sent."""
    parts = urlsplit(url)
    path = _UNSAFE_IN_TARGET.sub(_percent, parts.path) or "/"
    query = _UNSAFE_IN_TARGET.sub(_percent, parts.query)
    origin = str(URL(url).origin())  # the host as yarl sends it (IDNA), userinfo dropped
    return origin + path + ("?" + query if query else "")


def _percent(found: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in found.group().encode("utf-8", "surrogatepass"))


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
        raw_hosts: Sequence[str] = (),
        raw_read_timeout: float = 30.0,
        retries: int = 2,
        retry_backoff: float = 0.25,
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
        self._blocked_until = 0.0  # epoch seconds; no request goes out before it
        self._hintless_limits = 0  # secondary limits in a row that named no wait
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._metrics = metrics
        # origins (scheme, host, port) that file contents may come from
        self.raw_origins = frozenset(
            _origin(URL(entry if "://" in entry else f"https://{entry}"))
            for entry in (str(self._api.origin()), RAW_HOST, *raw_hosts)
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

    async def list_user_gists(self, login: str, known: Sequence[KnownPage] = ()) -> list[ListPage]:
        """Every page of a user's public gists, following ``rel="next"`` links.

        Pages in ``known`` (from an earlier walk, in order) are asked for with
        ``If-None-Match``; GitHub answers 304 for those unchanged, and then the page
        that followed last time follows again.
        """
        by_url = {page.url: (index, page.etag) for index, page in enumerate(known)}
        pages: list[ListPage] = []
        url: str | None = self.user_gists_url(login)
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(pages) >= self._max_pages:
                raise GitHubUnavailable("GitHub's pagination did not end")
            seen.add(url)
            index, etag = by_url.get(url, (None, None))
            status, headers, body = await self._get_json(url, etag)
            if status == 304:
                if index is None:
                    raise GitHubUnavailable("GitHub answered 304 to an unconditional request")
                pages.append(ListPage(url=url, etag=headers.get("etag") or etag, gists=None))
                url = known[index + 1].url if index + 1 < len(known) else None
                continue
            if not isinstance(body, list):
                raise GitHubUnavailable("GitHub sent a gist list that is not a JSON array")
            try:
                parsed = [parse_gist(item) for item in body]
            except ValueError as exc:
                raise GitHubUnavailable("GitHub sent a malformed gist list") from exc
            # with the user's own token GitHub lists their secret gists too: they are
            # dropped here, before anything can list, store, count or fetch them
            gists = [gist for gist in parsed if gist.public]
            pages.append(ListPage(url=url, etag=headers.get("etag"), gists=gists))
            url = self._next_url(headers)
        return pages

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

    def _next_url(self, headers: Mapping[str, str]) -> str | None:
        target = parse_link_header(headers.get("link")).get("next")
        if target is None:
            return None
        url = URL(target)
        if not url.is_absolute():
            url = self._api.join(url)
        # a Link header must not steer us (and our token) to another host
        if url.origin() != self._api.origin():
            raise GitHubUnavailable("GitHub's next-page link points to another host")
        return str(url)

    def block(self) -> Block:
        return Block(self._blocked_until, self._hintless_limits)

    def adopt_block(self, block: Block) -> None:
        """Take in what another server learnt of the rate limit (shared through the database)."""
        until = min(block.until, time.time() + MAX_RATE_LIMIT_WAIT)
        self._blocked_until = max(self._blocked_until, until)
        self._hintless_limits = block.strikes

    def blocked_for(self) -> int:
        """Seconds until GitHub's rate limit lets us ask again (0 when it does now)."""
        return max(0, math.ceil(self._blocked_until - time.time()))

    async def _get_json(self, url: str, etag: str | None) -> tuple[int, CIMultiDictProxy[str], Any]:
        """GET with bounded, jittered retries on refused connections and 502/503/504."""
        for attempt in range(self._retries + 1):
            try:
                return await self._get_json_once(url, etag)
            except GitHubUnavailable as exc:
                if not exc.retryable or attempt == self._retries:
                    raise
                delay = random.uniform(0, self._retry_backoff * 2**attempt)  # noqa: S311
                log.info("GitHub failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _get_json_once(
        self, url: str, etag: str | None
    ) -> tuple[int, CIMultiDictProxy[str], Any]:
        wait = self.blocked_for()
        if wait:
            # asking now would only spend the next window's budget sooner
            raise GitHubRateLimited("GitHub's rate limit is exhausted", wait)
        started = time.monotonic()
        try:
            async with self._session.get(
                URL(url, encoded=True), headers=self._headers(etag), allow_redirects=False
            ) as resp:
                self._record_rate_limit(resp.headers)
                raw = await self._read_limited(resp) if resp.status != 304 else b""
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
            self._hintless_limits = 0
            return status, headers, None
        body = _decode_json(raw) if raw else None
        if status == 200:
            self._hintless_limits = 0
            if body is None:
                raise GitHubUnavailable("GitHub sent an empty or malformed JSON body")
            return status, headers, body
        message = body.get("message", "") if isinstance(body, dict) else ""
        message = message if isinstance(message, str) else ""
        if status == 404:
            raise GitHubNotFound(message or "Not Found")
        retry_after = rate_limit_retry_after(status, headers, message, time.time())
        if retry_after is not None:
            if not _has_hint(headers):
                # a secondary limit with no word on how long: a minute, doubling each time
                retry_after = min(MAX_HINTLESS_WAIT, retry_after * 2**self._hintless_limits)
                self._hintless_limits += 1
            self._blocked_until = max(self._blocked_until, time.time() + retry_after)
            raise GitHubRateLimited("GitHub's rate limit is exhausted", retry_after)
        if status in (401, 403):
            raise GitHubUnavailable(f"GitHub refused the request ({status})")
        raise GitHubUnavailable(f"GitHub answered {status}", retryable=status in (502, 503, 504))

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
        self.rate_limit = parsed
        if self._metrics is not None:
            self._metrics.github_rate_remaining.set(parsed.remaining)
            if parsed.reset is not None:
                self._metrics.github_rate_reset.set(parsed.reset.timestamp())
        if parsed.remaining == 0 and parsed.reset is not None:
            until = min(parsed.reset.timestamp(), time.time() + MAX_RATE_LIMIT_WAIT)
            self._blocked_until = max(self._blocked_until, until)
            log.warning("GitHub rate limit spent; no requests until %s", parsed.reset.isoformat())


def _decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
