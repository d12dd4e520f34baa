"""Render benchmark results as a markdown table (one column pair per database).

    python -m benchmarks.report benchmarks/results/DATE-sqlite.json \\
        benchmarks/results/DATE-postgresql.json [--docs docs/performance.md]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

DOCS_HEADER = """\
# Performance

`make bench` runs seven scenarios against the offline fake GitHub, which waits
{latency} per request (API and raw alike), with the fake, `gistcache serve`, a
minimal "ceiling" aiohttp app and the load generator each in a process of its own,
talking over real sockets on 127.0.0.1. Every timing stands beside a baseline
measured in the same run, on the same machine, because the machine's load changes
from run to run. MB means 2^20 bytes. The raw figures, with every target and
whether it was met, are in `benchmarks/results/`.

How to run it: `make bench` (SQLite), `make bench
BENCH_ARGS="--database-url postgresql+asyncpg://user@host:5432/postgres"` (SQLite,
then PostgreSQL in a throwaway `bench_<random>` database), `make bench-smoke` (tiny
sizes, a few seconds; the test suite runs it). `python -m benchmarks.run --help`
lists the options (`--only SCENARIO`, `--latency`, `--duration`, `--out`).

The users are the fake's `--bulk-user`s: gists of 3 code-like files of about 11.6 KB
(300 gists make 10 MB), the same bytes on every run. Searches look for `TODO` unless
said otherwise. Lists stay fresh on the main server (`GISTCACHE_CACHE_TTL=3600`); the
stale cases (scenarios 2 and 4) run on a second server started on the same database
with a TTL of 5 s, after sleeping past it (the stale warm search: searched once while
fresh, as the fresh server's is before it is timed, then the median of three, each
after sleeping past the TTL and followed at once by a fresh search on the same
server, its baseline); scenario 5 runs on a fresh server process,
so that its peak memory is the huge file's. The servers run with the default
settings (the access log at INFO, text lines) unless a row says otherwise, except
`GISTCACHE_GRAPHQL=off` (all but scenario 3's GraphQL path, so that the other
scenarios' figures are the raw path's, as before GraphQL); the
footnotes list the settings that move the figures. The list scenarios' load
generator is wrk (`-t2 -cCONCURRENCY -dSECONDS`, percentiles from its latency
histogram through `benchmarks/wrk_report.lua`; the herd through `wrk_burst.lua`,
each thread stopping at its share of the requests) when it is on the PATH, else
`benchmarks/loadgen.py`, an aiohttp client in a process of its own, and the run is
then flagged as capped by its generator (`GISTCACHE_BENCH_NO_WRK=1` forces it).

What the baselines are:

1. cached list: the same bytes served from memory by a minimal aiohttp app (the
   ceiling), loaded the same way right before the service at each concurrency; at
   the top one, also a server with the access log off (`GISTCACHE_LOG_LEVEL=WARNING`).
2. thundering herd: one stale request on its own, just before the herd.
3. cold search, both paths. The raw path (every server but one runs with
   `GISTCACHE_GRAPHQL=off`: each file from its raw URL): the same list pages and raw
   files fetched by the harness itself, as many at a time as the server does
   (`GISTCACHE_FETCH_CONCURRENCY`), storing and searching nothing; a streamed cold
   search's first match against the list's round trips plus one file plus 100 ms;
   then cold users of their own searched by servers fetching 8,
   16 and 32 at once, each beside the same fetches at that concurrency. The GraphQL
   path: a cold user of its own, the same size, searched by a server with GraphQL on
   (the fake's schema built by one untimed request first; its time model: a floor of
   300 ms plus 20 ms a file of text, on top of the latency), beside the same list
   pages and GraphQL batches asked for by the harness (the server's planner's
   batches, 20 at once), and beside the raw path's wall time and request count; and
   a streamed cold search of another such user, its first match against the list's
   round trips plus one batch in the fake's model plus 100 ms. The path's GraphQL
   requests and points, raw downloads and the raw host's refusals are the fake's own
   counts; its GraphQL requests are at most the batches the bounds need (512 KiB,
   100 files, 100 gists a batch) or the 20 run side by side, whichever is more, and
   none of these small text files is downloaded raw.
4. warm search: `grep -E` and ripgrep (`rg`) over the same bytes on disk, and the
   cached list alone; for the stale one, a fresh search on the same server right
   after each stale one.
