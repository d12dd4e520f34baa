"""An organisation's public members (``GET /orgs/{org}/public_members``), page by page
along ``rel="next"`` links, each page known from an earlier walk asked for again with
its ETag: a page GitHub answers 304 to keeps the members (and the next page) it had."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gistcache.github.errors import GitHubUnavailable
from gistcache.github.pages import GetPage


@dataclass(frozen=True, slots=True)
class MembersPage:
    """One page of the members as last seen: its URL, ETag, logins and the next page."""

    url: str
    etag: str | None
    logins: tuple[str, ...]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "etag": self.etag, "logins": self.logins, "next": self.next}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> MembersPage:
        return cls(stored["url"], stored["etag"], tuple(stored["logins"]), stored["next"])


async def walk_members(
    get: GetPage, first: str, known: Sequence[MembersPage], max_pages: int
) -> list[MembersPage]:
    """Every page of the members from ``first``, conditional on the ETags of ``known``."""
    before = {page.url: page for page in known}
    pages: list[MembersPage] = []
    url: str | None = first
    while url is not None and len(pages) < max_pages:
        earlier = before.get(url)
        answer = await get(url, None if earlier is None else earlier.etag)
        if answer.not_modified:
            if earlier is None:
                raise GitHubUnavailable("GitHub answered 304 to an unconditional request")
            page = MembersPage(url, answer.etag or earlier.etag, earlier.logins, earlier.next)
        else:
            following = None if answer.next is None else str(answer.next)
            page = MembersPage(url, answer.etag, _logins(answer.body), following)
        pages.append(page)
        url = page.next
    return pages


def _logins(body: Any) -> tuple[str, ...]:
    if not isinstance(body, list) or not all(
        isinstance(item, dict) and isinstance(item.get("login"), str) for item in body
    ):
        raise GitHubUnavailable("GitHub sent members that are not a list of users")
    return tuple(item["login"] for item in body)
