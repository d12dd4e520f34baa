"""Searching an app under test, and the gists a search is tried on."""

from __future__ import annotations

from typing import Any

from gistcache.testing.fake_github import FakeGitHub
from tests.support.http import Client


async def search(client: Client, status: int = 200, **body: Any) -> dict[str, Any]:
    """The JSON answer of ``POST /api/v1/search`` with ``body``, asserted to be ``status``."""
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == status, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


def add_alices_gists(fake: FakeGitHub) -> dict[str, str]:
    """A few gists of alice's, newest first: 'web', 'notes', 'tools'; their ids by name."""
    ids = {}
    ids["tools"] = fake.add_gist(
        "alice",
        {"fetch.py": "import requests\nrequests.get(url)\n", "README.md": "# Tools\n"},
        description="tools",
    ).id
    ids["notes"] = fake.add_gist(
        "alice", {"notes.txt": "Import nothing here\nplain text\n"}, description="notes"
    ).id
    ids["web"] = fake.add_gist(
        "alice", {"app.js": "const x = require('http');\n// no python\n"}, description="web"
    ).id
    return ids
