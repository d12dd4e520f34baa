"""The use cases' results as answers a model can read whole: typed (each tool's output
schema is generated from these models), bounded by a count and a byte budget, and saying
when they were cut and how to ask for the rest.

Everything here goes through the services (listing, search, gists), as the page and the
command line do; nothing reaches GitHub or the store directly. A request the rules refuse
raises the domain's failures (``InvalidInput``, ``PatternError``, ``UserNotFound`` ...), or
``Refusal`` for what only these answers refuse (a file a gist does not have); the server
turns either into a tool error in words (``server.py``)."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from gistcache.domain.clock import Clock
from gistcache.domain.gists import Gist, GistFile, format_timestamp
from gistcache.domain.requests import many_search_request, search_request, validate_username
from gistcache.domain.results import GistMatch, LineMatch, Skipped
from gistcache.services.gists import FileContent, GistReader
from gistcache.services.listing import ListingService
from gistcache.services.many import ManySearch
from gistcache.services.search import SearchService

# about what one answer may take, in bytes of its JSON: a model reads every byte of it
ANSWER_BYTES = 32 * 1024
# a slice of a file: at most this many lines, and at most ANSWER_BYTES of their text
SLICE_LINES = 500
# skipped files named in a search's answer (the others are counted)
SKIPPED_LISTED = 20
DEFAULT_PER_PAGE = 30
DEFAULT_MAX_RESULTS = 10
MAX_PER_PAGE = 100

GIST_FILE_URI = "gist://{gist_id}/{filename}"
USER_FILES_URI = "gists://{username}"


class Refusal(ValueError):
    """A request these answers cannot serve, in words for the model (never a bug)."""


def file_uri(gist_id: str, filename: str) -> str:
    """The resource URI of a gist's file (the file name percent-encoded, as RFC 6570's
    simple expansion writes it)."""
    return f"gist://{gist_id}/{quote(filename, safe='')}"


# --- list_gists --------------------------------------------------------------------


class FileEntry(BaseModel):
    filename: str
    language: str | None = Field(description="GitHub's name of the file's language")
    type: str | None = Field(description="the file's MIME type, as GitHub gives it")
    size: int | None = Field(description="bytes")
    uri: str = Field(description="the file as a resource: read it, or call get_gist_file")


class GistEntry(BaseModel):
    id: str
    description: str | None
    html_url: str
    created_at: str
    updated_at: str
    files: list[FileEntry]


class GistPage(BaseModel):
    username: str
    total_gists: int = Field(description="every public gist of the user")
    page: int
    per_page: int
    gists: list[GistEntry]
    next_page: int | None = Field(description="ask for this page (with next_per_page) next")
    next_per_page: int | None
    more: str | None = Field(description="how to ask for the rest, when there is more")
    cache: str = Field(
        description="HIT: from the cache, GitHub not asked; STALE: GitHub "
        "failed and the cached list was served; else GitHub was asked"
    )


def _file_entry(gist: Gist, f: GistFile) -> FileEntry:
    return FileEntry(
        filename=f.filename,
        language=f.language,
        type=f.type,
        size=f.size,
        uri=file_uri(gist.id, f.filename),
    )


def _gist_entry(gist: Gist) -> GistEntry:
    return GistEntry(
        id=gist.id,
        description=gist.description,
        html_url=gist.html_url,
        created_at=format_timestamp(gist.created_at),
        updated_at=format_timestamp(gist.updated_at),
        files=[_file_entry(gist, f) for f in gist.files],
    )


def _size(model: BaseModel) -> int:
    # as the SDK writes a tool's answer for the model: indented JSON
    return len(model.model_dump_json(indent=2).encode())


def next_page(following: int, per_page: int) -> tuple[int, int]:
    """The page (and per_page, at most ``per_page``) that starts exactly at item
    ``following`` (0-based): per_page divides its start."""
    size = max(n for n in range(1, per_page + 1) if following % n == 0)
    return following // size + 1, size


@dataclass(frozen=True, slots=True)
class _Cut:
    """Where a page stopped, and the words that say how to go on."""

    page: int | None
    per_page: int | None
    words: str | None


def _go_on(listed: int, start: int, total: int, per_page: int, what: str, budget: bool) -> _Cut:
    following = start + listed
    if following >= total:
        return _Cut(None, None, None)
    page, size = next_page(following, per_page) if budget else (start // per_page + 2, per_page)
    why = (
        f"this answer stopped at its size limit of about {ANSWER_BYTES // 1024} KiB"
        if budget
        else f"{total - following} more {what} follow"
    )
    return _Cut(page, size, f"{why}: call again with page={page} and per_page={size}")


# --- search_gists ------------------------------------------------------------------


class ContextOut(BaseModel):
    line_number: int
    text: str


class LineOut(BaseModel):
    line_number: int
    text: str = Field(description="the line, or a window of it around the match when long")
    line_length: int | None = Field(description="the whole line's length, when text is a window")
    url: str = Field(description="the line on GitHub")
    before: list[ContextOut]
    after: list[ContextOut]


class FileHitOut(BaseModel):
    filename: str
    language: str | None
    uri: str
    match_count: int = Field(description="matching lines in the file, listed or not")
    lines: list[LineOut] = Field(description="the first matching lines (20 at most)")


class GistHitOut(BaseModel):
    gist_id: str
    description: str | None
    html_url: str
    files: list[FileHitOut]


class SkippedOut(BaseModel):
    gist_id: str
    filename: str | None
    reason: str = Field(
        description="why it was not searched: binary, too_large, unavailable, "
        "download_budget (a later search fetches more) ..."
    )


class UserSearchOut(BaseModel):
    """One user's part of a search of several users (usernames or org)."""

    username: str
    status: str = Field(description="success, or the kind of problem this user met")
    problem: str | None = Field(description="what went wrong for this user, in words")
    total_gists: int = Field(description="this user's matching gists in all, listed or not")
    matches: list[GistHitOut]


