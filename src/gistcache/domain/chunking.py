"""Turn a stream of raw file bytes into UTF-8 chunks of about ``CHUNK_BYTES``, split on
line boundaries, in memory bounded by the chunk size (no I/O here)."""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

CHUNK_BYTES = 1024 * 1024
# a chunk grows past CHUNK_BYTES to keep a long line whole, up to this size
MAX_LINE_BYTES = 8 * 1024 * 1024
BINARY_SNIFF_BYTES = 8192


class BinaryContent(Exception):
    """The file holds a NUL byte near its start: not text we can search."""


class ContentTooLarge(Exception):
    """The file is larger than the configured maximum."""


@dataclass(frozen=True, slots=True)
class Chunk:
    number: int  # 0, 1, 2, ... within the file
    first_line: int  # 1-based line number of the chunk's first line
    data: bytes  # valid UTF-8; ends with a newline unless it is the last chunk (or a cut)


async def chunk_stream(
    pieces: AsyncIterator[bytes],
    *,
    max_bytes: int,
    chunk_bytes: int = CHUNK_BYTES,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> AsyncGenerator[Chunk, None]:
    """Decode ``pieces`` (any split, even inside a character) and regroup them into chunks.

    Invalid UTF-8 becomes U+FFFD. Chunks end after a newline: one holding a line
    longer than ``chunk_bytes`` grows to keep it whole, up to ``max_line_bytes``;
    only a longer line is cut (at a character boundary) and continues in the next
    chunk, so memory stays bounded by ``max_line_bytes``.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer = bytearray()
    received = 0
    sniffed = bytearray()
    number = 0
    line = 1

    def take(size: int) -> Chunk:
        nonlocal number, line
        data = bytes(buffer[:size])
        del buffer[:size]
        chunk = Chunk(number, line, data)
        number += 1
        line += data.count(b"\n")
        return chunk

    async for piece in pieces:
        received += len(piece)
        if received > max_bytes:
            raise ContentTooLarge(f"more than {max_bytes} bytes")
        if len(sniffed) < BINARY_SNIFF_BYTES:
            sniffed += piece[: BINARY_SNIFF_BYTES - len(sniffed)]
            if b"\0" in sniffed:
                raise BinaryContent("NUL byte in the first bytes")
        buffer += decoder.decode(piece).encode()
        while len(buffer) > chunk_bytes:
            cut = _cut_point(buffer, chunk_bytes, max_line_bytes)
            if cut is None:
                break  # a long line: wait for its end
            yield take(cut)
    buffer += decoder.decode(b"", final=True).encode()
    while buffer:
        cut = None
        if len(buffer) > chunk_bytes:
            cut = _cut_point(buffer, chunk_bytes, max_line_bytes)
        yield take(cut or len(buffer))


def _cut_point(buffer: bytearray, limit: int, hard_limit: int) -> int | None:
    """Where to end the next chunk, or None to wait for more; ``buffer`` exceeds ``limit``."""
    newline = buffer.rfind(b"\n", 0, limit)
    if newline == -1:
        newline = buffer.find(b"\n", limit, hard_limit)
    if newline != -1:
        return newline + 1
    if len(buffer) <= hard_limit:
        return None
    cut = hard_limit
    while cut > 0 and buffer[cut] & 0xC0 == 0x80:  # never inside a UTF-8 sequence
        cut -= 1
    return cut or hard_limit
