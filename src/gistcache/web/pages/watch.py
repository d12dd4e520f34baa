"""A watch's page, ``GET /-/watches/{id}?token=…``: its search and its events, newest
first, each with its matched lines linked to GitHub; read with the watch's feed token,
as its feed is (no API token, no JavaScript needed)."""

from __future__ import annotations

import json

from aiohttp import web

from gistcache.services.watches import event_json
from gistcache.web.api.feeds import feed_watch
from gistcache.web.app_keys import WATCHES
from gistcache.web.pages.form import Form
from gistcache.web.pages.views import page

PAGE_EVENTS = 100


async def watch(request: web.Request) -> web.Response:
    row = await feed_watch(request)
    events = await request.config_dict[WATCHES].events(row.id, limit=PAGE_EVENTS, newest_first=True)
    token = request.query.get("token", "")
    context = {
        "form": Form(),
        "watch": row,
        "search": json.loads(row.search),
        "events": [event_json(event) for event in events],
        "feed_url": f"/api/v1/watches/{row.id}/feed.atom?token={token}",
        "events_url": f"/api/v1/watches/{row.id}/events?token={token}",
    }
    return page(request, "watch.html", context)