class SearchOut(BaseModel):
    username: str | None = Field(description="the user searched; null for usernames or org")
    pattern: str
    total_gists: int = Field(description="matching gists in all, listed or not")
    page: int
    per_page: int
    matches: list[GistHitOut]
    skipped: list[SkippedOut] = Field(
        description=f"files not searched (the first {SKIPPED_LISTED})"
    )
    skipped_count: int
    next_page: int | None
    next_per_page: int | None
    more: str | None = Field(description="how to ask for the rest, when there is more")
    users: list[UserSearchOut] | None = Field(
        default=None,
        description="with usernames or org: each user's part in the order given (matches "
        "and skipped above are then empty)",
    )


def _line(line: LineMatch) -> LineOut:
    return LineOut(
        line_number=line.line_number,
        text=line.text,
        line_length=line.line_length,
        url=line.url,
        before=[ContextOut(line_number=c.line_number, text=c.text) for c in line.before],
        after=[ContextOut(line_number=c.line_number, text=c.text) for c in line.after],
    )


def _hit(match: GistMatch) -> GistHitOut:
    gist = match.gist
    return GistHitOut(
        gist_id=gist.id,
        description=gist.description,
        html_url=gist.html_url,
        files=[
            FileHitOut(
                filename=f.file.filename,
                language=f.file.language,
                uri=file_uri(gist.id, f.file.filename),
                match_count=f.match_count,
                lines=[_line(line) for line in f.lines],
            )
            for f in match.files
        ],
    )


def _trim(hit: GistHitOut, budget: int) -> GistHitOut:
    """A gist alone over the budget: its lines dropped from the last until it fits
    (every file stays, with its match_count)."""
    while _size(hit) > budget:
        with_lines = [f for f in hit.files if f.lines]
        if not with_lines:
            break
        with_lines[-1].lines.pop()
    return hit


def _skipped(skipped: Sequence[Skipped]) -> list[SkippedOut]:
    return [
        SkippedOut(gist_id=s.gist_id, filename=s.filename, reason=s.reason.value)
        for s in skipped[:SKIPPED_LISTED]
    ]


# --- get_gist_file -----------------------------------------------------------------


class FileSlice(BaseModel):
    gist_id: str
    filename: str
    language: str | None
    type: str | None = Field(description="the file's MIME type, as GitHub gives it")
    total_lines: int = Field(description="lines in the file (in its first MiB, when longer)")
    start_line: int
    end_line: int = Field(description="the last line given (start_line - 1 when none)")
    text: str = Field(description="lines start_line to end_line, newlines kept")
    line_cut: bool = Field(
        description="the one line given was longer than the size limit: only its start is given"
    )
    file_truncated: bool = Field(description="the file is over 1 MiB: only its first MiB is served")
    next_start_line: int | None
    more: str | None = Field(description="how to ask for the rest, when there is more")


