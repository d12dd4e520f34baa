"""Errors in GitHub's shape, ``{"message", "documentation_url", "status"}``, for every
failure of the GitHub-compatible API (never problem+json: GitHub's clients read
``message``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gistcache.web.failures import Problem

DOCS = "https://docs.github.com/rest"
# GitHub's words for the statuses whose message is always the same
MESSAGES = {
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Validation Failed",
    500: "Server Error",
}


def github_error(
    status: int,
    message: str,
    *,
    doc: str = "",
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> web.Response:
    """An answer in GitHub's error shape."""
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    body["documentation_url"] = DOCS + doc
    body["status"] = str(status)  # GitHub writes it as a string
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def render_in_github_shape(request: web.Request, problem: Problem) -> web.Response:
    """A problem (gistcache's own description of a failure) in GitHub's error shape: the
    status and headers (``Retry-After``, ``Allow``) stay, the words become GitHub's."""
    if problem.status == 429:
        message = f"API rate limit exceeded: {problem.detail}"
    elif problem.status >= 500 and problem.status != 500:
        message = problem.detail  # what failed upstream (never a secret, never a trace)
    else:
        message = MESSAGES.get(problem.status, problem.title)
    return github_error(problem.status, message, headers=problem.headers)
