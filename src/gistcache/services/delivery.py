"""Use case: post each watch event to its watch's webhook, signed, until the receiver
takes it or the retry time runs out.

A delivery is claimed in the database (one sender across the servers, as a watch's
run is), attempted, and its attempt logged with what followed. The body is the event's
JSON, signed with HMAC-SHA256 under the watch's secret in ``X-Gistcache-Signature-256:
sha256=<hex>`` (the form of GitHub's ``X-Hub-Signature-256``); ``X-Gistcache-Delivery``
names the delivery (the same on every attempt, so that a receiver can drop a repeat).
A 2xx answer delivers it; anything else (a redirect too: none is followed) is tried
again after 10 s, then twice as long each time up to 10 min, until
``GISTCACHE_WEBHOOK_RETRY_FOR`` has passed since the event. An address the policy
refuses (services.webhooks) fails the delivery at once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import time
from datetime import timedelta

import aiohttp
from yarl import URL

from gistcache import __version__
from gistcache.domain.clock import Clock
from gistcache.observability.metrics import Metrics
from gistcache.services.watches import event_json
from gistcache.services.webhooks import GuardedResolver, RefusedAddress, WebhookPolicy
from gistcache.store.bound import SiteStore
from gistcache.store.errors import StoreUnavailable
from gistcache.store.watches import DELIVERED, FAILED, PENDING, AttemptRow, DeliveryRow

log = logging.getLogger(__name__)

FIRST_RETRY = 10.0  # seconds
LONGEST_WAIT = 600.0
TIMEOUT = 10.0  # seconds for one attempt, connection and answer
LEASE = timedelta(seconds=60)  # a sender that died mid-attempt loses the delivery after this
POLL_SECONDS = 2.0
DELIVERIES_AT_ONCE = 8  # deliveries a sender attempts at the same time, one per watch
SIGNATURE_HEADER = "X-Gistcache-Signature-256"
DELIVERY_HEADER = "X-Gistcache-Delivery"
EVENT_HEADER = "X-Gistcache-Event"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_wait(attempt: int) -> float:
    """Seconds before the attempt after ``attempt`` (1-based)."""
    return float(min(FIRST_RETRY * 2.0 ** (attempt - 1), LONGEST_WAIT))


class WebhookSender:
    """Send the due deliveries (``deliver_due``, or the loop ``start`` starts)."""

    def __init__(
        self,
        store: SiteStore,
        policy: WebhookPolicy,
        *,
        retry_for: float,
        clock: Clock,
        metrics: Metrics | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._store = store
        self._policy = policy
        self._retry_for = timedelta(seconds=retry_for)
        self._clock = clock
        self._metrics = metrics
        self._poll = poll_seconds
        self._http: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._policy), limit=16)
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                headers={"User-Agent": f"gistcache/{__version__}"},
            )
        return self._http

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._loop(), name="webhook-sender"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except StoreUnavailable as exc:
                log.warning("webhook deliveries wait: %s", exc)
            except Exception:
                log.exception("webhook sender error")  # a bug must not end the loop
            await asyncio.sleep(self._poll)

    async def deliver_due(self) -> int:
        """Attempt every delivery that is due and that no other sender holds; how many.

        Up to ``DELIVERIES_AT_ONCE`` are attempted at the same time, one of a watch at a
        time (a watch's deliveries go one after another, in order): a receiver that
        never answers holds its own watch's deliveries, not the others'."""
        count = 0
        busy: set[str] = set()  # watches one of whose deliveries is being attempted
        running: dict[asyncio.Task[None], str] = {}
        try:
            while True:
                delivery = None
                if len(running) < DELIVERIES_AT_ONCE:
                    now = self._clock()
                    async with self._store.write() as db:
                        delivery = await db.watches.claim_delivery(now, now + LEASE, busy=busy)
                if delivery is not None:
                    busy.add(delivery.watch_id)
                    running[asyncio.create_task(self._attempt(delivery))] = delivery.watch_id
                    count += 1
                    continue
                if not running:
                    return count
                # one finished (its watch may have more due), or a while to look again
                done, _ = await asyncio.wait(
                    running, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    busy.discard(running.pop(task))
                    task.result()  # a failure (the database, a bug) is the loop's
        except asyncio.CancelledError:
            for task in running:
                task.cancel()  # the claim runs out, and the delivery is attempted again
            raise
        finally:
            await asyncio.gather(*running, return_exceptions=True)

    async def _attempt(self, delivery: DeliveryRow) -> None:
        body = json.dumps(event_json(delivery.event), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: "match",
            DELIVERY_HEADER: delivery.id,
            SIGNATURE_HEADER: signature(delivery.secret, body),
        }
        at = self._clock()
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        refused = False
        try:
            self._check_literal(delivery.url)
            async with self._session().post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                status_code = resp.status
                with contextlib.suppress(Exception):
                    await resp.content.read(64 * 1024)  # the answer read, and let go
        except RefusedAddress as exc:
            error, refused = f"refused: {exc}", True
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                error, refused = f"refused: {exc.os_error}", True
            else:
                error = f"could not connect: {exc.os_error or exc}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration = int((time.monotonic() - started) * 1000)
        attempt = AttemptRow(delivery.attempts, at, status_code, error, duration)
        await self._record(delivery, attempt, refused=refused)

    def _check_literal(self, url: str) -> None:
        """An address given as such is connected to without resolving: checked here."""
        host = URL(url).host or ""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        reason = self._policy.refuses(address, host)
        if reason is not None:
            raise RefusedAddress(f"{host} is {reason}")

    async def _record(self, delivery: DeliveryRow, attempt: AttemptRow, *, refused: bool) -> None:
        """Log the attempt, and what follows: delivered, tried again later, or failed."""
        now = self._clock()
        code = attempt.status_code
        delivered = code is not None and 200 <= code < 300
        if code is not None and not delivered:
            unfollowed = " (redirects are not followed)" if 300 <= code < 400 else ""
            attempt = dataclasses.replace(attempt, error=f"answered {code}{unfollowed}")
        next_at = now + timedelta(seconds=retry_wait(delivery.attempts))
        if delivered:
            status, next_at_or_none, outcome = DELIVERED, None, "delivered"
        elif refused or next_at > delivery.created_at + self._retry_for:
            status, next_at_or_none, outcome = FAILED, None, "refused" if refused else "failed"
        else:
            status, next_at_or_none, outcome = PENDING, next_at, "retry"
        async with self._store.write() as db:
            await db.watches.record_attempt(
                delivery.id, attempt, status=status, next_attempt_at=next_at_or_none
            )
        if self._metrics is not None:
            self._metrics.webhook_attempts.labels(outcome).inc()
        log.info(
            "webhook delivery %s (watch %s, event %d) attempt %d: %s",
            delivery.id,
            delivery.watch_id,
            delivery.event_id,
            delivery.attempts,
            "delivered" if delivered else f"{attempt.error}; {outcome}",
        )
