"""URL map of the GitHub-compatible API (paths relative to its ``/api/v3`` mount)."""

from __future__ import annotations

from aiohttp import web

from gistcache.web.ghcompat import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/users/{username}", handlers.get_user, name="gh-user")
    app.router.add_get("/users/{username}/gists", handlers.list_for_login, name="gh-user-gists")
    app.router.add_get(
        "/user/{user_id:[0-9]{1,19}}/gists", handlers.list_for_id, name="gh-id-gists"
    )
    app.router.add_get("/gists/{gist_id}", handlers.get_gist, name="gh-gist")
    app.router.add_get("/rate_limit", handlers.rate_limit, name="gh-rate-limit")
