"""Large answers: written in pieces that wait for the client (back-pressure), within a
bound on the bytes this process holds for answers its clients have not read yet.

A client that reads slowly (or not at all) holds its own answer back, not the server's
memory: each piece is written once the one before has gone out to the socket (aiohttp
waits for the transport to drain), and a client that takes nothing for ``stall``
seconds is disconnected. ``AnswersInFlight`` counts what each large answer holds while
it is written (a search result: its whole listing; a gist: its largest file) and
refuses a new one past the bound with ``AnswersBusy`` (a ``503`` with ``Retry-After``).
Once the last of them is done, the memory they freed is handed back to the system
(glibc keeps freed memory for the process otherwise; see ``return_freed_memory``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator
from typing import Any

from aiohttp import web

from gistcache.domain.errors import AnswersBusy

log = logging.getLogger(__name__)

PIECE_BYTES = 64 * 1024  # what is handed to the socket at once
LARGE_ANSWER_BYTES = 64 * 1024  # smaller answers are not counted: one write each
# after the last large answer in flight is done, this long (seconds) before the memory
# freed is handed back: its handler and connection have let go of it by then, and a
# burst of answers is trimmed once, after it
TRIM_DELAY = 1.0


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


def return_freed_memory() -> None:
    """Hand the memory the process freed back to the system. glibc keeps what large
    answers freed (many small objects, spread over its arenas) for the process's own
    later use: measured with 8 clients that never read a 6 MB answer, the server stayed
    32-37 MB above its rest after they left; trimmed, 2-20 MB. A no-op without glibc.
    Takes milliseconds on a large heap: run it off the loop."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


class AnswersInFlight:
    """The bytes large answers hold while they are written, at most ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._trim: asyncio.TimerHandle | None = None  # the freed memory handed back then
        self.trims = 0  # how many times it was

    @contextlib.contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Count ``size`` bytes while the block runs; AnswersBusy when they do not fit.
        An answer larger than the bound is let through alone."""
        if size <= LARGE_ANSWER_BYTES:
            yield
            return
        size = min(size, self.max_bytes)
        if self.held + size > self.max_bytes:
            raise AnswersBusy()
        self.held += size
        try:
            yield
        finally:
            self.held -= size
            if self.held == 0:
                self._trim_later()

    def _trim_later(self) -> None:
        """Hand the freed memory back ``TRIM_DELAY`` after the last large answer, unless
        another is in flight by then (it is handed back after that one)."""
        if self._trim is not None or MALLOC_TRIM is None:
            return
        loop = asyncio.get_running_loop()

        def trim() -> None:
            self._trim = None
            if self.held == 0:
                self.trims += 1
                with contextlib.suppress(RuntimeError):  # the loop is closing: no matter
                    loop.run_in_executor(None, return_freed_memory)

        self._trim = loop.call_later(TRIM_DELAY, trim)


class ClientGone(Exception):
    """The client closed the connection, or took nothing for too long."""


async def write_pieces(
    request: web.Request,
    response: web.StreamResponse,
    pieces: Iterable[bytes] | AsyncIterable[bytes],
    *,
    stall: float,
) -> None:
    """Start ``response`` and write ``pieces`` in slices of at most ``PIECE_BYTES``,
    each once the client has taken enough of the ones before; then end the body.
    Raises ClientGone when the client leaves or takes nothing for ``stall`` seconds."""
    try:
        await response.prepare(request)
        if isinstance(pieces, AsyncIterable):
            async for piece in pieces:
                await write_sliced(response, piece, stall)
        else:
            for piece in pieces:
                await write_sliced(response, piece, stall)
        try:
            async with asyncio.timeout(stall):
                await response.write_eof()
        except TimeoutError as exc:
            raise ClientGone("the client took nothing for too long") from exc
    except ConnectionError as exc:
        _drop(request)
        raise ClientGone("the client went away") from exc
    except ClientGone:
        _drop(request)
        raise
    finally:
        if isinstance(pieces, AsyncGenerator):
            # what the pieces not written yet hold (a gist's file read for the next
            # one) is let go now, not whenever the generator is collected
            await pieces.aclose()


async def send_bytes(
    request: web.Request, response: web.StreamResponse, body: bytes, *, stall: float, what: str
) -> web.StreamResponse:
    """Write ``body``, one large answer made whole, in pieces the client's reading paces;
    a client that leaves or takes nothing for ``stall`` seconds is one log line, ``what``
    (the answer and its request id) saying whose."""
    response.content_length = len(body)
    try:
        await write_pieces(request, response, [body], stall=stall)
    except ClientGone as exc:
        log.info("%s: %s", what, exc)
    return response


def _drop(request: web.Request) -> None:
    """End the connection at once: what the client did not take is dropped with it (a
    close would wait, holding the socket and its buffer, for a client that never reads)."""
    if request.transport is not None:
        request.transport.abort()


async def write_sliced(response: web.StreamResponse, piece: bytes, stall: float) -> None:
    """Write ``piece`` in slices, each once the client took enough of the ones before;
    ClientGone when it takes nothing for ``stall`` seconds."""
    for start in range(0, len(piece), PIECE_BYTES):
        try:
            async with asyncio.timeout(stall):
                await response.write(piece[start : start + PIECE_BYTES])
        except TimeoutError as exc:
            raise ClientGone("the client took nothing for too long") from exc
