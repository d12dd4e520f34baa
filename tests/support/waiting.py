"""Waiting for something to happen, instead of sleeping a guessed while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = bool,
    *,
    within: float = 30.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Await ``probe()`` until ``until`` holds for its value, and return that value.

    After ``within`` seconds without success this fails, naming ``what`` and the last
    value seen; the default is generous, as it only costs time when something is wrong
    and the machine running the tests may be busy. An exception from the probe (an
    assertion, say) ends the wait at once.
    """
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {within} s; last saw {value!r}")
        await asyncio.sleep(interval)
