"""Prometheus metrics of one application instance (its own registry, so that several
apps in one process, as in the tests, never clash)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        # each request's children of the HTTP metrics, looked up once per label set
        # (``labels()`` checks and locks on every call); the label sets are bounded
        # (methods, routes, statuses), so is this
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._cache: dict[str, Any] = {}
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "gistcache_http_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "gistcache_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.cache_results = Counter(
            "gistcache_cache_results",
            "Gist list answers by how they were obtained (the X-Cache header)",
            ["result"],
            registry=self.registry,
        )
        self.github_requests = Counter(
            "gistcache_github_requests",
            "Requests sent to GitHub, by kind (api, graphql, raw) and status (or error, timeout)",
            ["kind", "status"],
            registry=self.registry,
        )
        # registered once GitHub has said them (``github_rate_limit``): until then they
        # are absent, not 0, which an alert on the budget would take for a spent one
        self._github_rate_known: set[Gauge] = set()
        self.github_rate_remaining = Gauge(
            "gistcache_github_rate_limit_remaining",
            "GitHub API requests left in the current window, as GitHub last said",
            registry=None,
        )
        self.github_rate_reset = Gauge(
            "gistcache_github_rate_limit_reset_timestamp_seconds",
            "When GitHub's current rate-limit window ends (Unix time)",
            registry=None,
        )
        self.github_graphql_points = Counter(
            "gistcache_github_graphql_points",
            "Points of GitHub's GraphQL rate limit spent, as each answer's rateLimit.cost said",
            registry=self.registry,
        )
        self.github_graphql_rate_remaining = Gauge(
            "gistcache_github_graphql_rate_limit_remaining",
            "GitHub GraphQL points left in the current window, as GitHub last said",
            registry=None,
        )
        self.fetched_bytes = Counter(
            "gistcache_content_fetched_bytes",
            "Bytes of gist file contents downloaded",
            registry=self.registry,
        )
        self.search_jobs = Gauge(
            "gistcache_search_jobs",
            "Search jobs in the database, by state",
            ["state"],
            registry=self.registry,
        )
        self.search_jobs_finished = Counter(
            "gistcache_search_jobs_finished",
            "Search jobs this process finished, by outcome",
            ["state"],
            registry=self.registry,
        )
        self.watch_runs = Counter(
            "gistcache_watch_runs",
            "Watch runs this process recorded, by outcome (ok, partial, paused, lost, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.watch_events = Counter(
            "gistcache_watch_events",
            "Match events watches recorded here, by kind (told, baseline)",
            ["kind"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "gistcache_webhook_attempts",
            "Webhook delivery attempts this process made, by outcome (delivered, retry, "
            "failed, refused)",
            ["outcome"],
            registry=self.registry,
        )

    def github_rate_limit(self, remaining: int, reset: float | None) -> None:
        """What GitHub's last answer said of its rate limit."""
        self._said(self.github_rate_remaining, remaining)
        if reset is not None:
            self._said(self.github_rate_reset, reset)

    def github_graphql_remaining(self, remaining: int) -> None:
        """What GitHub's last GraphQL answer said of its points (a budget apart)."""
        self._said(self.github_graphql_rate_remaining, remaining)

    def _said(self, gauge: Gauge, value: float) -> None:
        gauge.set(value)
        if gauge not in self._github_rate_known:
            self._github_rate_known.add(gauge)
            self.registry.register(gauge)

    def http_children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter's and the latency histogram's children for these labels."""
        key = (method, route, status)
        found = self._http.get(key)
        if found is None:
            found = self._http[key] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_latency.labels(method, route),
            )
        return found

    def cache_result(self, result: str) -> Any:
        """The ``cache_results`` counter's child for this ``X-Cache`` value."""
        found = self._cache.get(result)
        if found is None:
            found = self._cache[result] = self.cache_results.labels(result)
        return found
