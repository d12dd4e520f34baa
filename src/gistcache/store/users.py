"""The list cache of one GitHub site: its users, the pages GitHub split each list into
(with their ETags), and the gists and files listed on them. Read and written in the
caller's session and transaction."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.gists import Gist, GistFile
from gistcache.domain.results import PagesFingerprint
from gistcache.store.models import gist_files, gists, list_pages, users
from gistcache.store.sql import in_chunks, upsert


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


_USER_STATE = [users.c[f.name] for f in fields(UserState)]


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


def fingerprint(pages: Iterable[StoredPage] | Iterable[PageOfGists]) -> PagesFingerprint:
    """Which version of a user's pages these are: GitHub's ETag of each, by its URL."""
    return tuple((page.url, page.etag) for page in pages)


@dataclass(frozen=True, slots=True)
class StoredList:
    """A user's stored list: its pages, and its gists, each with the page it is on."""

    pages: list[StoredPage]
    gists: list[tuple[int, Gist]] | None  # None: left unread (the caller has them)
    # the pages' version when the gists are known to be that version's; else None
    fingerprint: PagesFingerprint | None

    def listed(self) -> list[Gist]:
        return [gist for _, gist in self.gists or ()]


# what a user's row keeps when a refresh writes it: when a search last read its contents
# (the content budget evicts the least recently searched first), which is no refresh's
_KEPT_BY_REFRESHES = ("searched_at",)


