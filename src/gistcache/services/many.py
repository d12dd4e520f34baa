"""Use case: one pattern over several users' gists (a list of logins, or an
organisation's public members), as a layer above the single-user search: each user's
part is an ordinary ``SearchService`` search, ``USERS_AT_ONCE`` of them at a time, and
the answers are merged in the order the users were given.

Each user's part ends on its own: a user GitHub does not know, or one whose list GitHub
could not give (rate limited, down), is that user's failure, told beside the others'
matches; the search as a whole fails only on a bug, on the organisation's members (an
unknown organisation), or when the reader goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from gistcache.domain.errors import CostsTooMuch
from gistcache.domain.requests import MAX_USERS, ManySearchRequest, SearchRequest
from gistcache.domain.results import (
    AnswerCut,
    FileSkipped,
    GistFound,
    SearchDone,
    SearchProgress,
    SearchResult,
    match_weight,
    trimmed,
)
from gistcache.services.failures import Failure, describe
from gistcache.services.retention import SHARED_DOWNLOADS, SharedDownloads
from gistcache.services.search import STREAM_PROGRESS_EVERY, Progress, SearchService

# users whose part runs at once: their lists are revalidated (and their files fetched)
# at most this many at a time, each within the search slots every search shares
USERS_AT_ONCE = 4
# events of the users' parts waiting for the reader: a reader that does not read holds
# the parts back once this many wait
QUEUED_EVENTS = 64

MembersOf = Callable[[str], Awaitable[list[str]]]
# what the users' lists would cost GitHub: at least one API request for each user whose
# list is not cached or due for revalidation; and what GitHub has left for them (its
# remaining rate limit less the reserve kept for cached users, and the seconds until it
# resets), None while GitHub's budget is not known
CostOf = Callable[[list[str]], Awaitable[int]]
Available = Callable[[], tuple[int, int] | None]


@dataclass(frozen=True, slots=True)
class UserAnswer:
    """One user's part: its result, or the failure it met."""

    login: str
    result: SearchResult | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True)
class ManyResult:
    request: ManySearchRequest
    users: tuple[UserAnswer, ...]  # in the order the users were given
    left_out: int = 0  # an organisation's members past the first MAX_USERS, not searched

    @property
    def total(self) -> int:
        return sum(user.result.total for user in self.users if user.result is not None)


@dataclass(frozen=True, slots=True)
class ManyAnswer:
    result: ManyResult


# --- a many-user search as it goes ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsersKnown:
    """The users searched, in order (an organisation's members once they are known)."""

    logins: tuple[str, ...]
    left_out: int = 0  # an organisation's members past the first MAX_USERS


@dataclass(frozen=True, slots=True)
class UsersProgress:
    users_done: int
    users_total: int
    files_done: int  # over every user's part begun so far
    files_total: int
    bytes: int


@dataclass(frozen=True, slots=True)
class UserGistFound:
    login: str
    found: GistFound


@dataclass(frozen=True, slots=True)
class UserFileSkipped:
    login: str
    skipped: FileSkipped


@dataclass(frozen=True, slots=True)
class UserDone:
    """A user's part is complete: ``total`` matching gists, or ``failure``."""

    login: str
    total: int = 0
    cut: AnswerCut | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True)
class ManyDone:
    total: int
    users: int
    failed: int


ManyEvent = UsersKnown | UsersProgress | UserGistFound | UserFileSkipped | UserDone | ManyDone


@dataclass(frozen=True, slots=True)
class _OneProgress:
    """One user's progress, on its way to the reader, who sums every user's."""

    login: str
    event: SearchProgress


@dataclass(frozen=True, slots=True)
class _Crash:
    exc: BaseException


