"""Files' raw contents, streamed in pieces from the hosts trusted with them. Raw URLs do
not count against the API's rate limit, so nothing here asks the gate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import aiohttp
from yarl import URL

from gistcache.github.errors import (
    ForbiddenRawHost,
    GitHubNotFound,
    GitHubTimeout,
    GitHubUnavailable,
)
from gistcache.github.parse import request_target
from gistcache.github.transport import count_request
from gistcache.observability.metrics import Metrics

RAW_HOST = "gist.githubusercontent.com"
RAW_PIECE_BYTES = 64 * 1024

Origin = tuple[str, str, int | None]


def origin(url: URL) -> Origin:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


class RawFiles:
    """Raw downloads over the shared ``session``, from the API's own origin, GitHub's raw
    host and the ``raw_hosts`` configured, and from nowhere else."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api: URL,
        *,
        user_agent: str,
        raw_hosts: Sequence[URL] = (),
        read_timeout: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self._user_agent = user_agent
        self._metrics = metrics
        # origins (scheme, host, port) that file contents may come from
        self.origins = frozenset(
            origin(url) for url in (api.origin(), URL(f"https://{RAW_HOST}"), *raw_hosts)
        )
        # a raw file may take long as a whole; only a stalled read is a timeout
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_read=read_timeout, connect=session.timeout.connect
        )

    def allowed(self, url: str) -> bool:
        """Only the trusted origins, and no credentials in the URL."""
        try:
            parsed = URL(url)
            found = origin(parsed)
        except ValueError:
            return False
        return found in self.origins and not parsed.user and not parsed.password

    async def pieces(self, url: str) -> AsyncIterator[bytes]:
        """Stream a file's raw contents in pieces; never from a host we do not trust.

        No token is sent: public gists need none, and it must never reach a host other
        than the API's.
        """
        if not self.allowed(url):
            raise ForbiddenRawHost(f"raw URL host is not allowed: {URL(url).host!r}")
        try:
            async with self._session.get(
                URL(request_target(url), encoded=True),
                headers={"User-Agent": self._user_agent},
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                count_request(self._metrics, "raw", str(resp.status))
                if resp.status == 404:
                    raise GitHubNotFound("raw file not found")
                if resp.status != 200:
                    raise GitHubUnavailable(f"raw file answered {resp.status}")
                async for piece in resp.content.iter_chunked(RAW_PIECE_BYTES):
                    if self._metrics is not None:
                        self._metrics.fetched_bytes.inc(len(piece))
                    yield piece
        except TimeoutError as exc:
            count_request(self._metrics, "raw", "timeout")
            raise GitHubTimeout("raw file download stalled") from exc
        except aiohttp.ClientError as exc:
            count_request(self._metrics, "raw", "error")
            raise GitHubUnavailable(f"raw file download failed ({type(exc).__name__})") from exc