def _slice(content: str, start: int, end: int | None) -> tuple[list[str], int, bool]:
    """Lines ``start``.. of ``content`` (1-based, ``end`` inclusive) within the slice's
    bounds; the total line count; whether one line alone was cut to the budget."""
    lines = content.splitlines(keepends=True)
    total = len(lines)
    if start > max(total, 1):
        raise Refusal(f"the file has {total} lines: start_line must be from 1 to {max(total, 1)}")
    last = min(total, end if end is not None else total, start + SLICE_LINES - 1)
    given: list[str] = []
    used = 0
    for line in lines[start - 1 : last]:
        size = len(line.encode())
        if used + size > ANSWER_BYTES:
            if not given:  # a first line alone over the budget: its start
                cut = line.encode()[:ANSWER_BYTES].decode("utf-8", "ignore")
                return [cut], total, True
            break
        given.append(line)
        used += size
    return given, total, False


# --- the answers -------------------------------------------------------------------


class Answers:
    """What each tool and resource answers, from the services."""

    def __init__(
        self,
        listing: ListingService,
        searches: SearchService,
        gists: GistReader,
        clock: Clock,
        many: ManySearch | None = None,
    ) -> None:
        self._many = many
        self._listing = listing
        self._searches = searches
        self._gists = gists
        self.clock = clock

    async def list_gists(self, username: str, page: int, per_page: int) -> GistPage:
        login = validate_username(username)
        listing = await self._listing.list_gists(login)
        start = (page - 1) * per_page
        gists: list[GistEntry] = []
        used = 0
        over = False
        for gist in listing.gists[start : start + per_page]:
            entry = _gist_entry(gist)
            size = _size(entry)
            if gists and used + size > ANSWER_BYTES:
                over = True
                break
            gists.append(entry)
            used += size
        total = len(listing.gists)
        go_on = _go_on(len(gists), start, total, per_page, "gists", over)
        return GistPage(
            username=listing.login,
            total_gists=total,
            page=page,
            per_page=per_page,
            gists=gists,
            next_page=go_on.page,
            next_per_page=go_on.per_page,
            more=go_on.words,
            cache=listing.cache.value,
        )

    async def search_gists(
        self,
        username: str,
        pattern: str,
        *,
        literal: bool,
        ignore_case: bool,
        filename: str | None,
        context: int,
        page: int,
        max_results: int,
    ) -> SearchOut:
        request = search_request(
            username,
            pattern,
            ignore_case=ignore_case,
            page=page,
            per_page=max_results,
            context=context,
            literal=literal,
            filename=filename,
        )
        answer = await self._searches.search(request, queue_if_busy=False)
        result = answer.result
        hits: list[GistHitOut] = []
        used = 0
        over = result.cut is not None  # the service's own limit, which is larger
        for match in result.matches:
            hit = _hit(match)
            size = _size(hit)
            if used + size > ANSWER_BYTES:
                over = True
                if hits:
                    break
                hit = _trim(hit, ANSWER_BYTES)  # a first gist alone over it: fewer lines
            hits.append(hit)
            used += size
        start = (page - 1) * max_results
        go_on = _go_on(len(hits), start, result.total, max_results, "matching gists", over)
        return SearchOut(
            username=answer.listing.login,
            pattern=pattern,
            total_gists=result.total,
            page=page,
            per_page=max_results,
            matches=hits,
            skipped=_skipped(result.skipped),
            skipped_count=len(result.skipped),
            next_page=go_on.page,
            next_per_page=go_on.per_page,
            more=go_on.words,
        )

    async def search_many(
        self,
        usernames: list[str] | None,
        org: str | None,
        pattern: str,
        *,
        literal: bool,
        ignore_case: bool,
        filename: str | None,
        context: int,
        page: int,
        max_results: int,
    ) -> SearchOut:
        """Several users' matches (``page`` and ``max_results`` apply to each user), in
        the order given, within one answer's size: the users past it are listed with
        their counts and no lines."""
        if self._many is None:  # pragma: no cover - both transports hand one
            raise Refusal("searching several users is not available on this server")
        request = many_search_request(
            usernames,
            org,
            pattern,
            ignore_case=ignore_case,
            page=page,
            per_page=max_results,
            context=context,
            literal=literal,
            filename=filename,
        )
        result = (await self._many.search(request)).result
        users: list[UserSearchOut] = []
        used = 0
        unlisted: list[str] = []
        for user in result.users:
            if user.result is None:
                failure = user.failure
                users.append(
                    UserSearchOut(
                        username=user.login,
                        status=failure.kind.value if failure is not None else "failed",
                        problem=failure.detail if failure is not None else None,
                        total_gists=0,
                        matches=[],
                    )
                )
                continue
            hits: list[GistHitOut] = []
            for match in user.result.matches:
                hit = _hit(match)
                size = _size(hit)
                if used + size > ANSWER_BYTES:
                    break
                hits.append(hit)
                used += size
            if len(hits) < len(user.result.matches) and user.login not in unlisted:
                unlisted.append(user.login)
            users.append(
                UserSearchOut(
                    username=user.login,
                    status="success",
                    problem=None,
                    total_gists=user.result.total,
                    matches=hits,
                )
            )
        more = None
        if unlisted:
            more = (
                f"the answer stopped at about {ANSWER_BYTES // 1024} KiB: search "
                f"{', '.join(unlisted[:10])}{' ...' if len(unlisted) > 10 else ''} on its own "
                "(username) for the matches not listed"
            )
        if result.left_out:
            more = (more + "; " if more else "") + (
                f"only the organisation's first {len(result.users)} public members were "
                f"searched ({result.left_out} left out)"
            )
        return SearchOut(
            username=None,
            pattern=pattern,
            total_gists=result.total,
            page=page,
            per_page=max_results,
            matches=[],
            skipped=[],
            skipped_count=0,
            next_page=None,
            next_per_page=None,
            more=more,
            users=users,
        )

    async def file(self, gist_id: str, filename: str) -> tuple[GistFile, FileContent]:
        """A file of a public gist, with its contents (at most its first MiB)."""
        async with self._gists.read(gist_id) as found:
            names = [f.filename for f in found.gist.files]
            if filename not in names:
                shown = ", ".join(f"“{name}”" for name in names[:20])
                raise Refusal(f"gist {gist_id} has no file called “{filename}”; its files: {shown}")
            contents = self._gists.contents(found, only=filename)
            async with contextlib.aclosing(contents):
                async for f, content in contents:
                    return f, content
        raise Refusal(f"gist {gist_id} has no file called “{filename}”")  # pragma: no cover

    async def get_gist_file(
        self, gist_id: str, filename: str, start_line: int, end_line: int | None
    ) -> FileSlice:
        if end_line is not None and end_line < start_line:
            raise Refusal("end_line must not be before start_line")
        f, content = await self.file(gist_id, filename)
        if content.encoding is not None:
            raise Refusal(
                f"“{filename}” is a binary file ({f.size} bytes): it has no lines to show"
            )
        given, total, line_cut = _slice(content.content, start_line, end_line)
        last = start_line + len(given) - 1
        wanted = min(total, end_line if end_line is not None else total)
        following = last + 1 if last < wanted else None
        more = None
        if following is not None:
            why = (
                "the line is longer than the size limit"
                if line_cut
                else f"a slice is at most {SLICE_LINES} lines and about {ANSWER_BYTES // 1024} KiB"
            )
            more = f"{why}: call again with start_line={following}"
        return FileSlice(
            gist_id=gist_id,
            filename=f.filename,
            language=f.language,
            type=f.type,
            total_lines=total,
            start_line=start_line,
            end_line=last,
            text="".join(given),
            line_cut=line_cut,
            file_truncated=content.truncated,
            next_start_line=following,
            more=more,
        )

    async def resource(self, gist_id: str, filename: str) -> tuple[str | bytes, str]:
        """A file as a resource: its text (a binary one's bytes) and its MIME type."""
        f, content = await self.file(gist_id, filename)
        if content.encoding == "base64":
            # bytes are no text whatever the type says (GitHub's is by the file's name)
            binary_type = f.type if f.type and not f.type.startswith("text/") else None
            return base64.b64decode(content.content), binary_type or "application/octet-stream"
        return content.content, f.type or "text/plain"

    async def user_files(self, username: str) -> str:
        """Every file of the user's public gists as a resource, as JSON."""
        login = validate_username(username)
        listing = await self._listing.list_gists(login)
        files: list[dict[str, Any]] = [
            {
                "uri": file_uri(gist.id, f.filename),
                "name": f.filename,
                "mimeType": f.type or "text/plain",
                "size": f.size,
                "description": gist.description,
            }
            for gist in listing.gists
            for f in gist.files
        ]
        return json.dumps({"username": listing.login, "files": files}, ensure_ascii=False)