class ManySearch:
    def __init__(
        self,
        searches: SearchService,
        members_of: MembersOf,
        *,
        users_at_once: int = USERS_AT_ONCE,
        cost_of: CostOf | None = None,
        available: Available | None = None,
    ) -> None:
        self._cost_of = cost_of
        self._available = available
        self._searches = searches
        self._members_of = members_of
        self._at_once = users_at_once

    async def logins(self, request: ManySearchRequest) -> tuple[list[str], int]:
        """The users to search, in order: the logins given, or the organisation's first
        ``MAX_USERS`` public members in GitHub's order (its failures raised:
        GitHubNotFound for none such); and how many members were left out."""
        if request.org is None:
            logins, left_out = list(request.usernames), 0
        else:
            members = await self._members_of(request.org)
            logins, left_out = members[:MAX_USERS], max(0, len(members) - MAX_USERS)
        if not request.proceed_cached:
            await self._check_cost(logins)
        return logins, left_out

    async def _check_cost(self, logins: list[str]) -> None:
        """CostsTooMuch when the users' lists would need more GitHub requests than it has
        left (known only once GitHub has answered in its current window)."""
        if self._cost_of is None or self._available is None:
            return
        left = self._available()
        if left is None:
            return
        cost = await self._cost_of(logins)
        if cost > left[0]:
            raise CostsTooMuch(cost, left[0], left[1])

    async def search(
        self, request: ManySearchRequest, *, progress: Progress | None = None
    ) -> ManyAnswer:
        """Every user's page of matches (``page`` and ``per_page`` apply to each user),
        each user's failure beside the others' results; the pages listed, in the users'
        order, within the searches' ``max_answer_bytes`` in all (each user whose matches
        were left out says where in its ``cut``)."""
        logins, left_out = await self.logins(request)
        gate = asyncio.Semaphore(self._at_once)
        counts: dict[str, tuple[int, int]] = {}
        budget = _Budget(self._searches.max_answer_bytes)

        def told(login: str) -> Progress:
            def tell(done: int, total: int) -> None:
                counts[login] = (done, total)
                if progress is not None:
                    progress(sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))

            return tell

        async def one(index: int, login: str) -> UserAnswer:
            async with gate:
                try:
                    answer = await self._searches.search(
                        request.for_user(login), progress=told(login)
                    )
                except Exception as exc:
                    failure = describe(exc)
                    if failure is None:
                        raise
                    return UserAnswer(login, failure=failure)
                budget.add(index, answer.result)
                return UserAnswer(login)

        users = await _gather(
            (one(index, login) for index, login in enumerate(logins)), _one_share()
        )
        results = budget.final()
        users = [
            user if user.failure is not None else dataclasses.replace(user, result=results[index])
            for index, user in enumerate(users)
        ]
        return ManyAnswer(ManyResult(request, tuple(users), left_out))

    async def stream(
        self,
        request: ManySearchRequest,
        *,
        answer_limit: int | None = None,
        progress_every: float = STREAM_PROGRESS_EVERY,
    ) -> AsyncGenerator[ManyEvent, None]:
        """``UsersKnown`` (once the users are known; the members' failures are raised
        before it), then each user's ``UserGistFound`` and ``UserFileSkipped`` as they are
        ready, ``UsersProgress`` as files and users are done, a ``UserDone`` when a user's
        part is complete, last ``ManyDone``. With ``answer_limit`` the ``UserGistFound``
        told, over every user, stop once their weight reaches it (the first alone over
        it with fewer lines): the users' matches past it are still counted, and each
        user whose matches were left out says so in its ``UserDone``'s ``cut``. Closing
        the iterator stops every part."""
        logins, left_out = await self.logins(request)
        yield UsersKnown(tuple(logins), left_out)
        queue: asyncio.Queue[ManyEvent | _OneProgress | _Crash] = asyncio.Queue(QUEUED_EVENTS)
        gate = asyncio.Semaphore(self._at_once)

        async def one(login: str) -> None:
            try:
                async with gate:
                    await queue.put(await self._part(request, login, queue, answer_limit))
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a bug: the reader raises it
                await queue.put(_Crash(exc))

        share = _one_share()
        tasks = [asyncio.create_task(one(login), context=share.copy()) for login in logins]
        files: dict[str, tuple[int, int, int]] = {}
        users_done = failed = total = 0
        shared = _Told(answer_limit) if answer_limit is not None else None
        try:
            while users_done < len(logins):
                event = await queue.get()
                if isinstance(event, _Crash):
                    raise event.exc
                if isinstance(event, _OneProgress):
                    one_user = event.event
                    files[event.login] = (one_user.files_done, one_user.files_total, one_user.bytes)
                    yield _sum(users_done, len(logins), files)
                    continue
                if isinstance(event, UserGistFound) and shared is not None:
                    told = shared.add(event)
                    if told is None:
                        continue
                    event = told
                if isinstance(event, UserDone):
                    if shared is not None:
                        event = shared.done(event)
                    users_done += 1
                    failed += event.failure is not None
                    total += event.total
                    yield event
                    yield _sum(users_done, len(logins), files)
                    continue
                yield event
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        yield ManyDone(total, len(logins), failed)

    async def _part(
        self,
        request: ManySearchRequest,
        login: str,
        queue: asyncio.Queue[ManyEvent | _OneProgress | _Crash],
        answer_limit: int | None,
    ) -> UserDone:
        events = self._searches.stream(request.for_user(login), answer_limit=answer_limit)
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, GistFound):
                        await queue.put(UserGistFound(login, event))
                    elif isinstance(event, FileSkipped):
                        await queue.put(UserFileSkipped(login, event))
                    elif isinstance(event, SearchProgress):
                        await queue.put(_OneProgress(login, event))
                    elif isinstance(event, SearchDone):
                        return UserDone(login, event.total, event.cut)
        except Exception as exc:
            failure = describe(exc)
            if failure is None:
                raise
            return UserDone(login, failure=failure)
        raise AssertionError("a search stream ended without SearchDone")  # pragma: no cover


