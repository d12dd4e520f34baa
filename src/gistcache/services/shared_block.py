"""GitHub's rate limit for this server's credential, shared through the database with
every server using it: what one learns (a block, its end, who checks whether a spent
limit was renewed), the others learn before they ask GitHub."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from gistcache.domain.clock import Clock, utcnow
from gistcache.github.gate import Block
from gistcache.store.bound import SiteStore
from gistcache.store.errors import StoreError

log = logging.getLogger(__name__)


class SharedBlock:
    """GitHub's rate-limit block for one credential, shared through the database with
    every server using it (the gate's BlockExchange)."""

    def __init__(self, store: SiteStore, credential: str, clock: Clock = utcnow) -> None:
        self._store = store
        self._credential = credential
        self._clock = clock

    async def load(self) -> Block | None:
        async with self._store.read() as db:
            shared = await db.leases.github_block(self._credential)
        if shared is None:
            return None
        return Block(shared.until.timestamp(), shared.strikes, shared.spent)

    async def save(self, block: Block) -> None:
        until = datetime.fromtimestamp(block.until, UTC)
        try:
            async with self._store.write() as db:
                await db.leases.save_github_block(
                    self._credential, until, block.strikes, spent=block.spent
                )
        except StoreError as exc:  # this server still knows; the others learn on their own
            log.warning("could not share GitHub's rate limit through the database: %s", exc)

    async def claim_probe(self, every: float) -> bool:
        try:
            async with self._store.write() as db:
                return await db.leases.claim_block_probe(
                    self._credential, self._clock(), timedelta(seconds=every)
                )
        except StoreError as exc:  # unshared, unasked: the block ends at its time
            log.warning("could not claim the check of GitHub's rate limit: %s", exc)
            return False

    async def lift(self, block: Block) -> None:
        until = datetime.fromtimestamp(block.until, UTC)
        try:
            async with self._store.write() as db:
                await db.leases.lift_github_block(self._credential, until)
        except StoreError as exc:  # the others ask GitHub themselves a minute on
            log.warning("could not share that GitHub's rate limit is renewed: %s", exc)
