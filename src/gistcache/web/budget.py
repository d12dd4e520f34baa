"""What each client may make gistcache ask GitHub: its budget of GitHub API requests
(``GISTCACHE_CLIENT_GITHUB_BUDGET``), counted in what its requests cost GitHub rather
than in requests to gistcache, and the budget as the client sees it."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem

from gistcache.github.errors import ClientBudgetSpent

# clients whose window is empty are forgotten once the ledger holds this many more
SWEEP_AFTER = 1024


@dataclass(frozen=True, slots=True)
class ClientBudget:
    limit: int  # requests allowed in a window
    remaining: int  # left in the current window
    reset: int  # when the window frees a request again (Unix time, seconds)

    @property
    def used(self) -> int:
        return self.limit - self.remaining


class GitHubLedger:
    """The GitHub API requests each client caused in the last ``window`` seconds: a moving
    window, each request freeing its place ``window`` seconds after it went out.

    Kept by hand rather than with ``limits`` (which keeps the request-count limit): a
    request must be charged before it goes out, so that concurrent requests cannot all
    pass a check made before any of them was counted, and given back when GitHub did not
    count it (a ``304`` to an authorized request), which ``limits`` cannot do. It holds
    at most ``limit`` instants per client, one per request GitHub was actually asked.
    """

    def __init__(self, limit: RateLimitItem, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit.amount
        self.window = limit.get_expiry()
        self._clock = clock
        self._spent: dict[str, deque[float]] = {}
        self._sweep_at = SWEEP_AFTER

    def _live(self, client: str, now: float) -> deque[float]:
        spent = self._spent.get(client)
        if spent is None:
            if len(self._spent) >= self._sweep_at:
                self._sweep(now)
            spent = self._spent[client] = deque()
        while spent and spent[0] <= now - self.window:
            spent.popleft()
        return spent

    def _sweep(self, now: float) -> None:
        self._spent = {
            client: spent
            for client, spent in self._spent.items()
            if spent and spent[-1] > now - self.window
        }
        self._sweep_at = max(SWEEP_AFTER, 2 * len(self._spent))

    def spend(self, client: str) -> bool:
        """Count one request of ``client``'s; False (counting nothing) when none is left."""
        now = self._clock()
        spent = self._live(client, now)
        if len(spent) >= self.limit:
            return False
        spent.append(now)
        return True

    def give_back(self, client: str) -> None:
        """Uncount ``client``'s latest request (GitHub did not count it)."""
        spent = self._spent.get(client)
        if spent:
            spent.pop()

    def _reset(self, client: str, now: float) -> tuple[int, float]:
        """What is left of ``client``'s budget, and when the window frees a request (the
        oldest one first; an empty window starts now)."""
        spent = self._live(client, now)
        return max(0, self.limit - len(spent)), (spent[0] if spent else now) + self.window

    def budget(self, client: str) -> ClientBudget:
        remaining, reset = self._reset(client, self._clock())
        return ClientBudget(self.limit, remaining, math.ceil(reset))

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may cause a request again."""
        now = self._clock()
        return max(1, math.ceil(self._reset(client, now)[1] - now))


class ClientAccount:
    """One client's account at the ledger: the payer (``github.gate.Payer``) of the GitHub
    API requests its request causes."""

    def __init__(self, ledger: GitHubLedger, client: str) -> None:
        self._ledger = ledger
        self._client = client

    def pay(self) -> None:
        if not self._ledger.spend(self._client):
            raise ClientBudgetSpent(
                self._ledger.limit,
                self._ledger.window,
                self._ledger.retry_after(self._client),
                self,
            )

    def refund(self) -> None:
        self._ledger.give_back(self._client)

    def budget(self) -> ClientBudget:
        return self._ledger.budget(self._client)