5. huge file: a direct download of the file; `grep -E` over it on disk; memory: the
   server's resident size before and its peak, against the size before plus the
   memory tiers at their defaults plus 50 MB (scenario 1 records the same at rest
   and under c=64).
6. pattern throughput: `grep -E -c -r` over the same files on disk (page cache
   warm, `LC_ALL=C.UTF-8`, process start included), and `rg -c -uuu` beside it; ours
   is a whole warm search request (list, contents, scan, JSON answer).
7. growth: the ceiling app serving each list's bytes; `grep -E` over each user's files.

"""


def _cell(text: str) -> str:
    return text.replace("\n", " ")


def markdown(runs: Sequence[dict[str, Any]]) -> str:
    """One table for every run given (one database each), then the machines."""
    databases = [run["database"] for run in runs]
    header = ["scenario", "figure"]
    for db in databases:
        header += [NAMES.get(db, db), "baseline"]
    header += ["target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    order: list[tuple[str, str]] = []
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for run in runs:
        for scenario in run["scenarios"].values():
            for r in scenario["rows"]:
                key = (scenario["title"], r["figure"])
                if key not in cells:
                    order.append(key)
                    cells[key] = {}
                cells[key][run["database"]] = r
    previous = ""
    for key in order:
        title, figure = key
        found = cells[key]
        line = [title if title != previous else "", figure]
        previous = title
        for db in databases:
            r = found.get(db)
            line += [r["value"], r["baseline"]] if r else ["", ""]
        some = next(iter(found.values()))
        line.append(some["target"])
        marks = [_mark(found[db]["met"]) if db in found else "" for db in databases]
        line.append(" / ".join(marks) if any(marks) else "")
        lines.append("| " + " | ".join(_cell(c) for c in line) + " |")

    lines.append("")
    for run in runs:
        m = run["machine"]
        summary = run["summary"]
        missed = "; ".join(summary["missed"]) or "none"
        settings = ", ".join(f"{k}={v}" for k, v in run.get("database_settings", {}).items())
        lines.append(
            f"- {NAMES.get(run['database'], run['database'])} ({run['database_version']}"
            f"{'; ' + settings if settings else ''}), "
            f"{run['mode']} run of {run['date']}: {m['cpu_model']}, {m['cores']} cores, "
            f"{m['python']}, {m['platform']}; load average {run['load_average']['start']} "
            f"at the start, {run['load_average']['end']} at the end. Targets met: "
            f"{summary['met']} of {summary['targets']}; missed: {missed}."
        )
        lines.append("  " + _settings_line(run))
    return "\n".join(lines) + "\n"


def _settings_line(run: dict[str, Any]) -> str:
    """What the run's figures depend on: the load generator and the servers' settings."""
    settings = run.get("settings", {})
    gen = settings.get("load_generator") or {}
    server = settings.get("server") or {}
    if gen:
        capped = (
            " **capped by its generator**: ratios are bounded by the generator's own "
            "ceiling (it against the minimal app)"
            if gen.get("capped_by_generator")
            else ""
        )
        text = (
            f"Load generator: {gen.get('name')} ({gen.get('version')}; {gen.get('flags')}){capped}."
        )
    else:
        text = f"Load generator: {run['machine'].get('load_generator')}."
    if server:
        text += " Servers: " + ", ".join(f"`{k}={v}`" for k, v in server.items()) + "."
    text += f" Upstream latency {settings.get('upstream_latency_s', 0) * 1000:g} ms."
    return text


def _mark(met: bool | None) -> str:
    if met is None:
        return ""
    return "yes" if met else "**no**"


NOTES_MARKER = "<!-- notes: kept when the page is regenerated -->"


def docs_page(runs: Sequence[dict[str, Any]], previous: str = "") -> str:
    """The whole page; whatever followed NOTES_MARKER in ``previous`` is kept."""
    latency = runs[0]["settings"]["upstream_latency_s"]
    _, marker, notes = previous.partition(NOTES_MARKER)
    page = DOCS_HEADER.format(latency=f"{latency * 1000:g} ms") + markdown(runs)
    return page + "\n" + NOTES_MARKER + (notes if marker else "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render benchmark results as markdown.")
    parser.add_argument("results", nargs="+", type=Path, help="results JSON files")
    parser.add_argument("--docs", type=Path, help="write a whole docs page here")
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.results]
    if args.docs:
        previous = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(docs_page(runs, previous))
    print(markdown(runs), end="")


if __name__ == "__main__":
    main()
