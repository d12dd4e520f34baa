"""Webhooks: each event posted once, signed with the watch's secret (verified here as a
receiver would), retried after a failing answer and listed with every attempt at the
deliveries endpoint; addresses deliveries may not reach are refused, checked on the
address connected to, and redirects are not followed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gistcache.services.delivery import retry_wait
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import WATCHES, WEBHOOKS
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory, problem

Client = TestClient[Any, Any]
TOKEN = "alpha-token-0123456789"
MINE = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "It's a Secret to Everybody"
INTERVAL = 300


class Receiver:
    """A webhook receiver: answers each POST with the next of ``statuses`` (200 once they
    run out) and keeps what it was sent."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()  # set by the first POST

    async def hook(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        if 300 <= status < 400:
            raise web.HTTPFound("/elsewhere")
        return web.Response(status=status)

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.received.append(({"followed": "yes"}, b""))
        return web.Response()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hooks.hook)
    app.router.add_route("*", "/elsewhere", hooks.elsewhere)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield hooks, f"http://127.0.0.1:{server.port}/hook"
    await server.close()


async def started(make_client: ClientFactory, **settings: Any) -> Client:
    client = await make_client(api_tokens=(TOKEN,), **settings)
    await client.app[WATCHES].stop()  # the test runs the poller and the sender itself
    await client.app[WEBHOOKS].close()
    return client


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does with the signature (docs/watches.md's few lines)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Gistcache-Signature-256"])


async def one_event(client: Client, fake: FakeGitHub, clock: FakeClock, url: str) -> str:
    """A watch with a webhook to ``url``, baselined, then one event: the watch's id."""
    fake.add_gist("alice", {"hay.txt": "hay\n"})
    resp = await client.post(
        "/api/v1/watches",
        json={
            "usernames": ["alice"],
            "pattern": "needle",
            "interval": INTERVAL,
            "webhook": {"url": url, "secret": SECRET},
        },
        headers=MINE,
    )
    assert resp.status == 201, await resp.text()
    watch_id: str = (await resp.json())["id"]
    await client.app[WATCHES].run_due()
    fake.add_gist("alice", {"n.txt": "a needle\n"})
    clock.advance(INTERVAL)
    [report] = await client.app[WATCHES].run_due()
    assert len(report.told) == 1
    return watch_id


async def deliveries(client: Client, watch_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v1/watches/{watch_id}/deliveries", headers=MINE)
    assert resp.status == 200
    listed: list[dict[str, Any]] = (await resp.json())["deliveries"]
    return listed


async def test_an_event_is_posted_once_signed_and_retried_after_a_500(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hooks.statuses = [500]
    client = await started(make_client, webhook_allow=("127.0.0.1",))
    watch_id = await one_event(client, fake, clock, url)
    sender = client.app[WEBHOOKS]

    assert await sender.deliver_due() == 1  # answered 500
    assert await sender.deliver_due() == 0  # not due again yet
    clock.advance(retry_wait(1))
    assert await sender.deliver_due() == 1  # answered 200
    clock.advance(3600)
    assert await sender.deliver_due() == 0  # delivered: never again

    assert len(hooks.received) == 2
    (first_headers, first_body), (headers, body) = hooks.received
    assert body == first_body
    assert verified(SECRET, headers, body)
    assert not verified("another secret", headers, body)
    assert headers["X-Gistcache-Delivery"] == first_headers["X-Gistcache-Delivery"]
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert (event["type"], event["watch_id"], event["user"]) == ("match", watch_id, "alice")
    assert event["files"][0]["lines"][0]["line_number"] == 1

    [delivery] = await deliveries(client, watch_id)
    assert delivery["id"] == headers["X-Gistcache-Delivery"]
    assert delivery["event_id"] == event["id"]
    assert delivery["status"] == "delivered"
    assert [(a["attempt"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 200)]
    assert delivery["attempts"][0]["error"] == "answered 500"


async def test_deliveries_are_given_up_after_the_retry_time(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hooks.statuses = [503] * 100
    client = await started(make_client, webhook_allow=("127.0.0.1",), webhook_retry_for=60)
    watch_id = await one_event(client, fake, clock, url)
    sender = client.app[WEBHOOKS]
    for attempt in range(1, 10):
        await sender.deliver_due()
        clock.advance(retry_wait(attempt))
    [delivery] = await deliveries(client, watch_id)
    assert delivery["status"] == "failed"
    # at 0 s, 10 s and 30 s; the next, at 70 s, would pass the 60 s: three attempts
    assert len(delivery["attempts"]) == len(hooks.received) == 3


async def test_a_redirect_is_not_followed(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hooks.statuses = [302]
    client = await started(make_client, webhook_allow=("127.0.0.1",))
    watch_id = await one_event(client, fake, clock, url)
    await client.app[WEBHOOKS].deliver_due()
    assert [headers.get("followed") for headers, _ in hooks.received] == [None]
    [delivery] = await deliveries(client, watch_id)
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["status_code"] == 302


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fec0::1]/hook",  # site-local (deprecated, yet routed inside some networks)
        "https://[2002:a00:1::1]/hook",  # 6to4 of 10.0.0.1
        "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",  # Teredo, client 10.0.0.1
        "http://hooks.example.com/hook",  # http to a host not allowed
    ],
)
async def test_a_private_address_is_refused_by_default(
    make_client: ClientFactory, url: str
) -> None:
    client = await started(make_client)
    resp = await client.post(
        "/api/v1/watches",
        json={"usernames": ["alice"], "pattern": "x", "webhook": {"url": url, "secret": "s"}},
        headers=MINE,
    )
    body = await problem(resp, 400, "invalid-body")
    assert body["field"] == "webhook"


async def test_a_tunnel_address_is_judged_by_the_ipv4_address_it_reaches(
    make_client: ClientFactory,
) -> None:
    client = await started(make_client)

    async def made(url: str) -> Any:
        return await client.post(
            "/api/v1/watches",
            json={"usernames": ["alice"], "pattern": "x", "webhook": {"url": url, "secret": "s"}},
            headers=MINE,
        )

    body = await problem(await made("https://[2002:a00:1::1]/hook"), 400, "invalid-body")
    assert "(10.0.0.1)" in body["detail"]
    # the 6to4 address of a public IPv4 address is public
    assert (await made("https://[2002:808:808::1]/hook")).status == 201
    # named in GISTCACHE_WEBHOOK_ALLOW, the IPv4 network allows its tunnels' addresses
    client = await started(make_client, webhook_allow=("10.0.0.0/8",))
    assert (await made("https://[2002:a00:1::1]/hook")).status == 201


async def test_a_name_that_resolves_to_a_private_address_is_refused_when_connecting(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    client = await started(make_client)
    # localhost is a name: accepted when the watch is made, refused on its address
    named = url.replace("http://127.0.0.1", "https://localhost")
    watch_id = await one_event(client, fake, clock, named)
    assert await client.app[WEBHOOKS].deliver_due() == 1
    assert hooks.received == []
    [delivery] = await deliveries(client, watch_id)
    assert delivery["status"] == "failed"
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert "loopback" in attempt["error"]
    assert attempt["error"].startswith("refused")


async def test_a_receiver_that_does_not_answer_holds_only_its_own_watchs_deliveries(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    release, holding = asyncio.Event(), asyncio.Event()
    held: list[bytes] = []

    async def silent(request: web.Request) -> web.Response:
        held.append(await request.read())
        holding.set()
        await release.wait()  # as a blackholed URL does, until the test lets it answer
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", silent)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    client = await started(make_client, webhook_allow=("127.0.0.1",))

    async def watch(pattern: str, hook: str) -> str:
        body = {"usernames": ["alice"], "pattern": pattern, "interval": INTERVAL}
        body["webhook"] = {"url": hook, "secret": SECRET}
        resp = await client.post("/api/v1/watches", json=body, headers=MINE)
        assert resp.status == 201
        watch_id: str = (await resp.json())["id"]
        return watch_id

    fake.add_gist("alice", {"hay.txt": "hay\n"})
    slow = await watch("needle", f"http://127.0.0.1:{server.port}/hook")
    fast = await watch("pin", url)
    await client.app[WATCHES].run_due()  # the baselines
    # two events of the slow watch's, then one of the fast one's
    for texts in (("needle", "needle"), ("pin",)):
        for text in texts:
            fake.add_gist("alice", {"a.txt": f"{text}\n"})
        clock.advance(INTERVAL)
        await client.app[WATCHES].run_due()
    assert [len(await deliveries(client, watch_id)) for watch_id in (slow, fast)] == [2, 1]
    try:
        sending = asyncio.create_task(client.app[WEBHOOKS].deliver_due())
        # the bound only keeps a failure from hanging the test
        # the fast watch's receiver gets its event while the slow one's holds the first
        async with asyncio.timeout(30):
            await asyncio.gather(hooks.arrived.wait(), holding.wait())
        assert len(hooks.received) == 1
        assert len(held) == 1  # the slow watch's second waits for its first
        release.set()
        async with asyncio.timeout(30):
            assert await sending == 3
    finally:
        release.set()
        await server.close()
    # the slow watch's in the order of its events
    assert [json.loads(body)["id"] for body in held] == sorted(
        json.loads(body)["id"] for body in held
    )
    assert len(held) == 2
    assert [d["status"] for d in await deliveries(client, slow)] == ["delivered"] * 2
    assert [d["status"] for d in await deliveries(client, fast)] == ["delivered"]
