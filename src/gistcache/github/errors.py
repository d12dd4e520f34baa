"""What can go wrong asking GitHub: the GitHubError family. Those a client is told of
declare their kind (``domain.errors.FailureKind``) and title; the others are bugs."""

from __future__ import annotations

from typing import ClassVar

from gistcache.domain.errors import FailureKind


class GitHubError(Exception):
    """GitHub could not give us what we asked for."""


class GitHubNotFound(GitHubError):
    """GitHub answered 404."""

    kind: ClassVar[FailureKind] = FailureKind.USER_NOT_FOUND
    title: ClassVar[str] = "User not found"


class GitHubRateLimited(GitHubError):
    """GitHub refused us for rate limiting; try again after ``retry_after`` seconds."""

    kind: ClassVar[FailureKind] = FailureKind.GITHUB_RATE_LIMITED
    title: ClassVar[str] = "GitHub rate limit reached"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitHubUnavailable(GitHubError):
    """GitHub failed: a 5xx, a refused connection, or a body we cannot use."""

    kind: ClassVar[FailureKind] = FailureKind.GITHUB_UNAVAILABLE
    title: ClassVar[str] = "GitHub failed"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable  # a refused connection or a 502/503/504


class GitHubTimeout(GitHubError):
    """GitHub did not answer in time."""

    kind: ClassVar[FailureKind] = FailureKind.GITHUB_TIMEOUT
    title: ClassVar[str] = "GitHub timed out"


class ForbiddenRawHost(GitHubError):
    """A raw URL points outside the hosts we fetch contents from (no SSRF)."""


class GitHubReserveKept(GitHubError):
    """GitHub's remaining rate limit is down to the reserve kept for revalidating what is
    cached, and this request is for something not cached; try again after
    ``retry_after`` seconds (GitHub's reset)."""

    kind: ClassVar[FailureKind] = FailureKind.GITHUB_RESERVE
    title: ClassVar[str] = "GitHub budget reserved"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClientBudgetSpent(Exception):
    """The client a request came from may cause no more GitHub API requests for now.

    gistcache's own limit, not GitHub's: no GitHubError, so that nothing is backed off
    for other clients. ``payer`` is the account that was refused (a request that shared
    another client's refresh can tell the refusal was not its own)."""

    kind: ClassVar[FailureKind] = FailureKind.GITHUB_BUDGET_SPENT
    title: ClassVar[str] = "GitHub budget spent"

    def __init__(self, limit: int, window: int, retry_after: int, payer: object) -> None:
        super().__init__(f"at most {limit} GitHub API requests per {window} s")
        self.limit = limit
        self.window = window
        self.retry_after = retry_after
        self.payer = payer
