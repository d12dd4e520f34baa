"""Engine construction with the per-dialect settings the cache relies on, and the
sessions through which everything above the store reaches the database."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from gistcache.store.errors import translate


def sqlite_path(database_url: str | URL) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    path = sqlite_path(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(database_url)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    return create_async_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # cascades from users to gists to files depend on foreign keys being enforced
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # one writer at a time: a cold search installs hundreds of files, each waiting its
    # turn; under a loaded machine 5 s of waiting was not always enough (files were
    # reported unavailable), so a writer waits up to 30 s before the cache counts as down
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


async def _accepts_writes(session: AsyncSession) -> bool:
    """Whether the database would take a write now, found without writing and without
    waiting for a writer; a database that does not answer raises, as any statement does.

    PostgreSQL says so itself: ``transaction_read_only`` is on in a hot standby and under
    ``default_transaction_read_only``. SQLite fails its writes once its file (or the WAL
    beside it) can no longer be written, as on a volume gone read-only, while connections
    opened before still read, and a write that changes nothing still succeeds: so the
    files are asked.
    """
    connection = await session.connection()
    if connection.dialect.name != "sqlite":
        setting = await connection.scalar(text("SELECT current_setting('transaction_read_only')"))
        return bool(setting == "off")
    await connection.execute(text("SELECT 1"))
    path = sqlite_path(connection.engine.url)
    return path is None or await asyncio.to_thread(_files_writable, path)


def _files_writable(database: Path) -> bool:
    # the WAL and its index exist while connections are open; readers write the index too
    siblings = [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")]
    files = [database, *(file for file in siblings if file.exists())]
    return all(os.access(file, os.W_OK) for file in files)


class Sessions:
    """Opens sessions on the cache database: ``async with sessions() as session`` (and
    ``session.begin()`` inside it for a transaction). What the database does wrong in
    one leaves it as a StoreError (StoreUnavailable for an outage), never as SQLAlchemy's
    own exception."""

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self._maker() as session:
                yield session
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise
            raise translated from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back when
        it raises."""
        async with self() as session, session.begin():
            yield session

    async def accepts_writes(self) -> bool:
        """Whether the database answers and would take a write now (readiness): raises a
        StoreError when it does not answer."""
        async with self() as session:
            return await _accepts_writes(session)


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    return Sessions(async_sessionmaker(engine, expire_on_commit=False))
