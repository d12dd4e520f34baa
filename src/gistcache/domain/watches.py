"""What a watch is made of (the users or the organisation it watches, the search and its
options, how often it runs, where its events are posted) and the input rules a new
watch meets: a broken rule raises ``InvalidInput`` naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

from gistcache.domain.errors import InvalidInput
from gistcache.domain.requests import (
    check_bound,
    validate_glob,
    validate_pattern,
    validate_username,
)

MAX_USERS = 100  # users one watch searches (an organisation's first members beyond)
MAX_WATCHES = 100  # watches one API token may have
MIN_INTERVAL = 60  # seconds
MAX_INTERVAL = 86_400
DEFAULT_INTERVAL = 300
MAX_SECRET = 256
MAX_URL = 2048
FIELDS = frozenset(
    {
        "usernames",
        "username",
        "org",
        "pattern",
        "ignore_case",
        "literal",
        "filename",
        "context",
        "interval",
        "webhook",
        "report_existing",
    }
)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A watch as asked for: ``usernames`` (lower-cased, in order, no duplicates) or
    ``org``, the search's fields, and how it runs and tells."""

    usernames: tuple[str, ...]
    org: str | None
    pattern: str
    ignore_case: bool = False
    literal: bool = False
    filename: str | None = None
    context: int = 0
    interval: int = DEFAULT_INTERVAL
    report_existing: bool = False
    webhook: Webhook | None = None

    def search_json(self) -> dict[str, Any]:
        """The search's part, as a watch stores it."""
        return {
            "pattern": self.pattern,
            "ignore_case": self.ignore_case,
            "literal": self.literal,
            "filename": self.filename,
            "context": self.context,
        }


def watch_spec(body: object) -> WatchSpec:
    """A watch whose fields broke no rule, from the JSON body of ``POST /api/v1/watches``."""
    if not isinstance(body, Mapping):
        raise InvalidInput(None, "the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidInput(None, f"unknown fields: {', '.join(unknown)}", unknown=unknown)
    usernames, org = _who(body)
    pattern = body.get("pattern")
    if not isinstance(pattern, str):
        raise InvalidInput("pattern", "pattern is required and must be a string")
    ignore_case = _flag(body, "ignore_case")
    literal = _flag(body, "literal")
    validate_pattern(pattern, ignore_case=ignore_case, literal=literal)
    filename = body.get("filename")
    if filename is not None and not isinstance(filename, str):
        raise InvalidInput("filename", "filename must be a string")
    return WatchSpec(
        usernames,
        org,
        pattern,
        ignore_case,
        literal,
        validate_glob(filename),
        check_bound("context", _integer(body, "context", 0)),
        _interval(body),
        _flag(body, "report_existing"),
        _webhook(body.get("webhook")),
    )


def _who(body: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    given = [name for name in ("usernames", "username", "org") if body.get(name) is not None]
    if len(given) != 1:
        raise InvalidInput(
            "usernames", "give exactly one of usernames (a list of logins), username or org"
        )
    if given[0] == "org":
        try:
            return (), validate_username(body["org"]).lower()
        except InvalidInput:
            raise InvalidInput("org", "org must be a GitHub organisation's login") from None
    raw = body[given[0]]
    logins = [raw] if given[0] == "username" else raw
    if not isinstance(logins, list) or not 1 <= len(logins) <= MAX_USERS:
        raise InvalidInput("usernames", f"usernames must be a list of 1 to {MAX_USERS} logins")
    seen: dict[str, None] = {}
    for login in logins:
        try:
            seen.setdefault(validate_username(login).lower())
        except InvalidInput:
            raise InvalidInput(given[0], f"{login!r} is not a GitHub login") from None
    return tuple(seen), None


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(name, f"{name} must be true or false")
    return value


def _integer(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(name, f"{name} must be an integer")
    return value


def _interval(body: Mapping[str, Any]) -> int:
    value = _integer(body, "interval", DEFAULT_INTERVAL)
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise InvalidInput(
            "interval", f"interval must be from {MIN_INTERVAL} to {MAX_INTERVAL} seconds"
        )
    return value


def _webhook(raw: object) -> Webhook | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - {"url", "secret"}:
        raise InvalidInput("webhook", "webhook must be an object with url and secret")
    url, secret = raw.get("url"), raw.get("secret")
    if not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET:
        raise InvalidInput("webhook", f"webhook.secret must be 1 to {MAX_SECRET} characters")
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise InvalidInput("webhook", "webhook.url must be an http(s) URL")
    try:
        parsed = URL(url)
        parsed.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        parsed = None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.host
        or parsed.user is not None
        or parsed.fragment
    ):
        raise InvalidInput("webhook", "webhook.url must be an http(s) URL without credentials")
    return Webhook(url, secret)
