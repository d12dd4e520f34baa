"""A small HTTP load generator, run as its own process so that it never shares an
event loop (or a core's time slice) with the server it measures.

    python benchmarks/loadgen.py URL --concurrency 16 --duration 5
    python benchmarks/loadgen.py URL --concurrency 200 --requests 200 --open-with /ping

``--duration`` keeps CONCURRENCY connections busy for that many seconds (after a
``--warmup`` that is not counted); ``--requests`` sends exactly that many requests,
CONCURRENCY at a time, on connections opened beforehand by one request each to the
``--open-with`` path (so that a burst measures the server, not TCP handshakes).
Prints one JSON object: counts, requests per second and latency percentiles (ms)
computed from every request's own timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of values sorted in ascending order."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of request timings, in milliseconds."""
    ordered = sorted(seconds)
    if not ordered:
        return {}
    return {
        "min": round(ordered[0] * 1000, 3),
        "p50": round(percentile(ordered, 0.50) * 1000, 3),
        "p90": round(percentile(ordered, 0.90) * 1000, 3),
        "p99": round(percentile(ordered, 0.99) * 1000, 3),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(sum(ordered) / len(ordered) * 1000, 3),
    }


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    header_values: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    body_bytes: int = 0


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]
    count_header: str | None


async def _one(http: aiohttp.ClientSession, req: Request, tally: Tally | None) -> None:
    started = time.perf_counter()
    try:
        async with http.request(req.method, req.url, data=req.body, headers=req.headers) as resp:
            body = await resp.read()
            status = resp.status
            header = resp.headers.get(req.count_header, "") if req.count_header else ""
    except (aiohttp.ClientError, TimeoutError) as exc:
        if tally is not None:
            tally.errors[type(exc).__name__] += 1
        return
    if tally is None:
        return
    tally.latencies.append(time.perf_counter() - started)
    tally.statuses[status] += 1
    tally.body_bytes += len(body)
    if req.count_header:
        tally.header_values[header] += 1


async def _for_duration(
    http: aiohttp.ClientSession, req: Request, concurrency: int, seconds: float, tally: Tally | None
) -> float:
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await _one(http, req, tally)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def _count(
    http: aiohttp.ClientSession, req: Request, concurrency: int, requests: int, tally: Tally
) -> float:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await _one(http, req, tally)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict[str, Any]:
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    body = args.body.encode() if args.body is not None else None
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    req = Request(args.method, args.url, body, headers, args.count_header)
    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    tally = Tally()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        if args.open_with:
            opener = Request("GET", str(URL(args.url).with_path(args.open_with)), None, {}, None)
            await asyncio.gather(*(_one(http, opener, None) for _ in range(args.concurrency)))
        if args.requests is not None:
            elapsed = await _count(http, req, args.concurrency, args.requests, tally)
        else:
            if args.warmup > 0:
                await _for_duration(http, req, args.concurrency, args.warmup, None)
            elapsed = await _for_duration(http, req, args.concurrency, args.duration, tally)
    done = len(tally.latencies)
    result: dict[str, Any] = {
        "url": args.url,
        "method": args.method,
        "concurrency": args.concurrency,
        "requests": done,
        "errors": dict(tally.errors),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "seconds": round(elapsed, 4),
        "rps": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": latency_summary(tally.latencies),
        "body_bytes": tally.body_bytes,
    }
    if args.count_header:
        result["header_values"] = dict(tally.header_values)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=1)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--duration", type=float, default=5.0, help="seconds of measured load")
    mode.add_argument("--requests", type=int, help="send exactly this many requests")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", help="request body (JSON text)")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    parser.add_argument("--count-header", help="tally the values of this response header")
    parser.add_argument("--open-with", help="path requested once per connection beforehand")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
