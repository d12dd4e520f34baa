"""What a failed use case means, in words, for every front end: the API turns it into a
problem (RFC 9457), the command line into its one error line. ``None`` means a bug."""

from __future__ import annotations

from dataclasses import dataclass

from gistcache.domain.errors import (
    AnswersBusy,
    GistNotFound,
    JobGivenUp,
    JobQueueFull,
    PatternError,
    SearchesBusy,
    SearchTimeout,
    TooManyJobs,
    UserNotFound,
)
from gistcache.github.errors import (
    ClientBudgetSpent,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubReserveKept,
    GitHubTimeout,
    GitHubUnavailable,
)
from gistcache.store.errors import StoreUnavailable


@dataclass(frozen=True, slots=True)
class Failure:
    kind: str  # a stable name: the problem type's last part
    title: str
    detail: str
    retry_after: int | None = None  # seconds worth waiting before trying again
    field: str | None = None  # the input at fault


def describe(exc: BaseException) -> Failure | None:
    """The failure ``exc`` stands for, or None when it is a bug."""
    if isinstance(exc, JobGivenUp):
        return Failure(
            "internal-error",
            "Internal Server Error",
            f"the search was interrupted {exc.attempts} times and was given up",
        )
    if isinstance(exc, SearchTimeout):
        return Failure("search-timeout", "Search took too long", str(exc))
    if isinstance(exc, SearchesBusy):
        return Failure(
            "searches-busy",
            "Too many searches",
            "as many searches as allowed are running; retry shortly, or submit a job "
            '("async": true), which waits its turn',
            retry_after=2,
        )
    if isinstance(exc, AnswersBusy):
        return Failure(
            "answers-busy",
            "Too many large answers in flight",
            "the server holds as many large answers as it may while their clients read them; "
            "retry shortly",
            retry_after=5,
        )
    if isinstance(exc, TooManyJobs):
        return Failure(
            "too-many-jobs",
            "Too many search jobs",
            f"you have {exc.limit} search jobs waiting or running, as many as one client "
            "may: submit more once some have finished",
            retry_after=10,
        )
    if isinstance(exc, JobQueueFull):
        return Failure(
            "job-queue-full",
            "Search job queue full",
            f"{exc.limit} search jobs are waiting or running, as many as the service "
            "queues: retry later, or search without a job",
            retry_after=30,
        )
    if isinstance(exc, PatternError):
        return Failure("invalid-pattern", "Invalid pattern", str(exc), field="pattern")
    if isinstance(exc, UserNotFound | GitHubNotFound):
        return Failure("user-not-found", "User not found", "GitHub has no user by this login")
    if isinstance(exc, GistNotFound):
        return Failure("gist-not-found", "Gist not found", "there is no public gist by this id")
    if isinstance(exc, ClientBudgetSpent):
        return Failure(
            "github-budget-spent",
            "GitHub budget spent",
            f"one client may cause at most {exc.limit} GitHub API requests per {exc.window} s, "
            "and this request needs GitHub (a list not cached counts each of its pages, a "
            "gist not cached one); what is cached is still answered",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, GitHubReserveKept):
        return Failure(
            "github-reserve",
            "GitHub budget reserved",
            f"{exc}: users and gists not cached yet are not asked for until GitHub's rate "
            "limit resets",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, GitHubRateLimited):
        return Failure(
            "github-rate-limited",
            "GitHub rate limit reached",
            "GitHub's API rate limit is exhausted and nothing is cached for this request",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, GitHubTimeout):
        return Failure("github-timeout", "GitHub timed out", "GitHub did not answer in time")
    if isinstance(exc, GitHubUnavailable):
        return Failure("github-unavailable", "GitHub failed", str(exc))
    if isinstance(exc, StoreUnavailable):
        return Failure(
            "database-unavailable",
            "Database unavailable",
            "the cache database is not answering; try again shortly",
            retry_after=5,
        )
    return None
