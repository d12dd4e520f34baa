"""The rate-limit gate: no API request goes out while GitHub's limit is known to be
spent. It blocks until GitHub's reset or the wait an answer named; a secondary limit
that named no wait blocks a minute, doubling with each one in a row (a strike) up to a
cap; no block lasts longer than GitHub's hour-long window.

Each API request is charged to the context's :data:`PAYER`, when there is one.

What the gate learns is shared with every server through a :class:`BlockExchange`,
which the caller implements (the listing service, over the database), so that this
package knows nothing of where the block is kept.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from gistcache.github.errors import GitHubRateLimited
from gistcache.github.parse import MAX_RATE_LIMIT_WAIT

MAX_HINTLESS_WAIT = 15 * 60


@dataclass(frozen=True, slots=True)
class Block:
    """What the gate knows of GitHub's rate limit, to share with other servers."""

    until: float  # epoch seconds; no API request goes out before it
    strikes: int  # secondary limits in a row that named no wait


class BlockExchange(Protocol):
    """Where servers sharing GitHub's rate limit leave the block for each other."""

    async def load(self) -> Block | None:
        """The block another server shared, if any."""

    async def save(self, block: Block) -> None:
        """Share what this server learnt; a failure to share is the exchange's to bear
        (this server still knows, the others learn on their own)."""


class Payer(Protocol):
    """Whom the API requests made on someone's behalf are charged to (the client a request
    came from), so that no one client spends the budget every client shares."""

    def pay(self) -> None:
        """Charge one API request about to go out; raise ClientBudgetSpent to stop it."""

    def refund(self) -> None:
        """Give back the last charge: GitHub did not count that request."""


# the payer of the API requests made in this context: set per request by the web layer,
# inherited by the tasks a request starts (a shared refresh is charged to the request
# that started it); None for the server's own work, such as search jobs and the CLI
PAYER: ContextVar[Payer | None] = ContextVar("gistcache_github_payer", default=None)


class RateLimitGate:
    def __init__(self) -> None:
        self._blocked_until = 0.0  # epoch seconds; no request goes out before it
        self._strikes = 0  # secondary limits in a row that named no wait

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

    def limited(self, wait: int, *, named: bool) -> int:
        """GitHub refused us for rate limiting; block for ``wait`` seconds, or, when the
        answer ``named`` no wait, for that doubled with each strike in a row, up to the
        cap. Returns how long the block lasts."""
        if not named:
            wait = min(MAX_HINTLESS_WAIT, wait * 2**self._strikes)
            self._strikes += 1
        self._block_until(time.time() + wait)
        return wait

    def spent_until(self, reset: float) -> None:
        """The rate-limit headers said the budget is spent until ``reset`` (epoch)."""
        self._block_until(min(reset, time.time() + MAX_RATE_LIMIT_WAIT))

    def block(self) -> Block:
        return Block(self._blocked_until, self._strikes)

    def adopt(self, block: Block) -> None:
        """Take in what another server learnt of the rate limit; a block is never
        shortened, nor made longer than an hour from now."""
        self._block_until(min(block.until, time.time() + MAX_RATE_LIMIT_WAIT))
        self._strikes = block.strikes

    @contextlib.asynccontextmanager
    async def shared(self, exchange: BlockExchange) -> AsyncIterator[None]:
        """Adopt the block other servers shared, then share what the requests made
        inside learnt of it (when they learnt anything): none asks while another found
        the limit spent."""
        found = await exchange.load()
        if found is not None:
            self.adopt(found)
        before = self.block()
        try:
            yield
        finally:
            learnt = self.block()
            if learnt != before:
                await exchange.save(learnt)

    def _block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)
