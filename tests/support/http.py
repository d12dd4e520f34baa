"""Talking to an app under test over HTTP."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.waiting import eventually

Client = TestClient[Any, Any]
# what the ``make_client`` fixture hands out: an app started with changed settings
ClientFactory = Callable[..., Awaitable[Client]]


async def wait_for_status(client: Client, path: str, status: int, within: float) -> float:
    """Seconds until ``GET path`` answered ``status``; fails after ``within`` seconds."""
    started = time.monotonic()

    async def answer() -> int:
        resp = await client.get(path)
        return resp.status

    await eventually(
        answer, lambda got: got == status, within=within, interval=0.1, what=f"{path} → {status}"
    )
    return time.monotonic() - started


async def problem(resp: Any, status: int, slug: str) -> dict[str, Any]:
    """The body of ``resp``, asserted to be the problem+json of ``status`` and ``slug``."""
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    assert body["type"] == f"urn:gistcache:problem:{slug}"
    assert "Traceback" not in str(body)
    return body
