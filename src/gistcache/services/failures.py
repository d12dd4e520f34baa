"""What a failed use case means, in words, for every front end: the API turns it into a
problem (RFC 9457), the page into a message, the command line into its one error line.

A failure is known by the kind its exception's class declares
(``domain.errors.FailureKind``); ``None`` means a bug."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gistcache.domain.errors import FailureKind, kind_of


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    title: str
    detail: str
    retry_after: int | None = None  # seconds worth waiting before trying again
    members: Mapping[str, Any] = field(default_factory=dict)  # more to tell: the input at fault


# The words of the use cases' failures, by kind; a failure that is not here carries its
# own (``detail``, else its message).
_DETAIL: dict[FailureKind, Callable[[Any], str]] = {
    FailureKind.INTERNAL_ERROR: lambda given_up: (
        f"the search was interrupted {given_up.attempts} times and was given up"
    ),
    FailureKind.SEARCHES_BUSY: lambda _: (
        "as many searches as allowed are running; retry shortly, or submit a job "
        '("async": true), which waits its turn'
    ),
    FailureKind.ANSWERS_BUSY: lambda _: (
        "the server holds as many large answers as it may while their clients read them; "
        "retry shortly"
    ),
    FailureKind.TOO_MANY_JOBS: lambda exc: (
        f"you have {exc.limit} search jobs waiting or running, as many as one client "
        "may: submit more once some have finished"
    ),
    FailureKind.JOB_QUEUE_FULL: lambda exc: (
        f"{exc.limit} search jobs are waiting or running, as many as the service "
        "queues: retry later, or search without a job"
    ),
    FailureKind.USER_NOT_FOUND: lambda _: "GitHub has no user by this login",
    FailureKind.GIST_NOT_FOUND: lambda _: "there is no public gist by this id",
    FailureKind.GITHUB_BUDGET_SPENT: lambda spent: (
        f"one client may cause at most {spent.limit} GitHub API requests per {spent.window} s, "
        "and this request needs GitHub (a list not cached counts each of its pages, a "
        "gist not cached one); what is cached is still answered"
    ),
    FailureKind.GITHUB_RESERVE: lambda kept: (
        f"{kept}: users and gists not cached yet are not asked for until GitHub's rate limit resets"
    ),
    FailureKind.GITHUB_RATE_LIMITED: lambda _: (
        "GitHub's API rate limit is exhausted and nothing is cached for this request"
    ),
    FailureKind.GITHUB_TIMEOUT: lambda _: "GitHub did not answer in time",
    FailureKind.DATABASE_UNAVAILABLE: lambda _: (
        "the cache database is not answering; try again shortly"
    ),
}

# seconds worth waiting, by kind; a failure that is not here says its own (``retry_after``)
_RETRY_AFTER: dict[FailureKind, int] = {
    FailureKind.SEARCHES_BUSY: 2,
    FailureKind.ANSWERS_BUSY: 5,
    FailureKind.TOO_MANY_JOBS: 10,
    FailureKind.JOB_QUEUE_FULL: 30,
    FailureKind.DATABASE_UNAVAILABLE: 5,
}


def describe(exc: BaseException) -> Failure | None:
    """The failure ``exc`` stands for, or None when it is a bug."""
    kind = kind_of(exc)
    if kind is None:
        return None
    said = _DETAIL.get(kind)
    detail = said(exc) if said is not None else getattr(exc, "detail", None) or str(exc)
    retry_after = _RETRY_AFTER.get(kind, getattr(exc, "retry_after", None))
    members = getattr(exc, "members", None) or {}
    title = exc.title  # type: ignore[attr-defined]  # declared beside the kind
    return Failure(kind, title, detail, retry_after, members)
