"""The fake GitHub's aiohttp application: its routes (REST in ``rest``, GraphQL in
``graphql``, raw files in ``raw``, the ``/_fake/`` controls in ``controls``), the request
log, and the checks every request meets first (latency, ``User-Agent``, injected
failures, the rate limit; the raw host's own limit)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.testing.fake_github.controls import Controls
from gistcache.testing.fake_github.corpus import SeededState
from gistcache.testing.fake_github.faults import Faults, github_error
from gistcache.testing.fake_github.graphql import (
    DEFAULT_FLOOR,
    DEFAULT_PER_FILE,
    RECORD,
    GraphQLRoutes,
    graphql_path,
)
from gistcache.testing.fake_github.payloads import Payloads
from gistcache.testing.fake_github.raw import RAW_ROUTE, serve_raw
from gistcache.testing.fake_github.rest import RestRoutes


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    kind: str  # "api" (REST), "graphql", "raw" or "control"
    status: int | None = None  # what the fake answered
    target: str = ""  # the path and query as they came on the request line, still encoded
    body: Any = None  # a GraphQL request's JSON (query, variables), once it was read


class FakeGitHub(SeededState, Faults):
    """State and behaviour of the fake; ``app()`` gives the aiohttp application."""

    def __init__(
        self,
        *,
        api_prefix: str = "",
        anonymous_limit: int = 60,
        token_limit: int = 5000,
        latency: float = 0.0,
        raw_base: str | None = None,
        rate_limit_status: int = 403,
        graphql_limit: int = 5000,
        graphql_points_per_minute: int = 2000,
        graphql_rate_limit_type: str = "RATE_LIMIT",
        graphql_floor: float = DEFAULT_FLOOR,
        graphql_per_file: float = DEFAULT_PER_FILE,
        graphql_time_model: bool | None = None,
        raw_hourly_limit: int | None = None,
        raw_block_seconds: int = 1800,
    ) -> None:
        """``graphql_time_model``: whether a GraphQL answer takes ``graphql_floor`` plus
        ``graphql_per_file`` for each file whose text it holds (seconds, after the
        latency); by default when ``latency`` is on. ``raw_hourly_limit``: the raw host's
        downloads an hour before it answers 429 with ``Retry-After`` to every download
        for ``raw_block_seconds`` (None: no limit)."""
        SeededState.__init__(self)
        Faults.__init__(
            self,
            anonymous_limit=anonymous_limit,
            token_limit=token_limit,
            latency=latency,
            rate_limit_status=rate_limit_status,
            graphql_limit=graphql_limit,
            graphql_points_per_minute=graphql_points_per_minute,
            graphql_rate_limit_type=graphql_rate_limit_type,
            raw_hourly_limit=raw_hourly_limit,
            raw_block_seconds=raw_block_seconds,
        )
        self.graphql_floor = graphql_floor
        self.graphql_per_file = graphql_per_file
        self._graphql_time_model = graphql_time_model
        self.api_prefix = api_prefix.rstrip("/")
        self.graphql_path = graphql_path(self.api_prefix)
        self.raw_base = raw_base
        # False: raw_url holds the file name as it is (a literal space, non-ASCII)
        self.quote_raw_urls = True
        # True: the Link targets of pages after the first name ``page`` before the other
        # parameters (``?page=3&per_page=100``) while the first page's name it last
        # (``?per_page=100&page=3``), as in real traffic recorded by octokit.rb, whose
        # client asked for later pages with its query sorted (GitHub repeats the order)
        self.later_links_page_first = False
        self.requests: list[RecordedRequest] = []
        self.raw_peak_concurrency = 0  # most raw downloads served at once
        self._raw_in_flight = 0
        self.api_peak_concurrency = 0  # most API requests served at once
        self._api_in_flight = 0

    @property
    def graphql_time_model(self) -> bool:
        if self._graphql_time_model is None:
            return self.latency > 0
        return self._graphql_time_model

    # --- inspection --------------------------------------------------------

    def api_requests(self, path_contains: str = "") -> list[RecordedRequest]:
        """The REST API's requests (GraphQL's are graphql_requests)."""
        return [r for r in self.requests if r.kind == "api" and path_contains in r.path]

    def graphql_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "graphql"]

    def raw_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "raw"]

    def payloads(self, request: web.Request) -> Payloads:
        """The JSON of the answer to ``request``, naming the URLs it came in on."""
        origin = str(request.url.origin())
        raw = self.raw_base or f"{origin}/gist-raw"
        return Payloads(origin + self.api_prefix, raw, self.quote_raw_urls)

    # --- HTTP ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 30)
        RestRoutes(self).add_to(app.router, self.api_prefix)
        GraphQLRoutes(self).add_to(app.router, self.api_prefix)
        app.router.add_get(RAW_ROUTE, self._raw)
        Controls(self).add_to(app.router)
        return app

    async def _raw(self, request: web.Request) -> web.StreamResponse:
        return await serve_raw(self, request)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        kind = (
            "control"
            if path.startswith("/_fake/")
            else "raw"
            if path.startswith("/gist-raw/")
            else "graphql"
            if path == self.graphql_path
            else "api"
        )
        record = RecordedRequest(
            request.method,
            path,
            request.query_string,
            dict(request.headers),
            kind,
            target=request.raw_path,
        )
        self.requests.append(record)
        request[RECORD] = record
        if kind == "raw":
            self._raw_in_flight += 1
            self.raw_peak_concurrency = max(self.raw_peak_concurrency, self._raw_in_flight)
        elif kind in ("api", "graphql"):
            self._api_in_flight += 1
            self.api_peak_concurrency = max(self.api_peak_concurrency, self._api_in_flight)
        try:
            response = await self._answer(request, handler, kind)
        except web.HTTPException as exc:
            # unknown paths and methods get GitHub's JSON error shape, not aiohttp's text
            response = github_error(exc.status, exc.reason)
        finally:
            if kind == "raw":
                self._raw_in_flight -= 1
            elif kind in ("api", "graphql"):
                self._api_in_flight -= 1
        record.status = response.status
        return response

    async def _answer(
        self, request: web.Request, handler: Handler, kind: str
    ) -> web.StreamResponse:
        if kind == "control":
            return await handler(request)
        await self._stall()
        if not request.headers.get("User-Agent"):
            return github_error(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header.",
            )
        failed = await self._injected_failure(request, kind)
        if failed is not None:
            return failed
        if kind == "raw":
            wait = None if self.raw_limit is None else self.raw_limit.admit(time.time())
            if wait is not None:
                return web.Response(
                    status=429, text="429: Too Many Requests", headers={"Retry-After": str(wait)}
                )
            return await handler(request)
        if kind == "graphql":
            return await handler(request)  # its budget is in points: see graphql

        budget = self.budget_for(request.headers.get("Authorization"))
        if request.path == self.api_prefix + "/rate_limit":
            # GitHub answers it whatever is left, and counts it against nothing
            answer = await handler(request)
            self._rate_headers(answer, budget)
            return answer
        over = self._over_limit(request, budget)
        if over is not None:
            return over
        answer = await handler(request)
        authorised_304 = answer.status == 304 and request.headers.get("Authorization")
        if not authorised_304:
            budget.remaining -= 1
        self._rate_headers(answer, budget)
        return answer
