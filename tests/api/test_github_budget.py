"""The shared GitHub budget: what a client can make gistcache ask GitHub, and what is
kept for the users already cached."""

from __future__ import annotations

from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.http import Client


async def test_unknown_and_secret_gist_ids_are_remembered_for_the_not_found_ttl(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    secret = fake.add_gist("octocat", {"s.py": "secret\n"}, public=False)
    for gist_id in ("cafe0000", secret.id):
        for _ in range(3):
            resp = await client.get(f"/api/v3/gists/{gist_id}")
            assert resp.status == 404
            assert (await resp.json())["message"] == "Not Found"
        # one GET /gists/{id} for three answers
        assert len(fake.api_requests(f"/gists/{gist_id}")) == 1, gist_id
    clock.advance(299)
    assert (await client.get("/api/v3/gists/cafe0000")).status == 404
    assert len(fake.api_requests("/gists/cafe0000")) == 1
    clock.advance(2)  # past GISTCACHE_NOT_FOUND_TTL: GitHub is asked again
    assert (await client.get("/api/v3/gists/cafe0000")).status == 404
    assert len(fake.api_requests("/gists/cafe0000")) == 2
