"""The rate-limit gate: no API request goes out while GitHub's limit is known to be
spent. It blocks until GitHub's reset or the wait an answer named; a secondary limit
that named no wait blocks a minute, doubling with each one in a row (a strike) up to a
cap; no block lasts longer than GitHub's hour-long window.

A block of the primary limit (``x-ratelimit-remaining: 0``) can end early: GitHub may
renew or raise the budget (a new token, a bigger plan, a restarted fake GitHub). While
such a block lasts, one server at a time, at most every ``PROBE_EVERY`` seconds for all
of them, asks GitHub's ``GET /rate_limit`` (which costs no budget), and the block is
lifted for everyone when it says requests remain. A secondary limit is never lifted so:
``GET /rate_limit`` does not show it.

Each API request is charged to the context's :data:`PAYER`, when there is one.

What the gate learns is shared with every server through a :class:`BlockExchange`,
which the caller implements (the listing service, over the database), so that this
package knows nothing of where the block is kept.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from gistcache.github.errors import GitHubRateLimited
from gistcache.github.parse import MAX_RATE_LIMIT_WAIT

MAX_HINTLESS_WAIT = 15 * 60
# how often a primary block is checked with GitHub's GET /rate_limit, across all servers
PROBE_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Block:
    """What the gate knows of GitHub's rate limit, to share with other servers."""

    until: float  # epoch seconds; no API request goes out before it
    strikes: int  # secondary limits in a row that named no wait
    spent: bool = False  # the block is the primary limit's: GET /rate_limit shows its renewal


class BlockExchange(Protocol):
    """Where servers sharing GitHub's rate limit leave the block for each other."""

    async def load(self) -> Block | None:
        """The block another server shared, if any."""

    async def save(self, block: Block) -> None:
        """Share what this server learnt; a failure to share is the exchange's to bear
        (this server still knows, the others learn on their own)."""

    async def claim_probe(self, every: float) -> bool:
        """Whether this server may ask GitHub now if the shared primary block is over: no
        server asked in the last ``every`` seconds (the claim is then this server's)."""

    async def lift(self, block: Block) -> None:
        """GitHub renewed the budget: end the shared ``block`` for every server (not a
        longer one another server learnt since)."""


class Payer(Protocol):
    """Whom the API requests made on someone's behalf are charged to (the client a request
    came from), so that no one client spends the budget every client shares."""

    def pay(self) -> None:
        """Charge one API request about to go out; raise ClientBudgetSpent to stop it."""

    def refund(self) -> None:
        """Give back the last charge: GitHub did not count that request."""


# the payer of the API requests made in this context: set per request by the web layer,
# inherited by the tasks a request starts (a shared refresh is charged to the request
# that started it), and per search job to the client that submitted it; None for the
# server's own work, such as the CLI and jobs queued before they recorded a client
PAYER: ContextVar[Payer | None] = ContextVar("gistcache_github_payer", default=None)


class RateLimitGate:
    def __init__(self, renewed: Callable[[], Awaitable[bool]] | None = None) -> None:
        self._blocked_until = 0.0  # epoch seconds; no request goes out before it
        self._strikes = 0  # secondary limits in a row that named no wait
        self._spent = False  # the block is the primary limit's
        self._shared_until = 0.0  # the latest block the exchange held or took from here
        # asks GitHub whether the primary budget has requests again (GET /rate_limit)
        self._renewed = renewed

    def blocked_for(self) -> int:
        """Seconds until GitHub's rate limit lets us ask again (0 when it does now)."""
        return max(0, math.ceil(self._blocked_until - time.time()))

    def check(self) -> None:
        """Raise GitHubRateLimited while blocked: asking now would only spend the next
        window's budget sooner."""
        wait = self.blocked_for()
        if wait:
            raise GitHubRateLimited("GitHub's rate limit is exhausted", wait)

    def answered(self) -> None:
        """GitHub answered (200 or 304): the strikes start over."""
        self._strikes = 0

    def limited(self, wait: int, *, named: bool, spent: bool = False) -> int:
        """GitHub refused us for rate limiting; block for ``wait`` seconds, or, when the
        answer ``named`` no wait, for that doubled with each strike in a row, up to the
        cap. ``spent``: the refusal was the primary limit's (``x-ratelimit-remaining:
        0``), not a secondary one. Returns how long the block lasts."""
        if not named:
            wait = min(MAX_HINTLESS_WAIT, wait * 2**self._strikes)
            self._strikes += 1
        self._block_until(time.time() + wait, spent=spent)
        return wait

    def spent_until(self, reset: float) -> None:
        """The rate-limit headers said the budget is spent until ``reset`` (epoch)."""
        self._block_until(min(reset, time.time() + MAX_RATE_LIMIT_WAIT), spent=True)

    def block(self) -> Block:
        return Block(self._blocked_until, self._strikes, self._spent)

    def adopt(self, block: Block) -> None:
        """Take in what another server learnt of the rate limit; a block is never
        shortened, nor made longer than an hour from now."""
        self._block_until(min(block.until, time.time() + MAX_RATE_LIMIT_WAIT), spent=block.spent)
        self._strikes = block.strikes

    def lift(self) -> None:
        """GitHub has requests for us again: the block is over."""
        self._blocked_until, self._strikes, self._spent = 0.0, 0, False

    @contextlib.asynccontextmanager
    async def shared(self, exchange: BlockExchange) -> AsyncIterator[None]:
        """Adopt the block other servers shared (lifted first when it is the primary
        limit's and GitHub says requests remain), then share what the requests made
        inside learnt of it (when they learnt anything): none asks while another found
        the limit spent."""
        found = await exchange.load()
        if found is not None:
            self.adopt(found)
            self._shared_until = max(self._shared_until, found.until)
        elif self._spent and 0 < self._blocked_until <= self._shared_until + 1:
            self.lift()  # the block this server shared is gone: another server lifted it
        await self._lift_when_renewed(exchange)
        before = self.block()
        try:
            yield
        finally:
            learnt = self.block()
            if learnt != before:
                await exchange.save(learnt)
                self._shared_until = max(self._shared_until, learnt.until)

    async def _lift_when_renewed(self, exchange: BlockExchange) -> None:
        """While the primary limit blocks, ask GitHub (one server, at most every
        ``PROBE_EVERY`` seconds for all of them) whether the budget has requests again;
        when it has, lift the block here and for every server."""
        if not (self._spent and self.blocked_for() and self._renewed is not None):
            return
        if not await exchange.claim_probe(PROBE_EVERY):
            return
        blocked = self.block()
        if await self._renewed():
            self.lift()
            await exchange.lift(blocked)

    def _block_until(self, until: float, *, spent: bool) -> None:
        if until > self._blocked_until:
            self._blocked_until, self._spent = until, spent
        elif until == self._blocked_until:
            self._spent = self._spent or spent
