"""POSTs of batches to GitHub's GraphQL API over the injected ``ClientSession``: the
token, GraphQL's own rate-limit gate (its budget is in points, apart from REST's), a
few batches at once, and what each answer says of the budget. What an answer gives is
:func:`~gistcache.github.graphql.read_batch`'s to say.

No batch is retried: what a batch failed to give comes from the raw URLs, which is the
retry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from yarl import URL

from gistcache.github.errors import GitHubRateLimited, GitHubTimeout, GitHubUnavailable
from gistcache.github.gate import RateLimitGate
from gistcache.github.graphql import BATCHES_AT_ONCE, Batch, BatchAnswer, read_batch
from gistcache.github.parse import RateLimit, RateLimitedAnswer, parse_rate_limit
from gistcache.github.transport import count_request
from gistcache.observability.metrics import Metrics

log = logging.getLogger(__name__)

# an answer is a batch's texts (BATCH_BYTES, escaped as JSON) and little more
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class GraphQLTransport:
    """Batches of gists' texts from GitHub's GraphQL ``endpoint``, with ``token`` (GraphQL
    answers no one without); ``gate`` is GraphQL's own, ``rate_limit`` what GitHub last
    said of its points."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: URL,
        token: str,
        *,
        user_agent: str,
        at_once: int = BATCHES_AT_ONCE,
        renewed: Callable[[], Awaitable[bool]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self.endpoint = endpoint
        self._token = token
        self._user_agent = user_agent
        self._metrics = metrics
        self._slots = asyncio.Semaphore(at_once)
        # ``renewed``: whether GraphQL's points are renewed (GET /rate_limit), for the gate
        # to lift a spent budget's block early, as REST's
        self.gate = RateLimitGate(renewed=renewed)
        self.rate_limit: RateLimit | None = None

    async def texts(self, batch: Batch) -> BatchAnswer:
        """The texts ``batch`` gives (see ``read_batch``). GitHubRateLimited while
        GraphQL's budget is known to be spent, or when the answer says so (the gate then
        blocks); GitHubUnavailable or GitHubTimeout when the request failed."""
        async with self._slots:
            self.gate.check()  # again once in: a batch ahead may have hit the limit
            status, headers, raw = await self._post(batch)
        if status == 200:
            self.gate.answered()
        try:
            answer = read_batch(batch, status, headers, raw, time.time())
        except RateLimitedAnswer as refused:
            wait = self.gate.limited(refused.retry_after, named=refused.named, spent=refused.spent)
            raise GitHubRateLimited(str(refused), wait) from None
        if self._metrics is not None:
            if answer.cost is not None:
                self._metrics.github_graphql_points.inc(answer.cost)
            self._metrics.fetched_bytes.inc(sum(len(t.encode()) for t in answer.texts.values()))
        if answer.errors:
            log.info("GitHub's GraphQL answer left gists out: %s", answer.errors[0])
        return answer

    async def _post(self, batch: Batch) -> tuple[int, Mapping[str, str], bytes]:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        started = time.monotonic()
        try:
            async with self._session.post(
                self.endpoint, json=batch.request(), headers=headers, allow_redirects=False
            ) as resp:
                self._record_rate_limit(resp.headers)
                raw = await _read_limited(resp)
                status, answered = resp.status, resp.headers
        except TimeoutError as exc:
            count_request(self._metrics, "graphql", "timeout")
            raise GitHubTimeout("GitHub's GraphQL API did not answer in time") from exc
        except aiohttp.ClientError as exc:
            count_request(self._metrics, "graphql", "error")
            raise GitHubUnavailable(
                f"could not reach GitHub's GraphQL API ({type(exc).__name__})"
            ) from exc
        count_request(self._metrics, "graphql", str(status))
        log.debug(
            "github POST %s (%d gists, %d files) -> %s in %.0f ms",
            self.endpoint.path,
            len(batch.gists),
            batch.files,
            status,
            (time.monotonic() - started) * 1000,
        )
        return status, answered, raw

    def _record_rate_limit(self, headers: Mapping[str, str]) -> None:
        parsed = parse_rate_limit(headers)
        if parsed is None:
            return
        self.rate_limit = parsed
        if self._metrics is not None:
            self._metrics.github_graphql_remaining(parsed.remaining)
        if parsed.remaining == 0 and parsed.reset is not None:
            self.gate.spent_until(parsed.reset.timestamp())
            log.warning(
                "GitHub's GraphQL points are spent; no batch until %s", parsed.reset.isoformat()
            )


async def _read_limited(resp: aiohttp.ClientResponse) -> bytes:
    if resp.content_length is not None and resp.content_length > MAX_ANSWER_BYTES:
        raise GitHubUnavailable("GitHub's GraphQL answer is larger than we accept")
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            raise GitHubUnavailable("GitHub's GraphQL answer is larger than we accept")
    return bytes(data)
