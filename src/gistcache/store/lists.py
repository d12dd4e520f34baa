"""Repository functions over the cache tables. Each takes the caller's session and
runs inside the caller's transaction."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.gists import Gist, GistFile
from gistcache.store.models import (
    gist_files,
    gists,
    github_blocks,
    list_pages,
    refresh_leases,
    users,
)
from gistcache.store.sql import dialect_insert, in_chunks, is_postgres, upsert


@dataclass(frozen=True, slots=True)
class UserState:
    login: str
    not_found: bool
    credential: str
    fetched_at: datetime | None
    checked_at: datetime
    retry_at: datetime | None = None  # GitHub failed for the user; not to be asked before
    github_id: int | None = None  # GitHub's numeric id of the user, once a list named it

    @property
    def has_list(self) -> bool:
        """GitHub knows the user and the cache holds a list of theirs."""
        return not self.not_found and self.fetched_at is not None


@dataclass(frozen=True, slots=True)
class StoredPage:
    page_no: int
    url: str
    etag: str | None


@dataclass(frozen=True, slots=True)
class PageOfGists:
    """The gists GitHub served on one page of a user's list."""

    url: str
    etag: str | None
    gists: Sequence[Gist]


async def claim_refresh(
    session: AsyncSession, site: int, login: str, owner: str, now: datetime, until: datetime
) -> bool:
    """Take the user's refresh lease unless another owner holds an unexpired one."""
    stmt = dialect_insert(session)(refresh_leases).values(
        site_id=site, login=login, owner=owner, until=until
    )
    claim = stmt.on_conflict_do_update(
        index_elements=["site_id", "login"],
        set_={"owner": owner, "until": until},
        where=refresh_leases.c.until < now,
    ).returning(refresh_leases.c.owner)
    row = (await session.execute(claim)).first()
    return row is not None and row.owner == owner


async def renew_refresh(
    session: AsyncSession, site: int, login: str, owner: str, until: datetime
) -> bool:
    """Extend the lease ``owner`` holds; False when it holds it no more."""
    result = await session.execute(
        update(refresh_leases)
        .where(
            refresh_leases.c.site_id == site,
            refresh_leases.c.login == login,
            refresh_leases.c.owner == owner,
        )
        .values(until=until)
    )
    return bool(getattr(result, "rowcount", 0))


async def release_refresh(session: AsyncSession, site: int, login: str, owner: str) -> None:
    await session.execute(
        delete(refresh_leases).where(
            refresh_leases.c.site_id == site,
            refresh_leases.c.login == login,
            refresh_leases.c.owner == owner,
        )
    )


# what a user's row keeps when a refresh writes it: when a search last read its contents
# (the content budget evicts the least recently searched first), which is no refresh's
_KEPT_BY_REFRESHES = ("searched_at",)


def _user(site: int, login: str) -> tuple[Any, ...]:
    return (users.c.site_id == site, users.c.login == login)


async def get_user(session: AsyncSession, site: int, login: str) -> UserState | None:
    row = (await session.execute(select(users).where(*_user(site, login)))).one_or_none()
    if row is None:
        return None
    return UserState(
        login=row.login,
        not_found=row.not_found,
        credential=row.credential,
        fetched_at=row.fetched_at,
        checked_at=row.checked_at,
        retry_at=row.retry_at,
        github_id=row.github_id,
    )


