"""What the page says in plain words: how fresh an answer is, when something happened
or may be tried again, why a file was skipped, where a line matched."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from gistcache.domain.results import CacheStatus, GistList, SkipReason

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


def duration(seconds: int) -> str:
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
