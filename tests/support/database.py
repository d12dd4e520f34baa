"""Throwaway databases: the PostgreSQL administration the fixtures need, empty
databases, and looking at a schema from outside the service."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATABASES = ["sqlite", "postgres"]

# what the ``make_engine`` fixture hands out: an engine on a URL, disposed after the test
EngineFactory = Callable[..., AsyncEngine]

TABLES = {
    "users",
    "list_pages",
    "refresh_leases",
    "gists",
    "gist_files",
    "file_contents",
    "file_chunks",
    "search_jobs",
    "github_blocks",
    "sites",
    "user_profiles",
    "watches",
    "watch_users",
    "watch_gists",
    "watch_events",
    "webhook_deliveries",
    "webhook_attempts",
    "org_members",
}


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def with_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def empty_database(request: pytest.FixtureRequest, directory: Path) -> Iterator[str]:
    """A database of the kind ``request.param`` names, with no tables, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'empty.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"gistcache_e_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(server, f'CREATE DATABASE "{name}"'))
    yield with_database(server, name)
    asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_sync(url: str, fn: Any) -> Any:
    """``fn(connection)`` on a synchronous connection to ``url``, outside any event loop."""

    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def table_names(url: str) -> set[str]:
    tables = run_sync(url, lambda conn: inspect(conn).get_table_names())
    return set(tables) - {"alembic_version"}


async def ensure_database(url: str) -> None:
    """Connect to the database ``url`` names, creating it (from ``postgres``) if missing."""
    try:
        await admin(url, "SELECT 1")
    except asyncpg.InvalidCatalogNameError:
        name = make_url(url).database
        await admin(with_database(url, "postgres"), f'CREATE DATABASE "{name}"')


@contextlib.contextmanager
def reads_of(table: str) -> Iterator[list[str]]:
    """The SELECT statements naming ``table`` that any engine sends meanwhile."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and table in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


@contextlib.contextmanager
def commits() -> Iterator[list[int]]:
    """One entry for each transaction any engine commits meanwhile."""
    seen: list[int] = []

    def committed(conn: Any) -> None:
        seen.append(1)

    event.listen(Engine, "commit", committed)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", committed)


@contextlib.asynccontextmanager
async def read_only_database(database_url: str) -> AsyncIterator[None]:
    """The database takes no writes while the block runs, as after a fail-over to a
    standby or on a volume gone read-only; reads still work.

    PostgreSQL: ``default_transaction_read_only``, and the connections open on the
    database are ended, so that every one a server opens from then on sees it. SQLite:
    the file and its WAL made unwritable, by their mode, or for root (whom modes do not
    stop) by the immutable attribute."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        alter = f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = '
        await admin(
            database_url,
            alter + "on",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        try:
            yield
        finally:
            await admin(database_url, "SET default_transaction_read_only = off", alter + "off")
        return
    assert url.database is not None
    files = [Path(url.database + suffix) for suffix in ("", "-wal", "-shm")]
    files = [file for file in files if file.exists()]
    modes = [file.stat().st_mode for file in files]
    as_root = os.geteuid() == 0
    for file in files:
        await _chattr("+i", file) if as_root else file.chmod(0o444)
    try:
        yield
    finally:
        for file, mode in zip(files, modes, strict=True):
            if as_root:
                await _chattr("-i", file)
            file.chmod(mode)


async def _chattr(change: str, file: Path) -> None:
    process = await asyncio.create_subprocess_exec("chattr", change, str(file))
    assert await process.wait() == 0, f"chattr {change} {file} failed"
