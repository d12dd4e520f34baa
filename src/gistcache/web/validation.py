"""The domain's input rules (``domain.requests``) for the web layer: a broken rule
becomes the problem the API answers with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gistcache.domain import requests
from gistcache.domain.errors import InvalidInput, InvalidLogin
from gistcache.domain.requests import MAX_PAGE, MAX_PER_PAGE, SearchRequest
from gistcache.web.problems import Problem

__all__ = ["MAX_PAGE", "MAX_PER_PAGE", "parse_paging", "parse_search", "validate_username"]


def _invalid_username(exc: InvalidLogin) -> Problem:
    return Problem(400, "invalid-username", "Invalid username", exc.detail)


def validate_username(raw: str) -> str:
    try:
        return requests.validate_username(raw)
    except InvalidLogin as exc:
        raise _invalid_username(exc) from None


def parse_paging(query: Mapping[str, str]) -> tuple[int, int] | None:
    """``(page, per_page)`` when the client asked for one slice, else None for the whole list."""
    try:
        return requests.parse_paging(query)
    except InvalidInput as exc:
        raise Problem(
            400, "invalid-query", f"Invalid {exc.field}", exc.detail, parameter=exc.field
        ) from None


def parse_search(body: Any) -> tuple[SearchRequest, bool]:
    """A validated search request and whether it asked to run as a job."""
    try:
        return requests.parse_search(body)
    except InvalidLogin as exc:
        raise _invalid_username(exc) from None
    except InvalidInput as exc:
        extra: dict[str, Any] = {}
        if exc.unknown:
            extra["fields"] = list(exc.unknown)
        elif exc.field is not None:
            extra["field"] = exc.field
        raise Problem(400, "invalid-body", "Invalid search request", exc.detail, **extra) from None
