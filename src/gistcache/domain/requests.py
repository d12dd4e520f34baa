"""What a client may ask, and the input rules every entry point (the API, the command
line) applies before anything reaches the cache or GitHub. A broken rule raises
``InvalidInput`` naming the field; a pattern RE2 refuses raises ``PatternError``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gistcache.domain.errors import InvalidInput, InvalidLogin, InvalidParameter
from gistcache.domain.matching import MAX_PATTERN_LENGTH, Pattern

MAX_CONTEXT = 10
MAX_GLOB_LENGTH = 255

# GitHub logins: letters, digits and hyphens; older and managed accounts may hold "_".
USERNAME_PATTERN = "^[A-Za-z0-9_-]{1,39}$"  # as JSON Schema and OpenAPI write it
_USERNAME_RE = re.compile(USERNAME_PATTERN.strip("^$"), re.ASCII)
MAX_USERS = 100  # logins one search (usernames) may name
MAX_PAGE = 100_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


@dataclass(frozen=True, slots=True)
class SearchRequest:
    username: str
    pattern: str
    ignore_case: bool = False
    page: int = 1
    per_page: int = MAX_PER_PAGE
    context: int = 0  # lines before and after each listed line, as grep -C
    literal: bool = False  # the pattern is a fixed string, as grep -F
    filename: str | None = None  # a glob on file names; other files are not searched
    # the pattern as the rules compiled it (search_request); never stored or compared
    compiled: Pattern | None = field(default=None, compare=False, repr=False, kw_only=True)

    def matcher(self) -> Pattern:
        """The pattern compiled: by the rules, or now (a request read back from a job)."""
        if self.compiled is not None:
            return self.compiled
        return Pattern.compile(self.pattern, ignore_case=self.ignore_case, literal=self.literal)

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


@dataclass(frozen=True, slots=True)
class ManySearchRequest:
    """A search of several users' gists: ``usernames`` (as given, in order, no login
    twice whatever its case) or the public members of ``org``; ``search`` holds the
    pattern and its options (its ``username`` is empty), each user's search is
    ``for_user(login)``. Page and per_page apply to each user's matches."""

    usernames: tuple[str, ...]
    org: str | None
    search: SearchRequest
    # search even when the users would need more GitHub requests than it has left
    proceed_cached: bool = False

    @property
    def pattern(self) -> str:
        return self.search.pattern

    def for_user(self, login: str) -> SearchRequest:
        return replace(self.search, username=login)

    def to_json(self) -> dict[str, Any]:
        # a job stores this; from_json reads it back (a stored single search has neither
        # usernames nor org)
        values = self.search.to_json()
        del values["username"]
        values["proceed_cached"] = self.proceed_cached
        if self.org is not None:
            return {**values, "org": self.org}
        return {**values, "usernames": list(self.usernames)}

    @staticmethod
    def from_json(stored: dict[str, Any]) -> ManySearchRequest:
        values = dict(stored)
        usernames = tuple(values.pop("usernames", ()))
        org = values.pop("org", None)
        proceed = bool(values.pop("proceed_cached", False))
        return ManySearchRequest(usernames, org, SearchRequest("", **values), proceed)


def stored_request(stored: dict[str, Any]) -> SearchRequest | ManySearchRequest:
    """A request as a job stored it (``to_json``): one user's search, or several users'."""
    if "usernames" in stored or "org" in stored:
        return ManySearchRequest.from_json(stored)
    return SearchRequest(**stored)


