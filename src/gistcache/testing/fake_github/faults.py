"""What the fake GitHub can be told to do wrong: stall, fail, cut a body off, run
out of its rate-limit budget (primary, per credential) or hit a secondary limit."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_DOCS = "https://docs.github.com/rest"


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


class Faults:
    """The fake's latency, injected failures and rate-limit budgets."""

    def __init__(
        self,
        *,
        anonymous_limit: int = 60,
        token_limit: int = 5000,
        latency: float = 0.0,
        rate_limit_status: int = 403,
    ) -> None:
        self.anonymous_limit = anonymous_limit
        self.token_limit = token_limit
        self.latency = latency
        self.rate_limit_status = rate_limit_status
        self.failures: list[Failure] = []
        self.budgets: dict[str, Budget] = {}
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
            await asyncio.sleep(self.latency)

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
