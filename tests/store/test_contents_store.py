"""Reading a user's cached contents back: in list order, in bounded batches, only the
current fetch of each file, and never another user's."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.gists import Gist, GistFile
from gistcache.store import contents
from gistcache.store.engine import create_engine, create_sessionmaker
from gistcache.store.sites import site_id
from gistcache.store.users import PageOfGists, Users
from tests.support.database import EngineFactory

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def gist(gist_id: str, *filenames: str) -> Gist:
    files = tuple(GistFile(name, None, "text/plain", 1, None) for name in filenames)
    return Gist(gist_id, f"https://gist.github.com/{gist_id}", None, True, NOW, NOW, 0, "u", files)


async def store_file(
    session: AsyncSession, site: int, gist_id: str, filename: str, parts: list[str]
) -> None:
    ref = contents.FileRef(site, gist_id, filename, NOW, None, None)
    generation = f"{gist_id}-{filename}"[:32]
    for number, part in enumerate(parts):
        await contents.add_chunk(session, ref, generation, number, number + 1, part.encode())
    await contents.install_contents(
        session,
        ref,
        generation,
        status=contents.TEXT,
        size=sum(len(part.encode()) for part in parts),
        chunks=len(parts),
        now=NOW,
    )
    # a fetch still under way writes chunks of its own; they must not be read back
    await contents.add_chunk(session, ref, "in-progress", 0, 1, b"newer contents\n")


@pytest.fixture
async def stored(
    database_url: str, make_engine: EngineFactory
) -> AsyncIterator[tuple[AsyncSession, int]]:
    """A session, and the site whose user "u" has gists g1 to g3 with contents."""
    engine = make_engine(database_url, create_engine)
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        async with session.begin():
            site = await site_id(session, "https://api.github.com")
            elsewhere = await site_id(session, "https://ghe.example.com/api/v3")
            await Users(session, site).save_list(
                "u",
                "anonymous",
                NOW,
                [
                    PageOfGists(
                        "p1", None, [gist("g1", "a"), gist("g2", "big", "b"), gist("g3", "c")]
                    )
                ],
            )
            await Users(session, site).save_list(
                "other", "anonymous", NOW, [PageOfGists("p", None, [gist("x", "a")])]
            )
            # the same login and gist id on another GitHub are another user's and gist
            await Users(session, elsewhere).save_list(
                "u",
                "anonymous",
                NOW,
                [PageOfGists("p", None, [gist("g1", "a")])],
            )
            await store_file(session, site, "g1", "a", ["a1\n"])
            await store_file(session, site, "g2", "big", [f"big{n}\n" * 10 for n in range(7)])
            await store_file(session, site, "g2", "b", ["b1\n", "b2\n"])
            await store_file(session, site, "g3", "c", ["c1\n"])
            await store_file(session, site, "x", "a", ["not this user's\n"])
            await store_file(session, elsewhere, "g1", "a", ["another site's\n"])
        yield session, site


@pytest.mark.parametrize("batch_bytes", [1, 12, 100, 4 * 1024 * 1024])
async def test_chunks_come_back_in_list_order_whatever_the_batch_size(
    stored: tuple[AsyncSession, int], monkeypatch: pytest.MonkeyPatch, batch_bytes: int
) -> None:
    session, site = stored
    monkeypatch.setattr(contents, "BATCH_BYTES", batch_bytes)
    files = await contents.Contents(session, site).user_files("u")
    got = [
        (c.gist_id, c.filename, c.first_line, c.data)
        async for c in contents.stream_text_chunks(session, files)
    ]
    expected = [("g1", "a", 1, b"a1\n")]
    expected += [("g2", "big", n + 1, f"big{n}\n".encode() * 10) for n in range(7)]
    expected += [("g2", "b", 1, b"b1\n"), ("g2", "b", 2, b"b2\n"), ("g3", "c", 1, b"c1\n")]
    assert got == expected


async def test_a_reader_that_stops_early_leaves_no_read_running(
    stored: tuple[AsyncSession, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    session, site = stored
    monkeypatch.setattr(contents, "BATCH_BYTES", 1)  # a batch per chunk: one is always read ahead
    files = await contents.Contents(session, site).user_files("u")
    async with contextlib.aclosing(contents.stream_text_chunks(session, files)) as chunks:
        async for chunk in chunks:
            assert chunk.data == b"a1\n"
            break
    # the session can be used at once: nothing of the reader's is still running on it
    assert [f.key for f in await contents.Contents(session, site).user_files("u")] == [
        ("g1", "a"),
        ("g2", "big"),
        ("g2", "b"),
        ("g3", "c"),
    ]


async def test_a_user_read_in_many_round_trips_gets_every_chunk_in_order(
    database_url: str, make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty-five files of one to three chunks, at most four chunks a round trip: every
    chunk comes back once, in list order, each file's in order."""
    monkeypatch.setattr(contents, "BATCH_ROWS", 4)
    engine = make_engine(database_url, create_engine)
    sessions = create_sessionmaker(engine)
    names = {f"g{n:02d}": [f"f{m}" for m in range(1 + n % 2)] for n in range(30)}
    expected = []
    async with sessions() as session:
        async with session.begin():
            site = await site_id(session, "https://api.github.com")
            gists = [gist(gist_id, *filenames) for gist_id, filenames in names.items()]
            await Users(session, site).save_list(
                "many", "anonymous", NOW, [PageOfGists("p", None, gists)]
            )
            for n, (gist_id, filenames) in enumerate(names.items()):
                for filename in filenames:
                    parts = [f"{gist_id}/{filename}/{c}\n" for c in range(1 + (n % 3))]
                    await store_file(session, site, gist_id, filename, parts)
                    expected += [
                        (gist_id, filename, c + 1, part.encode()) for c, part in enumerate(parts)
                    ]
        files = await contents.Contents(session, site).user_files("many")
        got = [
            (c.gist_id, c.filename, c.first_line, c.data)
            async for c in contents.stream_text_chunks(session, files)
        ]
    assert len(expected) > 4 * 20  # more than twenty round trips
    assert got == expected


