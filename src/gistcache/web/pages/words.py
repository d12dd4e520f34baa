"""What the page says, in plain words: the search form's input, how fresh an answer is,
why a file was skipped, and what a failure means to a person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gistcache.domain import requests
from gistcache.domain.errors import InvalidInput
from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import CacheStatus, GistList, SkipReason
from gistcache.services.failures import describe
from gistcache.web.problems import STATUS

# the form's fields, by the request's field names
FORM_NAMES = {
    "username": "user",
    "pattern": "q",
    "ignore_case": "i",
    "literal": "literal",
    "context": "context",
    "filename": "glob",
    "page": "page",
}
_LABELS = {
    "user": "GitHub user",
    "q": "pattern",
    "i": "ignore case",
    "literal": "literal",
    "context": "context lines",
    "glob": "file names",
    "page": "page",
}
LOGIN_RULE = "a GitHub user name is 1 to 39 letters, digits, '-' or '_'"
_TRUE = ("1", "on", "true", "yes")
_FALSE = ("", "0", "off", "false", "no")

SKIP_REASONS = {
    SkipReason.BINARY.value: "a binary file, not searched",
    SkipReason.TOO_LARGE.value: "larger than this server searches",
    SkipReason.FORBIDDEN_HOST.value: "its contents are on a host this server does not fetch from",
    SkipReason.UNAVAILABLE.value: "GitHub did not give its contents (try again later)",
    SkipReason.FILE_LIST_TRUNCATED.value: "GitHub lists at most 300 files of a gist; "
    "the others were not searched",
    SkipReason.CHANGED.value: "it changed on GitHub while it was being fetched",
    SkipReason.DOWNLOAD_BUDGET.value: "not fetched: this search downloaded as much as this "
    "server lets one search (or keeps for one user); searching again fetches more, "
    "as far as the server's cache allows",
}


class FormError(Exception):
    """A search form's field is wrong; ``field`` is the form's name of it."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Form:
    """The search form as the person filled it (echoed back, valid or not)."""

    user: str = ""
    q: str = ""
    i: bool = False
    literal: bool = False
    context: str = "0"
    glob: str = ""
    page: str = "1"

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Form:
        return cls(
            user=query.get("user", "").strip(),
            q=query.get("q", ""),
            i=query.get("i", "").lower() in _TRUE,
            literal=query.get("literal", "").lower() in _TRUE,
            context=query.get("context", "0").strip() or "0",
            glob=query.get("glob", "").strip(),
            page=query.get("page", "1").strip() or "1",
        )

    @property
    def empty(self) -> bool:
        return not self.user and not self.q

    def query(self, **changes: str) -> dict[str, str]:
        """The form as a query string's fields, as a browser submits it."""
        fields = {"user": self.user, "q": self.q}
        if self.i:
            fields["i"] = "1"
        if self.literal:
            fields["literal"] = "1"
        fields["context"] = self.context
        fields["glob"] = self.glob
        fields.update(changes)
        return fields


def parse_form(query: Mapping[str, str]) -> tuple[Form, SearchRequest]:
    """The form, and the search it asks for by the domain's input rules; a FormError
    (naming the form's field, in words) when a rule is broken."""
    form = Form.from_query(query)
    for name in ("i", "literal"):
        if query.get(name, "").lower() not in _TRUE + _FALSE:
            raise FormError(name, f"{_LABELS[name]} is either on (1) or off (0)")
    numbers: dict[str, int] = {}
    for name in ("context", "page"):
        raw = getattr(form, name)
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
            raise FormError(name, f"{_LABELS[name]} must be a whole number")
        numbers[name] = int(raw)
    if not form.user:
        raise FormError("user", "say whose gists to search: a GitHub user is required")
    try:
        request = requests.search_request(
            form.user,
            form.q,
            ignore_case=form.i,
            literal=form.literal,
            context=numbers["context"],
            page=numbers["page"],
            filename=form.glob or None,
        )
    except InvalidInput as exc:
        named = FORM_NAMES.get(exc.field or "")
        raise FormError(named, _in_form_words(exc.detail, exc.field)) from None
    return form, request


def _in_form_words(detail: str, field: str | None) -> str:
    # the domain names its fields as the API does; the page names the form's
    if field == "filename":
        return detail.replace("filename", "the file-name glob", 1)
    if field == "username":
        return LOGIN_RULE
    return detail


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 10:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"  # pragma: no cover - the loop ends at seconds


