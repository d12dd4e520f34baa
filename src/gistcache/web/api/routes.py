"""URL map. Fixed paths are registered before the catch-all ``/{username}``."""

from __future__ import annotations

from aiohttp import web

from gistcache.web.api import feeds, health, lists, openapi, search, watches


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/ping", health.ping, name="ping")
    app.router.add_get("/healthz", health.healthz, name="healthz")
    app.router.add_get("/readyz", health.readyz, name="readyz")
    app.router.add_get("/metrics", health.metrics, name="metrics")
    app.router.add_get("/openapi.json", openapi.document, name="openapi")
    app.router.add_get("/api/v1/users/{username}/gists", lists.list_gists, name="user-gists")
    app.router.add_post("/api/v1/search", search.search, name="search")
    app.router.add_get("/api/v1/search/{job_id}", search.search_status, name="search-status")
    app.router.add_get("/api/v1/search_result/{job_id}", search.search_result, name="search-result")
    app.router.add_post("/api/v1/watches", watches.create, name="watches-create")
    app.router.add_get("/api/v1/watches", watches.list_watches, name="watches")
    app.router.add_get("/api/v1/watches/{watch_id}", watches.get, name="watch")
    app.router.add_delete("/api/v1/watches/{watch_id}", watches.delete, name="watch-delete")
    app.router.add_get(
        "/api/v1/watches/{watch_id}/deliveries", watches.deliveries, name="watch-deliveries"
    )
    app.router.add_get("/api/v1/watches/{watch_id}/feed.atom", feeds.feed, name="watch-feed")
    app.router.add_get("/api/v1/watches/{watch_id}/events", feeds.events, name="watch-events")
    app.router.add_get("/{username}", lists.list_gists, name="user")
