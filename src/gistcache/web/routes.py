"""URL map. Fixed paths are registered before the catch-all ``/{username}``."""

from __future__ import annotations

from aiohttp import web

from gistcache.web import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/ping", handlers.ping, name="ping")
    app.router.add_get("/healthz", handlers.healthz, name="healthz")
    app.router.add_get("/readyz", handlers.readyz, name="readyz")
    app.router.add_get("/metrics", handlers.metrics, name="metrics")
    app.router.add_get("/openapi.json", handlers.openapi, name="openapi")
    app.router.add_get("/api/v1/users/{username}/gists", handlers.list_gists, name="user-gists")
    app.router.add_post("/api/v1/search", handlers.search, name="search")
    app.router.add_get("/api/v1/search/{request_id}", handlers.search_status, name="search-status")
    app.router.add_get(
        "/api/v1/search_result/{request_id}", handlers.search_result, name="search-result"
    )
    app.router.add_get("/{username}", handlers.list_gists, name="user")
