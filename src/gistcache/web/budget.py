"""A client's budget under the client rate limit, as the last request left it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClientBudget:
    limit: int  # requests allowed in a window
    remaining: int  # left in the current window
    reset: int  # when the window frees a request again (Unix time, seconds)

    @property
    def used(self) -> int:
        return self.limit - self.remaining
