"""The benchmark scenarios. Each measures the real server through a socket and
reports its figures beside a baseline measured in the same run, with targets.

A scenario returns ``{"title", "figures", "targets", "rows"}``: ``figures`` holds
every number, ``targets`` each target with its value and whether it was met, and
``rows`` the lines of the markdown table (strings, already formatted).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import (
    TOKEN,
    USER_AGENT,
    Service,
    burst,
    ceiling_body,
    counting,
    generator_info,
    load,
    median,
    memory_kib,
    run_grep,
    run_rg,
    start_server,
    timed_request,
)
from gistcache.domain.matching import FileHits, compile_pattern, scan_chunk
from gistcache.github.graphql import (
    BATCH_BYTES,
    BATCH_FILES,
    BATCH_GISTS,
    BATCHES_AT_ONCE,
    Batch,
    GistAsked,
    plan_batches,
)
from gistcache.settings import Settings
from gistcache.testing.fake_github import bulk_gist_files, huge_text
from gistcache.testing.fake_github.graphql import DEFAULT_FLOOR, DEFAULT_PER_FILE

MIB = 1024 * 1024
FETCH_CONCURRENCY = Settings().fetch_concurrency  # the server's default, set explicitly so
# that the baseline can match it
PER_PAGE = 100  # GitHub's largest list page, which the service asks for
SEARCH_PATTERN = "TODO"
PATTERNS = {  # scenario 6: a literal, an alternation, character classes, a frequent match
    "literal": "TODO",
    "alternation": "FIXME|HACK|XXX",
    "char class": r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+",
    "frequent": r"def [a-z]+_[a-z]+\(self",
}


@dataclass(frozen=True)
class Sizes:
    """What the scenarios run on; SMOKE is a tiny version for the test suite."""

    list_gists: int = 30
    search_gists: int = 300
    growth: tuple[int, ...] = (30, 300, 3000)
    files_per_gist: int = 3
    file_bytes: int = 11_650  # 300 gists x 3 files x 11,650 bytes: 10 MB
    huge_file_mb: int = 200
    herd: int = 200
    concurrency: tuple[int, ...] = (1, 16, 64)
    load_seconds: float = 5.0
    warmup_seconds: float = 1.0
    repeats: int = 5
    stale_ttl: float = 5.0  # the TTL of the server that serves stale lists (scenarios 2, 4)
    stale_repeats: int = 3  # stale warm searches, each after sleeping past the TTL
    fetch_gists: int = 300  # scenario 3's users for each fetch concurrency measured
    fetch_concurrencies: tuple[int, ...] = (8, 16, 32)

    def bulk_users(self) -> list[int]:
        return sorted({self.list_gists, self.search_gists, *self.growth})


FULL = Sizes()
SMOKE = Sizes(
    list_gists=4,
    search_gists=101,  # two list pages
    growth=(4, 20, 101),
    files_per_gist=2,
    file_bytes=1_500,
    huge_file_mb=2,
    herd=50,
    concurrency=(1, 8),
    load_seconds=0.1,
    warmup_seconds=0.05,
    repeats=2,
    stale_ttl=1.0,
    stale_repeats=1,
    fetch_gists=20,
    fetch_concurrencies=(32,),  # one server more: the smoke run stays short
)


def memory_tiers_mb() -> int:
    """The servers' memory tiers at their defaults: hot lists and contents."""
    defaults = Settings()
    return defaults.memory_cache_mb + defaults.content_memory_mb


PEAK_MARGIN_MB = 50  # issue 12: peak at most the starting size + the tiers + this


def login_for(gists: int) -> str:
    return f"bulk{gists}"


def concurrency_login(concurrency: int) -> str:
    """A user like the cold search's, searched cold by a server fetching this many at once."""
    return f"fetch{concurrency}"


def stream_login(gists: int) -> str:
    """A user like the cold search's, searched cold once, streamed (time to first match)."""
    return f"stream{gists}"


def graphql_login(gists: int) -> str:
    """A user like the cold search's, searched cold by a server with GraphQL on."""
    return f"graphql{gists}"


def graphql_stream_login(gists: int) -> str:
    """A user like the cold search's, searched cold once, streamed, with GraphQL on."""
    return f"graphqlstream{gists}"


def pages_for(gists: int) -> int:
    return max(1, math.ceil(gists / PER_PAGE))


@dataclass
class Bench:
    """One run's shared state: where things are, what is already cached."""

    sizes: Sizes
    latency: float
    workdir: Path
    fake: Service
    database_url: str
    http: aiohttp.ClientSession
    ceiling: Service  # the minimal app that serves list bodies from memory
    server: Service | None = None
    searched: set[str] = field(default_factory=set)  # users whose contents are cached
    cold: dict[str, dict[str, Any]] = field(default_factory=dict)  # cold search per user
    on_disk: dict[str, tuple[Path, int, int]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        assert self.server is not None, "no server running"
        return self.server.url

    def server_settings(self, cache_ttl: float, **extra: str | float | int) -> dict[str, Any]:
        """What a benchmarked server runs with beyond the defaults (recorded in results).
        GraphQL is off (every file from its raw URL, the path measured since the first
        runs) unless ``graphql="on"`` is given: scenario 3's GraphQL phase."""
        return {
            "cache_ttl": cache_ttl,
            "graphql": "off",
            "fetch_concurrency": FETCH_CONCURRENCY,
            "max_file_bytes": (self.sizes.huge_file_mb + 1) * MIB,
            # the huge file in one search; every user's contents kept (no eviction timed)
            "search_download_mb": max(128, self.sizes.huge_file_mb + 1),
            "content_cache_mb": 4096,
            "search_timeout": 3600,
            **extra,
        }

    async def start_server(
        self, name: str, cache_ttl: float, **extra: str | float | int
    ) -> Service:
        self.server = await start_server(
            self.workdir,
            name,
            self.database_url,
            self.fake.url,
            **self.server_settings(cache_ttl, **extra),
        )
        return self.server

    async def search(self, login: str, pattern: str = SEARCH_PATTERN) -> Any:
        return await timed_request(
            self.http,
            "POST",
            f"{self.base}/api/v1/search",
            {"username": login, "pattern": pattern},
        )

    async def ensure_searched(self, login: str) -> dict[str, Any]:
        """The cold search of ``login`` (run now unless done): seconds and upstream counts."""
        if login not in self.searched:
            async with counting(self.http, self.fake) as upstream:
                answer = await self.search(login)
            skipped = answer.body["skipped"]
            if skipped:
                raise RuntimeError(f"the cold search of {login} skipped {skipped[:5]}")
            self.searched.add(login)
            self.cold[login] = {
                "seconds": answer.seconds,
                "api_requests": upstream.api,
                "raw_fetches": upstream.raw,
                "graphql_requests": upstream.graphql,
                "raw_refused": upstream.raw_refused,
                "x_cache": answer.headers.get("X-Cache"),
            }
        return self.cold[login]

    def files_on_disk(self, gists: int) -> tuple[Path, int, int]:
        """The bulk user's files written under one directory (the bytes the fake
        serves, computed by the same function): (directory, files, bytes)."""
        login = login_for(gists)
        if login not in self.on_disk:
            root = self.workdir / "files" / login
            total = files = 0
            for g in range(gists):
                folder = root / f"{g:05d}"
                folder.mkdir(parents=True)
                gist_files = bulk_gist_files(
                    login, g, self.sizes.files_per_gist, self.sizes.file_bytes
                )
                for name, data in gist_files.items():
                    (folder / name).write_bytes(data)
                    total += len(data)
                    files += 1
            self.on_disk[login] = (root, files, total)
        return self.on_disk[login]

    async def measure(self, repeats: int, fn: Callable[[], Awaitable[float]]) -> list[float]:
        return [await fn() for _ in range(repeats)]


# --- formatting -------------------------------------------------------------------


def ms(seconds: float) -> str:
    value = seconds * 1000
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:,.2f} s"


