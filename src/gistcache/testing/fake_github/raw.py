"""The fake GitHub's raw files: a file's bytes at the URL its ``raw_url`` names, in writes
of a fixed size; held or cut off part-way when a test asks (see faults)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web

if TYPE_CHECKING:
    from gistcache.testing.fake_github.server import FakeGitHub

log = logging.getLogger("fake-github")

RAW_WRITE_BYTES = 256 * 1024  # a raw file is sent in writes of this size
RAW_ROUTE = "/gist-raw/{login}/{gist_id}/raw/{revision}/{filename}"


async def serve_raw(fake: FakeGitHub, request: web.Request) -> web.StreamResponse:
    info = request.match_info
    try:
        gist = fake.gist(info["gist_id"])
    except KeyError:
        return web.Response(status=404, text="404: Not Found")
    # the name as the raw URL spelt it: aiohttp's decoded one has lost a lone
    # surrogate's %ED%A0%80 (invalid UTF-8), which names the file all the same
    encoded_name = request.raw_path.partition("?")[0].rpartition("/")[2]
    f = gist.files.get(unquote(encoded_name, errors="surrogatepass"))
    if f is None or info["revision"] != f.revision:
        return web.Response(status=404, text="404: Not Found")
    hold = fake.raw_holds.get(f.filename)
    if hold is not None:
        await hold.wait()
    resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    resp.content_length = len(f.content)
    cut = fake.raw_cuts.pop(f.filename, None)
    view = memoryview(f.content)[:cut]
    sent = 0
    try:
        await resp.prepare(request)
        for start in range(0, len(view), RAW_WRITE_BYTES):
            await resp.write(view[start : start + RAW_WRITE_BYTES])
            sent = min(start + RAW_WRITE_BYTES, len(view))
        if cut is not None and request.transport is not None:
            request.transport.close()  # the rest promised, never sent
            return resp
        await resp.write_eof()
    except ConnectionError:
        # a client that stops reading (a cancelled search, a live search's next
        # keystroke) is ordinary: one line, as the service logs it, not a traceback
        log.info(
            "GET %s: the client went away after %d of %d bytes",
            request.raw_path,
            sent,
            len(view),
        )
    return resp