class Users:
    """The site's cached users and their lists, in one session."""

    def __init__(self, session: AsyncSession, site: int) -> None:
        self._session = session
        self._site = site

    def _user(self, login: str) -> tuple[Any, ...]:
        return (users.c.site_id == self._site, users.c.login == login)

    async def get(self, login: str) -> UserState | None:
        row = (
            await self._session.execute(select(*_USER_STATE).where(*self._user(login)))
        ).one_or_none()
        return None if row is None else UserState(**row._mapping)

    async def login_of(self, github_id: int) -> str | None:
        """The (lower-cased) login of the user GitHub numbers ``github_id``, if one of
        their lists was cached (the most recently fetched, should two logins claim it)."""
        row = (
            await self._session.execute(
                select(users.c.login)
                .where(
                    users.c.site_id == self._site,
                    users.c.github_id == github_id,
                    users.c.not_found.is_(False),
                )
                .order_by(users.c.fetched_at.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else str(row.login)

    async def owner_of(self, gist_id: str) -> str | None:
        """The login whose cached list holds the public gist ``gist_id``, if any."""
        row = (
            await self._session.execute(
                select(gists.c.owner_login).where(
                    gists.c.site_id == self._site, gists.c.id == gist_id, gists.c.public.is_(True)
                )
            )
        ).first()
        return None if row is None else str(row.owner_login)

    async def read_list(self, login: str, *, unless: PagesFingerprint | None = None) -> StoredList:
        """The user's stored pages and gists; the gists are left unread when the pages
        are still version ``unless`` (the caller holds that version's gists).

        The gists are known to be the pages' version when the pages read before and
        after them agree: each statement sees its own snapshot, so a refresh committing
        in between would pair these gists with other pages. For the two reads to agree
        around a change, two refreshes would have to commit between them, and refreshes
        take turns under the lease, each a GitHub round trip long."""
        pages = await self.pages(login)
        version = fingerprint(pages)
        if unless is not None and version == unless:
            return StoredList(pages, None, version)
        listed = await self.gists(login)
        same = fingerprint(await self.pages(login)) == version
        return StoredList(pages, listed, version if same else None)

    async def pages(self, login: str) -> list[StoredPage]:
        result = await self._session.execute(
            select(list_pages.c.page_no, list_pages.c.url, list_pages.c.etag)
            .where(list_pages.c.site_id == self._site, list_pages.c.login == login)
            .order_by(list_pages.c.page_no)
        )
        return [StoredPage(**row._mapping) for row in result]

    async def gists(self, login: str) -> list[tuple[int, Gist]]:
        """The user's cached public gists in GitHub's order, each with the page it was
        listed on (a secret gist stored by a version that kept them is never read back).

        One statement, so a refresh committing meanwhile cannot mix two versions.
        """
        rows = await self._session.execute(
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
            .where(
                gists.c.site_id == self._site,
                gists.c.owner_login == login,
                gists.c.public.is_(True),
            )
            .order_by(gists.c.position, gist_files.c.position)
        )
        listed: list[tuple[int, Gist]] = []
        for _, group in itertools.groupby(rows, key=lambda row: row.id):
            first, *rest = group
            files = tuple(
                GistFile(row.filename, row.language, row.type, row.size, row.raw_url)
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

    async def mark_checked(self, login: str, now: datetime) -> None:
        """GitHub confirmed the cached list is current."""
        await self._session.execute(
            update(users).where(*self._user(login)).values(checked_at=now, retry_at=None)
        )
        # secret gists an earlier version stored go too (a refresh that saves drops them)
        await self._session.execute(
            delete(gists).where(
                gists.c.site_id == self._site,
                gists.c.owner_login == login,
                gists.c.public.is_not(True),
            )
        )

    async def set_retry_at(self, login: str, until: datetime) -> None:
        """GitHub failed for the user: every server serves the cache, without asking,
        until then."""
        await self._session.execute(update(users).where(*self._user(login)).values(retry_at=until))

    async def save_not_found(self, login: str, credential: str, now: datetime) -> None:
        """Remember that GitHub has no such user; anything cached for the login goes."""
        row = {
            "site_id": self._site,
            "login": login,
            "not_found": True,
            "credential": credential,
            "fetched_at": None,
            "checked_at": now,
            "retry_at": None,
        }
        await upsert(self._session, users, [row], ["site_id", "login"], keep=_KEPT_BY_REFRESHES)
        await self._session.execute(
            delete(gists).where(gists.c.site_id == self._site, gists.c.owner_login == login)
        )
        await self._session.execute(
            delete(list_pages).where(
                list_pages.c.site_id == self._site, list_pages.c.login == login
            )
        )

    async def save_list(
        self, login: str, credential: str, now: datetime, pages: Sequence[PageOfGists]
    ) -> bool:
        """Make the cache hold exactly ``pages`` for the user; return whether any gist
        changed.

        A gist id appears at most once across ``pages``. Each gist's item as GitHub sent
        it is kept (a row holding none, cached before items were kept, gets it), and the
        user's numeric id when an item names it (an empty list leaves the one known).
        A change of the item alone (an avatar URL, say) is written but is no change of
        the list.

        Only gists whose listed metadata changed are written; files are rewritten only
        for gists whose ``updated_at`` moved, and even then a file whose raw URL (which
        names the content's revision) is unchanged keeps its row, and so its contents.
        """
        saving = _ListSave(self._session, self._site, login, pages)
        await saving.user(credential, now)
        changed = await saving.gists()
        await saving.pages()
        return changed


class _ListSave:
    """One save of a user's list, in its parts."""

    def __init__(
        self, session: AsyncSession, site: int, login: str, pages: Sequence[PageOfGists]
    ) -> None:
        self._session = session
        self._site = site
        self._login = login
        self._pages = pages
        self._listed: dict[str, Gist] = {gist.id: gist for page in pages for gist in page.gists}

    async def user(self, credential: str, now: datetime) -> None:
        """The user's row: listed now, with their numeric id when an item names it."""
        github_id = next(
            (gist.owner_id for gist in self._listed.values() if gist.owner_id is not None),
            None,
        )
        if github_id is None:  # the upsert writes every column: keep the id known before
            known = await Users(self._session, self._site).get(self._login)
            github_id = None if known is None else known.github_id
        row = {
            "site_id": self._site,
            "login": self._login,
            "not_found": False,
            "credential": credential,
            "fetched_at": now,
            "checked_at": now,
            "retry_at": None,
            "github_id": github_id,
        }
        await upsert(self._session, users, [row], ["site_id", "login"], keep=_KEPT_BY_REFRESHES)

    async def gists(self) -> bool:
        """Write the gists that changed, drop those gone, rewrite the files of those
        updated; whether any gist changed."""
        existing = {
            row.id: row
            for row in await self._session.execute(
                select(gists).where(
                    gists.c.site_id == self._site, gists.c.owner_login == self._login
                )
            )
        }
        rows = self._gist_rows()
        changed_rows, changed, updated = _differences(existing, rows)
        # a gist listed for this user that the cache still files under another login
        others = await self._owned_elsewhere([i for i in rows if i not in existing])
        updated.extend(i for i in others if i not in updated)
        gone = [gist_id for gist_id in existing if gist_id not in rows]
        for chunk in in_chunks(gone):
            await self._session.execute(
                delete(gists).where(gists.c.site_id == self._site, gists.c.id.in_(chunk))
            )
        await upsert(self._session, gists, changed_rows, ["site_id", "id"])
        await self._files(updated)
        return bool(changed or gone)

    def _gist_rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        position = itertools.count()
        for page_no, page in enumerate(self._pages, start=1):
            for gist in page.gists:
                rows[gist.id] = {
                    "site_id": self._site,
                    "id": gist.id,
                    "owner_login": self._login,
                    "page_no": page_no,
                    "position": next(position),
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
        return rows

    async def _owned_elsewhere(self, ids: list[str]) -> list[str]:
        found: list[str] = []
        for chunk in in_chunks(ids):
            result = await self._session.execute(
                select(gists.c.id).where(
                    gists.c.site_id == self._site,
                    gists.c.id.in_(chunk),
                    gists.c.owner_login != self._login,
                )
            )
            found.extend(result.scalars())
        return found

    async def _files(self, gist_ids: Sequence[str]) -> None:
        """Rewrite the file rows of ``gist_ids``: a file whose raw URL is unchanged keeps
        its row (and its contents); the others go, and the listed ones are written."""
        rows = [
            {
                "site_id": self._site,
                "gist_id": gist_id,
                "filename": f.filename,
                "position": index,
                "language": f.language,
                "type": f.type,
                "size": f.size,
                "raw_url": f.raw_url,
            }
            for gist_id in gist_ids
            for index, f in enumerate(_unique_files(self._listed[gist_id].files))
        ]
        listed = {(row["gist_id"], row["filename"]): row["raw_url"] for row in rows}
        changed = []
        for chunk in in_chunks(gist_ids):
            stored = await self._session.execute(
                select(gist_files.c.gist_id, gist_files.c.filename, gist_files.c.raw_url).where(
                    gist_files.c.site_id == self._site, gist_files.c.gist_id.in_(chunk)
                )
            )
            for row in stored:
                raw_url = listed.get((row.gist_id, row.filename))
                if raw_url is None or raw_url != row.raw_url:
                    changed.append((row.gist_id, row.filename))
        for keys in in_chunks(changed):
            await self._session.execute(
                delete(gist_files).where(
                    gist_files.c.site_id == self._site,
                    tuple_(gist_files.c.gist_id, gist_files.c.filename).in_(keys),
                )
            )
        await upsert(self._session, gist_files, rows, ["site_id", "gist_id", "filename"])

    async def pages(self) -> None:
        """The list's pages with their ETags; pages past the last go."""
        await self._session.execute(
            delete(list_pages).where(
                list_pages.c.site_id == self._site,
                list_pages.c.login == self._login,
                list_pages.c.page_no > len(self._pages),
            )
        )
        rows = [
            {
                "site_id": self._site,
                "login": self._login,
                "page_no": page_no,
                "url": page.url,
                "etag": page.etag,
            }
            for page_no, page in enumerate(self._pages, start=1)
        ]
        await upsert(self._session, list_pages, rows, ["site_id", "login", "page_no"])


def _differences(
    existing: dict[str, Any], rows: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool, list[str]]:
    """The gist rows to write, whether any listed gist changed, and the gists whose
    files to rewrite (new ones, and those whose ``updated_at`` moved)."""
    to_write = []
    changed = False
    updated = []
    for gist_id, row in rows.items():
        old = existing.get(gist_id)
        if old is None or any(
            getattr(old, key) != value for key, value in row.items() if key != "raw"
        ):
            to_write.append(row)
            changed = True
        elif row["raw"] is not None and old.raw != row["raw"]:
            to_write.append(row)  # the same gist, GitHub's item of it new or newly kept
        if old is None or old.updated_at != row["updated_at"]:
            updated.append(gist_id)
    return to_write, changed, updated


def _unique_files(files: Iterable[GistFile]) -> Iterator[GistFile]:
    seen: set[str] = set()
    for f in files:
        if f.filename not in seen:
            seen.add(f.filename)
            yield f
