"""The GitHub-compatible API as a sub-application, mounted at ``/api/v3`` (GitHub
Enterprise's base path, which clients take as a base URL): its own error shape
throughout, and GitHub's ``x-ratelimit-*`` headers on every answer."""

from __future__ import annotations

from aiohttp import web

from gistcache.web.app_keys import ERROR_RENDERER, GITHUB_ACCOUNT
from gistcache.web.ghcompat.errors import render_in_github_shape
from gistcache.web.ghcompat.routes import setup_routes
from gistcache.web.ghcompat.versions import HEADER, api_version


async def stamp_rate_limit(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the client's budget of GitHub API requests
    (``GISTCACHE_CLIENT_GITHUB_BUDGET``) in GitHub's headers, as the request left it so
    far; with the budget off there is no limit, and, as GitHub Enterprise with rate
    limiting off, no such headers."""
    account = request.get(GITHUB_ACCOUNT)
    if account is None:
        return
    budget = account.budget()
    response.headers["x-ratelimit-limit"] = str(budget.limit)
    response.headers["x-ratelimit-remaining"] = str(budget.remaining)
    response.headers["x-ratelimit-reset"] = str(budget.reset)
    response.headers["x-ratelimit-used"] = str(budget.used)
    response.headers["x-ratelimit-resource"] = "core"


async def vary_on_version(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an answer's shape depends on the API version asked for,
    so a shared cache must not give one version's answer for another."""
    response.headers.add("Vary", HEADER)


def create_ghcompat() -> web.Application:
    # the API version is checked first, on every path (GitHub answers an unsupported one
    # with a 400 wherever it is sent)
    app = web.Application(middlewares=[api_version])
    # every failure here (unknown path, wrong method, the client rate limit's 429, a bug)
    # is rendered by the root app's problems middleware through this, in GitHub's shape
    app[ERROR_RENDERER] = render_in_github_shape
    app.on_response_prepare.append(stamp_rate_limit)
    app.on_response_prepare.append(vary_on_version)
    setup_routes(app)
    return app
