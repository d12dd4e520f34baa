"""Run the benchmark scenarios against the fake GitHub, on SQLite and (given a
server URL) on PostgreSQL, and write one results file per database and a table.

    python -m benchmarks.run                                   # full run, SQLite
    python -m benchmarks.run --database-url postgresql+asyncpg://postgres@127.0.0.1/x
    python -m benchmarks.run --smoke --out /tmp/bench          # seconds, tiny sizes
    python -m benchmarks.run --only cold_search --only warm_search

For PostgreSQL, the URL names a server: a throwaway ``bench_<random>`` database is
created on it (through the ``postgres`` maintenance database) and dropped at the end.
``GISTCACHE_BENCH_DATABASE_URL`` is read when ``--database-url`` is not given.

Servers: scenarios 1, 3, 4 (fresh), 6 and 7 run on a server whose cache TTL is an
hour, so the lists stay fresh; scenarios 2 and 4 (stale) on a second server, started
on the same database with a TTL of a few seconds, after sleeping past it; scenario
5 on a third, fresh process, so that its peak memory is the huge file's alone. Every
server runs with ``GISTCACHE_GRAPHQL=off`` (each file from its raw URL) except the one
of scenario 3's GraphQL phase, which searches a cold user of its own with GraphQL on.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from benchmarks import scenarios as sc
from benchmarks.harness import (
    RESULTS,
    bench_database,
    database_kind,
    generator_info,
    load_average,
    machine_info,
    postgres_version,
    running,
    sqlite_version,
    start_ceiling,
    start_fake,
    timed_request,
)
from benchmarks.report import docs_page, markdown
from gistcache.settings import Settings, env_name

LONG_TTL = 3600  # seconds: lists stay fresh for the whole run
STALE_MARGIN = 0.3  # seconds slept past the short TTL


async def run_database(
    sizes: sc.Sizes, latency: float, server_url: str | None, only: Sequence[str]
) -> dict[str, Any]:
    kind = database_kind(server_url)
    started = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix=f"gistcache-bench-{kind}-"))
    wants = set(only or sc.SCENARIOS)
    results: dict[str, Any] = {}
    load_start = load_average()
    try:
        async with bench_database(server_url, workdir) as database_url:
            db_settings: dict[str, str] = {}
            if server_url is None:
                version = sqlite_version()
            else:
                version, db_settings = await postgres_version(database_url)
            bulk = [
                f"{sc.login_for(n)}:{n}:{sizes.files_per_gist}:{sizes.file_bytes}"
                for n in sizes.bulk_users()
            ]
            if "cold_search" in wants:  # cold users: streamed, GraphQL, by fetch concurrency
                bulk += [
                    f"{login(sizes.search_gists)}:{sizes.search_gists}:"
                    f"{sizes.files_per_gist}:{sizes.file_bytes}"
                    for login in (sc.stream_login, sc.graphql_login, sc.graphql_stream_login)
                ]
                bulk += [
                    f"{sc.concurrency_login(c)}:{sizes.fetch_gists}:{sizes.files_per_gist}:"
                    f"{sizes.file_bytes}"
                    for c in sizes.fetch_concurrencies
                ]
            huge_mb = sizes.huge_file_mb if "huge_file" in wants else 0
            fake = await start_fake(workdir, latency=latency, bulk_users=bulk, huge_file_mb=huge_mb)
            timeout = aiohttp.ClientTimeout(total=3600)
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as http,
                    running(await start_ceiling(workdir)) as ceiling,
                ):
                    bench = sc.Bench(sizes, latency, workdir, fake, database_url, http, ceiling)
                    await _scenarios(bench, wants, results)
            except BaseException:
                for name in (
                    "fake-github",
                    "server-fresh",
                    "server-graphql",
                    "server-stale",
                    "server-huge",
                ):
                    log = workdir / f"{name}.log"
                    if log.exists():
                        print(f"--- {name}.log ---", file=sys.stderr)
                        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            finally:
                fake.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ordered = {name: results[name] for name in sc.SCENARIOS if name in results}
    all_targets = [t for s in ordered.values() for t in s["targets"]]
    return {
        "date": started.isoformat(timespec="seconds"),
        "mode": "smoke" if sizes == sc.SMOKE else "full",
        "database": kind,
        "database_version": version,
        "database_settings": db_settings,
        "machine": machine_info(),
        "load_average": {"start": load_start, "end": load_average()},
        "settings": {
            "upstream_latency_s": latency,
            "database": kind,
            "server": server_settings(),
            "load_generator": generator_info(),
            "fetch_concurrency": sc.FETCH_CONCURRENCY,
            "stale_ttl_s": sizes.stale_ttl,
            "sizes": {k: v for k, v in vars(sizes).items()},
            "mb": "2^20 bytes",
        },
        "scenarios": ordered,
        "summary": {
            "targets": len(all_targets),
            "met": sum(1 for t in all_targets if t["met"]),
            "missed": [t["name"] for t in all_targets if not t["met"]],
        },
    }


T = TypeVar("T")


def server_settings() -> dict[str, Any]:
    """The settings of the benchmarked servers that move the figures: the defaults,
    except where a scenario says otherwise (benchmarks/scenarios.py, Bench.server_settings)."""
    defaults = Settings()
    moving = ("log_level", "log_format", "memory_cache_mb", "content_memory_mb",
              "fetch_concurrency", "max_searches", "search_workers")  # fmt: skip
    shown = {
        env_name(name): getattr(defaults, name) for name in Settings.model_fields if name in moving
    }
    shown["GISTCACHE_FETCH_CONCURRENCY"] = sc.FETCH_CONCURRENCY  # set by the harness
    shown["GISTCACHE_CACHE_TTL"] = f"{LONG_TTL} (stale phases: the smoke or full stale TTL)"
    shown["GISTCACHE_GRAPHQL"] = "off (scenario 3's GraphQL path: on)"
    shown["GISTCACHE_RATE_LIMIT"] = "none"
    shown["GISTCACHE_CLIENT_GITHUB_BUDGET"] = "off"
    return shown


def _note(what: str, since: float) -> None:
    print(f"  {what}: {time.perf_counter() - since:.1f} s", file=sys.stderr)


async def _timed(what: str, work: Awaitable[T]) -> T:
    """Await ``work``, telling on stderr how long it took."""
    since = time.perf_counter()
    result = await work
    _note(what, since)
    return result


async def _scenarios(bench: sc.Bench, wants: set[str], results: dict[str, Any]) -> None:
    sizes = bench.sizes
    fresh_search: dict[str, Any] | None = None
    fresh_phase = {"cached_list", "cold_search", "warm_search", "pattern_throughput", "growth"}
    if wants & fresh_phase:
        server = await bench.start_server("server-fresh", LONG_TTL)
        try:
            if "cached_list" in wants:
                results["cached_list"] = await _timed("cached_list", sc.cached_list(bench))
            if "cold_search" in wants:
                results["cold_search"] = await _timed("cold_search", sc.cold_search(bench))
            if "warm_search" in wants:  # finished with its stale half, below
                fresh_search = await _timed("warm_search (fresh)", sc.warm_search_fresh(bench))
            if "pattern_throughput" in wants:
                results["pattern_throughput"] = await _timed(
                    "pattern_throughput", sc.pattern_throughput(bench)
                )
            if "growth" in wants:
                results["growth"] = await _timed("growth", sc.growth(bench))
        finally:
            server.stop()

    if wants & {"thundering_herd", "warm_search"}:
        t = time.perf_counter()
        server = await bench.start_server("server-stale", sizes.stale_ttl)
        try:
            herd_user = sc.login_for(sizes.list_gists)
            search_user = sc.login_for(sizes.search_gists)
            # touch both users, then wait until both lists are stale
            await timed_request(bench.http, "GET", f"{bench.base}/{herd_user}")
            if "warm_search" in wants:
                await bench.ensure_searched(search_user)
                # one search while fresh, as on the fresh server before it is timed: this
                # server's content tier and statement caches warm up
                await bench.search(search_user)
            stale = None
            if "warm_search" in wants:
                stale = await sc.warm_search_stale(
                    bench, search_user, sizes.stale_ttl + STALE_MARGIN
                )
            else:
                await asyncio.sleep(sizes.stale_ttl + STALE_MARGIN)
            lone = await timed_request(bench.http, "GET", f"{bench.base}/{herd_user}")
            if "thundering_herd" in wants:
                await asyncio.sleep(sizes.stale_ttl + STALE_MARGIN)
                results["thundering_herd"] = await sc.thundering_herd(bench, lone)
            if fresh_search is not None:
                results["warm_search"] = sc.warm_search_result(bench, fresh_search, stale)
            _note("thundering_herd and warm_search (stale)", t)
        finally:
            server.stop()

    if "huge_file" in wants:
        server = await bench.start_server("server-huge", LONG_TTL)
        try:
            results["huge_file"] = await _timed("huge_file", sc.huge_file(bench))
        finally:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark gistcache against the fake GitHub.",
        epilog=f"Scenarios: {', '.join(sc.SCENARIOS)}.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("GISTCACHE_BENCH_DATABASE_URL") or None,
        help="a PostgreSQL server (postgresql+asyncpg://...) to run on as well as SQLite",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="run on PostgreSQL only")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument(
        "--latency",
        type=float,
        help="seconds the fake waits per upstream request (default 0.05; smoke 0.03)",
    )
    parser.add_argument("--only", action="append", choices=sc.SCENARIOS, default=[])
    parser.add_argument("--out", type=Path, help=f"where results go (default {RESULTS})")
    parser.add_argument("--duration", type=float, help="seconds per load-generator run")
    parser.add_argument(
        "--docs",
        type=Path,
        help="also write the whole page there (make bench: docs/performance.md)",
    )
    args = parser.parse_args(argv)
    if args.smoke and args.out is None:
        parser.error("--smoke needs --out (smoke results do not belong in benchmarks/results)")
    sizes = sc.SMOKE if args.smoke else sc.FULL
    if args.duration is not None:
        sizes = sc.Sizes(**{**vars(sizes), "load_seconds": args.duration})
    # smoke: a little latency, so that a herd's requests all find the refresh still
    # running (with none, a request can miss it by a hair and start a second one)
    latency = args.latency if args.latency is not None else (0.03 if args.smoke else 0.05)
    servers: list[str | None] = [] if args.no_sqlite else [None]
    if args.database_url:
        database_kind(args.database_url)  # a wrong URL fails before anything runs
        servers.append(args.database_url)
    if not servers:
        parser.error("--no-sqlite needs --database-url")
    out: Path = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    for server_url in servers:
        result = asyncio.run(run_database(sizes, latency, server_url, args.only))
        runs.append(result)
        name = f"{result['date'][:10]}-{result['database']}.json"
        (out / name).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {out / name}", file=sys.stderr)
    table = markdown(runs)
    (out / f"{runs[0]['date'][:10]}.md").write_text(table)
    if args.docs is not None:
        if len(runs) < 2:
            print(
                f"warning: {args.docs} gets {runs[0]['database']} alone; give "
                "--database-url (or GISTCACHE_BENCH_DATABASE_URL) for both databases",
                file=sys.stderr,
            )
        previous = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(docs_page(runs, previous))
        print(f"wrote {args.docs}", file=sys.stderr)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
