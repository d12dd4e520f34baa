"""Prometheus metrics of one application instance (its own registry, so that several
apps in one process, as in the tests, never clash)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator

import prometheus_client.metrics
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import INF, floatToGoString

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Series:
    """One label set's count (a counter's), or its buckets and sum (a
    histogram's), with when it was first counted (the ``_created`` sample)."""

    __slots__ = ("buckets", "count", "created", "sum")

    def __init__(self, buckets: int = 0) -> None:
        self.count = 0
        self.sum = 0.0
        self.buckets = [0] * buckets
        self.created = time.time()


class HttpMetrics(Collector):
    """The HTTP metrics the front door counts on every answer (requests by method, route
    and status; their durations by method and route; the ``X-Cache`` results), in plain
    dictionaries read when ``/metrics`` is scraped. prometheus_client's own metrics take
    a lock on every ``inc`` and ``observe``, three of them a request on the cached list's
    few microseconds; these are only ever changed on the event loop's thread, so need
    none. The exposition is what ``Counter`` and ``Histogram`` of the same names,
    labels, help and buckets give."""

    def __init__(self) -> None:
        # one entry per (method, route, status): the request counter's series and the
        # latency histogram's (shared by the statuses of a method and route); the label
        # sets are bounded (methods, routes, statuses), so is this
        self._answers: dict[tuple[str, str, int], tuple[_Series, _Series]] = {}
        self._latency: dict[tuple[str, str], _Series] = {}
        self._cache: dict[str, _Series] = {}
        self._bounds = [float(b) for b in LATENCY_BUCKETS]
        # the ``le`` labels, as prometheus_client writes them ("1.0", "+Inf")
        self._le = [floatToGoString(b) for b in [*self._bounds, INF]]  # type: ignore[no-untyped-call]

    def answered(
        self, method: str, route: str, status: int, cache: str | None, duration: float
    ) -> None:
        """Count one answer (``cache``: its ``X-Cache`` header, if any)."""
        found = self._answers.get((method, route, status))
        if found is None:
            found = self._new(method, route, status)
        count, latency = found
        count.count += 1
        # the first bucket whose bound is at least the duration; past the last, +Inf
        latency.buckets[bisect_left(self._bounds, duration)] += 1
        latency.sum += duration
        if cache is not None:
            result = self._cache.get(cache)
            if result is None:
                result = self._cache[cache] = _Series()
            result.count += 1

    def _new(self, method: str, route: str, status: int) -> tuple[_Series, _Series]:
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[(method, route)] = _Series(len(self._bounds) + 1)
        found = self._answers[(method, route, status)] = (_Series(), latency)
        return found

    def describe(self) -> Iterator[Metric]:
        return iter(self._families(filled=False))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(filled=True))

    def _families(self, *, filled: bool) -> list[Metric]:
        requests = Metric("gistcache_http_requests", HTTP_REQUESTS_HELP, "counter")
        latency = Metric("gistcache_http_request_duration_seconds", HTTP_LATENCY_HELP, "histogram")
        cache = Metric("gistcache_cache_results", CACHE_RESULTS_HELP, "counter")
        if not filled:
            return [requests, latency, cache]
        created = prometheus_client.metrics._use_created
        # (scrapes run on the event loop too; the copies keep one elsewhere safe)
        for (method, route, status), (series, _) in list(self._answers.items()):
            labels = {"method": method, "route": route, "status": str(status)}
            _counter_samples(requests, labels, series, created)
        name = latency.name
        for (method, route), series in list(self._latency.items()):
            labels = {"method": method, "route": route}
            total = 0
            for le, n in zip(self._le, list(series.buckets), strict=True):
                total += n
                latency.samples.append(Sample(name + "_bucket", {**labels, "le": le}, float(total)))
            latency.samples.append(Sample(name + "_count", labels, float(total)))
            latency.samples.append(Sample(name + "_sum", labels, series.sum))
            if created:
                latency.samples.append(Sample(name + "_created", labels, series.created))
        for result, series in list(self._cache.items()):
            _counter_samples(cache, {"result": result}, series, created)
        return [requests, latency, cache]


def _counter_samples(
    family: Metric, labels: dict[str, str], series: _Series, created: bool
) -> None:
    family.samples.append(Sample(family.name + "_total", labels, float(series.count)))
    if created:
        family.samples.append(Sample(family.name + "_created", labels, series.created))


HTTP_REQUESTS_HELP = "HTTP requests answered, by route and status"
HTTP_LATENCY_HELP = "Time to answer an HTTP request"
CACHE_RESULTS_HELP = "Gist list answers by how they were obtained (the X-Cache header)"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # the HTTP requests' counts, durations and cache results: counted without locks
        self.http = HttpMetrics()
        self.registry.register(self.http)
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
