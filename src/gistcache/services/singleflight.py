"""Share one in-flight call among every caller asking for the same key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Concurrent ``run(key, fn)`` calls with one key await a single ``fn()``.

    The shared call runs as its own task, so a caller that gives up (a client that
    disconnects) does not cancel it for the others. With ``abandon`` the call is
    cancelled when the last of its callers gives up (nobody is left to want it);
    without, it runs on to its end.

    Why it is worth its task per call: 200 requests for one stale user make one request
    to GitHub, not 200 (benchmark scenario 2, the thundering herd, in
    docs/performance.md), and searches that miss the same files download each once
    (tests/api/test_content_sharing.py counts the raw downloads).
    """

    def __init__(self, *, abandon: bool = False) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}
        self._waiters: dict[str, int] = {}
        self._abandon = abandon

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._abandon and self._waiters.get(key) == 1 and not task.done():
                task.cancel()
            raise
        finally:
            left = self._waiters.get(key, 1) - 1
            if left:
                self._waiters[key] = left
            else:
                self._waiters.pop(key, None)

    def joined(self, key: str) -> Awaitable[T] | None:
        """The call running for ``key`` to wait for, or None when there is none."""
        task = self._running.get(key)
        return None if task is None else asyncio.shield(task)

    def _finished(self, key: str, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # mark it retrieved even when every caller went away

    async def close(self) -> None:
        """Cancel and await whatever is still running (at shutdown)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
