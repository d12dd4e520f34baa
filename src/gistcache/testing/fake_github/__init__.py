"""An offline GitHub for tests, demos and benchmarks.

It serves the gist endpoints the way GitHub documents them: ``Link`` pagination in
the ``/user/<id>/gists?page=N`` form, ``per_page`` capped at 100, ``since``, ETags
that differ per ``Authorization``, 304 on ``If-None-Match``, ``x-ratelimit-*``
headers with a budget that runs out, GitHub's error shape, 403 without a
``User-Agent``, raw file contents on a raw path (named in ``raw_url`` with the file
name percent-encoded, as GitHub does), and ``GET /gists/{id}`` with each file's
contents (cut at 1 MiB, ``truncated``) and the gist's ``history``. As on GitHub, a
user's list includes their secret gists (``"public": false``) when the request
carries that user's own token, and a gist may be given in the 2012 item shape (its
owner only in ``user``). It records every
request so tests can count them, and it can be told to fail, stall or rate-limit. Its
``POST /graphql`` runs queries against GitHub's published GraphQL schema (see
``graphql``).

Run it alone for a demo: ``python -m gistcache.testing.fake_github --port 9000``.

The package: ``state`` (users, gists, files, revisions), ``faults`` (latency,
injected failures, rate limits), ``server`` (FakeGitHub: the aiohttp app, the request
log), ``rest`` (the API's routes), ``payloads`` (their JSON), ``graphql`` (the GraphQL
API), ``schema`` (GitHub's GraphQL schema, pinned), ``raw`` (raw files),
``controls`` (the ``/_fake/`` endpoints), ``corpus`` (demo and benchmark data) and
``__main__`` (the command line).
"""

from __future__ import annotations

from gistcache.testing.fake_github.corpus import (
    SeededState,
    bulk_file_text,
    bulk_gist_files,
    huge_text,
)
from gistcache.testing.fake_github.faults import API_DOCS, Budget, Failure, Faults
from gistcache.testing.fake_github.payloads import (
    API_CONTENT_LIMIT,
    MAX_LISTED_FILES,
    RAW_NAME_SAFE,
)
from gistcache.testing.fake_github.rest import DEFAULT_PER_PAGE, MAX_PER_PAGE
from gistcache.testing.fake_github.server import FakeGitHub, RecordedRequest
from gistcache.testing.fake_github.state import (
    LANGUAGES,
    FakeFile,
    FakeGist,
    FakeRevision,
    FakeUser,
    GitHubState,
)


def main(argv: list[str] | None = None) -> None:
    """The command line (``python -m gistcache.testing.fake_github``)."""
    # imported here: ``python -m`` runs __main__ itself, which must not be imported first
    from gistcache.testing.fake_github.__main__ import main as run

    run(argv)


__all__ = [
    "API_CONTENT_LIMIT",
    "API_DOCS",
    "DEFAULT_PER_PAGE",
    "LANGUAGES",
    "MAX_LISTED_FILES",
    "MAX_PER_PAGE",
    "RAW_NAME_SAFE",
    "Budget",
    "Failure",
    "FakeFile",
    "FakeGist",
    "FakeGitHub",
    "FakeRevision",
    "FakeUser",
    "Faults",
    "GitHubState",
    "RecordedRequest",
    "SeededState",
    "bulk_file_text",
    "bulk_gist_files",
    "huge_text",
    "main",
]
