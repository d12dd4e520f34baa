"""The failures a client is told of: one vocabulary, ``FailureKind``, for every front end.

Each exception class that reaches a client declares its ``kind`` (a ``FailureKind``) and
its ``title``. What the kind means to a client is the front end's to say: the web layer
keeps one table from kind to HTTP status, the page and the command line their own
words. An exception without a kind is a bug. GitHub's failures are raised by the GitHub
client (``gistcache.github.errors``), the database's by the store
(``gistcache.store.errors``), the web layer's own by ``gistcache.web.failures``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, Literal

__all__ = [
    "AnswersBusy",
    "CostsTooMuch",
    "FailureKind",
    "GistNotFound",
    "InvalidInput",
    "InvalidLogin",
    "InvalidParameter",
    "JobGivenUp",
    "JobQueueFull",
    "PatternError",
    "SearchTimeout",
    "SearchesBusy",
    "TooManyJobs",
    "UserNotFound",
    "kind_of",
]


class FailureKind(StrEnum):
    """What went wrong, by a stable name: public, as the last part of a problem's
    ``type`` (``urn:gistcache:problem:<kind>``)."""

    # the request
    INVALID_USERNAME = "invalid-username"
    INVALID_QUERY = "invalid-query"
    INVALID_BODY = "invalid-body"
    INVALID_PATTERN = "invalid-pattern"
    INVALID_JSON = "invalid-json"
    BODY_TOO_LARGE = "body-too-large"
    MALFORMED_REQUEST = "malformed-request"
    INVALID_HOST = "invalid-host"
    CROSS_SITE_REQUEST = "cross-site-request"
    UNAUTHORIZED = "unauthorized"  # no API token where one is needed
    FORBIDDEN = "forbidden"  # an API token that is not one of the server's
    # what it asks for
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    HTTP_ERROR = "http-error"  # aiohttp's other refusals
    USER_NOT_FOUND = "user-not-found"
    GIST_NOT_FOUND = "gist-not-found"
    SEARCH_NOT_FOUND = "search-not-found"
    SEARCH_NOT_FINISHED = "search-not-finished"
    NOT_CACHED = "not-cached"
    WATCH_NOT_FOUND = "watch-not-found"
    # the limits one client, or all of them, meet
    TOO_MANY_REQUESTS = "too-many-requests"
    GITHUB_BUDGET_SPENT = "github-budget-spent"
    GITHUB_COST = "github-cost"  # a many-user search would need more than GitHub has left
    SHARED_REFRESH_STOPPED = "shared-refresh-stopped"
    TOO_MANY_JOBS = "too-many-jobs"
    JOB_QUEUE_FULL = "job-queue-full"
    SEARCHES_BUSY = "searches-busy"
    ANSWERS_BUSY = "answers-busy"
    SEARCH_TIMEOUT = "search-timeout"
    # what the service depends on
    GITHUB_RATE_LIMITED = "github-rate-limited"
    GITHUB_RESERVE = "github-reserve"
    GITHUB_TIMEOUT = "github-timeout"
    GITHUB_UNAVAILABLE = "github-unavailable"
    DATABASE_UNAVAILABLE = "database-unavailable"
    NOT_READY = "not-ready"
    INTERNAL_ERROR = "internal-error"


def kind_of(exc: BaseException) -> FailureKind | None:
    """The kind ``exc``'s class declares; None for a bug."""
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, FailureKind) else None


class InvalidInput(ValueError):
    """A request broke an input rule. ``field`` names what was wrong (None: the request
    as a whole); ``unknown`` lists fields that no request has. ``given_as`` says how
    the client gave the input, which is how a problem names it: a body's ``field``, a
    query's ``parameter``, or None (a path's part, a command's argument)."""

    kind: ClassVar[FailureKind] = FailureKind.INVALID_BODY
    title: str = "Invalid search request"
    given_as: Literal["field", "parameter"] | None = "field"

    def __init__(
        self,
        field: str | None,
        detail: str,
        *,
        unknown: Sequence[str] = (),
        given_as: Literal["field", "parameter"] | None = None,
    ) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail
        self.unknown = tuple(unknown)
        if given_as is not None:  # else the class's
            self.given_as = given_as

    @property
    def members(self) -> Mapping[str, Any]:
        """What a problem adds to its words: the input at fault."""
        if self.unknown:
            return {"fields": list(self.unknown)}
        if self.field is None or self.given_as is None:
            return {}
        return {self.given_as: self.field}


