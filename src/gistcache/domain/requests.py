"""What a client may ask, and the input rules every entry point (the API, the command
line) applies before anything reaches the cache or GitHub. A broken rule raises
``InvalidInput`` naming the field; a pattern RE2 refuses raises ``PatternError``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gistcache.domain.errors import InvalidInput, InvalidLogin
from gistcache.domain.matching import MAX_PATTERN_LENGTH, compile_pattern

MAX_CONTEXT = 10
MAX_GLOB_LENGTH = 255

# GitHub logins: letters, digits and hyphens; older and managed accounts may hold "_".
_USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{1,39}", re.ASCII)
MAX_PAGE = 100_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


@dataclass(frozen=True, slots=True)
class SearchRequest:
    username: str
    pattern: str
    ignore_case: bool = False
    page: int = 1
    per_page: int = 100
    context: int = 0  # lines before and after each listed line, as grep -C
    literal: bool = False  # the pattern is a fixed string, as grep -F
    filename: str | None = None  # a glob on file names; other files are not searched

    def to_json(self) -> dict[str, Any]:
        # a job stores this; SearchRequest(**stored) reads requests stored before a
        # field existed, with the field's default
        return {
            "username": self.username,
            "pattern": self.pattern,
            "ignore_case": self.ignore_case,
            "page": self.page,
            "per_page": self.per_page,
            "context": self.context,
            "literal": self.literal,
            "filename": self.filename,
        }


def validate_username(raw: object) -> str:
    if not isinstance(raw, str) or not _USERNAME_RE.fullmatch(raw):
        raise InvalidLogin(
            "username", "a username is 1 to 39 characters of ASCII letters, digits, '-' and '_'"
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
        raise InvalidInput(name, f"{name} must be an integer from {low} to {high}")
    return int(raw)


SEARCH_FIELDS: dict[str, type] = {
    "username": str,
    "pattern": str,
    "ignore_case": bool,
    "page": int,
    "per_page": int,
    "context": int,
    "literal": bool,
    "filename": str,
    "async": bool,
}
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer"}


def parse_search(body: Any) -> tuple[SearchRequest, bool]:
    """A validated search request (a decoded JSON body) and whether it asked to run as a
    job."""
    if not isinstance(body, dict):
        raise InvalidInput(None, "the body must be a JSON object")
    unknown = sorted(set(body) - set(SEARCH_FIELDS))
    if unknown:
        raise InvalidInput(None, f"unknown field(s): {', '.join(unknown)}", unknown=unknown)
    for name, kind in SEARCH_FIELDS.items():
        if name not in body:
            continue
        value = body[name]
        # null is no value of any field; JSON true is no page number (Python's bool is)
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong:
            raise InvalidInput(name, f"{name} must be {_TYPE_NAMES[kind]}")
    if "username" not in body:
        raise InvalidInput("username", "username is required")
    username = validate_username(body["username"])
    pattern = body.get("pattern")
    if pattern is None or not pattern.strip():
        raise InvalidInput("pattern", "pattern is required and must not be blank")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidInput("pattern", f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    ignore_case = bool(body.get("ignore_case", False))
    literal = bool(body.get("literal", False))
    # a PatternError is a failure of its own
    compile_pattern(pattern, ignore_case=ignore_case, literal=literal)
    page = body.get("page", 1)
    per_page = body.get("per_page", MAX_PER_PAGE)
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("page", f"page must be from 1 to {MAX_PAGE}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput("per_page", f"per_page must be from 1 to {MAX_PER_PAGE}")
    context = body.get("context", 0)
    if not 0 <= context <= MAX_CONTEXT:
        raise InvalidInput("context", f"context must be from 0 to {MAX_CONTEXT}")
    filename = validate_glob(body.get("filename"))
    request = SearchRequest(
        username, pattern, ignore_case, page, per_page, context, literal, filename
    )
    return request, bool(body.get("async", False))


def validate_glob(raw: str | None) -> str | None:
    """A file-name glob (``*.py``, ``test_*``, ``[ab]?.md``) or None for every file."""
    if raw is None:
        return None
    if not raw.strip():
        raise InvalidInput("filename", "filename must be a glob such as *.py, not blank")
    if len(raw) > MAX_GLOB_LENGTH:
        raise InvalidInput("filename", f"filename is longer than {MAX_GLOB_LENGTH} characters")
    if "/" in raw or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in raw):
        raise InvalidInput(
            "filename",
            "filename is a glob on file names: no '/', control characters or lone surrogates",
        )
    return raw
