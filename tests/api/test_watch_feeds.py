"""A watch's events for readers holding its feed token: the Atom feed (valid RFC 4287,
parsed here: its required elements, newest first, stable entry ids, links to the matched
lines) and the Server-Sent Events stream (ids, resumed after Last-Event-ID)."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.api import feeds
from gistcache.web.app_keys import WATCHES
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory, problem

Client = TestClient[Any, Any]
TOKEN = "alpha-token-0123456789"
MINE = {"Authorization": f"Bearer {TOKEN}"}
INTERVAL = 300
A = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
async def api(make_client: ClientFactory) -> Client:
    client = await make_client(api_tokens=(TOKEN,))
    await client.app[WATCHES].stop()
    return client


async def watch_with_two_events(
    api: Client, fake: FakeGitHub, clock: FakeClock
) -> tuple[dict[str, Any], list[str]]:
    """A watch of alice's gists (baselined), then two gists that came to match, one run
    each; the watch and the gists' ids in the order they were told."""
    fake.add_gist("alice", {"old.txt": "an old needle\n"})
    resp = await api.post(
        "/api/v1/watches",
        json={"usernames": ["alice"], "pattern": "needle", "interval": INTERVAL},
        headers=MINE,
    )
    watch: dict[str, Any] = await resp.json()
    await api.app[WATCHES].run_due()
    told = []
    for name in ("first", "second"):
        told.append(fake.add_gist("alice", {f"{name}.py": f"x = 1\n# {name} needle\n"}).id)
        clock.advance(INTERVAL)
        [report] = await api.app[WATCHES].run_due()
        assert len(report.told) == 1
    return watch, told


