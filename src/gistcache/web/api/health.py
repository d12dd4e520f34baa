"""Liveness, readiness and metrics: ``/ping``, ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gistcache.web.app_keys import JOBS, METRICS, SESSIONS
from gistcache.web.failures import NotReady

READY_TIMEOUT = 2.0


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            counts = await request.app[JOBS].count_by_status()
    except Exception:  # metrics must answer even when the database does not
        counts = {}
    for state, count in counts.items():
        registry.search_jobs.labels(state).set(count)
    return web.Response(
        body=generate_latest(registry.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and would take a write: a read-only one (a
    standby after a failover, a file that cannot be written) fails every request that
    stores anything, so a server on it must not get traffic."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            writable = await request.app[SESSIONS].accepts_writes()
    except Exception as exc:
        raise _not_ready("the cache database is not answering") from exc
    if not writable:
        raise _not_ready("the cache database is read-only: it accepts no writes")
    return web.json_response({"status": "ready"})


def _not_ready(detail: str) -> NotReady:
    return NotReady(detail, retry_after=5)
