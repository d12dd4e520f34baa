"""Large answers: written in pieces that wait for the client (back-pressure), within a
bound on the bytes this process holds for answers its clients have not read yet.

A client that reads slowly (or not at all) holds its own answer back, not the server's
memory: each piece is written once the one before has gone out to the socket (aiohttp
waits for the transport to drain), and a client that takes nothing for ``stall``
seconds is disconnected. ``AnswersInFlight`` counts what each large answer holds while
it is written (a search result: its whole listing; a gist: its largest file) and
refuses a new one past the bound with ``AnswersBusy`` (a ``503`` with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Iterable, Iterator

from aiohttp import web

from gistcache.domain.errors import AnswersBusy

PIECE_BYTES = 64 * 1024  # what is handed to the socket at once
LARGE_ANSWER_BYTES = 64 * 1024  # smaller answers are not counted: one write each


class AnswersInFlight:
    """The bytes large answers hold while they are written, at most ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0

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


def _drop(request: web.Request) -> None:
    """Close the connection: what the client did not take is dropped with it."""
    if request.transport is not None:
        request.transport.close()


async def write_sliced(response: web.StreamResponse, piece: bytes, stall: float) -> None:
    """Write ``piece`` in slices, each once the client took enough of the ones before;
    ClientGone when it takes nothing for ``stall`` seconds."""
    for start in range(0, len(piece), PIECE_BYTES):
        try:
            async with asyncio.timeout(stall):
                await response.write(piece[start : start + PIECE_BYTES])
        except TimeoutError as exc:
            raise ClientGone("the client took nothing for too long") from exc
