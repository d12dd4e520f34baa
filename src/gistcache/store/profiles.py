"""GitHub's users as ``GET /users/{username}`` gives them, kept per site for
``/api/v3/users/{username}`` with the ETag that revalidates them. In the caller's
session and transaction."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.store.models import user_profiles
from gistcache.store.sql import upsert


@dataclass(frozen=True, slots=True)
class StoredProfile:
    login: str  # lower-cased
    body: str  # GitHub's JSON, as it sent it
    etag: str | None
    credential: str  # whose ETag it is
    checked_at: datetime  # when GitHub last sent or confirmed it
    retry_at: datetime | None  # GitHub failed for it lately: not asked before then


_STORED_PROFILE = [user_profiles.c[f.name] for f in fields(StoredProfile)]


class Profiles:
    """The site's stored users, in one session."""

    def __init__(self, session: AsyncSession, site: int) -> None:
        self._session = session
        self._site = site

    def _of(self, login: str) -> tuple[Any, ...]:
        return (user_profiles.c.site_id == self._site, user_profiles.c.login == login)

    async def get(self, login: str) -> StoredProfile | None:
        row = (
            await self._session.execute(select(*_STORED_PROFILE).where(*self._of(login)))
        ).one_or_none()
        return None if row is None else StoredProfile(**row._mapping)

    async def save(
        self, login: str, body: str, etag: str | None, credential: str, now: datetime
    ) -> None:
        row = {
            "site_id": self._site,
            "login": login,
            "body": body,
            "etag": etag,
            "credential": credential,
            "checked_at": now,
            "retry_at": None,
        }
        await upsert(self._session, user_profiles, [row], ["site_id", "login"])

    async def mark_checked(self, login: str, etag: str | None, now: datetime) -> None:
        """GitHub confirmed the stored profile (a 304)."""
        values: dict[str, object] = {"checked_at": now, "retry_at": None}
        if etag is not None:
            values["etag"] = etag
        await self._session.execute(update(user_profiles).where(*self._of(login)).values(**values))

    async def set_retry_at(self, login: str, until: datetime) -> None:
        await self._session.execute(
            update(user_profiles).where(*self._of(login)).values(retry_at=until)
        )

    async def delete(self, login: str) -> None:
        await self._session.execute(delete(user_profiles).where(*self._of(login)))
