"""What a failure means to a person reading the page: its words by kind, with the status
and the wait of the problem the API would answer with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gistcache.domain.errors import FailureKind
from gistcache.web.failures import Problem
from gistcache.web.pages.form import FormError
from gistcache.web.pages.text import clock_time, duration
from gistcache.web.problems import problem_for


@dataclass(frozen=True, slots=True)
class FailureMessage:
    """A failure as the page tells it."""

    status: int
    title: str
    message: str
    retry_after: int | None = None
    field: str | None = None  # the form's field at fault


def failure_message(exc: BaseException, now: datetime, *, user: str = "") -> FailureMessage | None:
    """What a failed search or listing means to a person; None for a bug."""
    if isinstance(exc, FormError):
        return FailureMessage(400, "Check the form", exc.message, field=exc.field)
    problem = problem_for(exc)
    return None if problem is None else problem_message(problem, now, user=user)


def problem_message(problem: Problem, now: datetime, *, user: str = "") -> FailureMessage:
    """``problem`` in the page's words; ``user`` is the login the person asked for."""
    status = problem.status
    match problem.kind:
        case FailureKind.INVALID_PATTERN:
            return FailureMessage(
                status,
                "RE2 does not accept this pattern",
                f"{problem.detail}. Tick “literal” to search for the text as it is.",
                field="q",
            )
        case FailureKind.USER_NOT_FOUND:
            who = f"called “{user}”" if user else "by this name"
            return FailureMessage(status, "No such user", f"GitHub has no user {who}.")
        case FailureKind.GITHUB_RATE_LIMITED:
            wait = problem.retry_after or 60
            at = clock_time(now + timedelta(seconds=wait), now)
            return FailureMessage(
                status,
                "GitHub's rate limit is reached",
                "GitHub will not answer more requests for now, and nothing is cached for "
                f"this search. Try again in {duration(wait)} (after {at}).",
                retry_after=wait,
            )
        case FailureKind.GITHUB_UNAVAILABLE | FailureKind.GITHUB_TIMEOUT:
            return FailureMessage(
                status,
                "GitHub is not answering",
                "GitHub failed or did not answer in time, and nothing is cached for this "
                "search. Try again in a few minutes.",
            )
        case FailureKind.SEARCHES_BUSY:
            return FailureMessage(
                status,
                "Too many searches at once",
                "As many searches as this server allows are running. Try again in a moment.",
                retry_after=problem.retry_after,
            )
        case FailureKind.NOT_FOUND:
            return FailureMessage(status, problem.title, "There is no page at this address.")
        case FailureKind.METHOD_NOT_ALLOWED:
            return FailureMessage(status, problem.title, "This page cannot be asked for that way.")
        case FailureKind.INTERNAL_ERROR:
            return FailureMessage(
                status,
                "Something went wrong",
                "The server failed to show this page. Try again, or tell whoever runs it.",
            )
    return FailureMessage(status, problem.title, problem.detail, retry_after=problem.retry_after)
