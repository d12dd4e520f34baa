"""What the servers sharing the database coordinate through it, per GitHub site: who is
refreshing a user's list (refresh leases), and GitHub's rate limit as any of them
learnt it (GitHub blocks, per credential). In the caller's session and transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.store.models import github_blocks, refresh_leases
from gistcache.store.sql import dialect_insert, is_postgres


@dataclass(frozen=True, slots=True)
class StoredBlock:
    until: datetime  # no API request before it
    strikes: int  # hint-less secondary limits in a row
    spent: bool  # the primary limit's block (GET /rate_limit shows its renewal)


class Leases:
    """The site's refresh leases and GitHub blocks, in one session."""

    def __init__(self, session: AsyncSession, site: int) -> None:
        self._session = session
        self._site = site

    async def claim_refresh(self, login: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take the user's refresh lease unless another owner holds an unexpired one."""
        stmt = dialect_insert(self._session)(refresh_leases).values(
            site_id=self._site, login=login, owner=owner, until=until
        )
        claim = stmt.on_conflict_do_update(
            index_elements=["site_id", "login"],
            set_={"owner": owner, "until": until},
            where=refresh_leases.c.until < now,
        ).returning(refresh_leases.c.owner)
        row = (await self._session.execute(claim)).first()
        return row is not None and row.owner == owner

    async def renew_refresh(self, login: str, owner: str, until: datetime) -> bool:
        """Extend the lease ``owner`` holds; False when it holds it no more."""
        result = await self._session.execute(
            update(refresh_leases).where(*self._lease(login, owner)).values(until=until)
        )
        return bool(getattr(result, "rowcount", 0))

    async def release_refresh(self, login: str, owner: str) -> None:
        await self._session.execute(delete(refresh_leases).where(*self._lease(login, owner)))

    def _lease(self, login: str, owner: str) -> tuple[Any, ...]:
        return (
            refresh_leases.c.site_id == self._site,
            refresh_leases.c.login == login,
            refresh_leases.c.owner == owner,
        )

    async def github_block(self, credential: str) -> StoredBlock | None:
        """When GitHub's rate limit lets the credential ask again, and what the block is."""
        row = (
            await self._session.execute(
                select(
                    github_blocks.c.blocked_until,
                    github_blocks.c.hintless_strikes,
                    github_blocks.c.spent,
                ).where(*self._block(credential))
            )
        ).one_or_none()
        if row is None:
            return None
        return StoredBlock(row.blocked_until, row.hintless_strikes, bool(row.spent))

    async def save_github_block(
        self, credential: str, until: datetime, strikes: int, *, spent: bool = False
    ) -> None:
        """Record what this server learnt; a block another server stored meanwhile is
        never shortened by it (and keeps its kind unless this one lasts as long or
        longer)."""
        stmt = dialect_insert(self._session)(github_blocks).values(
            site_id=self._site,
            credential=credential,
            blocked_until=until,
            hintless_strikes=strikes,
            spent=spent,
        )
        later = func.greatest if is_postgres(self._session) else func.max  # SQLite's max of two
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=["site_id", "credential"],
                set_={
                    "blocked_until": later(
                        github_blocks.c.blocked_until, stmt.excluded.blocked_until
                    ),
                    "hintless_strikes": stmt.excluded.hintless_strikes,
                    "spent": case(
                        (
                            stmt.excluded.blocked_until >= github_blocks.c.blocked_until,
                            stmt.excluded.spent,
                        ),
                        else_=github_blocks.c.spent,
                    ),
                },
            )
        )

    async def claim_block_probe(self, credential: str, now: datetime, every: timedelta) -> bool:
        """Claim the check with GitHub of the credential's primary block: True when it is
        one and no server checked in the last ``every`` (then this one does)."""
        result = await self._session.execute(
            update(github_blocks)
            .where(
                *self._block(credential),
                github_blocks.c.spent.is_(True),
                or_(github_blocks.c.probed_at.is_(None), github_blocks.c.probed_at <= now - every),
            )
            .values(probed_at=now)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def lift_github_block(self, credential: str, until: datetime) -> None:
        """End the credential's primary block, or the block that lasted until ``until``
        (GitHub renewed the budget); a longer secondary one another server learnt since
        stays."""
        await self._session.execute(
            delete(github_blocks).where(
                *self._block(credential),
                or_(
                    github_blocks.c.spent.is_(True),
                    github_blocks.c.blocked_until <= until + timedelta(seconds=1),
                ),
            )
        )

    def _block(self, credential: str) -> tuple[Any, ...]:
        return (github_blocks.c.site_id == self._site, github_blocks.c.credential == credential)
