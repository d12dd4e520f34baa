"""The OpenAPI document against the running service: schemathesis generates requests
from it and checks that no answer is a server error or breaks the document."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from gistcache.app import create_app
from gistcache.mcp.http import MCP_PATH
from gistcache.settings import Settings
from gistcache.web.api.openapi import FIXED_PATHS
from gistcache.web.ghcompat.handlers import GHCOMPAT_PREFIX
from tests.support.database import DATABASES, empty_database
from tests.support.processes import free_port

# the operations a path item of an OpenAPI document may hold
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@pytest.fixture(scope="module", params=DATABASES)
def service_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from empty_database(request, tmp_path_factory.mktemp("contract-db"))


@pytest.fixture(scope="module")
def service_url(service_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server over a fresh cache of each kind (it migrates it on start), with the
    fake GitHub behind it."""
    workdir: Path = tmp_path_factory.mktemp("contract")
    fake_port, app_port = free_port(), free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(fake_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": service_database,
        "GISTCACHE_GITHUB_API_URL": f"http://127.0.0.1:{fake_port}",
        "GISTCACHE_GITHUB_TOKEN": "contract-test-token",  # the fake's larger budget
        "GISTCACHE_HOST": "127.0.0.1",
        "GISTCACHE_PORT": str(app_port),
        "GISTCACHE_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gistcache", "serve"],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{fake_port}/_fake/stats")
        _wait(f"http://127.0.0.1:{app_port}/healthz")
        yield f"http://127.0.0.1:{app_port}"
    finally:
        for proc in (server, fake):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def api_schema(service_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{service_url}/openapi.json")


def test_api_conforms_to_its_openapi_document(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]  # type: ignore[union-attr]
    # schemathesis leaves out the document's own URL
    assert len(operations) == 22, [op.label for op in operations]
    for operation in operations:
        for mode in GenerationMode:
            # a fixed path is another operation by design (it takes precedence over
            # a username), so a "username" equal to one is not this operation's input
            strategy = operation.as_strategy(generation_mode=mode).filter(
                lambda case: (case.path_parameters or {}).get("username") not in FIXED_PATHS
            )

            @given(case=strategy)
            @settings(
                max_examples=50,
                deadline=None,
                database=None,
                derandomize=True,  # the same requests every run: a deterministic test
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                # no input to make invalid (GET /ping and the like)
                assert mode is GenerationMode.NEGATIVE, operation.label


def served_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app's router answers, HEAD aside (aiohttp adds it to
    each GET), in the document's spelling; the GitHub-compatible API under /api/v3 left
    out on purpose: it is GitHub's API, described by GitHub's own OpenAPI document (its
    answers are checked against that description in tests/api/test_github_clients.py);
    and /mcp, which speaks the Model Context Protocol, whose tools describe themselves
    (tools/list; tests/api/test_mcp.py)."""
    app = create_app(Settings.from_env({}))
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"
        and not route.resource.canonical.startswith(GHCOMPAT_PREFIX + "/")
        and route.resource.canonical != MCP_PATH
    }


def test_the_document_is_openapi_3_1_and_covers_every_route(service_url: str) -> None:
    document = requests.get(f"{service_url}/openapi.json", timeout=5).json()
    assert document["openapi"] == "3.1.0"
    documented = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    # a route added without its description fails here, and so does a described one
    # the service does not serve
    assert documented == served_routes()