def _sum(
    users_done: int, users_total: int, files: dict[str, tuple[int, int, int]]
) -> UsersProgress:
    return UsersProgress(
        users_done,
        users_total,
        sum(f[0] for f in files.values()),
        sum(f[1] for f in files.values()),
        sum(f[2] for f in files.values()),
    )


def _one_share() -> contextvars.Context:
    """A context for the users' parts' tasks in which they download from one share of
    new contents (``GISTCACHE_SEARCH_DOWNLOAD_MB``) for the whole search."""
    context = contextvars.copy_context()
    context.run(SHARED_DOWNLOADS.set, SharedDownloads())
    return context


async def _gather(
    awaitables: Iterable[Coroutine[Any, Any, UserAnswer]], context: contextvars.Context
) -> list[UserAnswer]:
    """Every part's answer in order (each part's task in a copy of ``context``); the
    first bug raised, the other parts stopped."""
    tasks = [asyncio.create_task(a, context=context.copy()) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


@dataclass(slots=True)
class _Part:
    """A user's page as the answer may still list it: its first ``weights`` matches."""

    result: SearchResult
    weights: list[int]  # each listed match's weight, as it came
    cut: bool = False  # matches of the page were left out for the other users' ones


class _Budget:
    """The users' pages within one answer size limit (``limit`` bytes, as
    ``match_weight`` counts them) in all: listed in the users' order while they fit, the
    first gist of the answer alone over it with fewer lines, the matches after it left
    out (each user's ``cut`` says where its page stopped). The parts come as they are
    done, in any order: each is shrunk at once to what the users before it that are done
    leave of the limit (never more than the answer can list), so that what is held stays
    within about the limit however many users there are."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: dict[int, _Part] = {}

    def add(self, index: int, result: SearchResult) -> None:
        self._parts[index] = _Part(result, [match_weight(m) for m in result.matches])
        self._shrink(final=False)

    def final(self) -> dict[int, SearchResult]:
        """Each user's page as the answer lists it, by the user's place."""
        self._shrink(final=True)
        return {index: part.result for index, part in self._parts.items()}

    def _shrink(self, *, final: bool) -> None:
        used = 0
        for index in sorted(self._parts):
            part = self._parts[index]
            n = 0
            while n < len(part.weights) and used + part.weights[n] <= self._limit:
                used += part.weights[n]
                n += 1
            lines_cut = False
            matches = list(part.result.matches[:n])
            if n < len(part.weights):
                part.cut = True
                if used == 0:  # the answer's first gist, alone over the limit
                    first = part.result.matches[0]
                    if final:
                        first = trimmed(first, self._limit)
                        lines_cut = True
                    matches, n = [first], 1
                    used += part.weights[0]
            if not part.cut:
                continue
            own = part.result.cut
            lines_cut = lines_cut or (own is not None and own.lines_cut and n > 0)
            weights = part.weights[:n]
            if final and lines_cut:
                weights = [match_weight(m) for m in matches]
            part.weights = weights
            part.result = dataclasses.replace(
                part.result,
                matches=tuple(matches),
                cut=_cut(part.result, self._limit, n, lines_cut),
                matches_weight=sum(weights),
            )


def _cut(result: SearchResult, limit: int, listed: int, lines_cut: bool) -> AnswerCut:
    """Where ``result``'s page stopped with ``listed`` of its matches, and the page of
    the same search that starts with the first not listed (as a single search's does)."""
    request: SearchRequest = result.request
    following = (request.page - 1) * request.per_page + listed
    if following >= result.total:
        return AnswerCut(limit, listed, lines_cut)
    per_page = max(n for n in range(1, request.per_page + 1) if following % n == 0)
    return AnswerCut(limit, listed, lines_cut, following // per_page + 1, per_page)


class _Told:
    """A stream's matches within ``limit`` bytes over every user, in the order told."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._weight = 0
        self._full = False
        self._listed: dict[str, int] = {}
        self._cut: set[str] = set()
        self._lines_cut: set[str] = set()

    def add(self, event: UserGistFound) -> UserGistFound | None:
        """The match as told (perhaps with fewer lines), or None: left out."""
        login, match = event.login, event.found.match
        if not self._full:
            weight = match_weight(match)
            if self._weight + weight <= self._limit:
                self._weight += weight
                self._listed[login] = self._listed.get(login, 0) + 1
                return event
            self._full = True
            if not self._listed:  # the first gist told, alone over the limit
                self._listed[login] = 1
                self._cut.add(login)
                self._lines_cut.add(login)
                found = GistFound(event.found.index, trimmed(match, self._limit))
                return UserGistFound(login, found)
        self._cut.add(login)
        return None

    def done(self, event: UserDone) -> UserDone:
        """The user's end, with where its matches stopped if some were left out."""
        if event.login not in self._cut or event.failure is not None:
            return event
        cut = AnswerCut(
            self._limit, self._listed.get(event.login, 0), event.login in self._lines_cut
        )
        return dataclasses.replace(event, cut=cut)
