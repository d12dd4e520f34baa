"""A lease on a row of the database, held by one worker at a time among every process
sharing it: claimed, renewed in the background while its work runs (so that a process
that dies, even by ``kill -9``, holds it at most one lease length longer), and handed
back when the work ends, or inside the transaction that records the work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Generic, TypeVar

from gistcache.domain.clock import Clock

log = logging.getLogger(__name__)

# what a transaction hands the lease's statements: a session, or the store bound to one
Tx = TypeVar("Tx")


class Lease(Generic[Tx]):
    """One lease, its statements handed in: ``claim(tx, now, until)`` takes it unless
    another holder's has not expired, ``renew(tx, until)`` extends it (False once it was
    lost), ``release(tx)`` ends it. ``transaction()`` opens the transaction each runs in.

    ``async with lease:`` renews a claimed lease every ``renew_every`` seconds (a third
    of its length unless told) while the block runs, and hands it back when the block
    ends unless :meth:`handing_back` already did. A lease that was not claimed does
    neither. :meth:`kept` is the renewal alone, for a holder that ends the lease its own
    way.
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractAsyncContextManager[Tx]],
        *,
        renew: Callable[[Tx, datetime], Awaitable[bool]],
        release: Callable[[Tx], Awaitable[None]] | None = None,
        claim: Callable[[Tx, datetime, datetime], Awaitable[bool]] | None = None,
        length: timedelta,
        clock: Clock,
        what: str,
        renew_every: float | None = None,
    ) -> None:
        self._transaction = transaction
        self._claim = claim
        self._renew = renew
        self._release = release
        self._length = length
        self._clock = clock
        self._what = what
        self._renew_every = length.total_seconds() / 3 if renew_every is None else renew_every
        self._renewal: asyncio.Task[None] | None = None
        self.held = False  # claimed, and not handed back yet

    async def claim(self) -> bool:
        """Take the lease unless another holder's has not expired."""
        if self._claim is None:
            raise TypeError(f"the lease of {self._what} has no claim statement")
        now = self._clock()
        async with self._transaction() as tx:
            self.held = await self._claim(tx, now, now + self._length)
        return self.held

    async def wait(self, seconds: float, poll: float) -> bool:
        """Claim it as soon as its holder lets it go (or it lapses), trying every ``poll``
        seconds for at most ``seconds``; whether it is held."""
        deadline = time.monotonic() + seconds
        while not self.held and time.monotonic() < deadline:
            await asyncio.sleep(poll)
            await self.claim()
        return self.held

    async def kept(self) -> None:
        """Renew the lease until cancelled (the work ended); return when it was lost."""
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                async with self._transaction() as tx:
                    held = await self._renew(tx, self._clock() + self._length)
            except Exception:  # the database hiccupped: the lease may lapse, no more
                log.warning("could not renew the lease of %s", self._what)
                continue
            if not held:
                return

    async def __aenter__(self) -> Lease[Tx]:
        if self.held:
            self._renewal = asyncio.create_task(self.kept())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.gather(self._renewal, return_exceptions=True)
            self._renewal = None
        if self.held and self._release is not None:
            async with self._transaction() as tx:
                await self._release(tx)
            self.held = False

    @contextlib.asynccontextmanager
    async def handing_back(self) -> AsyncIterator[Tx]:
        """A transaction that ends the lease with what it records: one commit on the
        work's path instead of two. The lease counts as handed back once that commit
        succeeded; until then (a rollback) leaving ``async with lease`` still does it."""
        releases = self.held and self._release is not None
        async with self._transaction() as tx:
            yield tx
            if releases and self._release is not None:
                await self._release(tx)
        if releases:
            self.held = False