async def test_the_feed_is_atom_newest_first_with_stable_ids_and_line_links(
    api: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    watch, told = await watch_with_two_events(api, fake, clock)
    resp = await api.get(watch["feed_url"])
    assert resp.status == 200
    assert resp.content_type == "application/atom+xml"
    feed = ET.fromstring(await resp.read())  # noqa: S314 - the service's own answer
    assert feed.tag == f"{A}feed"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(f"{A}{required}") is not None, required
    entries = feed.findall(f"{A}entry")
    assert len(entries) == 2  # the baseline's match is not told
    for entry in entries:
        for required in ("id", "title", "updated"):
            assert (entry.findtext(f"{A}{required}") or "").strip(), required
    links = [entry.find(f"{A}link[@rel='alternate']") for entry in entries]
    hrefs = [link.get("href", "") if link is not None else "" for link in links]
    # newest first, each linking to its matched line (the needle is on line 2)
    assert [href.split("#")[0].rsplit("/", 1)[1] for href in hrefs] == told[::-1]
    assert [href.rsplit("#", 1)[1] for href in hrefs] == ["file-second-py-L2", "file-first-py-L2"]
    updated = [entry.findtext(f"{A}updated") or "" for entry in entries]
    assert updated[0] >= updated[1]
    assert feed.findtext(f"{A}updated") == updated[0]

    again_body = await (await api.get(watch["feed_url"])).read()
    again = ET.fromstring(again_body)  # noqa: S314 - the service's own answer
    ids = [entry.findtext(f"{A}id") for entry in entries]
    assert [entry.findtext(f"{A}id") for entry in again.findall(f"{A}entry")] == ids
    assert len(set(ids)) == 2


async def test_the_feed_stays_xml_when_a_line_holds_control_characters(
    api: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    watch, _ = await watch_with_two_events(api, fake, clock)
    fake.add_gist(
        "alice", {"color.sh": "echo '\x1b[31mneedle\x1b[0m'\n"}, description="red\x07 bell"
    )
    clock.advance(INTERVAL)
    [report] = await api.app[WATCHES].run_due()
    assert len(report.told) == 1
    resp = await api.get(watch["feed_url"])
    assert resp.status == 200
    feed = ET.fromstring(await resp.read())  # noqa: S314 - the service's own answer
    newest = feed.findall(f"{A}entry")[0]
    # each character XML cannot hold is U+FFFD; the rest of the line is there
    assert newest.findtext(f"{A}summary") == "color.sh:1: echo '\ufffd[31mneedle\ufffd[0m'"
    assert (newest.findtext(f"{A}title") or "").startswith("alice: red\ufffd bell (")


async def test_the_feed_needs_the_watchs_own_token(
    api: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    watch, _ = await watch_with_two_events(api, fake, clock)
    path = watch["feed_url"].split("?")[0]
    await problem(await api.get(path), 404, "watch-not-found")
    await problem(await api.get(path + "?token=guess"), 404, "watch-not-found")
    # the API token is not the feed's
    await problem(await api.get(path, headers=MINE), 404, "watch-not-found")
    # a token that is not ASCII is a wrong token too, not a failure of the server
    for url in (path, watch["events_url"].split("?")[0]):
        await problem(await api.get(url + "?token=%C3%A9"), 404, "watch-not-found")
    page = await api.get(watch["page_url"].split("?")[0] + "?token=%C3%A9")
    assert page.status == 404
    assert "No such watch" in await page.text()


async def read_event(resp: Any) -> dict[str, str]:
    """The stream's next event (comment-only blocks skipped), its fields by name."""
    while True:
        block = (await resp.content.readuntil(b"\n\n")).decode()
        fields = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if "data" in fields:
            return fields


async def test_server_sent_events_have_ids_and_resume_after_last_event_id(
    api: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    watch, told = await watch_with_two_events(api, fake, clock)
    resp = await api.get(watch["events_url"])
    assert resp.status == 200
    assert resp.content_type == "text/event-stream"
    first = await read_event(resp)
    second = await read_event(resp)
    resp.close()
    assert first["event"] == "match"
    assert [json.loads(e["data"])["gist"]["id"] for e in (first, second)] == told
    assert json.loads(first["data"])["id"] == int(first["id"])
    assert int(first["id"]) < int(second["id"])

    # resumed after the first: the second alone, then a new one as it is recorded
    resp = await api.get(watch["events_url"], headers={"Last-Event-ID": first["id"]})
    assert (await read_event(resp))["id"] == second["id"]
    third = fake.add_gist("alice", {"third.txt": "needle\n"}).id
    clock.advance(INTERVAL)
    await api.app[WATCHES].run_due()
    event = await read_event(resp)
    resp.close()
    assert json.loads(event["data"])["gist"]["id"] == third
    assert int(event["id"]) > int(second["id"])


async def test_the_watchs_page_lists_its_events_with_links_to_the_lines(
    api: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    watch, told = await watch_with_two_events(api, fake, clock)
    resp = await api.get(watch["page_url"])
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == "default-src 'self'"
    html = await resp.text()
    # newest first, each line linked to GitHub; the baseline's old needle is not there
    assert html.index(f"{told[1]}#file-second-py-L2") < html.index(f"{told[0]}#file-first-py-L2")
    assert "old.txt" not in html
    assert watch["feed_url"].replace("&", "&amp;") in html or watch["feed_url"] in html

    wrong = await api.get(watch["page_url"].split("?")[0] + "?token=guess")
    assert wrong.status == 404
    assert wrong.content_type == "text/html"
    assert "No such watch" in await wrong.text()


async def test_a_quiet_stream_sends_heartbeat_comments(
    api: Client, fake: FakeGitHub, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "HEARTBEAT", 0.02)  # instead of 15 s
    monkeypatch.setattr(feeds, "SSE_POLL", 0.01)
    watch, _ = await watch_with_two_events(api, fake, clock)
    resp = await api.get(watch["events_url"], headers={"Last-Event-ID": "999999"})
    opening = (await resp.content.readuntil(b"\n\n")).decode()
    assert opening.startswith("retry: ")
    assert await resp.content.readuntil(b"\n\n") == b": heartbeat\n\n"  # nothing after 999999
    resp.close()


async def test_a_stream_ends_when_its_watch_is_deleted(
    api: Client, fake: FakeGitHub, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "HEARTBEAT", 0.02)  # instead of 15 s
    monkeypatch.setattr(feeds, "SSE_POLL", 0.01)
    watch, _ = await watch_with_two_events(api, fake, clock)
    resp = await api.get(watch["events_url"])
    await read_event(resp)
    await read_event(resp)
    deleted = await api.delete(f"/api/v1/watches/{watch['id']}", headers=MINE)
    assert deleted.status == 204
    # to the end: the server closed the stream (the bound only keeps a failure from hanging)
    rest = await asyncio.wait_for(resp.content.read(), 30)
    assert rest.endswith(b": the watch was deleted\n\n")
    assert b"data:" not in rest


async def test_event_streams_are_bounded_per_watch_and_per_server(
    api: Client, fake: FakeGitHub, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds, "STREAMS_PER_WATCH", 2)
    monkeypatch.setattr(feeds, "STREAMS", 3)
    monkeypatch.setattr(feeds, "HEARTBEAT", 0.02)  # a closed stream is noticed when written
    monkeypatch.setattr(feeds, "SSE_POLL", 0.01)
    watch, _ = await watch_with_two_events(api, fake, clock)
    opened = [await api.get(watch["events_url"]) for _ in range(2)]
    assert [r.status for r in opened] == [200, 200]
    refused = await api.get(watch["events_url"])
    body = await problem(refused, 429, "too-many-requests")
    assert refused.headers["Retry-After"] == "30"
    assert "(2)" in body["detail"]

    resp = await api.post(
        "/api/v1/watches", json={"usernames": ["alice"], "pattern": "other"}, headers=MINE
    )
    other = await resp.json()
    opened.append(await api.get(other["events_url"]))
    assert opened[-1].status == 200  # another watch's, the server's third
    await problem(await api.get(other["events_url"]), 429, "too-many-requests")

    # a reader that leaves makes room (once the server notices, at its next write)
    opened.pop(0).close()
    for _ in range(500):
        again = await api.get(watch["events_url"])
        if again.status == 200:
            break
        await problem(again, 429, "too-many-requests")
        await asyncio.sleep(0.01)
    assert again.status == 200
    again.close()
    for r in opened:
        r.close()
