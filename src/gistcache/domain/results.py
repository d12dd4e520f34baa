"""What the use cases answer: how a list was obtained, the list itself, a search's
typed result (matches, and what was skipped and why), and a search job's states."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gistcache.domain.gists import Gist, GistFile
from gistcache.domain.requests import SearchRequest


class CacheStatus(StrEnum):
    """How an answer was obtained; sent to clients as ``X-Cache``."""

    HIT = "HIT"  # fresh in the cache, GitHub not asked
    MISS = "MISS"  # nothing cached, fetched from GitHub
    REVALIDATED = "REVALIDATED"  # GitHub confirmed the cached list (every page a 304)
    UPDATED = "UPDATED"  # GitHub had changes, the cache took them
    REFRESHED = "REFRESHED"  # GitHub sent the list again (not a 304), with no change
    STALE = "STALE"  # GitHub failed, the cached list was served anyway


# which version of a user's stored pages a list was read from: GitHub's ETag of each
# page, by its URL
PagesFingerprint = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class GistList:
    """A user's public gists, in GitHub's order, and how fresh they are."""

    login: str
    gists: list[Gist]
    cache: CacheStatus
    checked_at: datetime
    fresh_for: float  # seconds until the list should be revalidated; 0 when stale
    github_id: int | None = None  # the user's numeric id on GitHub, when known
    # the stored pages these gists are known to be (read from the database, or confirmed
    # by GitHub's 304s), else None: a refresh of a list held in memory then reads no
    # stored gist unless GitHub sends a page again
    pages_fingerprint: PagesFingerprint | None = field(default=None, compare=False)

    def age(self, now: datetime) -> float:
        return max(0.0, (now - self.checked_at).total_seconds())


class SkipReason(StrEnum):
    """Why a file (or part of a gist) was not searched."""

    BINARY = "binary"  # a NUL byte near its start
    TOO_LARGE = "too_large"  # over the configured maximum
    FORBIDDEN_HOST = "forbidden_host"  # its raw URL is off the allowed origins
    UNAVAILABLE = "unavailable"  # the download failed (or is backing off)
    FILE_LIST_TRUNCATED = "file_list_truncated"  # GitHub lists at most 300 files
    CHANGED = "changed"  # the file left the list while it was being downloaded
    # not fetched: the search had downloaded what one search may (or the user's cached
    # contents had reached the share of the cache one user may hold); a later search
    # fetches more, as far as that share allows
    DOWNLOAD_BUDGET = "download_budget"


@dataclass(frozen=True, slots=True)
class ContextLine:
    """A line shown around a listed match (``context`` lines before and after, as grep -C)."""

    line_number: int
    text: str
    line_length: int | None = None  # the whole line's, when ``text`` is cut to its start


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
    # the whole line's length when ``text`` is a window of it (a long line), else None
    line_length: int | None = None


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
class AnswerCut:
    """Where an answer stopped at the answer size limit (``GISTCACHE_MAX_ANSWER_BYTES``),
    and how to ask for the rest."""

    limit: int  # the limit, in bytes of the answer's JSON (as ``match_weight`` counts them)
    listed: int  # matching gists listed before the cut (the last perhaps with fewer lines)
    lines_cut: bool  # the last listed gist alone was over the limit: some lines were left out
    # the page (and per_page) of a search that starts with the first gist not listed;
    # None when no matching gist follows, or when the answer is not in the list's order
    next_page: int | None = None
    next_per_page: int | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of a search's matches, in the list's order; ``total`` counts them all."""

    request: SearchRequest
    total: int
    matches: tuple[GistMatch, ...]
    skipped: tuple[Skipped, ...]
    cut: AnswerCut | None = None  # the page was cut short at the answer size limit
    # the sum of ``match_weight`` over ``matches``, when the search counted it already
    matches_weight: int | None = field(default=None, compare=False)


# about what the JSON of a match costs beyond its texts (keys, numbers, punctuation)
_GIST_OVERHEAD, _FILE_OVERHEAD, _LINE_OVERHEAD, _CONTEXT_OVERHEAD = 160, 120, 110, 40


# what JSON escapes in a string: `"`, `\\` and the control characters
_ESCAPED = re.compile(r'["\\\x00-\x1f]')
# those written as two bytes (\" \\ \b \t \n \f \r); every other one takes six (\u0001)
_SHORT_ESCAPES = frozenset('"\\\b\t\n\f\r')


def _text_bytes(text: str | None) -> int:
    """The bytes ``text`` takes as a JSON string's contents, as the answers write it
    (UTF-8, ensure_ascii off): each escape counted, so that text made of control
    characters (six bytes each) cannot pass the answer size limit unseen."""
    if not text:
        return 0
    size = len(text.encode("utf-8", "surrogatepass"))
    if _ESCAPED.search(text) is None:  # the common case: nothing to escape
        return size
    for c in _ESCAPED.findall(text):
        size += 1 if c in _SHORT_ESCAPES else 5
    return size


def line_weight(line: LineMatch) -> int:
    """About how many bytes a listed line takes in an answer's JSON."""
    weight = _LINE_OVERHEAD + _text_bytes(line.text) + len(line.url) + 12 * len(line.ranges)
    for context in (*line.before, *line.after):
        weight += _CONTEXT_OVERHEAD + _text_bytes(context.text)
    return weight


def _file_weight(match: FileMatch) -> int:
    f = match.file
    return (
        _FILE_OVERHEAD + _text_bytes(f.filename) + _text_bytes(f.raw_url) + _text_bytes(f.language)
    )


def match_weight(match: GistMatch) -> int:
    """About how many bytes a matching gist takes in an answer's JSON (a search's
    ``matches`` item, a stream's ``match`` event): what the answer size limit counts."""
    gist = match.gist
    weight = _GIST_OVERHEAD + _text_bytes(gist.description) + len(gist.html_url)
    for f in match.files:
        weight += _file_weight(f) + sum(line_weight(line) for line in f.lines)
    return weight


def trimmed(match: GistMatch, budget: int) -> GistMatch:
    """``match`` with its listed lines cut to fit about ``budget`` bytes: the lines are
    kept in order while they fit; every file stays, with its ``match_count``."""
    gist = match.gist
    left = budget - _GIST_OVERHEAD - _text_bytes(gist.description) - len(gist.html_url)
    left -= sum(_file_weight(f) for f in match.files)
    files = []
    for f in match.files:
        kept = []
        for line in f.lines:
            weight = line_weight(line)
            if weight > left:
                left = 0  # the lines after it are not listed either: the file's order holds
                break
            kept.append(line)
            left -= weight
        files.append(FileMatch(f.file, f.match_count, tuple(kept)))
    return GistMatch(gist, tuple(files))


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
    cut: AnswerCut | None = None  # the matches told stopped at the answer size limit


SearchEvent = SearchStarted | SearchProgress | GistFound | FileSkipped | GistSearched | SearchDone
