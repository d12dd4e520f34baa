"""The chunker on any bytes cut anywhere: the chunks rejoin to the decoded text, a line
is split only when it is longer than the line cap, a UTF-8 character never is."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gistcache.domain.chunking import (
    BINARY_SNIFF_BYTES,
    BinaryContent,
    Chunk,
    ContentTooLarge,
    chunk_stream,
)
from tests.property.support import collect, pieces, run

# text-like bytes: valid UTF-8 of every width, newlines (LF and CRLF), and broken
# sequences (a lead byte alone, a continuation byte alone, an overlong form)
_FRAGMENTS = st.one_of(
    st.text(max_size=6).map(str.encode),
    st.sampled_from(
        [b"\n", b"\r\n", b"\n\n", b"\xe2\x82", b"\xac", b"\xf0\x9f\x98\x80", b"\xc0\xaf", b"\xff"]
    ),
    st.binary(max_size=4),
)
CONTENT = st.lists(_FRAGMENTS, max_size=40).map(b"".join)
TEXT_CONTENT = CONTENT.map(lambda data: data.replace(b"\0", b""))


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in pieces cut at any offsets, empty pieces included."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def content_in_pieces(draw: st.DrawFn, content: st.SearchStrategy[bytes]) -> list[bytes]:
    return draw(split(draw(content)))


# chunk and line caps small enough for short inputs to cross them often; a cap of 4
# bytes or more holds any character
SIZES = st.tuples(st.integers(1, 24), st.integers(0, 40)).map(lambda t: (t[0], max(4, t[0] + t[1])))


def chunks_of(parts: list[bytes], chunk_bytes: int, max_line_bytes: int) -> list[Chunk]:
    stream = chunk_stream(
        pieces(parts), max_bytes=10**9, chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes
    )
    return run(collect(stream))


@given(parts=content_in_pieces(TEXT_CONTENT), sizes=SIZES)
@example(parts=[b"\xf0\x9f", b"\x98\x80\n"], sizes=(1, 4))
@example(parts=[b"ab\xe2\x82", b"\xacd" * 3], sizes=(1, 4))
def test_chunks_rejoin_to_the_decoded_text(parts: list[bytes], sizes: tuple[int, int]) -> None:
    chunk_bytes, max_line_bytes = sizes
    chunks = chunks_of(parts, chunk_bytes, max_line_bytes)
    text = b"".join(parts).decode("utf-8", "replace")
    assert "".join(chunk.data.decode("utf-8") for chunk in chunks) == text  # each valid UTF-8
    assert all(chunk.data for chunk in chunks)
    assert [chunk.number for chunk in chunks] == list(range(len(chunks)))
    line = 1
    for chunk in chunks:
        assert chunk.first_line == line
        line += chunk.data.count(b"\n")


@given(parts=content_in_pieces(TEXT_CONTENT), sizes=SIZES)
@example(parts=[b"a\xf0\x9f\x98\x80\xf0\x9f\x98\x80"], sizes=(1, 4))
def test_a_line_is_split_only_past_the_line_cap(parts: list[bytes], sizes: tuple[int, int]) -> None:
    chunk_bytes, max_line_bytes = sizes
    chunks = chunks_of(parts, chunk_bytes, max_line_bytes)
    for chunk in chunks:
        assert len(chunk.data) <= max(chunk_bytes, max_line_bytes)
        if len(chunk.data) > chunk_bytes:
            # grown past the chunk size only to hold one line whole (or its first part)
            assert b"\n" not in chunk.data[:-1]
    # a chunk that does not end a line (the last aside) is a cut inside a line longer
    # than the cap: the cut is as near the cap as a character boundary allows
    for chunk, following in itertools.pairwise(chunks):
        if not chunk.data.endswith(b"\n"):
            assert b"\n" not in chunk.data
            assert len(chunk.data) > max_line_bytes - 4
            assert following.data  # and the line goes on in the next chunk
    # every line no longer than the cap sits whole in one chunk
    text = b"".join(chunk.data for chunk in chunks)
    starts = {0}
    offset = 0
    for chunk in chunks:
        offset += len(chunk.data)
        starts.add(offset)
    position = 0
    for line in text.split(b"\n"):
        line += b"\n" if position + len(line) < len(text) else b""  # the last may end it
        if len(line) <= max_line_bytes:
            inner = set(range(position + 1, position + len(line)))
            assert not inner & starts, (line, position)
        position += len(line)


@given(parts=content_in_pieces(CONTENT), sizes=SIZES)
def test_a_nul_byte_near_the_start_means_binary(parts: list[bytes], sizes: tuple[int, int]) -> None:
    chunk_bytes, max_line_bytes = sizes
    data = b"".join(parts)
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        with pytest.raises(BinaryContent):
            chunks_of(parts, chunk_bytes, max_line_bytes)
    else:
        chunks_of(parts, chunk_bytes, max_line_bytes)


@given(parts=content_in_pieces(TEXT_CONTENT), limit=st.integers(0, 200))
def test_content_past_the_size_limit_is_refused(parts: list[bytes], limit: int) -> None:
    stream = chunk_stream(pieces(parts), max_bytes=limit, chunk_bytes=8, max_line_bytes=16)
    if len(b"".join(parts)) > limit:
        with pytest.raises(ContentTooLarge):
            run(collect(stream))
    else:
        run(collect(stream))