def many_search_request(
    usernames: object,
    org: object,
    pattern: str | None,
    *,
    proceed_cached: bool = False,
    **options: Any,
) -> ManySearchRequest:
    """A many-user search whose values broke no rule: exactly one of ``usernames`` (a
    list of 1 to ``MAX_USERS`` logins; duplicates, in any case, are ignored) and ``org``
    (None: not given), then the single search's rules on the pattern and options."""
    if (usernames is None) == (org is None):
        raise InvalidInput("usernames", "give exactly one of username, usernames or org")
    logins: tuple[str, ...] = ()
    if org is not None:
        try:
            org = validate_username(org)
        except InvalidLogin:
            raise InvalidLogin(
                "org",
                "org is an organisation's login: 1 to 39 characters of ASCII letters, "
                "digits, '-' and '_'",
            ) from None
    else:
        if not isinstance(usernames, list | tuple) or not 1 <= len(usernames) <= MAX_USERS:
            raise InvalidInput("usernames", f"usernames must be a list of 1 to {MAX_USERS} logins")
        seen: dict[str, str] = {}
        for raw in usernames:
            if not isinstance(raw, str) or not _USERNAME_RE.fullmatch(raw):
                raise InvalidLogin(
                    "usernames",
                    f"{raw!r} is not a username: 1 to 39 characters of ASCII letters, "
                    "digits, '-' and '_'",
                )
            seen.setdefault(raw.lower(), raw)
        logins = tuple(seen.values())
    # the single search's rules, on a stand-in login
    search = replace(search_request("-", pattern, **options), username="")
    return ManySearchRequest(logins, org if isinstance(org, str) else None, search, proceed_cached)


def validate_username(raw: object) -> str:
    """A string that can be a GitHub login, else ``InvalidLogin``."""
    if not isinstance(raw, str) or not _USERNAME_RE.fullmatch(raw):
        raise InvalidLogin(
            "username", "a username is 1 to 39 characters of ASCII letters, digits, '-' and '_'"
        )
    return raw


def parse_paging(query: Mapping[str, str]) -> tuple[int, int] | None:
    """``(page, per_page)`` when the client asked for one slice, else None for the whole
    list; ``InvalidParameter`` naming the query parameter that broke its rule."""
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
        raise InvalidParameter(name, f"{name} must be an integer from {low} to {high}")
    return int(raw)


# the bounds of a search's numbers, inclusive
SEARCH_BOUNDS: dict[str, tuple[int, int]] = {
    "page": (1, MAX_PAGE),
    "per_page": (1, MAX_PER_PAGE),
    "context": (0, MAX_CONTEXT),
}


def search_request(
    username: str | None,
    pattern: str | None,
    *,
    ignore_case: bool = False,
    page: int = 1,
    per_page: int = MAX_PER_PAGE,
    context: int = 0,
    literal: bool = False,
    filename: str | None = None,
) -> SearchRequest:
    """A search request whose values broke no rule, checked in the order a client is
    told of them: the username, the pattern, the numbers, the file-name glob. Both the
    username and the pattern are required: None is one left out. The types are the
    caller's to ensure (the API's body model, the page's form, the command line's
    parser)."""
    if username is None:
        raise InvalidInput("username", "username is required")
    login = validate_username(username)
    if pattern is None:
        raise _blank_pattern()
    compiled = validate_pattern(pattern, ignore_case=ignore_case, literal=literal)
    return SearchRequest(
        login,
        pattern,
        ignore_case,
        check_bound("page", page),
        check_bound("per_page", per_page),
        check_bound("context", context),
        literal,
        validate_glob(filename),
        compiled=compiled,
    )


def _blank_pattern() -> InvalidInput:
    return InvalidInput("pattern", "pattern is required and must not be blank")


def validate_pattern(raw: str, *, ignore_case: bool = False, literal: bool = False) -> Pattern:
    """A pattern that is not blank, not too long, and that RE2 compiles (else a
    ``PatternError``, a failure of its own), compiled."""
    if not raw.strip():
        raise _blank_pattern()
    if len(raw) > MAX_PATTERN_LENGTH:
        raise InvalidInput("pattern", f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    return Pattern.compile(raw, ignore_case=ignore_case, literal=literal)


def check_bound(name: str, value: int) -> int:
    """``value`` when it lies within ``SEARCH_BOUNDS[name]``."""
    low, high = SEARCH_BOUNDS[name]
    if not low <= value <= high:
        raise InvalidInput(name, f"{name} must be from {low} to {high}")
    return value


# validate_glob's rule as a regular expression (for JSON Schema): a character that is
# not blank, and no "/", control character or lone surrogate anywhere
_GLOB_CHAR = r"[^/\x00-\x1f\x7f\ud800-\udfff]"
GLOB_PATTERN = rf"^{_GLOB_CHAR}*[^/\x00-\x1f\x7f\s\ud800-\udfff]{_GLOB_CHAR}*$"
NOT_BLANK_PATTERN = r"\S"  # a pattern's rule: some character that is not white space


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
