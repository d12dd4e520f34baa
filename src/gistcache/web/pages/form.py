"""The search form: what the person filled in, echoed back valid or not, and the search
it asks for by the domain's input rules (a broken rule in the form's words)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gistcache.domain import requests
from gistcache.domain.errors import InvalidInput
from gistcache.domain.requests import ManySearchRequest, SearchRequest

# the form's fields, by the request's field names
FORM_NAMES = {
    "username": "user",
    "usernames": "user",
    "org": "user",
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


def several(user: str) -> tuple[list[str] | None, str | None] | None:
    """What a user field naming more than one user asks for: ``(logins, None)`` for
    several logins (separated by commas or spaces), ``(None, org)`` for ``org:NAME``;
    None for one user."""
    if user.lower().startswith("org:"):
        return None, user[4:].strip()
    logins = [login for login in user.replace(",", " ").split() if login]
    return (logins, None) if len(logins) > 1 else None


def parse_form(query: Mapping[str, str]) -> tuple[Form, SearchRequest | ManySearchRequest]:
    """The form, and the search it asks for by the domain's input rules (several users'
    when the user field names several, or ``org:NAME``); a FormError (naming the form's
    field, in words) when a rule is broken."""
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
    who = several(form.user)
    try:
        if who is not None:
            return form, requests.many_search_request(
                who[0],
                who[1],
                form.q,
                ignore_case=form.i,
                literal=form.literal,
                context=numbers["context"],
                filename=form.glob or None,
            )
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
    if field in ("usernames", "org"):
        return (
            f"name 1 to {requests.MAX_USERS} GitHub users separated by commas or spaces, "
            f"or org:NAME for an organisation's public members ({LOGIN_RULE})"
        )
    return detail
