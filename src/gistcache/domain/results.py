"""What the use cases answer: how a list was obtained, the list itself, a search's
typed result (matches, and what was skipped and why), and a search job's states."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gistcache.domain.gists import Gist, GistFile, digest, render_gists
from gistcache.domain.requests import SearchRequest


class CacheStatus(StrEnum):
    """How an answer was obtained; sent to clients as ``X-Cache``."""

    HIT = "HIT"  # fresh in the cache, GitHub not asked
    MISS = "MISS"  # nothing cached, fetched from GitHub
    REVALIDATED = "REVALIDATED"  # GitHub confirmed the cached list (every page a 304)
    UPDATED = "UPDATED"  # GitHub had changes, the cache took them
    REFRESHED = "REFRESHED"  # GitHub sent the list again (not a 304), with no change
    STALE = "STALE"  # GitHub failed, the cached list was served anyway


class _Rendering:
    """The list's JSON, made once and shared by the copies of a GistList, and what
    callers derive once from this version of the list (``GistList.memo``)."""

    __slots__ = ("body", "digest", "memo")

    def __init__(self) -> None:
        self.body: bytes | None = None
        self.digest = ""
        self.memo: dict[str, object] = {}


@dataclass(frozen=True, slots=True)
class GistList:
    """A user's public gists, in GitHub's order, and how fresh they are."""

    login: str
    gists: list[Gist]
    cache: CacheStatus
    checked_at: datetime
    fresh_for: float  # seconds until the list should be revalidated; 0 when stale
    github_id: int | None = None  # the user's numeric id on GitHub, when known
    _rendering: _Rendering = field(default_factory=_Rendering, compare=False, repr=False)

    def age(self, now: datetime) -> float:
        return max(0.0, (now - self.checked_at).total_seconds())

    def rendered(self) -> tuple[bytes, str]:
        """The whole list as the API's JSON array, and its digest."""
        rendering = self._rendering
        if rendering.body is None:
            rendering.body = render_gists(self.gists)
            rendering.digest = digest(rendering.body)
        return rendering.body, rendering.digest

    def rendered_as(self, other: GistList) -> GistList:
        """This list, sharing ``other``'s JSON and memo: for a version of the list whose
        gists are ``other``'s (a revalidation GitHub answered with 304s), so that it is
        not rendered again."""
        return dataclasses.replace(self, _rendering=other._rendering)

    @property
    def memo(self) -> dict[str, object]:
        """A place for what this version of the list decides once (the web layer keeps
        the headers of its fresh answer here); shared by every copy of the version."""
        return self._rendering.memo

    def weight(self) -> int:
        # the JSON, and the parsed gists: measured at about twice the JSON again; and
        # GitHub's own items, kept as they came
        raw = sum(len(gist.raw) for gist in self.gists if gist.raw is not None)
        return 3 * len(self.rendered()[0]) + raw


class SkipReason(StrEnum):
    """Why a file (or part of a gist) was not searched."""

    BINARY = "binary"  # a NUL byte near its start
    TOO_LARGE = "too_large"  # over the configured maximum
    FORBIDDEN_HOST = "forbidden_host"  # its raw URL is off the allowed origins
    UNAVAILABLE = "unavailable"  # the download failed (or is backing off)
    FILE_LIST_TRUNCATED = "file_list_truncated"  # GitHub lists at most 300 files
    CHANGED = "changed"  # the file left the list while it was being downloaded


@dataclass(frozen=True, slots=True)
class ContextLine:
    """A line shown around a listed match (``context`` lines before and after, as grep -C)."""

    line_number: int
    text: str


@dataclass(frozen=True, slots=True)
class LineMatch:
    line_number: int
    column: int  # 1-based position in the line, in characters, where ``text`` starts
    text: str
    # every match on the line as [start, end) in code points of ``text``, left to right
    ranges: tuple[tuple[int, int], ...] = ()
    url: str = ""  # the line on GitHub: the gist's html_url + line_anchor(...)
    before: tuple[ContextLine, ...] = ()  # context not already shown by an earlier line
    after: tuple[ContextLine, ...] = ()


@dataclass(frozen=True, slots=True)
class FileMatch:
    file: GistFile
    match_count: int  # every matching line, even those not listed
    lines: tuple[LineMatch, ...]


@dataclass(frozen=True, slots=True)
class GistMatch:
    gist: Gist
    files: tuple[FileMatch, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    gist_id: str
    filename: str | None  # None when the gist's file list itself was cut
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of a search's matches, in the list's order; ``total`` counts them all."""

    request: SearchRequest
    total: int
    matches: tuple[GistMatch, ...]
    skipped: tuple[Skipped, ...]


class JobStatus(StrEnum):
    """A search job's state, as stored and as clients see it."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


# --- a search as it goes (SearchService.stream) -----------------------------------


@dataclass(frozen=True, slots=True)
class SearchStarted:
    """The list is known: what the search covers. Always the first event."""

    listing: GistList
    files_total: int  # files to search (those the filename glob lets through)


@dataclass(frozen=True, slots=True)
class SearchProgress:
    files_done: int  # files whose contents are in (cached before, or fetched since)
    files_total: int
    bytes: int  # their size in bytes


@dataclass(frozen=True, slots=True)
class GistFound:
    """A matching gist, once all its (searched) files are in; ``index`` is its position
    in the user's list (0-based), as events come in the order gists are ready."""

    index: int
    match: GistMatch


@dataclass(frozen=True, slots=True)
class FileSkipped:
    index: int  # the gist's position in the user's list
    skipped: Skipped


@dataclass(frozen=True, slots=True)
class GistSearched:
    """Gist ``index`` is done (after its ``GistFound`` and ``FileSkipped``, if any): a
    caller that tells gists in list order knows it need not wait for this one."""

    index: int


@dataclass(frozen=True, slots=True)
class SearchDone:
    total: int  # matching gists
    listing: GistList


SearchEvent = SearchStarted | SearchProgress | GistFound | FileSkipped | GistSearched | SearchDone