async def test_files_of_two_sites_read_together_get_their_own_sites_chunks(
    stored: tuple[AsyncSession, int],
) -> None:
    """The same gist id, filename and generation on two GitHubs: each file's chunks are
    its own site's."""
    session, site = stored
    elsewhere = await site_id(session, "https://ghe.example.com/api/v3")
    here = await contents.Contents(session, site).user_files("u", gist_id="g1")
    there = await contents.Contents(session, elsewhere).user_files("u", gist_id="g1")
    assert [(f.site, f.generation) for f in here + there] == [
        (site, "g1-a"),
        (elsewhere, "g1-a"),
    ]
    got = [c.data async for c in contents.stream_text_chunks(session, [*here, *there])]
    assert got == [b"a1\n", b"another site's\n"]


async def test_a_file_replaced_after_its_state_was_read_comes_back_without_data(
    stored: tuple[AsyncSession, int],
) -> None:
    session, site = stored
    files = await contents.Contents(session, site).user_files("u")
    # a newer fetch of g2/b is installed after the search read the states
    ref = contents.FileRef(site, "g2", "b", NOW, None, None)
    await contents.add_chunk(session, ref, "newer", 0, 1, b"replaced\n")
    await contents.install_contents(
        session, ref, "newer", status=contents.TEXT, size=9, chunks=1, now=NOW
    )
    got = [
        (c.gist_id, c.filename, c.data)
        async for c in contents.stream_text_chunks(session, files)
        if c.gist_id != "g2" or c.filename != "big"
    ]
    assert got == [
        ("g1", "a", b"a1\n"),
        ("g2", "b", None),
        ("g2", "b", None),
        ("g3", "c", b"c1\n"),
    ]


async def test_chunks_are_stored_compressed_with_lz4_on_postgresql(
    stored: tuple[AsyncSession, int],
) -> None:
    """PostgreSQL decompresses LZ4 in about half pglz's time: a chunk large enough to be
    compressed is kept so (SQLite stores chunks as they are)."""
    session, site = stored
    if session.get_bind().dialect.name != "postgresql":
        return  # nothing to look at: SQLite never compresses
    data = b"repeated line of code\n" * 2000
    ref = contents.FileRef(site, "g3", "c", NOW, None, None)
    await contents.add_chunk(session, ref, "refetched", 0, 1, data)
    await contents.install_contents(
        session, ref, "refetched", status=contents.TEXT, size=len(data), chunks=1, now=NOW
    )
    method = await session.scalar(
        text(
            "SELECT pg_column_compression(data) FROM file_chunks "
            "WHERE gist_id = 'g3' AND filename = 'c' AND generation = 'refetched'"
        )
    )
    assert method == "lz4"
    files = await contents.Contents(session, site).user_files("u", gist_id="g3")
    assert [c.data async for c in contents.stream_text_chunks(session, files)] == [data]


async def test_files_with_odd_names_are_read_back(
    database_url: str, make_engine: EngineFactory
) -> None:
    """Names that mean something inside an array literal or a list of values (braces,
    quotes, commas, backslashes, NULL, spaces) each get their own chunks."""
    names = ["{a,b}.txt", 'say "hi".md', "back\\slash", "NULL", " ", "é ✓.py"]
    engine = make_engine(database_url, create_engine)
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        async with session.begin():
            site = await site_id(session, "https://api.github.com")
            await Users(session, site).save_list(
                "odd", "anonymous", NOW, [PageOfGists("p", None, [gist("o1", *names)])]
            )
            for name in names:
                await store_file(session, site, "o1", name, [f"in {name}\n"])
        files = await contents.Contents(session, site).user_files("odd")
        got = [(c.filename, c.data) async for c in contents.stream_text_chunks(session, files)]
    assert got == [(name, f"in {name}\n".encode()) for name in names]
