"""The domain's failures: what went wrong, in terms of the use cases, not of HTTP.

How a client is told of each is the presentation's to say (the web layer's problems,
the command line's one line on stderr). GitHub's own failures are raised by the
GitHub client (``gistcache.github.client``).
"""

from __future__ import annotations

from collections.abc import Sequence

from gistcache.domain.matching import PatternError

__all__ = [
    "AnswersBusy",
    "GistNotFound",
    "InvalidInput",
    "InvalidLogin",
    "JobGivenUp",
    "JobQueueFull",
    "PatternError",
    "SearchTimeout",
    "SearchesBusy",
    "TooManyJobs",
    "UserNotFound",
]


class InvalidInput(ValueError):
    """A request broke an input rule. ``field`` names what was wrong (None: the request
    as a whole); ``unknown`` lists fields that no request has."""

    def __init__(self, field: str | None, detail: str, *, unknown: Sequence[str] = ()) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail
        self.unknown = tuple(unknown)


class InvalidLogin(InvalidInput):
    """A username that cannot be a GitHub login; never sent to GitHub."""


class UserNotFound(Exception):
    """GitHub has no user by this login (possibly remembered from an earlier answer)."""

    def __init__(self, login: str) -> None:
        super().__init__(login)
        self.login = login


class GistNotFound(Exception):
    """No public gist by this id (an unknown id, or a secret gist: never shown)."""

    def __init__(self, gist_id: str) -> None:
        super().__init__(gist_id)
        self.gist_id = gist_id


class SearchTimeout(Exception):
    """A search ran past its time budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the search exceeded its time budget of {seconds:g} s")
        self.seconds = seconds


class SearchesBusy(Exception):
    """As many searches as allowed are running; this one was not started."""


class AnswersBusy(Exception):
    """As many bytes of large answers as allowed are being written; this one was not."""


class JobGivenUp(Exception):
    """A job whose runners kept dying was not tried again."""

    def __init__(self, attempts: int) -> None:
        super().__init__(f"given up after {attempts} attempts")
        self.attempts = attempts


class TooManyJobs(Exception):
    """The client has as many jobs waiting or running as one client may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} search jobs of this client are waiting or running")
        self.limit = limit


class JobQueueFull(Exception):
    """As many jobs as the service queues are waiting or running."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} search jobs are waiting or running")
        self.limit = limit