async def login_of(session: AsyncSession, site: int, github_id: int) -> str | None:
    """The (lower-cased) login of the user GitHub numbers ``github_id``, if one of their
    lists was cached (the most recently fetched, should two logins claim the id)."""
    row = (
        await session.execute(
            select(users.c.login)
            .where(
                users.c.site_id == site,
                users.c.github_id == github_id,
                users.c.not_found.is_(False),
            )
            .order_by(users.c.fetched_at.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else str(row.login)


async def owner_of(session: AsyncSession, site: int, gist_id: str) -> str | None:
    """The login whose cached list holds the public gist ``gist_id``, if any."""
    row = (
        await session.execute(
            select(gists.c.owner_login).where(
                gists.c.site_id == site, gists.c.id == gist_id, gists.c.public.is_(True)
            )
        )
    ).first()
    return None if row is None else str(row.owner_login)


async def get_pages(session: AsyncSession, site: int, login: str) -> list[StoredPage]:
    result = await session.execute(
        select(list_pages.c.page_no, list_pages.c.url, list_pages.c.etag)
        .where(list_pages.c.site_id == site, list_pages.c.login == login)
        .order_by(list_pages.c.page_no)
    )
    return [StoredPage(page_no=r.page_no, url=r.url, etag=r.etag) for r in result]


async def load_gists(session: AsyncSession, site: int, login: str) -> list[tuple[int, Gist]]:
    """The user's cached public gists in GitHub's order, each with the page it was
    listed on (a secret gist stored by a version that kept them is never read back).

    One statement, so a refresh committing meanwhile cannot mix two versions.
    """
    rows = await session.execute(
        select(
            gists,
            gist_files.c.filename,
            gist_files.c.language,
            gist_files.c.type,
            gist_files.c.size,
            gist_files.c.raw_url,
        )
        .outerjoin(
            gist_files,
            (gist_files.c.site_id == gists.c.site_id) & (gist_files.c.gist_id == gists.c.id),
        )
        .where(gists.c.site_id == site, gists.c.owner_login == login, gists.c.public.is_(True))
        .order_by(gists.c.position, gist_files.c.position)
    )
    listed: list[tuple[int, Gist]] = []
    for _, group in itertools.groupby(rows, key=lambda row: row.id):
        first, *rest = group
        files = tuple(
            GistFile(
                filename=row.filename,
                language=row.language,
                type=row.type,
                size=row.size,
                raw_url=row.raw_url,
            )
            for row in (first, *rest)
            if row.filename is not None
        )
        gist = Gist(
            id=first.id,
            html_url=first.html_url,
            description=first.description,
            public=first.public,
            created_at=first.created_at,
            updated_at=first.updated_at,
            comments=first.comments,
            owner=first.owner,
            files=files,
            truncated=first.truncated,
            raw=first.raw,
        )
        listed.append((first.page_no, gist))
    return listed


async def mark_checked(session: AsyncSession, site: int, login: str, now: datetime) -> None:
    """GitHub confirmed the cached list is current."""
    await session.execute(
        update(users).where(*_user(site, login)).values(checked_at=now, retry_at=None)
    )
    # secret gists an earlier version stored go too (a refresh that saves drops them anyway)
    await session.execute(
        delete(gists).where(
            gists.c.site_id == site, gists.c.owner_login == login, gists.c.public.is_not(True)
        )
    )


async def set_retry_at(session: AsyncSession, site: int, login: str, until: datetime) -> None:
    """GitHub failed for the user: every server serves the cache, without asking, until then."""
    await session.execute(update(users).where(*_user(site, login)).values(retry_at=until))


@dataclass(frozen=True, slots=True)
class StoredBlock:
    until: datetime  # no API request before it
    strikes: int  # hint-less secondary limits in a row
    spent: bool  # the primary limit's block (GET /rate_limit shows its renewal)


async def get_github_block(session: AsyncSession, site: int, credential: str) -> StoredBlock | None:
    """When GitHub's rate limit lets the credential ask again, and what the block is."""
    row = (
        await session.execute(
            select(
                github_blocks.c.blocked_until,
                github_blocks.c.hintless_strikes,
                github_blocks.c.spent,
            ).where(github_blocks.c.site_id == site, github_blocks.c.credential == credential)
        )
    ).one_or_none()
    if row is None:
        return None
    return StoredBlock(row.blocked_until, row.hintless_strikes, bool(row.spent))


async def save_github_block(
    session: AsyncSession,
    site: int,
    credential: str,
    until: datetime,
    strikes: int,
    *,
    spent: bool = False,
) -> None:
    """Record what this server learnt; a block another server stored meanwhile is never
    shortened by it (and keeps its kind unless this one lasts as long or longer)."""
    stmt = dialect_insert(session)(github_blocks).values(
        site_id=site,
        credential=credential,
        blocked_until=until,
        hintless_strikes=strikes,
        spent=spent,
    )
    later = func.greatest if is_postgres(session) else func.max  # SQLite's max of two
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["site_id", "credential"],
            set_={
                "blocked_until": later(github_blocks.c.blocked_until, stmt.excluded.blocked_until),
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


async def claim_block_probe(
    session: AsyncSession, site: int, credential: str, now: datetime, every: timedelta
) -> bool:
    """Claim the check with GitHub of the credential's primary block: True when it is
    one and no server checked in the last ``every`` (then this one does)."""
    result = await session.execute(
        update(github_blocks)
        .where(
            github_blocks.c.site_id == site,
            github_blocks.c.credential == credential,
            github_blocks.c.spent.is_(True),
            or_(github_blocks.c.probed_at.is_(None), github_blocks.c.probed_at <= now - every),
        )
        .values(probed_at=now)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def lift_github_block(
    session: AsyncSession, site: int, credential: str, until: datetime
) -> None:
    """End the credential's primary block, or the block that lasted until ``until``
    (GitHub renewed the budget); a longer secondary one another server learnt since
    stays."""
    await session.execute(
        delete(github_blocks).where(
            github_blocks.c.site_id == site,
            github_blocks.c.credential == credential,
            or_(
                github_blocks.c.spent.is_(True),
                github_blocks.c.blocked_until <= until + timedelta(seconds=1),
            ),
        )
    )


async def save_not_found(
    session: AsyncSession, site: int, login: str, credential: str, now: datetime
) -> None:
    """Remember that GitHub has no such user; anything cached for the login goes."""
    await upsert(
        session,
        users,
        [
            {
                "site_id": site,
                "login": login,
                "not_found": True,
                "credential": credential,
                "fetched_at": None,
                "checked_at": now,
                "retry_at": None,
            }
        ],
        ["site_id", "login"],
        keep=_KEPT_BY_REFRESHES,
    )
    await session.execute(
        delete(gists).where(gists.c.site_id == site, gists.c.owner_login == login)
    )
    await session.execute(
        delete(list_pages).where(list_pages.c.site_id == site, list_pages.c.login == login)
    )


async def save_list(
    session: AsyncSession,
    site: int,
    login: str,
    credential: str,
    now: datetime,
    pages: Sequence[PageOfGists],
) -> bool:
    """Make the cache hold exactly ``pages`` for the user; return whether any gist changed.

    A gist id appears at most once across ``pages``. Each gist's item as GitHub sent it
    is kept (a row holding none, cached before items were kept, gets it), and the
    user's numeric id when an item names it (an empty list leaves the one known).
    A change of the item alone (an avatar URL, say) is written but is no change of
    the list.

    Only gists whose listed metadata changed are written; files are rewritten only
    for gists whose ``updated_at`` moved, and even then a file whose raw URL (which
    names the content's revision) is unchanged keeps its row, and so its contents.
    """
    user_row: dict[str, Any] = {
        "site_id": site,
        "login": login,
        "not_found": False,
        "credential": credential,
        "fetched_at": now,
        "checked_at": now,
        "retry_at": None,
    }
    github_id = next(
        (gist.owner_id for page in pages for gist in page.gists if gist.owner_id is not None),
        None,
    )
    if github_id is None:  # the upsert writes every column: keep the id known before
        known = await get_user(session, site, login)
        github_id = None if known is None else known.github_id
    user_row["github_id"] = github_id
    await upsert(session, users, [user_row], ["site_id", "login"], keep=_KEPT_BY_REFRESHES)
    existing = {
        row.id: row
        for row in await session.execute(
            select(gists).where(gists.c.site_id == site, gists.c.owner_login == login)
        )
    }
    listed: dict[str, dict[str, Any]] = {}
    gist_by_id: dict[str, Gist] = {}
    position = 0
    for page_no, page in enumerate(pages, start=1):
        for gist in page.gists:
            listed[gist.id] = _gist_row(site, login, page_no, position, gist)
            gist_by_id[gist.id] = gist
            position += 1

    changed_rows = []
    changed = False
    files_to_replace = []
    for gist_id, row in listed.items():
        old = existing.get(gist_id)
        if old is None or any(
            getattr(old, key) != value for key, value in row.items() if key != "raw"
        ):
            changed_rows.append(row)
            changed = True
        elif row["raw"] is not None and old.raw != row["raw"]:
            changed_rows.append(row)  # the same gist, GitHub's item of it new or newly kept
        if old is None or old.updated_at != row["updated_at"]:
            files_to_replace.append(gist_id)
    # a gist listed for this user that the cache still files under another login
    others = await _ids_owned_elsewhere(
        session, site, login, [i for i in listed if i not in existing]
    )
    files_to_replace.extend(i for i in others if i not in files_to_replace)

    gone = [gist_id for gist_id in existing if gist_id not in listed]
    for chunk in in_chunks(gone):
        await session.execute(delete(gists).where(gists.c.site_id == site, gists.c.id.in_(chunk)))
    await upsert(session, gists, changed_rows, ["site_id", "id"])
    file_rows = [
        {
            "site_id": site,
            "gist_id": gist_id,
            "filename": f.filename,
            "position": index,
            "language": f.language,
            "type": f.type,
            "size": f.size,
            "raw_url": f.raw_url,
        }
        for gist_id in files_to_replace
        for index, f in enumerate(_unique_files(gist_by_id[gist_id].files))
    ]
    await _drop_changed_files(session, site, files_to_replace, file_rows)
    await upsert(session, gist_files, file_rows, ["site_id", "gist_id", "filename"])

    await session.execute(
        delete(list_pages).where(
            list_pages.c.site_id == site,
            list_pages.c.login == login,
            list_pages.c.page_no > len(pages),
        )
    )
    await upsert(
        session,
        list_pages,
        [
            {
                "site_id": site,
                "login": login,
                "page_no": page_no,
                "url": page.url,
                "etag": page.etag,
            }
            for page_no, page in enumerate(pages, start=1)
        ],
        ["site_id", "login", "page_no"],
    )
    return bool(changed or gone)


async def _drop_changed_files(
    session: AsyncSession, site: int, gist_ids: Sequence[str], file_rows: Sequence[dict[str, Any]]
) -> None:
    """Delete the stored files of ``gist_ids`` (with their contents) that ``file_rows`` no
    longer list under the same raw URL; the others stay, contents and all."""
    listed = {(row["gist_id"], row["filename"]): row["raw_url"] for row in file_rows}
    changed = []
    for chunk in in_chunks(gist_ids):
        stored = await session.execute(
            select(gist_files.c.gist_id, gist_files.c.filename, gist_files.c.raw_url).where(
                gist_files.c.site_id == site, gist_files.c.gist_id.in_(chunk)
            )
        )
        for row in stored:
            raw_url = listed.get((row.gist_id, row.filename))
            if raw_url is None or raw_url != row.raw_url:
                changed.append((row.gist_id, row.filename))
    for rows in in_chunks(changed):
        await session.execute(
            delete(gist_files).where(
                gist_files.c.site_id == site,
                tuple_(gist_files.c.gist_id, gist_files.c.filename).in_(rows),
            )
        )


async def _ids_owned_elsewhere(
    session: AsyncSession, site: int, login: str, ids: list[str]
) -> list[str]:
    found: list[str] = []
    for chunk in in_chunks(ids):
        result = await session.execute(
            select(gists.c.id).where(
                gists.c.site_id == site, gists.c.id.in_(chunk), gists.c.owner_login != login
            )
        )
        found.extend(result.scalars())
    return found


def _gist_row(site: int, login: str, page_no: int, position: int, gist: Gist) -> dict[str, Any]:
    return {
        "site_id": site,
        "id": gist.id,
        "owner_login": login,
        "page_no": page_no,
        "position": position,
        "owner": gist.owner,
        "html_url": gist.html_url,
        "description": gist.description,
        "public": gist.public,
        "created_at": gist.created_at,
        "updated_at": gist.updated_at,
        "comments": gist.comments,
        "truncated": gist.truncated,
        "raw": gist.raw,
    }


def _unique_files(files: Iterable[GistFile]) -> Iterator[GistFile]:
    seen: set[str] = set()
    for f in files:
        if f.filename not in seen:
            seen.add(f.filename)
            yield f
