"""Input rules shared by every entry point."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gistcache.domain.matching import MAX_PATTERN_LENGTH, compile_pattern
from gistcache.services.search import SearchRequest
from gistcache.web.problems import Problem

# GitHub logins: letters, digits and hyphens; older and managed accounts may hold "_".
_USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{1,39}", re.ASCII)
MAX_PAGE = 100_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


def validate_username(raw: str) -> str:
    if not isinstance(raw, str) or not _USERNAME_RE.fullmatch(raw):
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


SEARCH_FIELDS: dict[str, type] = {
    "username": str,
    "pattern": str,
    "ignore_case": bool,
    "page": int,
    "per_page": int,
    "async": bool,
}


def _invalid_body(detail: str, **extra: Any) -> Problem:
    return Problem(400, "invalid-body", "Invalid search request", detail, **extra)


def parse_search(body: Any) -> tuple[SearchRequest, bool]:
    """A validated search request and whether it asked to run as a job."""
    if not isinstance(body, dict):
        raise _invalid_body("the body must be a JSON object")
    unknown = sorted(set(body) - set(SEARCH_FIELDS))
    if unknown:
        raise _invalid_body(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    for name, kind in SEARCH_FIELDS.items():
        if name not in body:
            continue
        value = body[name]
        # null is no value of any field; JSON true is no page number (Python's bool is)
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong:
            raise _invalid_body(f"{name} must be {_TYPE_NAMES[kind]}", field=name)
    if "username" not in body:
        raise _invalid_body("username is required", field="username")
    username = validate_username(body["username"])
    pattern = body.get("pattern")
    if pattern is None or not pattern.strip():
        raise _invalid_body("pattern is required and must not be blank", field="pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise _invalid_body(
            f"pattern is longer than {MAX_PATTERN_LENGTH} characters", field="pattern"
        )
    ignore_case = bool(body.get("ignore_case", False))
    compile_pattern(pattern, ignore_case=ignore_case)  # a PatternError is a 400 of its own
    page = body.get("page", 1)
    per_page = body.get("per_page", MAX_PER_PAGE)
    if not 1 <= page <= MAX_PAGE:
        raise _invalid_body(f"page must be from 1 to {MAX_PAGE}", field="page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise _invalid_body(f"per_page must be from 1 to {MAX_PER_PAGE}", field="per_page")
    request = SearchRequest(username, pattern, ignore_case, page, per_page)
    return request, bool(body.get("async", False))


_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer"}
