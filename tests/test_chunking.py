"""Contents in bounded memory: decoding across piece boundaries, line-aligned chunks."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.domain.chunking import BinaryContent, Chunk, ContentTooLarge, chunk_stream
from gistcache.testing.fake_github import FakeGitHub


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


async def test_characters_across_download_pieces_and_chunk_limits_are_found(
    client: TestClient[Any, Any], fake: FakeGitHub
) -> None:
    # downloads arrive in 64 KiB pieces: put "日" (3 bytes) across the first boundary
    first = "x" * 65534 + "\n"
    # and a 1.5 MiB line across the 1 MiB chunk limit, with a match on each side
    long_line = "日本" + "y" * (1536 * 1024) + "語 end"
    content = first + "日本語 needle\n" + long_line + "\nlast 日本語"
    assert content.encode().index("日".encode()) == 65535
    fake.add_gist("kim", {"big.txt": content})
    resp = await client.post("/api/v1/search", json={"username": "kim", "pattern": "日本|語 "})
    [f] = (await resp.json())["matches"][0]["files"]
    assert [line["line_number"] for line in f["lines"]] == [2, 3, 4]
    assert f["lines"][0]["text"] == "日本語 needle"
    assert f["match_count"] == 3  # the long line counts once
    tail = await client.post("/api/v1/search", json={"username": "kim", "pattern": "y語 end$"})
    assert (await tail.json())["matches"][0]["files"][0]["lines"][0]["line_number"] == 3


async def test_memory_does_not_grow_with_file_size(
    client: TestClient[Any, Any], fake: FakeGitHub
) -> None:
    size = 24 * 1024 * 1024
    line = b"0123456789abcdef" * 4 + b"\n"
    fake.add_gist("huge", {"big.log": line * (size // len(line)) + b"needle at the end\n"})
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        resp = await client.post("/api/v1/search", json={"username": "huge", "pattern": "needle"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    body = await resp.json()
    assert body["matches"][0]["files"][0]["match_count"] == 1
    # the fake's own copy of the file is allocated before tracing starts; the
    # service's fetch, store and scan stay within a few chunks, not the file's size
    assert peak - baseline < 12 * 1024 * 1024, f"peak grew by {(peak - baseline) >> 20} MiB"
