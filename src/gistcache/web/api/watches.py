"""Watches: ``POST/GET /api/v1/watches``, ``GET/DELETE /api/v1/watches/{id}`` and a
watch's webhook deliveries, behind ``Authorization: Bearer <token>`` (one of
``GISTCACHE_API_TOKENS``; unset, the API is not there). A watch belongs to the token
that made it: another token finds no such watch."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web

from gistcache.domain.gists import format_timestamp
from gistcache.domain.watches import watch_spec
from gistcache.services.watches import DeliveryLog, WatchRow, owner_of
from gistcache.services.webhooks import WebhookPolicy
from gistcache.web.app_keys import SETTINGS, WATCHES
from gistcache.web.failures import Forbidden, Unauthorized, WatchesOff, WatchNotFound
from gistcache.web.http import read_json

PREFIX = "/api/v1/watches"


def watches_on(request: web.Request) -> None:
    """A 404 when no API token is configured: the watches are not there at all."""
    if not request.config_dict[SETTINGS].api_tokens:
        raise WatchesOff("no such resource")


def owner(request: web.Request) -> str:
    """Whose watches the request manages: its bearer token's, checked against the
    server's tokens in constant time."""
    watches_on(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("managing watches needs Authorization: Bearer <token>")
    given = token.encode()
    known = [secrets.compare_digest(given, t.encode()) for t in request.app[SETTINGS].api_tokens]
    if not any(known):
        raise Forbidden("this token is not one of the server's API tokens")
    return owner_of(token)


async def create(request: web.Request) -> web.Response:
    who = owner(request)
    spec = watch_spec(await read_json(request))
    if spec.webhook is not None:
        WebhookPolicy(request.app[SETTINGS].webhook_allow).check_url(spec.webhook.url)
    row = await request.app[WATCHES].create(who, spec)
    return _json(watch_json(row), status=201, headers={"Location": f"{PREFIX}/{row.id}"})


async def list_watches(request: web.Request) -> web.Response:
    who = owner(request)
    rows = await request.app[WATCHES].owned(who)
    return _json({"watches": [watch_json(row) for row in rows]})


async def get(request: web.Request) -> web.Response:
    return _json(watch_json(await _mine(request)))


async def delete(request: web.Request) -> web.Response:
    who = owner(request)
    if not await request.app[WATCHES].delete(who, request.match_info["watch_id"]):
        raise _no_such_watch()
    return web.Response(status=204)


async def deliveries(request: web.Request) -> web.Response:
    row = await _mine(request)
    logs = await request.app[WATCHES].deliveries(row.id)
    return _json({"deliveries": [delivery_json(log) for log in logs]})


async def _mine(request: web.Request) -> WatchRow:
    who = owner(request)
    row = await request.app[WATCHES].get(who, request.match_info["watch_id"])
    if row is None:
        raise _no_such_watch()
    return row


def _no_such_watch() -> WatchNotFound:
    return WatchNotFound("no watch of this token has this id")


def watch_json(row: WatchRow) -> dict[str, Any]:
    """A watch as its owner sees it (its webhook's secret never shown)."""
    search = json.loads(row.search)
    return {
        "id": row.id,
        "usernames": None if row.org is not None else list(row.users),
        "org": row.org,
        **search,
        "interval": row.interval,
        "report_existing": row.report_existing,
        "webhook": None if row.webhook_url is None else {"url": row.webhook_url},
        "feed_url": f"{PREFIX}/{row.id}/feed.atom?token={row.feed_token}",
        "events_url": f"{PREFIX}/{row.id}/events?token={row.feed_token}",
        "page_url": f"/-/watches/{row.id}?token={row.feed_token}",
        "created_at": format_timestamp(row.created_at),
        "next_run_at": format_timestamp(row.next_run_at),
        "last_run_at": _timestamp(row.last_run_at),
        "paused_until": _timestamp(row.paused_until),
        "last_error": row.last_error,
        "runs": row.runs,
    }


def delivery_json(log: DeliveryLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "event_id": log.event_id,
        "status": log.status,
        "created_at": format_timestamp(log.created_at),
        "next_attempt_at": _timestamp(log.next_attempt_at),
        "attempts": [
            {
                "attempt": a.attempt,
                "at": format_timestamp(a.at),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in log.attempts
        ],
    }


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
