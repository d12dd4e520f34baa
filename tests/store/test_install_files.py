"""Installing several fetched files together (``install_files``): each file ends as if
installed on its own, a file that left the list is left alone, and the statements do
not grow with the number of files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.gists import Gist, GistFile
from gistcache.store import contents
from gistcache.store.contents import BINARY, TEXT, FileRef, NewContents
from gistcache.store.engine import Sessions, create_engine, create_sessionmaker
from gistcache.store.models import file_chunks
from gistcache.store.sites import site_id
from gistcache.store.users import PageOfGists, Users
from tests.support.database import EngineFactory

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FILES = 40


def gist(gist_id: str, *filenames: str) -> Gist:
    files = tuple(GistFile(name, None, "text/plain", 1, None) for name in filenames)
    return Gist(gist_id, f"https://gist.github.com/{gist_id}", None, True, NOW, NOW, 0, "u", files)


def ref(site: int, gist_id: str, filename: str) -> FileRef:
    return FileRef(site, gist_id, filename, NOW, f"https://raw.example/{gist_id}/{filename}", 3)


def text(site: int, gist_id: str, filename: str, generation: str, data: bytes) -> NewContents:
    return NewContents(
        ref(site, gist_id, filename), generation, TEXT, len(data), 1, NOW, len(data), (0, 1, data)
    )


@pytest.fixture
async def listed(database_url: str, make_engine: EngineFactory) -> tuple[Sessions, int]:
    """Sessions, and the site whose user "u" lists g1 (a), g2 (b, c) and many (FILES files)."""
    engine = make_engine(database_url, create_engine)
    sessions = create_sessionmaker(engine)
    many = gist("many", *(f"f{n:02d}" for n in range(FILES)))
    async with sessions() as session, session.begin():
        site = await site_id(session, "https://api.github.com")
        await Users(session, site).save_list(
            "u",
            "anonymous",
            NOW,
            [PageOfGists("p1", None, [gist("g1", "a"), gist("g2", "b", "c"), many])],
        )
    return sessions, site


async def read_back(
    session: AsyncSession, site: int
) -> dict[tuple[str, str], tuple[str | None, bytes]]:
    states = await contents.Contents(session, site).user_files("u", ["g1", "g2"])
    data: dict[tuple[str, str], bytes] = {}
    async for chunk in contents.stream_text_chunks(session, states):
        data[(chunk.gist_id, chunk.filename)] = data.get((chunk.gist_id, chunk.filename), b"") + (
            chunk.data or b""
        )
    return {s.key: (s.status, data.get(s.key, b"")) for s in states}


async def test_files_installed_together_end_as_installed_one_by_one(
    listed: tuple[Sessions, int],
) -> None:
    sessions, site = listed
    async with sessions() as session, session.begin():
        # an older fetch of g1/a is current; a newer one wrote its first chunk already;
        # g2/b's fetch wrote a chunk before it found the file binary
        assert await contents.install_files(session, [text(site, "g1", "a", "old", b"old\n")]) == [
            True
        ]
        await contents.add_chunk(session, ref(site, "g1", "a"), "new", 0, 1, b"new 1\n")
        await contents.add_chunk(session, ref(site, "g2", "b"), "bin", 0, 1, b"looked like text\n")
    newer_a = NewContents(ref(site, "g1", "a"), "new", TEXT, 12, 2, NOW, 12, (1, 2, b"new 2\n"))
    binary_b = NewContents(ref(site, "g2", "b"), "bin", BINARY, 9, 0, NOW)
    gone = text(site, "g9", "gone", "gone", b"gone\n")  # left the list
    async with sessions() as session, session.begin():
        installed = await contents.install_files(
            session, [newer_a, binary_b, gone, text(site, "g2", "c", "c", b"c\n")]
        )
    assert installed == [True, True, False, True]
    async with sessions() as session:
        assert await read_back(session, site) == {
            ("g1", "a"): (TEXT, b"new 1\nnew 2\n"),
            ("g2", "b"): (BINARY, b""),
            ("g2", "c"): (TEXT, b"c\n"),
        }
        # nothing is left of the replaced fetch, of the binary file's, or of the gone file
        left = await session.execute(
            select(file_chunks.c.gist_id, file_chunks.c.filename, file_chunks.c.generation)
            .where(file_chunks.c.gist_id != "many")
            .order_by(file_chunks.c.gist_id, file_chunks.c.filename, file_chunks.c.chunk_no)
        )
        assert [tuple(r) for r in left] == [
            ("g1", "a", "new"),
            ("g1", "a", "new"),
            ("g2", "c", "c"),
        ]


async def test_the_later_of_two_fetches_of_one_file_wins(
    listed: tuple[Sessions, int],
) -> None:
    sessions, site = listed
    async with sessions() as session, session.begin():
        installed = await contents.install_files(
            session,
            [
                text(site, "g1", "a", "first", b"first\n"),
                text(site, "g1", "a", "second", b"second\n"),
            ],
        )
    assert installed == [True, True]
    async with sessions() as session:
        assert (await read_back(session, site))[("g1", "a")] == (TEXT, b"second\n")
        assert await session.scalar(select(func.count()).select_from(file_chunks)) == 1


async def test_the_statements_do_not_grow_with_the_files(
    listed: tuple[Sessions, int],
) -> None:
    sessions, site = listed
    executed: list[str] = []

    def count(*args: object) -> None:
        executed.append(str(args[2]))

    async def install(names: list[str]) -> int:
        executed.clear()
        async with sessions() as session, session.begin():
            bind = (await session.connection()).engine.sync_engine
            event.listen(bind, "before_cursor_execute", count)
            try:
                jobs = [text(site, "many", name, name, name.encode() + b"\n") for name in names]
                assert await contents.install_files(session, jobs) == [True] * len(names)
            finally:
                event.remove(bind, "before_cursor_execute", count)
        return len(executed)

    two = await install(["f00", "f01"])
    assert two == 4  # lock, chunks, clean-up, states
    assert await install([f"f{n:02d}" for n in range(2, FILES)]) == two
