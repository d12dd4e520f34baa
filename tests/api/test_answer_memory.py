"""What a search holds in memory for its answer: only the page it answers (however many
gists match), a stream only a few events ahead of a reader that stops reading, and a
client that takes nothing for the search timeout is disconnected."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from typing import Any

from aiohttp.test_utils import TestClient

from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import GistMatch
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.answers import MALLOC_TRIM, TRIM_DELAY
from gistcache.web.app_keys import ANSWERS, SEARCHES
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]
GISTS = 120
# about 10 KB of a search's answer per gist: 20 matching lines of 500 characters
LINE = "needle " + "x" * 493
FILE = f"{LINE}\n" * 20
MB = 1024 * 1024
DEEP_FILE = "".join(f"{LINE}\n" + "\n".join(["y" * 500] * 20) + "\n" for _ in range(20))
# what may be alive besides the page: the events the search told that its reader has
# not taken yet (16), and the one being written or added
SLACK = 20


def live_matches() -> int:
    """How many matching gists this process holds right now."""
    return sum(1 for o in gc.get_objects() if isinstance(o, GistMatch))


def wide_user(fake: FakeGitHub) -> None:
    for n in range(GISTS):
        fake.add_gist("wide", {f"f{n}.txt": FILE})


async def warmed(make_client: ClientFactory, fake: FakeGitHub, **settings: Any) -> Client:
    """A server that has every file of the user's gists cached (one search run)."""
    wide_user(fake)
    client = await make_client(**settings)
    resp = await client.post("/api/v1/search", json={"username": "wide", "pattern": "zz"})
    assert resp.status == 200, await resp.text()
    return client


@contextlib.asynccontextmanager
async def most_matches_alive() -> Any:
    """Samples ``live_matches()`` while the block runs; yields a list whose first item
    is the most seen at once."""
    most = [live_matches()]

    async def sample() -> None:
        while True:
            most[0] = max(most[0], live_matches())
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    try:
        yield most
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        most[0] = max(most[0], live_matches())


async def test_a_search_holds_only_its_page_of_matches_however_many_gists_match(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await warmed(make_client, fake)
    searches = client.app[SEARCHES]
    before = live_matches()
    request = SearchRequest(username="wide", pattern="needle", page=3, per_page=1)
    async with most_matches_alive() as most:
        answer = await searches.search(request)
    assert answer.result.total == GISTS
    assert len(answer.result.matches) == 1
    # every one of the 120 matching gists was counted, never more than a page held
    assert most[0] - before <= 1 + SLACK, most[0] - before

    # over HTTP too: the answer lists the page and counts them all
    resp = await client.post(
        "/api/v1/search", json={"username": "wide", "pattern": "needle", "per_page": 1}
    )
    body = await resp.json()
    assert (body["total"], len(body["matches"])) == (GISTS, 1)


async def idle_reader(port: int, body: bytes, accept: str) -> socket.socket:
    """A connection that sends a search and reads nothing (a small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    head = (
        f"POST /api/v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    await asyncio.get_running_loop().sock_sendall(sock, head.encode() + body)
    return sock


async def read_to_end(sock: socket.socket, within: float) -> bytes:
    """Everything the server sends until it closes the connection."""
    loop = asyncio.get_running_loop()
    taken = bytearray()
    async with asyncio.timeout(within):
        while chunk := await loop.sock_recv(sock, 1 << 16):
            taken += chunk
    return bytes(taken)


async def test_a_stream_reader_that_stops_reading_holds_its_search_a_few_events_ahead(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await warmed(make_client, fake)
    before = live_matches()
    body = b'{"username": "wide", "pattern": "needle"}'
    sock = await idle_reader(client.port or 0, body, "application/x-ndjson")
    try:
        async with most_matches_alive() as most:
            # long enough for the whole search (120 cached gists) had it not waited
            await asyncio.sleep(1.5)
        # the answer so far is about 1.2 MB; what the sockets' buffers took was written,
        # the rest not even found: the search waits for its reader
        assert most[0] - before <= SLACK, most[0] - before
        # the reader reads again: the whole stream comes, every gist in it
        stream = await read_to_end_of_stream(sock)
        assert stream.count(b'"event": "match"') == GISTS
        assert b'"event": "done"' in stream
    finally:
        sock.close()


async def read_to_end_of_stream(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    taken = bytearray()
    async with asyncio.timeout(30):
        while b'"event": "done"' not in taken[-4096:]:
            chunk = await loop.sock_recv(sock, 1 << 16)
            assert chunk, "the stream ended before its done event"
            taken += chunk
    return bytes(taken)


async def test_a_client_that_takes_nothing_for_the_search_timeout_is_disconnected(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    # an answer larger than what the sockets' buffers take (up to 4 MiB): each of 20
    # matching lines in 40 gists with its 10 lines of context either side, about 8 MB
    for n in range(40):
        fake.add_gist("deep", {f"f{n}.txt": DEEP_FILE})
    body = b'{"username": "deep", "pattern": "needle", "context": 10}'
    warm = await (await make_client()).post("/api/v1/search", data=body)  # cached now
    assert warm.status == 200
    client = await make_client(search_timeout=3.0, max_answer_bytes=16 * MB)
    whole = await client.post("/api/v1/search", data=body)
    assert whole.status == 200, await whole.text()
    size = len(await whole.read())
    assert size > 7 * MB
    sock = await idle_reader(client.port or 0, body, "application/json")
    try:
        await asyncio.sleep(5)  # nothing taken for longer than the search timeout
        # the server let the connection go at once (not waiting, socket and buffer held,
        # to hand its unsent bytes to a reader that never reads)
        assert client.server.runner is not None
        assert client.server.runner.server is not None
        peers = [
            handler.transport.get_extra_info("peername")
            for handler in client.server.runner.server.connections
            if handler.transport is not None
        ]
        assert sock.getsockname() not in peers
        # what it had written before is there, then the end
        taken = await read_to_end(sock, within=10)
    finally:
        sock.close()
    assert 0 < len(taken) < size
    # what the answer held in flight was let go, and the memory it freed handed back
    answers = client.app[ANSWERS]
    assert answers.held == 0
    await asyncio.sleep(TRIM_DELAY)
    assert answers.trims >= 1 or MALLOC_TRIM is None
