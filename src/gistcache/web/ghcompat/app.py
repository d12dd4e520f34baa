"""The GitHub-compatible API as a sub-application, mounted at ``/api/v3`` (GitHub
Enterprise's base path, which clients take as a base URL): its own error shape
throughout, and GitHub's ``x-ratelimit-*`` headers on every answer."""

from __future__ import annotations

from aiohttp import web

from gistcache.keys import ERROR_RENDERER, GITHUB_ACCOUNT
from gistcache.web.ghcompat.errors import render_problem
from gistcache.web.ghcompat.handlers import PREFIX
from gistcache.web.ghcompat.routes import setup_routes

GHCOMPAT_PREFIX = PREFIX


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


def create_ghcompat() -> web.Application:
    app = web.Application()
    # every failure here (unknown path, wrong method, the client rate limit's 429, a bug)
    # is rendered by the root app's problems middleware through this, in GitHub's shape
    app[ERROR_RENDERER] = render_problem
    app.on_response_prepare.append(stamp_rate_limit)
    setup_routes(app)
    return app
