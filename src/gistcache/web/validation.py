"""The domain's input rules (``domain.requests``) for a path and a query: a broken rule
becomes the problem the API answers with. (The search body is checked by its model,
``web.api.schemas``; the list path never loads it.)"""

from __future__ import annotations

from collections.abc import Mapping

from gistcache.domain import requests
from gistcache.domain.errors import InvalidInput, InvalidLogin
from gistcache.domain.requests import MAX_PAGE, MAX_PER_PAGE
from gistcache.web.problems import Problem

__all__ = ["MAX_PAGE", "MAX_PER_PAGE", "invalid_username", "parse_paging", "validate_username"]


def invalid_username(exc: InvalidLogin, *, field: str | None = None) -> Problem:
    """The problem of a refused login; ``field`` names it when it came in a body."""
    problem = Problem(400, "invalid-username", "Invalid username", exc.detail)
    if field is not None:
        problem.extra["field"] = field
    return problem


def validate_username(raw: str) -> str:
    try:
        return requests.validate_username(raw)
    except InvalidLogin as exc:
        raise invalid_username(exc) from None


def parse_paging(query: Mapping[str, str]) -> tuple[int, int] | None:
    """``(page, per_page)`` when the client asked for one slice, else None for the whole list."""
    try:
        return requests.parse_paging(query)
    except InvalidInput as exc:
        raise Problem(
            400, "invalid-query", f"Invalid {exc.field}", exc.detail, parameter=exc.field
        ) from None
