"""What the fake GitHub can be told to do wrong: stall, fail, cut a body off, run
out of its rate-limit budget (primary, per credential) or hit a secondary limit; and the
limits it keeps itself: GraphQL's budget in points (an hour's and a minute's) and the raw
host's hourly budget of downloads."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_DOCS = "https://docs.github.com/rest"
GRAPHQL_DOCS = "https://docs.github.com/graphql"
# what GitHub writes when a GraphQL query failed on its side (a timeout most often); the
# request id in it is GitHub's, made up here
GRAPHQL_TIMEOUT_MESSAGE = (
    "Something went wrong while executing your query. This may be the result of a timeout, "
    "or it could be a GitHub bug. Please include `0400:3B5A:5E6F4C:6E3C5B:65A1B2C3` when "
    "reporting this issue."
)


@dataclass
class Failure:
    """An injected failure for the next ``times`` matching API (or raw) requests."""

    status: int = 502
    times: int = 1
    path_contains: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    kind: str = "api"
    cut_off: bool = False  # promise the whole body, send half, drop the connection


@dataclass
class Budget:
    limit: int
    remaining: int
    reset: int

    @property
    def used(self) -> int:
        return self.limit - self.remaining


@dataclass
class GraphQLFault:
    """An injected GraphQL answer for the next ``times`` requests to ``/graphql``: ``kind``
    is "rate_limited" (200, GitHub's rate-limit error of type ``error_type``, else the
    fake's ``graphql_rate_limit_type``), "timeout" (``status``, 502 unless told,
    with GitHub's "Something went wrong" error), "secondary" (``status``, 403 unless told,
    with ``retry-after``), "slow" (the real answer after ``delay`` seconds) or "partial"
    (the real answer with the nodes of ``node_ids`` null, and the ``text`` of the files
    named in ``file_names`` null, each with an error at its path)."""

    kind: str
    times: int = 1
    status: int | None = None
    delay: float = 0.0
    retry_after: int | None = 60
    node_ids: frozenset[str] = frozenset()
    file_names: frozenset[str] = frozenset()
    error_type: str | None = None  # the ``type`` of a partial or rate-limited answer's error


GRAPHQL_FAULTS = ("rate_limited", "timeout", "secondary", "slow", "partial")


@dataclass
class RawLimit:
    """The raw host's own limit: ``per_hour`` downloads, then 429 with ``Retry-After`` to
    every download for ``block_seconds`` (GitHub's raw host blocks clients it considers
    abusive for about half an hour), then a new hour."""

    per_hour: int
    block_seconds: int = 1800
    used: int = 0
    hour_ends: float = 0.0
    blocked_until: float = 0.0
    refused: int = 0  # downloads answered 429

    def admit(self, now: float) -> int | None:
        """None when a download may go ahead (and counts it), else the seconds to wait."""
        if now < self.blocked_until:
            self.refused += 1
            return max(1, int(self.blocked_until - now + 0.999))
        if now >= self.hour_ends:
            self.used, self.hour_ends = 0, now + 3600
        if self.used >= self.per_hour:
            self.blocked_until = now + self.block_seconds
            self.refused += 1
            return self.block_seconds
        self.used += 1
        return None


class Faults:
    """The fake's latency, injected failures and rate-limit budgets."""

    def __init__(
        self,
        *,
        anonymous_limit: int = 60,
        token_limit: int = 5000,
        latency: float = 0.0,
        rate_limit_status: int = 403,
        graphql_limit: int = 5000,
        graphql_points_per_minute: int = 2000,
        graphql_rate_limit_type: str = "RATE_LIMIT",
        raw_hourly_limit: int | None = None,
        raw_block_seconds: int = 1800,
    ) -> None:
        self.anonymous_limit = anonymous_limit
        self.token_limit = token_limit
        self.latency = latency
        self.rate_limit_status = rate_limit_status
        self.failures: list[Failure] = []
        self.budgets: dict[str, Budget] = {}
        # GraphQL's primary budget in points an hour per token, and its secondary limit
        # in points a minute (a sliding minute of what each token spent)
        self.graphql_limit = graphql_limit
        self.graphql_points_per_minute = graphql_points_per_minute
        # the ``type`` of GitHub's error for a spent GraphQL budget: "RATE_LIMIT" (with
        # ``code: graphql_rate_limit``) is what GitHub answers since 2026 (githubkit
        # issue 271); "RATE_LIMITED" is what its docs and Octokit's throttling plugin say
        self.graphql_rate_limit_type = graphql_rate_limit_type
        self.graphql_budgets: dict[str, Budget] = {}
        self.graphql_minutes: dict[str, deque[tuple[float, int]]] = {}
        self.graphql_faults: list[GraphQLFault] = []
        self.graphql_points = 0  # points charged, over all tokens
        # None: the raw host takes any number of downloads
        self.raw_limit = (
            None if raw_hourly_limit is None else RawLimit(raw_hourly_limit, raw_block_seconds)
        )
        # how the fake waits (its latency, a slow answer, the GraphQL time model): tests
        # put a recorder here to see the waits without waiting
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        # raw downloads of these file names wait (recorded, unanswered) until released
        self.raw_holds: dict[str, asyncio.Event] = {}
        # the next raw download of these file names stops after this many bytes of the
        # file, its connection dropped (a download that fails part-way)
        self.raw_cuts: dict[str, int] = {}

    def fail_next(
        self,
        status: int = 502,
        *,
        times: int = 1,
        path_contains: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        kind: str = "api",
        cut_off: bool = False,
    ) -> None:
        self.failures.append(
            Failure(status, times, path_contains, body, dict(headers or {}), delay, kind, cut_off)
        )

    def hold_raw(self, *filenames: str) -> None:
        """Hold the raw downloads of these files (by name) until ``release_raw``."""
        for name in filenames:
            self.raw_holds.setdefault(name, asyncio.Event())

    def cut_raw(self, filename: str, after: int) -> None:
        """Drop the next raw download of ``filename`` after ``after`` bytes of it."""
        self.raw_cuts[filename] = after

    def release_raw(self, *filenames: str) -> None:
        """Let held raw downloads go on (all of them when no name is given)."""
        for name in filenames or tuple(self.raw_holds):
            hold = self.raw_holds.pop(name, None)
            if hold is not None:
                hold.set()

    def exhaust_rate_limit(self, authorization: str | None = None) -> None:
        """Spend the whole primary budget of one credential (anonymous by default)."""
        self.budget_for(authorization).remaining = 0

    def secondary_rate_limit(self, retry_after: int | None = 60, times: int = 1) -> None:
        """403 for a secondary limit, with ``retry-after`` unless it is None."""
        self.fail_next(
            403,
            times=times,
            body={
                "message": "You have exceeded a secondary rate limit. "
                "Please wait a few minutes before you try again.",
                "documentation_url": f"{API_DOCS}/overview/rate-limits-for-the-rest-api",
            },
            headers={} if retry_after is None else {"retry-after": str(retry_after)},
        )

    def graphql_fault(
        self,
        kind: str,
        *,
        times: int = 1,
        status: int | None = None,
        delay: float = 0.0,
        retry_after: int | None = 60,
        node_ids: frozenset[str] | set[str] | list[str] = frozenset(),
        error_type: str | None = None,
        file_names: frozenset[str] | set[str] | list[str] = frozenset(),
    ) -> None:
        """Answer the next ``times`` GraphQL requests with a fault (see GraphQLFault)."""
        if kind not in GRAPHQL_FAULTS:
            raise ValueError(f"unknown GraphQL fault {kind!r}; one of {GRAPHQL_FAULTS}")
        self.graphql_faults.append(
            GraphQLFault(
                kind,
                times,
                status,
                delay,
                retry_after,
                frozenset(node_ids),
                frozenset(file_names),
                error_type,
            )
        )

    def next_graphql_fault(self) -> GraphQLFault | None:
        """The fault the next GraphQL request meets, if any (counted as met)."""
        if not self.graphql_faults:
            return None
        fault = self.graphql_faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self.graphql_faults.pop(0)
        return fault

    def exhaust_graphql_budget(self, token: str) -> None:
        """Spend the whole GraphQL budget (points an hour) of one token."""
        self.graphql_budget_for(token).remaining = 0

    def graphql_budget_for(self, token: str) -> Budget:
        """A token's GraphQL budget in points, a new one once its hour is over."""
        budget = self.graphql_budgets.get(token)
        if budget is None or budget.reset <= time.time():
            limit = self.graphql_limit
            budget = Budget(limit, limit, int(time.time()) + 3600)
            self.graphql_budgets[token] = budget
        return budget

    def graphql_minute_wait(self, token: str, cost: int, now: float) -> int | None:
        """None when ``cost`` more points fit in the token's last minute (and counts
        them), else the seconds until they would."""
        spent = self.graphql_minutes.setdefault(token, deque())
        while spent and spent[0][0] <= now - 60:
            spent.popleft()
        total = sum(points for _, points in spent)
        if total + cost > self.graphql_points_per_minute:
            freed, wait = total, 1.0
            for when, points in spent:
                freed -= points
                wait = when + 60 - now
                if freed + cost <= self.graphql_points_per_minute:
                    break
            return max(1, int(wait + 0.999))
        spent.append((now, cost))
        return None

    def budget_for(self, authorization: str | None) -> Budget:
        """The primary budget of one credential (anonymous without one), a new one once
        its hour is over."""
        key = authorization or "anonymous"
        budget = self.budgets.get(key)
        if budget is None or budget.reset <= time.time():
            limit = self.token_limit if authorization else self.anonymous_limit
            budget = Budget(limit, limit, int(time.time()) + 3600)
            self.budgets[key] = budget
        return budget

    async def _stall(self) -> None:
        """The latency every API request waits before it is answered."""
        if self.latency:
            await self.sleep(self.latency)

    async def _injected_failure(self, request: web.Request, kind: str) -> web.StreamResponse | None:
        """The answer of the first injected failure matching ``request``, if any."""
        path = request.path
        for failure in self.failures:
            if failure.kind == kind and (
                failure.path_contains is None or failure.path_contains in path
            ):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                if failure.delay:
                    await asyncio.sleep(failure.delay)
                body = failure.body
                if body is None:
                    body = {"message": "Server Error", "documentation_url": API_DOCS}
                if failure.cut_off:
                    return await _cut_off(request, json.dumps(body).encode(), failure.status)
                resp = web.json_response(body, status=failure.status)
                if kind == "api":
                    self._rate_headers(resp, self.budget_for(request.headers.get("Authorization")))
                resp.headers.update(failure.headers)  # an injected header wins
                return resp
        return None

    def _over_limit(self, request: web.Request, budget: Budget) -> web.StreamResponse | None:
        """GitHub's answer once the primary budget is spent, or None while it lasts."""
        if budget.remaining <= 0:
            resp = github_error(
                self.rate_limit_status,
                f"API rate limit exceeded for {request.remote}. (But here's the good news: "
                "Authenticated requests get a higher rate limit.)",
                doc="/overview/rate-limits-for-the-rest-api",
            )
            self._rate_headers(resp, budget)
            return resp
        return None

    @staticmethod
    def _rate_headers(resp: web.StreamResponse, budget: Budget) -> None:
        resp.headers["x-ratelimit-limit"] = str(budget.limit)
        resp.headers["x-ratelimit-remaining"] = str(max(0, budget.remaining))
        resp.headers["x-ratelimit-used"] = str(budget.used)
        resp.headers["x-ratelimit-reset"] = str(budget.reset)
        resp.headers["x-ratelimit-resource"] = "core"


async def _cut_off(request: web.Request, raw: bytes, status: int) -> web.StreamResponse:
    resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    resp.content_length = len(raw)
    await resp.prepare(request)
    await resp.write(raw[: len(raw) // 2])
    if request.transport is not None:
        request.transport.close()
    return resp


def github_error(status: int, message: str, *, doc: str = "") -> web.Response:
    return web.json_response(
        {"message": message, "documentation_url": API_DOCS + doc, "status": str(status)},
        status=status,
    )