def clock_time(moment: datetime, now: datetime) -> str:
    """``14:02 UTC`` today, ``2026-01-01 14:02 UTC`` on another day."""
    moment = moment.astimezone(UTC)
    if moment.date() == now.astimezone(UTC).date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def freshness(listing: GistList, now: datetime) -> str:
    return checked_words(listing.checked_at, listing.cache is CacheStatus.STALE, now)


def checked_words(checked_at: datetime, stale: bool, now: datetime) -> str:
    """How fresh a list GitHub last sent or confirmed at ``checked_at`` is; ``stale``:
    it is served because GitHub failed."""
    if stale:
        return f"GitHub is unreachable: showing the copy from {clock_time(checked_at, now)}"
    return f"checked with GitHub {ago((now - checked_at).total_seconds())}"


def when(moment: datetime) -> str:
    """A gist's last update as the page shows it (the script shows it the same way)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cut_words(listed: int, limit_bytes: int, lines_cut: bool) -> str:
    """What the page says when an answer stopped at the answer size limit (page.js says
    the same of a stream's ``done`` event)."""
    size = f"{limit_bytes / (1024 * 1024):.3g} MiB"
    if lines_cut:
        shown = "Not every matching line of this gist is listed"
    elif listed == 1:
        shown = "Only the first matching gist is listed"
    else:
        shown = f"Only the first {listed} matching gists are listed"
    return (
        f"{shown}: the answer reached this server's limit of {size}. Narrow the search "
        "(a file-name glob, fewer context lines) to see the rest."
    )


@dataclass(frozen=True, slots=True)
class Trouble:
    """A failure as the page tells it."""

    status: int
    title: str
    message: str
    retry_after: int | None = None
    field: str | None = None


def trouble(exc: BaseException, now: datetime, *, user: str = "") -> Trouble | None:
    """What a failed search or listing means to a person; None for a bug."""
    if isinstance(exc, FormError):
        return Trouble(400, "Check the form", exc.message, field=exc.field)
    failure = describe(exc)
    if failure is None:
        return None
    status = STATUS[failure.kind]
    kind = failure.kind
    if kind == "invalid-pattern":
        return Trouble(
            status,
            "RE2 does not accept this pattern",
            f"{failure.detail}. Tick “literal” to search for the text as it is.",
            field="q",
        )
    if kind == "user-not-found":
        who = f"called “{user}”" if user else "by this name"
        return Trouble(status, "No such user", f"GitHub has no user {who}.")
    if kind == "github-rate-limited":
        wait = failure.retry_after or 60
        at = clock_time(now + timedelta(seconds=wait), now)
        return Trouble(
            status,
            "GitHub's rate limit is reached",
            "GitHub will not answer more requests for now, and nothing is cached for "
            f"this search. Try again in {_duration(wait)} (after {at}).",
            retry_after=wait,
        )
    if kind in ("github-unavailable", "github-timeout"):
        return Trouble(
            status,
            "GitHub is not answering",
            "GitHub failed or did not answer in time, and nothing is cached for this "
            "search. Try again in a few minutes.",
        )
    if kind == "searches-busy":
        return Trouble(
            status,
            "Too many searches at once",
            "As many searches as this server allows are running. Try again in a moment.",
            retry_after=failure.retry_after,
        )
    return Trouble(status, failure.title, failure.detail, retry_after=failure.retry_after)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return plural(seconds, "second")
    minutes = -(-seconds // 60)
    if minutes < 120:
        return plural(minutes, "minute")
    return plural(-(-minutes // 60), "hour")


def marked(text: str, ranges: Sequence[Sequence[int]]) -> list[tuple[str, bool]]:
    """``text`` cut into pieces, each marked or not by ``ranges``: ``[start, end)`` in code
    points (a Python str is indexed by them), left to right, not overlapping."""
    pieces: list[tuple[str, bool]] = []
    at = 0
    for start, end in ranges:
        start, end = max(start, at), min(end, len(text))
        if start >= end:
            continue
        if start > at:
            pieces.append((text[at:start], False))
        pieces.append((text[start:end], True))
        at = end
    if at < len(text) or not pieces:
        pieces.append((text[at:], False))
    return pieces
