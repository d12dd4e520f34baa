"""Input rules shared by every entry point."""

from __future__ import annotations

import re
from collections.abc import Mapping

from gistcache.web.problems import Problem

# GitHub logins: letters, digits and hyphens; older and managed accounts may hold "_".
_USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{1,39}", re.ASCII)
MAX_PAGE = 100_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


def validate_username(raw: str) -> str:
    if not _USERNAME_RE.fullmatch(raw):
        raise Problem(
            400,
            "invalid-username",
            "Invalid username",
            "a username is 1 to 39 characters of ASCII letters, digits, '-' and '_'",
        )
    return raw


def parse_paging(query: Mapping[str, str]) -> tuple[int, int] | None:
    """``(page, per_page)`` when the client asked for one slice, else None for the whole list."""
    if "page" not in query and "per_page" not in query:
        return None
    page = _bounded_int(query, "page", 1, 1, MAX_PAGE)
    per_page = _bounded_int(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    return page, per_page


def _bounded_int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not low <= int(raw) <= high:
        raise Problem(
            400,
            "invalid-query",
            f"Invalid {name}",
            f"{name} must be an integer from {low} to {high}",
            parameter=name,
        )
    return int(raw)
