"""A watch's events for readers holding its feed token: ``GET
/api/v1/watches/{id}/feed.atom?token=…`` (Atom, RFC 4287: newest first, an entry's id
stable, its link the first matched line on GitHub) and ``GET
/api/v1/watches/{id}/events?token=…`` (Server-Sent Events: each event with its id,
resumed after ``Last-Event-ID``, a comment line as a heartbeat)."""

from __future__ import annotations

import asyncio
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime

from aiohttp import web

from gistcache.domain.gists import format_timestamp
from gistcache.services.watches import EventRow, WatchRow, WatchService, event_json
from gistcache.web.api.watches import watches_on
from gistcache.web.app_keys import WATCHES
from gistcache.web.failures import TooManyRequests, WatchNotFound

ATOM = "http://www.w3.org/2005/Atom"
FEED_ENTRIES = 50  # the feed's latest events
SSE_POLL = 1.0  # seconds between two looks for new events
HEARTBEAT = 15.0  # seconds between two comment lines when nothing happens
SSE_BATCH = 100
RETRY_MS = 5000  # what the stream asks a client to wait before reconnecting
STREAMS_PER_WATCH = 5  # event streams one watch may have open on a server
STREAMS = 500  # event streams a server keeps open, every watch's together
STREAMS_RETRY_AFTER = 30  # seconds a reader refused a stream is told to wait

ET.register_namespace("", ATOM)


async def feed_watch(request: web.Request) -> WatchRow:
    """The watch the request names, read with its feed token (``?token=``)."""
    watches_on(request)
    token = request.query.get("token", "")
    row = await request.config_dict[WATCHES].by_feed_token(request.match_info["watch_id"], token)
    if row is None:
        raise WatchNotFound("no watch has this id and feed token")
    return row


async def feed(request: web.Request) -> web.Response:
    watch = await feed_watch(request)
    events = await request.app[WATCHES].events(watch.id, limit=FEED_ENTRIES, newest_first=True)
    body = atom_feed(watch, events, str(request.url))
    return web.Response(
        body=body,
        content_type="application/atom+xml",
        charset="utf-8",
        headers={"Cache-Control": "private, no-cache"},
    )


def atom_feed(watch: WatchRow, events: list[EventRow], self_url: str) -> bytes:
    """The feed of ``events`` (newest first)."""
    root = ET.Element(f"{{{ATOM}}}feed")
    _text(root, "id", f"urn:gistcache:watch:{watch.id}")
    search = json.loads(watch.search)
    who = f"org {watch.org}" if watch.org else ", ".join(watch.users)
    _text(root, "title", f"gistcache: {search['pattern']!r} in {who}")
    updated = events[0].created_at if events else watch.created_at
    _text(root, "updated", _time(updated))
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _text(author, "name", "gistcache")
    ET.SubElement(root, f"{{{ATOM}}}link", rel="self", href=self_url)
    _text(root, "generator", "gistcache")
    for event in events:
        _entry(root, event)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def _entry(root: ET.Element, event: EventRow) -> None:
    match = json.loads(event.body)
    gist = match["gist"]
    entry = ET.SubElement(root, f"{{{ATOM}}}entry")
    # stable: the event's id never changes, nor does its watch (readers dedupe by it)
    _text(entry, "id", f"urn:gistcache:watch:{event.watch_id}:event:{event.id}")
    lines = [line for file in match["files"] for line in file["lines"]]
    count = sum(file["match_count"] for file in match["files"])
    what = gist["description"] or ", ".join(file["filename"] for file in match["files"])
    _text(entry, "title", f"{match['user']}: {what} ({count} matching line{'s' * (count != 1)})")
    _text(entry, "updated", _time(event.created_at))
    _text(entry, "published", _time(event.created_at))
    first = lines[0]["url"] if lines else gist["html_url"]
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=first)
    for line in lines[1:]:
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="related", type="text/html", href=line["url"])
    summary = "\n".join(
        f"{file['filename']}:{line['line_number']}: {line['text']}"
        for file in match["files"]
        for line in file["lines"]
    )
    _text(entry, "summary", summary or gist["html_url"], type="text")


# what XML 1.0 cannot hold (ElementTree would write it as it is, and no reader would
# parse the feed): C0 controls but tab and line ends, and lone surrogates
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(parent: ET.Element, name: str, text: str, **attributes: str) -> None:
    element = ET.SubElement(parent, f"{{{ATOM}}}{name}", attributes)
    element.text = _NOT_XML.sub("\ufffd", text)


def _time(value: datetime) -> str:
    return format_timestamp(value)  # RFC 3339, as Atom's dates are


async def events(request: web.Request) -> web.StreamResponse:
    """The watch's events as they are recorded: those after ``Last-Event-ID`` (or the
    ``last_event_id`` query parameter) first, then each new one within a second or so,
    and a comment line every 15 s while nothing happens; the stream ends at the first
    heartbeat after the watch was deleted. A watch has at most ``STREAMS_PER_WATCH``
    streams open on a server, a server ``STREAMS``: one more is a 429."""
    watch = await feed_watch(request)
    after = _last_event_id(request)
    service = request.app[WATCHES]
    if not service.open_stream(watch.id, per_watch=STREAMS_PER_WATCH, overall=STREAMS):
        raise TooManyRequests(
            f"as many event streams as a watch ({STREAMS_PER_WATCH}) or this server "
            f"({STREAMS}) may have are open; retry later, or read the Atom feed",
            retry_after=STREAMS_RETRY_AFTER,
        )
    try:
        return await _stream(request, service, watch, after)
    finally:
        service.close_stream(watch.id)


async def _stream(
    request: web.Request, service: WatchService, watch: WatchRow, after: int
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MS}\n: watch {watch.id}\n\n".encode())
    quiet = 0.0
    while True:
        batch = await service.events(watch.id, after=after, limit=SSE_BATCH)
        for event in batch:
            await response.write(_sse(event))
            after = event.id
        if batch:
            quiet = 0.0
            continue
        if quiet >= HEARTBEAT:
            if await service.by_feed_token(watch.id, watch.feed_token) is None:
                await response.write(b": the watch was deleted\n\n")
                await response.write_eof()  # the stream ends with its watch
                return response
            await response.write(b": heartbeat\n\n")
            quiet = 0.0
        await asyncio.sleep(SSE_POLL)
        quiet += SSE_POLL


def _sse(event: EventRow) -> bytes:
    data = json.dumps(event_json(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: match\ndata: {data}\n\n".encode()


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or "0"
    raw = raw.strip()
    # an id this server did not send is taken as none: the client gets every event
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
