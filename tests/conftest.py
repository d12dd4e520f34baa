"""Shared fixtures: a migrated throwaway database per test (SQLite and PostgreSQL),
the fake GitHub on a real socket, a controllable clock, app clients and ad-hoc engines.
Fixtures only: the helpers they use live in tests/support/."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gistcache.app import create_app
from gistcache.settings import Settings
from gistcache.store.migrate import upgrade
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.database import (
    CI,
    DATABASES,
    EngineFactory,
    admin,
    empty_database,
    ensure_database,
    with_database,
)
from tests.support.http import ClientFactory


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL URL: GISTCACHE_TEST_DATABASE_URL (its database is created if missing),
    else a testcontainers one.

    Without either the PostgreSQL tests skip, except under CI=true where they fail.
    """
    url = os.environ.get("GISTCACHE_TEST_DATABASE_URL")
    if url:
        try:
            asyncio.run(ensure_database(url))
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"GISTCACHE_TEST_DATABASE_URL does not answer: {exc}")
        yield url
        return
    docker = os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()
    try:
        if not docker:
            raise RuntimeError("no Docker engine")
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:
            from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver="asyncpg")
        container.start()
    except Exception as exc:
        reason = f"no PostgreSQL: set GISTCACHE_TEST_DATABASE_URL or run Docker ({exc!r})"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield container.get_connection_url()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """A database migrated once per session; each test clones it."""
    name = f"gistcache_tpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(admin(postgres_server, f'CREATE DATABASE "{name}"'))
    upgrade(with_database(postgres_server, name))
    yield name
    asyncio.run(admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "cache.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty cache database of each kind, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "cache.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    name = f"gistcache_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield with_database(server, name)
    asyncio.run(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no tables at all (for migration tests)."""
    yield from empty_database(request, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake() -> FakeGitHub:
    github = FakeGitHub()
    github.seed_octocat()
    return github


@pytest.fixture
async def fake_server(fake: FakeGitHub) -> AsyncIterator[TestServer]:
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def settings(database_url: str, fake_server: TestServer) -> Settings:
    return Settings(
        database_url=database_url,
        github_api_url=str(fake_server.make_url("")).rstrip("/"),
        cache_ttl=60,
        not_found_ttl=300,
        github_timeout=5,
    )


@pytest.fixture
async def make_client(settings: Settings, clock: FakeClock) -> AsyncIterator[ClientFactory]:
    """Start an app (optionally with changed settings); several may run, as after a restart."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        app = create_app(settings.model_copy(update=overrides), clock=clock)
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture
async def make_engine() -> AsyncIterator[EngineFactory]:
    """Engines a test opens on a database itself (to look at or change rows behind the
    service's back); every one is disposed when the test ends, however it ends."""
    engines: list[AsyncEngine] = []

    def make(url: str, create: EngineFactory = create_async_engine) -> AsyncEngine:
        engine = create(url)
        engines.append(engine)
        return engine

    try:
        yield make
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.fixture
def engine(settings: Settings, make_engine: EngineFactory) -> AsyncEngine:
    """An engine on the test's own database, the one its app uses: to look at or change
    rows behind the service's back."""
    return make_engine(settings.database_url)
