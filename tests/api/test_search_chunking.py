"""Searching contents fetched in pieces: characters across download pieces and chunk
limits, and memory that does not grow with a file's size."""

from __future__ import annotations

import tracemalloc
from typing import Any

from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub


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
