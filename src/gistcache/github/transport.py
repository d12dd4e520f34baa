"""GETs of GitHub's API over one injected ``ClientSession``: the API's headers, bounded
retries, the rate-limit gate in front of every request, and what each answer says of
GitHub's budget. What an answer means is :func:`~gistcache.github.parse.read_answer`'s
to say."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from gistcache.github.errors import GitHubRateLimited, GitHubTimeout, GitHubUnavailable
from gistcache.github.gate import PAYER, Payer, RateLimitGate
from gistcache.github.parse import (
    Answer,
    RateLimit,
    RateLimitedAnswer,
    core_rate_limit,
    json_body,
    parse_rate_limit,
    read_answer,
)
from gistcache.observability.metrics import Metrics

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
MAX_JSON_BYTES = 32 * 1024 * 1024
# reads a 200's body its own way (the owner fields of a gist, say): the bytes for read_answer
BodyReader = Callable[[aiohttp.ClientResponse], Awaitable[bytes]]


def count_request(metrics: Metrics | None, kind: str, status: str) -> None:
    if metrics is not None:
        metrics.github_requests.labels(kind, status).inc()


class ApiTransport:
    """GitHub's REST API as JSON answers: ``get`` one URL, retried while GitHub fails in
    a way worth retrying; ``rate_limit`` is what GitHub last said of its budget."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api: URL,
        token: str | None,
        *,
        user_agent: str,
        max_json_bytes: int = MAX_JSON_BYTES,
        retries: int = 2,
        retry_backoff: float = 0.25,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self._api = api
        self._token = token
        self._user_agent = user_agent
        self._max_json_bytes = max_json_bytes
        self._retries = retries
        self._retry_backoff = retry_backoff
        self._metrics = metrics
        self.rate_limit: RateLimit | None = None
        self.gate = RateLimitGate(renewed=self._budget_renewed)

    def url(self, path: str) -> URL:
        """The API's URL for ``path`` (already quoted), under the API's own path."""
        return self._api.with_path(self._api.path.rstrip("/") + path, encoded=False)

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

    async def get(self, url: str, etag: str | None, *, read: BodyReader | None = None) -> Answer:
        """GET with bounded, jittered retries on refused connections and 502/503/504.
        ``read`` reads a 200's body instead of reading it whole (at most the JSON limit).

        The context's payer is charged once for the request, however many attempts it
        takes: GitHub counts no refused connection and no 502/503/504, so an outage must
        not cost a client its budget several times over."""
        payer = PAYER.get()
        for attempt in range(self._retries + 1):
            try:
                return await self._get_once(url, etag, read, payer, charge=attempt == 0)
            except GitHubUnavailable as exc:
                if not exc.retryable or attempt == self._retries:
                    raise
                delay = random.uniform(0, self._retry_backoff * 2**attempt)  # noqa: S311 - retry jitter, not a secret
                log.info("GitHub failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _get_once(
        self,
        url: str,
        etag: str | None,
        read: BodyReader | None,
        payer: Payer | None,
        *,
        charge: bool,
    ) -> Answer:
        self.gate.check()
        if payer is not None and charge:
            payer.pay()
        status, headers, raw = await self._fetch(url, etag, read)
        if status in (200, 304):
            self.gate.answered()  # GitHub answered, whatever the body holds
        if status == 304 and payer is not None and self._token:
            payer.refund()  # GitHub counts no 304 to an authorized request
        try:
            return read_answer(status, headers, raw, URL(url, encoded=True), self._api, time.time())
        except RateLimitedAnswer as refused:
            wait = self.gate.limited(refused.retry_after, named=refused.named, spent=refused.spent)
            raise GitHubRateLimited(str(refused), wait) from None

    async def _fetch(
        self, url: str, etag: str | None, read: BodyReader | None
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        started = time.monotonic()
        try:
            async with self._session.get(
                URL(url, encoded=True), headers=self._headers(etag), allow_redirects=False
            ) as resp:
                # before the body: what GitHub says of its budget holds whatever follows
                self._record_rate_limit(resp.headers)
                if resp.status == 304:
                    raw = b""
                elif resp.status == 200 and read is not None:
                    raw = await read(resp)
                else:
                    raw = await self._read_limited(resp)
                status, headers = resp.status, resp.headers
        except TimeoutError as exc:
            count_request(self._metrics, "api", "timeout")
            raise GitHubTimeout("GitHub did not answer in time") from exc
        except aiohttp.ClientError as exc:
            count_request(self._metrics, "api", "error")
            # a connection that failed or broke off: safe to retry a GET
            raise GitHubUnavailable(
                f"could not reach GitHub ({type(exc).__name__})", retryable=True
            ) from exc
        count_request(self._metrics, "api", str(status))
        elapsed = (time.monotonic() - started) * 1000
        log.debug("github GET %s -> %s in %.0f ms", URL(url).path, status, elapsed)
        return status, headers, raw

    async def _budget_renewed(self) -> bool:
        """Whether GitHub's primary budget has requests again, asked of ``GET
        /rate_limit`` (which GitHub does not count, so it goes out while blocked and is
        charged to no one). What it says of the budget is recorded; a failure says no."""
        return await self.renewed("core")

    async def renewed(self, resource: str) -> bool:
        """Whether GitHub's budget of ``resource`` (``core``: REST's; ``graphql``) has
        requests again, asked of ``GET /rate_limit``; a failure says no. What it says of
        REST's budget is recorded."""
        try:
            async with self._session.get(
                URL(str(self.url("/rate_limit")), encoded=True),
                headers=self._headers(None),
                allow_redirects=False,
            ) as resp:
                raw = await self._read_limited(resp)
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, GitHubUnavailable) as exc:
            count_request(self._metrics, "rate_limit", "error")
            log.info("could not ask GitHub whether its rate limit is renewed: %s", exc)
            return False
        count_request(self._metrics, "rate_limit", str(status))
        budget = core_rate_limit(json_body(raw), resource) if status == 200 else None
        if budget is None:
            log.info("GitHub's GET /rate_limit answered %s without a %s budget", status, resource)
            return False
        if resource == "core":
            self._remember_rate_limit(budget)
        if budget.remaining <= 0:
            return False
        log.warning(
            "GitHub's %s rate limit is renewed (%d of %d remain): asking again",
            resource,
            budget.remaining,
            budget.limit,
        )
        return True

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