def rate(mb_per_s: float) -> str:
    return f"{mb_per_s:,.0f} MB/s" if mb_per_s >= 10 else f"{mb_per_s:,.1f} MB/s"


def row(
    figure: str,
    value: str,
    baseline: str = "",
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    return {"figure": figure, "value": value, "baseline": baseline, "target": target, "met": met}


def target(name: str, wanted: str, value: Any, met: bool) -> dict[str, Any]:
    return {"name": name, "target": wanted, "value": value, "met": met}


# --- 1. cached list ---------------------------------------------------------------


async def cached_list(bench: Bench) -> dict[str, Any]:
    """Default settings (the access log at INFO), then, at the top concurrency, a server
    with the access log off (``GISTCACHE_LOG_LEVEL=WARNING``), each beside the ceiling."""
    sizes = bench.sizes
    login = login_for(sizes.list_gists)
    url = f"{bench.base}/{login}"
    await timed_request(bench.http, "GET", url)  # fills the cache
    body = (await timed_request(bench.http, "GET", url)).body
    raw = await _raw_body(bench.http, url)
    runs = []
    rows = []
    ceiling = bench.ceiling
    ceiling_body(bench.workdir, login, raw)
    generator = generator_info()
    assert bench.server is not None
    at_rest = memory_kib(bench.server.pid)

    async def side_by_side(target_url: str, concurrency: int) -> tuple[Any, Any, float]:
        # the ceiling first, then the service: drift in the machine's load touches both
        top = await load(
            f"{ceiling.url}/{login}", concurrency, sizes.load_seconds, sizes.warmup_seconds
        )
        ours = await load(target_url, concurrency, sizes.load_seconds, sizes.warmup_seconds)
        return top, ours, ours["rps"] / top["rps"]

    def lat(report: dict[str, Any]) -> str:
        return f"{report['latency_ms']['p50']:.1f} / {report['latency_ms']['p99']:.1f} ms"

    async with counting(bench.http, bench.fake) as upstream:
        for concurrency in sizes.concurrency:
            top, ours, ratio = await side_by_side(url, concurrency)
            runs.append(
                {"concurrency": concurrency, "service": ours, "ceiling": top, "ratio": ratio}
            )
            rows.append(
                row(
                    f"c={concurrency}: requests/s",
                    f"{ours['rps']:,.0f} ({ratio:.2f}x ceiling)",
                    f"{top['rps']:,.0f} (ceiling)",
                )
            )
            rows.append(row(f"c={concurrency}: p50 / p99 latency", lat(ours), lat(top)))
    top_run = runs[-1]
    top_c = top_run["concurrency"]
    under_load = memory_kib(bench.server.pid)
    rest_mb, peak_mb = at_rest["VmRSS"] / 1024, under_load["VmHWM"] / 1024
    bound_mb = rest_mb + memory_tiers_mb() + PEAK_MARGIN_MB
    memory_met = peak_mb <= bound_mb
    quiet_server = await start_server(
        bench.workdir,
        "server-quiet",
        bench.database_url,
        bench.fake.url,
        **bench.server_settings(3600, log_level="WARNING"),
    )
    try:
        quiet_url = f"{quiet_server.url}/{login}"
        await timed_request(bench.http, "GET", quiet_url)
        top_q, quiet, quiet_ratio = await side_by_side(quiet_url, top_c)
    finally:
        quiet_server.stop()
    quiet_run = {"concurrency": top_c, "service": quiet, "ceiling": top_q, "ratio": quiet_ratio}
    p99 = top_run["service"]["latency_ms"]["p99"]
    met = top_run["ratio"] >= 0.5
    fast = p99 <= 10.0
    quiet_met = quiet_ratio >= 0.75
    capped = " (capped by the Python load generator)" if generator["capped_by_generator"] else ""
    targets = [
        target(
            f"throughput at concurrency {top_c}, default settings, at least half the "
            "ceiling's" + capped,
            ">= 0.5",
            round(top_run["ratio"], 3),
            met,
        ),
        target(f"p99 at concurrency {top_c}, default settings", "<= 10 ms", p99, fast),
        target(
            f"throughput at concurrency {top_c}, access log off, at least 0.75x the "
            "ceiling's" + capped,
            ">= 0.75",
            round(quiet_ratio, 3),
            quiet_met,
        ),
        target(
            f"peak RSS under c={top_c} at most the resting size + memory tiers + "
            f"{PEAK_MARGIN_MB} MB",
            f"<= {bound_mb:.0f} MB",
            round(peak_mb, 1),
            memory_met,
        ),
        target("no upstream request while fresh", "0", upstream.api + upstream.raw, True),
    ]
    targets[-1]["met"] = targets[-1]["value"] == 0
    rows += [
        row(
            f"c={top_c}: throughput vs ceiling (access log at INFO)",
            f"{top_run['ratio']:.2f}x",
            "",
            "≥ 0.5x",
            met,
        ),
        row(f"c={top_c}: p99 (access log at INFO)", f"{p99:.1f} ms", "", "≤ 10 ms", fast),
        row(
            f"c={top_c}, access log off: requests/s",
            f"{quiet['rps']:,.0f} ({quiet_ratio:.2f}x ceiling)",
            f"{top_q['rps']:,.0f} (ceiling)",
            "≥ 0.75x",
            quiet_met,
        ),
        row(f"c={top_c}, access log off: p50 / p99 latency", lat(quiet), lat(top_q)),
        row(
            f"server RSS at rest / peak under c={top_c}",
            f"{rest_mb:,.0f} MB / {peak_mb:,.0f} MB",
            f"tiers {memory_tiers_mb()} MB (lists + contents, defaults)",
            f"peak ≤ {bound_mb:,.0f} MB",
            memory_met,
        ),
    ]
    if generator["capped_by_generator"]:
        rows.append(
            row(
                "load generator",
                "benchmarks/loadgen.py: capped by its generator (wrk is not on the PATH)",
                f"its own ceiling: {top_run['ceiling']['rps']:,.0f} requests/s "
                "against the minimal app",
            )
        )
    return {
        "title": f"1. cached list, {sizes.list_gists} gists",
        "figures": {
            "user": login,
            "gists": sizes.list_gists,
            "body_bytes": len(raw),
            "items": len(body),
            "seconds_per_run": sizes.load_seconds,
            "generator": generator,
            "capped_by_generator": generator["capped_by_generator"],
            "generator_ceiling_rps": top_run["ceiling"]["rps"],
            "runs": runs,
            "access_log_off": quiet_run,
            "memory": {
                "rss_at_rest_mb": round(rest_mb, 1),
                "peak_rss_mb": round(peak_mb, 1),
                "tiers_mb": memory_tiers_mb(),
                "bound_mb": round(bound_mb, 1),
            },
            "upstream_during_load": {"api": upstream.api, "raw": upstream.raw},
        },
        "targets": targets,
        "rows": rows,
    }


async def _raw_body(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url) as resp:
        return await resp.read()


# --- 3. cold search -----------------------------------------------------------------


async def cold_search(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    gists = sizes.search_gists
    login = login_for(gists)
    if login in bench.searched:
        raise RuntimeError(f"{login} was searched before the cold search")
    cold = await bench.ensure_searched(login)
    download = await direct_download(bench, login)
    want_api, want_raw = pages_for(gists), gists * sizes.files_per_gist
    # what the fetches alone would take at this latency, with no work at all
    floor = (want_api + math.ceil(want_raw / FETCH_CONCURRENCY)) * bench.latency
    mb = download["bytes"] / MIB
    bound = 1.10 if bench.database_url.startswith("sqlite") else 1.15
    ratio = cold["seconds"] / download["seconds"]
    near = ratio <= bound
    targets = [
        target(f"cold search within {bound:.2f}x the same fetches with no storing",
               f"<= {bound:.2f}", round(ratio, 3), near),
        target("API requests (list pages of 100)", str(want_api), cold["api_requests"],
               cold["api_requests"] == want_api),
        target("raw fetches", str(want_raw), cold["raw_fetches"],
               cold["raw_fetches"] == want_raw),
    ]  # fmt: skip
    rows = [
        row(
            f"raw path (GraphQL off): wall time ({mb:.1f} MB in {want_raw} files)",
            secs(cold["seconds"]),
            f"{secs(download['seconds'])} (same fetches, no storing)",
        ),
        row("raw path: wall time vs the fetches alone", f"{ratio:.2f}x", "", f"≤ {bound:.2f}x",
            near),
        row("raw path: API requests", str(cold["api_requests"]), "", str(want_api),
            targets[1]["met"]),
        row("raw path: raw fetches", str(cold["raw_fetches"]), "", str(want_raw),
            targets[2]["met"]),
    ]  # fmt: skip
    first = await _first_streamed_match(bench, stream_login(gists))
    # the list's round trips, one file's download, and 100 ms
    first_bound = (want_api + 1) * bench.latency + 0.1
    first_met = first["first_match_seconds"] is not None and (
        first["first_match_seconds"] <= first_bound
    )
    targets.append(
        target(
            "time to the first streamed match, cold, raw path "
            "(list round trips + one file + 100 ms)",
            f"<= {first_bound:.3f} s",
            first["first_match_seconds"],
            first_met,
        )
    )
    rows.append(
        row(
            "raw path: streamed cold search: first match / done",
            f"{secs(first['first_match_seconds'] or 0)} / {secs(first['done_seconds'])}",
            f"{want_api} list round trips + one file at {ms(bench.latency)} each",
            f"≤ {secs(first_bound)}",
            first_met,
        )
    )
    by_concurrency = await _fetch_concurrencies(bench)
    for point in by_concurrency:
        rows.append(
            row(
                f"raw path, fetch concurrency {point['concurrency']}: cold search of "
                f"{bench.sizes.fetch_gists} gists",
                f"{secs(point['seconds'])} ({point['ratio']:.2f}x)",
                f"{secs(point['baseline_seconds'])} (same fetches, {point['concurrency']} "
                "at once, no storing)",
            )
        )
    via_graphql = await _graphql_path(bench, cold, want_api)
    targets += via_graphql["targets"]
    rows += via_graphql["rows"]
    return {
        "title": f"3. cold search, {gists} gists x {sizes.files_per_gist} files",
        "figures": {
            "user": login,
            "gists": gists,
            "files": want_raw,
            "bytes": download["bytes"],
            "mb": round(mb, 2),
            "pattern": SEARCH_PATTERN,
            "seconds": round(cold["seconds"], 4),
            "api_requests": cold["api_requests"],
            "raw_fetches": cold["raw_fetches"],
            "x_cache": cold["x_cache"],
            "latency_per_upstream_request_s": bench.latency,
            "baseline_direct_download_seconds": round(download["seconds"], 4),
            "latency_floor_seconds": round(floor, 3),
            "fetch_concurrency": FETCH_CONCURRENCY,
            "by_fetch_concurrency": by_concurrency,
            "streamed": first,
            "graphql_requests": cold["graphql_requests"],
            "raw_refused": cold["raw_refused"],
            "path": "raw: every server here but the GraphQL phase's runs with "
            "GISTCACHE_GRAPHQL=off",
            "graphql": via_graphql["figures"],
        },
        "targets": targets,
        "rows": rows,
    }


async def _list_items(bench: Bench, login: str) -> list[dict[str, Any]]:
    """The user's list items, every page, as the fake gives them to a token."""
    headers = {**USER_AGENT, "Authorization": f"Bearer {TOKEN}"}
    items: list[dict[str, Any]] = []
    next_url: str | None = f"{bench.fake.url}/users/{login}/gists?per_page={PER_PAGE}"
    while next_url is not None:
        async with bench.http.get(next_url, headers=headers) as resp:
            resp.raise_for_status()
            items += await resp.json()
            next_url = str(resp.links["next"]["url"]) if "next" in resp.links else None
    return items


def planned_batches(items: Sequence[dict[str, Any]]) -> list[Batch]:
    """The GraphQL requests the server's planner makes of these list items' files
    (github.graphql.plan_batches: at most BATCH_BYTES, BATCH_FILES and BATCH_GISTS a
    batch, spread over up to BATCHES_AT_ONCE that run side by side)."""
    asked = [
        GistAsked(
            item["node_id"],
            item["id"],
            datetime.fromisoformat(item["updated_at"]),
            tuple((name, f["size"]) for name, f in item["files"].items()),
        )
        for item in items
    ]
    plan = plan_batches(asked)
    if plan.left:
        raise RuntimeError(f"{len(plan.left)} gists cannot come through GraphQL")
    return plan.batches


def batch_bound(gists: int, files: int, nbytes: int) -> int:
    """At most this many GraphQL requests for a cold search: the batches the bounds on
    bytes, files and gists need, or the batches run side by side, whichever is more."""
    return max(
        math.ceil(nbytes / BATCH_BYTES),
        math.ceil(files / BATCH_FILES),
        math.ceil(gists / BATCH_GISTS),
        BATCHES_AT_ONCE,
    )


async def graphql_download(bench: Bench, login: str) -> dict[str, Any]:
    """The baseline of the GraphQL path: this process fetches the same list pages, then
    asks the fake for the batches the server's planner makes of them, as many at once
    as the server would, and keeps nothing."""
    headers = {**USER_AGENT, "Authorization": f"Bearer {TOKEN}"}
    slots = asyncio.Semaphore(BATCHES_AT_ONCE)
    total = 0

    async def ask(batch: Batch) -> None:
        nonlocal total
        async with (
            slots,
            bench.http.post(
                f"{bench.fake.url}/graphql", json=batch.request(), headers=headers
            ) as resp,
        ):
            resp.raise_for_status()
            answer = await resp.json()
            if answer.get("errors"):
                raise RuntimeError(f"a batch failed: {answer['errors'][:3]}")
            total += sum(
                len(f["text"].encode())
                for node in answer["data"]["nodes"]
                for f in node["files"]
                if f["text"] is not None
            )

    started = time.perf_counter()
    batches = planned_batches(await _list_items(bench, login))
    await asyncio.gather(*(ask(batch) for batch in batches))
    return {"seconds": time.perf_counter() - started, "bytes": total, "batches": len(batches)}


async def _warm_fake_graphql(bench: Bench) -> None:
    """One GraphQL request to the fake, untimed: it builds GitHub's schema on its first."""
    async with bench.http.post(
        f"{bench.fake.url}/graphql",
        json={"query": "query { rateLimit { remaining } }"},
        headers={**USER_AGENT, "Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        answer = await resp.json()
        if resp.status != 200 or answer.get("errors"):
            raise RuntimeError(f"the fake's /graphql answered {resp.status}: {answer}")


async def _graphql_path(bench: Bench, raw: dict[str, Any], want_api: int) -> dict[str, Any]:
    """A cold user like scenario 3's, searched by a server with GraphQL on (its files'
    texts in batches), beside the raw path's cold search of the same size."""
    sizes = bench.sizes
    gists = sizes.search_gists
    login = graphql_login(gists)
    items = await _list_items(bench, login)
    files = sum(len(item["files"]) for item in items)
    nbytes = sum(f["size"] for item in items for f in item["files"].values())
    batches = planned_batches(items)
    planned = len(batches)
    bound = batch_bound(gists, files, nbytes)
    # the list's round trips, the first batch's answer in the fake's time model, 100 ms
    first_batch = bench.latency + DEFAULT_FLOOR + DEFAULT_PER_FILE * batches[0].files
    first_bound = want_api * bench.latency + first_batch + 0.1
    await _warm_fake_graphql(bench)
    server = await start_server(
        bench.workdir,
        "server-graphql",
        bench.database_url,
        bench.fake.url,
        **bench.server_settings(3600, graphql="on"),
    )
    try:
        async with counting(bench.http, bench.fake) as upstream:
            answer = await timed_request(
                bench.http,
                "POST",
                f"{server.url}/api/v1/search",
                {"username": login, "pattern": SEARCH_PATTERN},
            )
        first = await _first_streamed_match(bench, graphql_stream_login(gists), server.url)
    finally:
        server.stop()
    if answer.body["skipped"]:
        raise RuntimeError(f"the cold search of {login} skipped {answer.body['skipped'][:5]}")
    download = await graphql_download(bench, login)
    if download["bytes"] != nbytes:
        raise RuntimeError(f"the batches gave {download['bytes']} bytes of {nbytes}")
    seconds = answer.seconds
    raw_requests = raw["api_requests"] + raw["raw_fetches"]
    requests = upstream.api + upstream.graphql + upstream.raw
    faster = seconds <= raw["seconds"]
    batched = upstream.graphql == planned <= bound
    none_raw = upstream.raw == 0
    targets = [
        target("GraphQL path: cold search no slower than the raw path's (same run)",
               f"<= {raw['seconds']:.3f} s", round(seconds, 4), faster),
        target(f"GraphQL path: GraphQL requests (the planner's batches, at most {bound})",
               f"{planned} (<= {bound})", upstream.graphql, batched),
        target("GraphQL path: raw fetches", "0", upstream.raw, none_raw),
        target("GraphQL path: API requests (list pages of 100)", str(want_api), upstream.api,
               upstream.api == want_api),
    ]  # fmt: skip
    first_met = first["first_match_seconds"] is not None and (
        first["first_match_seconds"] <= first_bound
    )
    targets.append(
        target(
            "time to the first streamed match, cold, GraphQL path "
            "(list round trips + one batch + 100 ms)",
            f"<= {first_bound:.3f} s",
            first["first_match_seconds"],
            first_met,
        )
    )
    bound_text = (
        f"≤ {bound}: max(⌈bytes / {BATCH_BYTES // 1024} KiB⌉, ⌈files / {BATCH_FILES}⌉, "
        f"{BATCHES_AT_ONCE} side by side)"
    )
    rows = [
        row(f"GraphQL path (GraphQL on): wall time ({nbytes / MIB:.1f} MB in {files} files)",
            f"{secs(seconds)} ({seconds / download['seconds']:.2f}x)",
            f"{secs(download['seconds'])} (same pages and batches, no storing)"),
        row("GraphQL path vs raw path: wall time",
            f"{secs(seconds)} ({seconds / raw['seconds']:.2f}x)",
            f"raw path {secs(raw['seconds'])}", "≤ raw path", faster),
        row("GraphQL path: GraphQL requests / points", f"{upstream.graphql} / {upstream.points}",
            f"planner: {planned} batches", bound_text, batched),
        row("GraphQL path: raw fetches / API requests", f"{upstream.raw} / {upstream.api}", "",
            f"0 / {want_api}", none_raw and targets[3]["met"]),
        row("GraphQL path: streamed cold search: first match / done",
            f"{secs(first['first_match_seconds'] or 0)} / {secs(first['done_seconds'])}",
            f"{want_api} list round trips at {ms(bench.latency)} + one batch of "
            f"{batches[0].files} files ({ms(first_batch)} in the fake's model)",
            f"≤ {secs(first_bound)}", first_met),
        row("GraphQL path vs raw path: upstream requests",
            f"{requests} ({upstream.api} API + {upstream.graphql} GraphQL + {upstream.raw} raw)",
            f"raw path {raw_requests} ({raw['api_requests']} API + {raw['raw_fetches']} raw)"),
    ]  # fmt: skip
    return {
        "figures": {
            "user": login,
            "files": files,
            "bytes": nbytes,
            "seconds": round(seconds, 4),
            "raw_path_seconds": round(raw["seconds"], 4),
            "ratio_to_raw_path": round(seconds / raw["seconds"], 3),
            "baseline_batches_seconds": round(download["seconds"], 4),
            "ratio_to_batches": round(seconds / download["seconds"], 3),
            "api_requests": upstream.api,
            "graphql_requests": upstream.graphql,
            "graphql_points": upstream.points,
            "raw_fetches": upstream.raw,
            "raw_refused": upstream.raw_refused,
            "planned_batches": planned,
            "batch_bound": bound,
            "streamed": first,
            "first_match_bound_seconds": round(first_bound, 3),
            "x_cache": answer.headers.get("X-Cache"),
        },
        "targets": targets,
        "rows": rows,
    }


async def _first_streamed_match(
    bench: Bench, login: str, base: str | None = None
) -> dict[str, Any]:
    """A cold search of ``login`` through the NDJSON stream (of the server at ``base``,
    the bench's own by default): when its first ``match`` event arrived and when
    ``done`` did, from the request's start."""
    started = time.perf_counter()
    first: float | None = None
    done: float | None = None
    events = 0
    async with bench.http.post(
        f"{base or bench.base}/api/v1/search",
        json={"username": login, "pattern": SEARCH_PATTERN},
        headers={"Accept": "application/x-ndjson"},
    ) as resp:
        if resp.status != 200 or not resp.content_type.startswith("application/x-ndjson"):
            raise RuntimeError(f"the stream answered {resp.status} {resp.content_type}")
        async for raw in resp.content:
            if not raw.strip():
                continue
            event = json.loads(raw)
            events += 1
            if event["event"] == "match" and first is None:
                first = time.perf_counter() - started
            elif event["event"] == "error":
                raise RuntimeError(f"the stream failed: {event['problem']}")
            elif event["event"] == "done":
                done = time.perf_counter() - started
    if done is None:
        raise RuntimeError("the stream ended without its done event")
    return {
        "user": login,
        "first_match_seconds": None if first is None else round(first, 4),
        "done_seconds": round(done, 4),
        "events": events,
    }


async def _fetch_concurrencies(bench: Bench) -> list[dict[str, Any]]:
    """A cold search of a user like scenario 3's on a server fetching 8, 16 or 32 files at
    once (each its own server and user, on the same database), beside the same fetches
    made by the harness as many at once."""
    points = []
    for concurrency in bench.sizes.fetch_concurrencies:
        login = concurrency_login(concurrency)
        server = await start_server(
            bench.workdir,
            f"server-fetch{concurrency}",
            bench.database_url,
            bench.fake.url,
            **bench.server_settings(3600, fetch_concurrency=concurrency),
        )
        try:
            async with counting(bench.http, bench.fake) as upstream:
                answer = await timed_request(
                    bench.http,
                    "POST",
                    f"{server.url}/api/v1/search",
                    {"username": login, "pattern": SEARCH_PATTERN},
                )
        finally:
            server.stop()
        if answer.body["skipped"]:
            raise RuntimeError(f"the cold search of {login} skipped {answer.body['skipped'][:5]}")
        baseline = await direct_download(bench, login, concurrency)
        points.append(
            {
                "concurrency": concurrency,
                "seconds": round(answer.seconds, 4),
                "baseline_seconds": round(baseline["seconds"], 4),
                "ratio": round(answer.seconds / baseline["seconds"], 3),
                "api_requests": upstream.api,
                "raw_fetches": upstream.raw,
                "graphql_requests": upstream.graphql,
            }
        )
    return points


async def direct_download(
    bench: Bench, login: str, concurrency: int = FETCH_CONCURRENCY
) -> dict[str, Any]:
    """The baseline of a cold search: this process fetches the same list pages and raw
    files from the fake, as many at once as the server would, and keeps nothing."""
    headers = {**USER_AGENT, "Authorization": f"Bearer {TOKEN}"}
    slots = asyncio.Semaphore(concurrency)
    total = 0

    async def fetch(url: str) -> None:
        nonlocal total
        async with slots, bench.http.get(url, headers=headers) as resp:
            resp.raise_for_status()
            async for piece in resp.content.iter_chunked(256 * 1024):
                total += len(piece)

    started = time.perf_counter()
    raw_urls: list[str] = []
    next_url: str | None = f"{bench.fake.url}/users/{login}/gists?per_page={PER_PAGE}"
    while next_url is not None:
        async with bench.http.get(next_url, headers=headers) as resp:
            resp.raise_for_status()
            items = await resp.json()
            next_url = str(resp.links["next"]["url"]) if "next" in resp.links else None
        raw_urls += [f["raw_url"] for item in items for f in item["files"].values()]
    await asyncio.gather(*(fetch(url) for url in raw_urls))
    return {"seconds": time.perf_counter() - started, "bytes": total, "files": len(raw_urls)}


# --- 4. warm search ------------------------------------------------------------------


async def warm_search_fresh(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    gists = sizes.search_gists
    login = login_for(gists)
    await bench.ensure_searched(login)
    root, _, size = bench.files_on_disk(gists)
    await bench.search(login)  # one unmeasured: the server's statement caches warm up

    async def one() -> float:
        answer = await bench.search(login)
        if answer.headers.get("X-Cache") != "HIT":
            raise RuntimeError(f"a fresh warm search was {answer.headers.get('X-Cache')}")
        return float(answer.seconds)

    async def listing() -> float:
        return float((await timed_request(bench.http, "GET", f"{bench.base}/{login}")).seconds)

    async with counting(bench.http, bench.fake) as upstream:
        times = await bench.measure(sizes.repeats, one)
    list_times = await bench.measure(sizes.repeats, listing)
    run_grep(SEARCH_PATTERN, root)  # the page cache warms up
    grep_times = [run_grep(SEARCH_PATTERN, root)[0] for _ in range(sizes.repeats)]
    rg = _rg_seconds(SEARCH_PATTERN, root, sizes.repeats)
    return {
        "login": login,
        "baseline_rg_seconds": rg,
        "mb": size / MIB,
        "seconds": median(times),
        "all_seconds": [round(t, 4) for t in times],
        "upstream": {"api": upstream.api, "raw": upstream.raw},
        "baseline_grep_seconds": median(grep_times),
        "baseline_cached_list_seconds": median(list_times),
    }


async def warm_search_stale(bench: Bench, login: str, wait: float) -> dict[str, Any]:
    """With the list stale (``wait`` seconds slept past the server's TTL before each of
    ``sizes.stale_repeats`` searches): the median time, and the most upstream requests
    one of them made (each should be the list's conditional requests alone). Each is
    followed at once by a fresh search on the same server (its baseline: the same
    process, database and moment; the main fresh figure is taken earlier, on another
    server, before the growth scenario has filled the database)."""
    samples = []
    fresh = []
    for _ in range(bench.sizes.stale_repeats):
        await asyncio.sleep(wait)
        async with counting(bench.http, bench.fake) as upstream:
            answer = await bench.search(login)
        samples.append((answer.seconds, answer.headers.get("X-Cache"), upstream.api, upstream.raw))
        after = await bench.search(login)
        if after.headers.get("X-Cache") != "HIT":
            raise RuntimeError(f"the search after a stale one was {after.headers.get('X-Cache')}")
        fresh.append(after.seconds)
    return {
        "seconds": median([seconds for seconds, *_ in samples]),
        "all_seconds": [round(seconds, 4) for seconds, *_ in samples],
        "fresh_seconds": median(fresh),
        "all_fresh_seconds": [round(seconds, 4) for seconds in fresh],
        "x_cache": "/".join(sorted({str(cache) for _, cache, *_ in samples})),
        "upstream": {
            "api": max(api for *_, api, _ in samples),
            "raw": max(raw for *_, raw in samples),
        },
    }


def warm_search_result(bench: Bench, fresh: dict[str, Any], stale: dict[str, Any] | None) -> Any:
    gists = bench.sizes.search_gists
    pages = pages_for(gists)
    mb = fresh["mb"]
    fast = fresh["seconds"] < 0.025
    zero = fresh["upstream"] == {"api": 0, "raw": 0}
    targets = [
        target(f"fresh warm search of {mb:.1f} MB, p50 under 25 ms", "< 0.025 s",
               round(fresh["seconds"], 4), fast),
        target("upstream requests while fresh", "0",
               fresh["upstream"]["api"] + fresh["upstream"]["raw"], zero),
    ]  # fmt: skip
    rows = [
        row(
            f"fresh: wall time ({mb:.1f} MB, median of {bench.sizes.repeats})",
            ms(fresh["seconds"]),
            f"grep -E {ms(fresh['baseline_grep_seconds'])}; "
            + (
                ""
                if fresh["baseline_rg_seconds"] is None
                else f"rg {ms(fresh['baseline_rg_seconds'])}; "
            )
            + f"cached list alone {ms(fresh['baseline_cached_list_seconds'])}",
            "< 25 ms",
            fast,
        ),
        row(
            "fresh: upstream requests",
            f"{fresh['upstream']['api']} API, {fresh['upstream']['raw']} raw",
            "",
            "0",
            zero,
        ),
    ]
    figures: dict[str, Any] = {"user": fresh["login"], "pattern": SEARCH_PATTERN, "fresh": fresh}
    if stale is not None:
        economical = stale["upstream"]["api"] <= pages and stale["upstream"]["raw"] == 0
        targets.append(
            target(
                "upstream requests while stale: at most the list's conditional requests",
                f"<= {pages} API, 0 raw",
                stale["upstream"],
                economical,
            )
        )
        beside = stale["fresh_seconds"]
        allowed = beside + 1.5 * bench.latency
        one_trip = stale["seconds"] <= allowed
        targets.append(
            target(
                "stale warm search at most the fresh one (same server, right after) plus "
                "1.5x the upstream latency",
                f"<= {allowed:.4f} s",
                round(stale["seconds"], 4),
                one_trip,
            )
        )
        rows.append(
            row(
                f"stale: wall time (median of {bench.sizes.stale_repeats})",
                ms(stale["seconds"]),
                f"fresh on the same server right after {ms(beside)}; "
                f"upstream latency {ms(bench.latency)}",
                f"≤ fresh + 1.5 x latency ({ms(allowed)})",
                one_trip,
            )
        )
        rows.append(
            row(
                "stale: upstream requests",
                f"{stale['upstream']['api']} API ({stale['x_cache']}), "
                f"{stale['upstream']['raw']} raw",
                "",
                f"≤ {pages} API, 0 raw",
                economical,
            )
        )
        figures["stale"] = stale
        figures["stale_ttl_seconds"] = bench.sizes.stale_ttl
    return {
        "title": f"4. warm search, {gists} gists, nothing changed",
        "figures": figures,
        "targets": targets,
        "rows": rows,
    }


# --- 2. thundering herd ----------------------------------------------------------------


async def thundering_herd(bench: Bench, lone: Any) -> dict[str, Any]:
    """``lone``: the same stale request alone, measured just before (the baseline)."""
    sizes = bench.sizes
    login = login_for(sizes.list_gists)
    async with counting(bench.http, bench.fake) as upstream:
        herd = await burst(f"{bench.base}/{login}", sizes.herd, "X-Cache")
    one = upstream.api == 1
    slowest = herd["latency_ms"]["max"] / 1000
    targets = [
        target("upstream list requests for the whole herd", "1", upstream.api, one),
    ]
    rows = [
        row("upstream list requests", str(upstream.api), "", "1", one),
        row(
            "slowest / median response",
            f"{ms(slowest)} / {ms(herd['latency_ms']['p50'] / 1000)}",
            f"one stale request alone {ms(lone.seconds)}",
        ),
    ]
    return {
        "title": f"2. thundering herd, {sizes.herd} requests for one stale user",
        "figures": {
            "user": login,
            "requests": sizes.herd,
            "stale_ttl_seconds": sizes.stale_ttl,
            "upstream_api_requests": upstream.api,
            "upstream_raw_requests": upstream.raw,
            "slowest_seconds": round(slowest, 4),
            "herd": herd,
            "generator": herd["generator"],
            "baseline_lone_stale_request_seconds": round(lone.seconds, 4),
            "baseline_lone_x_cache": lone.headers.get("X-Cache"),
        },
        "targets": targets,
        "rows": rows,
    }


# --- 5. huge file ----------------------------------------------------------------------


async def huge_file(bench: Bench) -> dict[str, Any]:
    """Run on a server started for it alone: its peak RSS is the scenario's."""
    sizes = bench.sizes
    server = bench.server
    assert server is not None
    await timed_request(bench.http, "GET", f"{bench.base}/ping")
    before = memory_kib(server.pid)
    async with counting(bench.http, bench.fake) as upstream:
        cold = await bench.search("huge", "needle")
    warm = await bench.search("huge", "needle")
    after = memory_kib(server.pid)
    if cold.body.get("total") != 1 or warm.body != cold.body:
        raise RuntimeError(f"unexpected search answers: {cold.body!r} {warm.body!r}")
    download = await direct_download(bench, "huge")
    path = bench.workdir / "files" / "huge" / "huge.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(huge_text(sizes.huge_file_mb * MIB))
    run_grep("needle", path.parent)
    grep_seconds = median([run_grep("needle", path.parent)[0] for _ in range(3)])
    mb = sizes.huge_file_mb
    growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    met = growth < 100
    bound = before["VmRSS"] / 1024 + memory_tiers_mb() + PEAK_MARGIN_MB
    within = after["VmHWM"] / 1024 <= bound
    return {
        "title": f"5. huge file, one gist with a {mb} MB file",
        "figures": {
            "size_mb": mb,
            "cold_search_seconds": round(cold.seconds, 4),
            "cold_mb_per_s": round(mb / cold.seconds, 1),
            "warm_search_seconds": round(warm.seconds, 4),
            "warm_mb_per_s": round(mb / warm.seconds, 1),
            "rss_before_mb": round(before["VmRSS"] / 1024, 1),
            "peak_rss_mb": round(after["VmHWM"] / 1024, 1),
            "peak_growth_mb": round(growth, 1),
            "upstream": {"api": upstream.api, "raw": upstream.raw},
            "baseline_direct_download_seconds": round(download["seconds"], 4),
            "baseline_grep_seconds": round(grep_seconds, 4),
        },
        "targets": [
            target("peak memory growth of the server", "< 100 MB", round(growth, 1), met),
            target(
                f"peak RSS at most the starting size + memory tiers + {PEAK_MARGIN_MB} MB",
                f"<= {bound:.0f} MB",
                round(after["VmHWM"] / 1024, 1),
                within,
            ),
        ],
        "rows": [
            row(
                "cold search (fetch, store, search)",
                f"{secs(cold.seconds)}, {rate(mb / cold.seconds)}",
                f"direct download {secs(download['seconds'])}, {rate(mb / download['seconds'])}",
            ),
            row(
                "warm search (contents cached)",
                f"{secs(warm.seconds)}, {rate(mb / warm.seconds)}",
                f"grep -E {secs(grep_seconds)}, {rate(mb / grep_seconds)}",
            ),
            row(
                "server's peak memory growth",
                f"{growth:,.0f} MB",
                f"RSS before {before['VmRSS'] / 1024:,.0f} MB",
                "< 100 MB",
                met,
            ),
            row(
                "server RSS before / peak",
                f"{before['VmRSS'] / 1024:,.0f} MB / {after['VmHWM'] / 1024:,.0f} MB",
                f"tiers {memory_tiers_mb()} MB (lists + contents, defaults)",
                f"peak ≤ {bound:,.0f} MB",
                within,
            ),
        ],
    }


def _rg_seconds(pattern: str, root: Path, repeats: int) -> float | None:
    """Median wall seconds of ripgrep over ``root`` (after one unmeasured run)."""
    if run_rg(pattern, root) is None:
        return None
    times = [found[0] for _ in range(repeats) if (found := run_rg(pattern, root)) is not None]
    return median(times)


# --- 6. pattern throughput ----------------------------------------------------------------


def library_scan(pattern: str, root: Path) -> float:
    """Seconds for the service's own matching code (RE2 via gistcache.domain.matching) over the
    files, read into memory first: the search without database, HTTP or JSON."""
    contents = [path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()]
    regexp = compile_pattern(pattern)
    started = time.perf_counter()
    for data in contents:
        scan_chunk(regexp, data, 1, FileHits())
    return time.perf_counter() - started


async def pattern_throughput(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    gists = sizes.search_gists
    login = login_for(gists)
    await bench.ensure_searched(login)
    root, _, size = bench.files_on_disk(gists)
    mb = size / MIB
    results = {}
    rows = []
    targets = []
    for kind, pattern in PATTERNS.items():
        answer = await bench.search(login, pattern)  # unmeasured, and its answer checked
        ours = median([(await bench.search(login, pattern)).seconds for _ in range(sizes.repeats)])
        grep_counts = run_grep(pattern, root)[1]
        grep_seconds = median([run_grep(pattern, root)[0] for _ in range(sizes.repeats)])
        library = median([library_scan(pattern, root) for _ in range(sizes.repeats)])
        rg = _rg_seconds(pattern, root, sizes.repeats)
        matching_gists = len({Path(p).parent.name for p, n in grep_counts.items() if n > 0})
        ratio = grep_seconds / ours  # = our MB/s over grep's
        met = ratio >= 0.5
        results[kind] = {
            "pattern": pattern,
            "search_seconds": round(ours, 4),
            "search_mb_per_s": round(mb / ours, 1),
            "grep_seconds": round(grep_seconds, 4),
            "grep_mb_per_s": round(mb / grep_seconds, 1),
            "rg_seconds": None if rg is None else round(rg, 4),
            "rg_mb_per_s": None if rg is None else round(mb / rg, 1),
            "library_scan_seconds": round(library, 4),
            "library_scan_mb_per_s": round(mb / library, 1),
            "ratio": round(ratio, 3),
            "matching_gists": answer.body["total"],
            "matching_lines_grep": sum(grep_counts.values()),
            "matching_gists_agree_with_grep": answer.body["total"] == matching_gists,
        }
        targets.append(target(f"{kind} {pattern!r}: MB/s over grep -E's", ">= 0.5",
                              round(ratio, 3), met))  # fmt: skip
        rg_cell = "" if rg is None else f"; rg {rate(mb / rg)}"
        rows.append(
            row(
                f"{kind} `{pattern.replace('|', '&#124;')}`",
                f"{rate(mb / ours)} ({ratio:.2f}x grep)",
                f"grep -E {rate(mb / grep_seconds)}{rg_cell}",
                "≥ 0.5x grep",
                met,
            )
        )
    rows.append(
        row(
            "RE2 scan alone, in memory (" + ", ".join(PATTERNS) + ")",
            " / ".join(rate(p["library_scan_mb_per_s"]) for p in results.values()),
            "grep -E " + " / ".join(rate(p["grep_mb_per_s"]) for p in results.values()),
        )
    )
    return {
        "title": f"6. pattern throughput over {mb:.1f} MB of cached contents",
        "figures": {
            "user": login,
            "mb": round(mb, 2),
            "ours": "a whole warm search request (list, chunks from the database, scan, "
            "JSON answer), median of repeats",
            "grep": "grep -E -c -r PATTERN over the same files on disk (page cache warm), "
            "LC_ALL=C.UTF-8, process start included",
            "rg": "rg -c --no-config -uuu PATTERN over the same files (ripgrep, its default "
            "threads), process start included; null when ripgrep is not installed",
            "library_scan": "gistcache.domain.matching.scan_chunk over the same bytes in memory",
            "patterns": results,
        },
        "targets": targets,
        "rows": rows,
    }


# --- 7. growth -------------------------------------------------------------------------------


async def growth(bench: Bench) -> dict[str, Any]:
    sizes = bench.sizes
    points = []
    for gists in sizes.growth:
        login = login_for(gists)
        cold = await bench.ensure_searched(login)
        url = f"{bench.base}/{login}"
        raw = await _raw_body(bench.http, url)
        ceiling_body(bench.workdir, login, raw)
        ceiling = await load(
            f"{bench.ceiling.url}/{login}", 1, sizes.load_seconds, sizes.warmup_seconds
        )
        listing = await load(url, 1, sizes.load_seconds, sizes.warmup_seconds)
        root, _, size = bench.files_on_disk(gists)
        await bench.search(login)
        warm = median([(await bench.search(login)).seconds for _ in range(sizes.repeats)])
        run_grep(SEARCH_PATTERN, root)
        grep_seconds = median([run_grep(SEARCH_PATTERN, root)[0] for _ in range(sizes.repeats)])
        points.append(
            {
                "gists": gists,
                "mb": round(size / MIB, 2),
                "body_bytes": len(raw),
                "list_p50_seconds": listing["latency_ms"]["p50"] / 1000,
                "ceiling_p50_seconds": ceiling["latency_ms"]["p50"] / 1000,
                "warm_search_seconds": round(warm, 4),
                "grep_seconds": round(grep_seconds, 4),
                "cold_search_seconds": round(cold["seconds"], 3),
                "cold_api_requests": cold["api_requests"],
                "cold_raw_fetches": cold["raw_fetches"],
                "cold_x_cache": cold["x_cache"],  # HIT: the list was cached before
            }
        )
    targets = []
    ratios: dict[str, list[float]] = {"list": [], "search": []}
    for a, b in itertools.pairwise(points):
        step = b["gists"] / a["gists"]
        for key, figure in (("list", "list_p50_seconds"), ("search", "warm_search_seconds")):
            ratio = b[figure] / a[figure]
            ratios[key].append(round(ratio, 2))
            targets.append(
                target(
                    f"{key} time from {a['gists']} to {b['gists']} gists grows at most x{step:g}",
                    f"<= {step:g}",
                    round(ratio, 2),
                    ratio <= step,
                )
            )
    # the largest user does not fit the content memory: its warm search reads every chunk
    # from the database, so the whole request's rate bounds the rate of those reads
    largest = points[-1]
    from_database = largest["mb"] / largest["warm_search_seconds"]
    outgrows = largest["mb"] > Settings().content_memory_mb
    targets.append(
        target(
            f"contents read from the database ({largest['gists']:,} gists, "
            f"{largest['mb']:.0f} MB), MB/s",
            ">= 200",
            round(from_database, 1),
            from_database >= 200,
        )
    )
    counts = " / ".join(f"{p['gists']:,}" for p in points)
    steps = ", ".join(f"x{b['gists'] / a['gists']:g}" for a, b in itertools.pairwise(points))

    def series(key: str, fmt: Callable[[float], str]) -> str:
        return " / ".join(fmt(p[key]) for p in points)

    def met_all(key: str) -> bool:
        return all(t["met"] for t in targets if t["name"].startswith(key))

    def growth_of(key: str) -> str:
        return ", ".join(f"x{r:g}" for r in ratios[key])

    rows = [
        row(f"cached list p50 at {counts} gists", series("list_p50_seconds", ms),
            "ceiling " + series("ceiling_p50_seconds", ms)),
        row("cached list growth per step", growth_of("list"), "", f"≤ gists' {steps}",
            met_all("list")),
        row(f"warm search at {counts} gists", series("warm_search_seconds", ms),
            "grep -E " + series("grep_seconds", ms)),
        row("warm search growth per step", growth_of("search"), "", f"≤ gists' {steps}",
            met_all("search")),
        row(f"contents read from the database: warm search of {largest['mb']:.0f} MB"
            + ("" if outgrows else " (fits the content memory: not read from the database)"),
            rate(from_database), "", "≥ 200 MB/s", from_database >= 200),
    ]  # fmt: skip
    return {
        "title": "7. growth with the number of gists",
        "figures": {
            "points": points,
            "ratios": ratios,
            "database_read_mb_per_s": round(from_database, 1),
            "database_read": f"the {largest['gists']:,}-gist user's MB over its warm search's "
            "median seconds (whole request); its contents outgrow the server's content "
            f"memory ({Settings().content_memory_mb} MB), so every chunk is read from the "
            "database",
            "pattern": SEARCH_PATTERN,
            "generator": generator_info(),
        },
        "targets": targets,
        "rows": rows,
    }


SCENARIOS: Sequence[str] = (
    "cached_list",
    "thundering_herd",
    "cold_search",
    "warm_search",
    "huge_file",
    "pattern_throughput",
    "growth",
)
