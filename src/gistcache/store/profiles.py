"""Repository functions for GitHub's users as ``GET /users/{username}`` gives them, kept
per site for ``/api/v3/users/{username}`` with the ETag that revalidates them."""

from __future__ import annotations

from dataclasses import dataclass
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


def _of(site: int, login: str) -> tuple[Any, ...]:
    return (user_profiles.c.site_id == site, user_profiles.c.login == login)


async def get_profile(session: AsyncSession, site: int, login: str) -> StoredProfile | None:
    row = (await session.execute(select(user_profiles).where(*_of(site, login)))).one_or_none()
    if row is None:
        return None
    return StoredProfile(
        row.login, row.body, row.etag, row.credential, row.checked_at, row.retry_at
    )


async def save_profile(
    session: AsyncSession,
    site: int,
    login: str,
    body: str,
    etag: str | None,
    credential: str,
    now: datetime,
) -> None:
    await upsert(
        session,
        user_profiles,
        [
            {
                "site_id": site,
                "login": login,
                "body": body,
                "etag": etag,
                "credential": credential,
                "checked_at": now,
                "retry_at": None,
            }
        ],
        ["site_id", "login"],
    )


async def mark_profile_checked(
    session: AsyncSession, site: int, login: str, etag: str | None, now: datetime
) -> None:
    """GitHub confirmed the stored profile (a 304)."""
    values: dict[str, object] = {"checked_at": now, "retry_at": None}
    if etag is not None:
        values["etag"] = etag
    await session.execute(update(user_profiles).where(*_of(site, login)).values(**values))


async def set_profile_retry_at(
    session: AsyncSession, site: int, login: str, until: datetime
) -> None:
    await session.execute(update(user_profiles).where(*_of(site, login)).values(retry_at=until))


async def delete_profile(session: AsyncSession, site: int, login: str) -> None:
    await session.execute(delete(user_profiles).where(*_of(site, login)))
