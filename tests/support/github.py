"""Filling the fake GitHub with data for a test."""

from __future__ import annotations

from gistcache.testing.fake_github import FakeGitHub


def many_gists(fake: FakeGitHub, login: str, count: int) -> list[str]:
    """Create ``count`` gists; return their ids newest first (GitHub's order)."""
    ids = [
        fake.add_gist(login, {f"f{n}.py": f"print({n})\n"}, description=f"gist {n}").id
        for n in range(count)
    ]
    return ids[::-1]
