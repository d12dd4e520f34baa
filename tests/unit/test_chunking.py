"""Contents in bounded memory: decoding across piece boundaries, line-aligned chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from gistcache.domain.chunking import BinaryContent, Chunk, ContentTooLarge, chunk_stream


async def pieces(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def chunks_of(parts: Iterable[bytes], **kwargs: Any) -> list[Chunk]:
    return [c async for c in chunk_stream(pieces(parts), max_bytes=10**9, **kwargs)]


async def test_a_character_split_between_pieces_is_decoded_whole() -> None:
    data = "añb€c😀\n".encode()
    for cut in range(1, len(data)):
        [chunk] = await chunks_of([data[:cut], data[cut:]])
        assert chunk.data.decode() == "añb€c😀\n"


async def test_chunks_end_on_line_boundaries_and_carry_line_numbers() -> None:
    text = "".join(f"line {n}\n" for n in range(1, 101)).encode()
    chunks = await chunks_of([text[i : i + 7] for i in range(0, len(text), 7)], chunk_bytes=64)
    assert b"".join(c.data for c in chunks) == text
    assert all(c.data.endswith(b"\n") for c in chunks)
    assert all(len(c.data) <= 64 for c in chunks)
    for c in chunks:
        assert c.data.startswith(f"line {c.first_line}\n".encode())
    assert [c.number for c in chunks] == list(range(len(chunks)))


async def test_a_long_line_is_kept_whole_up_to_the_line_limit() -> None:
    text = b"short\n" + b"L" * 100 + b"\nafter\n"
    chunks = await chunks_of([text], chunk_bytes=16, max_line_bytes=200)
    assert [c.data for c in chunks] == [b"short\n", b"L" * 100 + b"\n", b"after\n"]
    assert [c.first_line for c in chunks] == [1, 2, 3]


async def test_a_line_over_the_line_limit_is_cut_at_a_character_boundary() -> None:
    text = ("é" * 100).encode()  # 200 bytes, no newline
    chunks = await chunks_of([text], chunk_bytes=16, max_line_bytes=33)
    assert all(len(c.data) <= 33 for c in chunks)
    assert "".join(c.data.decode() for c in chunks) == "é" * 100
    assert {c.first_line for c in chunks} == {1}


async def test_invalid_utf8_becomes_replacement_characters() -> None:
    [chunk] = await chunks_of([b"ok \xff\xfe bytes\n"])
    assert chunk.data.decode() == "ok \ufffd\ufffd bytes\n"


async def test_binary_and_oversized_streams_are_refused() -> None:
    with pytest.raises(BinaryContent):
        await chunks_of([b"GIF89a", b"\x00\x01"])
    with pytest.raises(ContentTooLarge):
        async for _ in chunk_stream(pieces([b"x" * 600, b"x" * 600]), max_bytes=1000):
            pass


async def test_the_last_line_without_newline_is_kept() -> None:
    chunks = await chunks_of([b"a\nb\nlast"], chunk_bytes=4)
    assert [c.data for c in chunks] == [b"a\nb\n", b"last"]
    assert chunks[-1].first_line == 3
