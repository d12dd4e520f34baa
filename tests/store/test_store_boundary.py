"""What leaves the store when the database fails: its own errors (gistcache.store.errors),
never SQLAlchemy's, and nothing of the callers' own exceptions changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gistcache.domain.gists import Gist, GistFile
from gistcache.store import contents
from gistcache.store.engine import Sessions, create_engine, create_sessionmaker
from gistcache.store.errors import FileLeftList, StoreError, StoreUnavailable
from gistcache.store.models import sites
from gistcache.store.sites import site_id
from gistcache.store.users import PageOfGists, Users

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def listed(sessions: Sessions) -> int:
    """A site whose user "u" lists gist g1 with the one file a.txt."""
    files = (GistFile("a.txt", None, "text/plain", 1, None),)
    gist = Gist("g1", "https://gist.github.com/g1", None, True, NOW, NOW, 0, "u", files)
    async with sessions() as session, session.begin():
        site = await site_id(session, "https://api.github.com")
        await Users(session, site).save_list(
            "u", "anonymous", NOW, [PageOfGists("p", None, [gist])]
        )
    return site


async def test_a_chunk_of_a_file_that_left_the_list_is_file_left_list(
    sessions: Sessions,
) -> None:
    site = await listed(sessions)
    gone = contents.FileRef(site, "g1", "gone.txt", NOW, None, None)
    with pytest.raises(FileLeftList) as raised:
        async with sessions() as session, session.begin():
            await contents.add_chunk(session, gone, "gen", 0, 1, b"x\n")
    assert isinstance(raised.value.__cause__, SQLAlchemyError)
    with pytest.raises(FileLeftList):
        async with sessions() as session, session.begin():
            await contents.install_contents(
                session, gone, "gen", status=contents.TEXT, size=2, chunks=1, now=NOW
            )
    # a listed file takes its chunks as before
    kept = contents.FileRef(site, "g1", "a.txt", NOW, None, None)
    async with sessions() as session, session.begin():
        await contents.add_chunk(session, kept, "gen", 0, 1, b"x\n")


async def test_a_broken_statement_is_a_store_error_but_no_outage(sessions: Sessions) -> None:
    twice = sites.insert().values(api_url="https://twice.example")
    async with sessions() as session, session.begin():
        await session.execute(twice)
    with pytest.raises(StoreError) as raised:
        async with sessions() as session, session.begin():
            await session.execute(twice)  # a site's name is unique
    assert not isinstance(raised.value, StoreUnavailable)
    assert isinstance(raised.value.__cause__, SQLAlchemyError)


async def test_what_is_not_the_databases_passes_unchanged(sessions: Sessions) -> None:
    async def caller() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            raise KeyError("the caller's own")

    with pytest.raises(KeyError):
        await caller()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///{missing}/cache.sqlite3",  # a file that cannot be opened
        "postgresql+asyncpg://postgres@127.0.0.1:9/nothing",  # a refused connection
    ],
)
async def test_an_unreachable_database_is_store_unavailable(tmp_path: Path, url: str) -> None:
    engine = create_async_engine(
        url.format(missing=tmp_path / "no" / "such" / "directory"),
        connect_args={"timeout": 5},
    )
    try:
        with pytest.raises(StoreUnavailable):
            async with Sessions(async_sessionmaker(engine))() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