class InvalidParameter(InvalidInput):
    """A query parameter broke its rule; ``field`` is the parameter."""

    kind = FailureKind.INVALID_QUERY
    given_as = "parameter"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(field, detail)
        self.title = f"Invalid {field}"


class InvalidLogin(InvalidInput):
    """A username that cannot be a GitHub login; never sent to GitHub. Mostly given in
    a path, which names nothing more."""

    kind = FailureKind.INVALID_USERNAME
    title = "Invalid username"
    given_as = None


class CostsTooMuch(Exception):
    """A search of several users would need more GitHub API requests than GitHub's rate
    limit has left (less the reserve kept for cached users); said before any is made.
    ``proceed_cached`` asks for the search anyway."""

    kind: ClassVar[FailureKind] = FailureKind.GITHUB_COST
    title: ClassVar[str] = "The search would cost too many GitHub requests"

    def __init__(self, cost: int, available: int, retry_after: int) -> None:
        self.detail = (
            f"searching these users needs at least {cost} GitHub API requests (one for each "
            f"user whose list is not cached or is due for revalidation), and GitHub's rate "
            f"limit has {available} left for them until it resets; set proceed_cached to "
            "true to search anyway (the users GitHub cannot be asked for then fail on their "
            "own, the cached ones are answered)"
        )
        super().__init__(self.detail)
        self.retry_after = retry_after
        self.members = {"cost": cost, "available": available}


class PatternError(ValueError):
    """The pattern is not one RE2 accepts; the message says why."""

    kind: ClassVar[FailureKind] = FailureKind.INVALID_PATTERN
    title: ClassVar[str] = "Invalid pattern"
    members: ClassVar[Mapping[str, Any]] = {"field": "pattern"}


class UserNotFound(Exception):
    """GitHub has no user by this login (possibly remembered from an earlier answer)."""

    kind: ClassVar[FailureKind] = FailureKind.USER_NOT_FOUND
    title: ClassVar[str] = "User not found"

    def __init__(self, login: str) -> None:
        super().__init__(login)
        self.login = login


class GistNotFound(Exception):
    """No public gist by this id (an unknown id, or a secret gist: never shown)."""

    kind: ClassVar[FailureKind] = FailureKind.GIST_NOT_FOUND
    title: ClassVar[str] = "Gist not found"

    def __init__(self, gist_id: str) -> None:
        super().__init__(gist_id)
        self.gist_id = gist_id


class SearchTimeout(Exception):
    """A search ran past its time budget."""

    kind: ClassVar[FailureKind] = FailureKind.SEARCH_TIMEOUT
    title: ClassVar[str] = "Search took too long"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the search exceeded its time budget of {seconds:g} s")
        self.seconds = seconds


class SearchesBusy(Exception):
    """As many searches as allowed are running; this one was not started."""

    kind: ClassVar[FailureKind] = FailureKind.SEARCHES_BUSY
    title: ClassVar[str] = "Too many searches"


class AnswersBusy(Exception):
    """As many bytes of large answers as allowed are being written; this one was not."""

    kind: ClassVar[FailureKind] = FailureKind.ANSWERS_BUSY
    title: ClassVar[str] = "Too many large answers in flight"


class JobGivenUp(Exception):
    """A job whose runners kept dying was not tried again."""

    kind: ClassVar[FailureKind] = FailureKind.INTERNAL_ERROR
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, attempts: int) -> None:
        super().__init__(f"given up after {attempts} attempts")
        self.attempts = attempts


class TooManyJobs(Exception):
    """The client has as many jobs waiting or running as one client may."""

    kind: ClassVar[FailureKind] = FailureKind.TOO_MANY_JOBS
    title: ClassVar[str] = "Too many search jobs"

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} search jobs of this client are waiting or running")
        self.limit = limit


class TooManyWatches(Exception):
    """The API token has as many watches as one token may."""

    kind: ClassVar[FailureKind] = FailureKind.TOO_MANY_REQUESTS
    title: ClassVar[str] = "Too many watches"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this token has {limit} watches, as many as one token may: delete one to make another"
        )
        self.limit = limit
        self.members = {"limit": limit}


class JobQueueFull(Exception):
    """As many jobs as the service queues are waiting or running."""

    kind: ClassVar[FailureKind] = FailureKind.JOB_QUEUE_FULL
    title: ClassVar[str] = "Search job queue full"

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} search jobs are waiting or running")
        self.limit = limit
