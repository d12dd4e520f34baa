"""The soak's figures: per fault window and outside them, the zero targets, and the
markdown page (``docs/reliability.md``)."""

from __future__ import annotations

import os
import platform
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from benchmarks.chaos.load import DRAIN_PREFIX, JOB_FAILURES, TERMINAL, JobTrack, Record

OUTSIDE = "outside the fault windows"
# answers the README documents at any time, faults or not: a search over its time
# budget (504) and a synchronous search beyond GISTCACHE_MAX_SEARCHES (503). They say
# the machine is overloaded; they are counted on their own, not as unexpected 5xx
OVERLOAD = ("search-timeout", "searches-busy")
RATE_LIMIT_GRACE = 1.0  # requests already on their way when GitHub said stop
CONN_GRACE = 1.0  # seconds around a replica's downtime when refused connections are expected

# what the README promises while each fault lasts, by the start of the window's name
PROMISES = {
    "kill -9": "the other replica answers; jobs the dead one ran are taken over when their "
    "lease runs out and finish once; its refresh leases expire",
    "SIGTERM": "in-flight requests finish; running jobs go back to the queue; the replica "
    "comes back with no lost job",
    "PostgreSQL": "fresh lists held in memory are served; anything needing the database is a "
    "`503` problem (`database-unavailable`, `Retry-After`); ready again with no restart",
    "GitHub answers 500": "cached lists are served `STALE`; with nothing cached, `502`",
    "GitHub times out": "cached lists are served `STALE`; with nothing cached, `504`",
    "GitHub primary": "no request reaches GitHub until the reset; cached lists served, "
    "else `503` with `Retry-After`",
    "GitHub secondary": "no request reaches GitHub until `retry-after` has passed; cached "
    "lists served, else `503` with `Retry-After`",
    "hostile": "`400`/`404`/`413` problems naming the field; nothing reaches GitHub; a slow "
    "pattern is answered as any search; one client's made-up names cost GitHub at most its "
    "budget, then `429`; other clients unaffected",
}


def _promise(name: str) -> str:
    for prefix, text in PROMISES.items():
        if name.startswith(prefix):
            return text
    return ""


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index] * 1000, 1)


def _klass(status: int | str) -> str:
    return f"{status // 100}xx" if isinstance(status, int) else status


def summarise(
    *,
    profile: Mapping[str, Any],
    started: float,
    fault_end: float,
    load_end: float,
    windows: list[dict[str, Any]],
    records: list[Record],
    jobs: Mapping[str, JobTrack],
    jobs_db: Mapping[str, Mapping[str, Any]],
    replica_logs: list[str],
    fake_log: list[dict[str, Any]],
    truth: Mapping[str, Any],
    mutations: Mapping[str, int],
    tail: float,
    drain_allowed: int,
) -> dict[str, Any]:
    def covering(t: float) -> list[dict[str, Any]]:
        return [w for w in windows if w["start"] <= t <= w["end"] + tail]

    def bucket(t: float) -> str:
        inside = [w for w in windows if w["start"] <= t <= w["end"]]
        if inside:
            return str(inside[-1]["name"])
        near = covering(t)
        return f"{near[-1]['name']} (the {tail:g} s after)" if near else OUTSIDE

    def replica_down(rec: Record) -> bool:
        return any(
            w["down"] == rec.replica
            and rec.start <= w["end"] + CONN_GRACE
            and rec.end >= w["start"] - CONN_GRACE
            for w in windows
        )

    buckets: dict[str, list[Record]] = {}
    unexpected_5xx: list[dict[str, Any]] = []
    overload: list[dict[str, Any]] = []
    breaks: list[dict[str, Any]] = []
    for rec in records:
        buckets.setdefault(bucket(rec.start), []).append(rec)
        # a fault's documented answers count for any request that overlapped its window
        allowed = {
            s
            for w in windows
            if rec.start <= w["end"] + tail and rec.end >= w["start"]
            for s in w["allowed"]
        }
        where = {"kind": rec.kind, "replica": rec.replica, "at": round(rec.start - started, 2)}
        if rec.problem in OVERLOAD:
            overload.append({**where, "status": rec.status, "problem": rec.problem})
        elif isinstance(rec.status, int) and rec.status >= 500 and rec.status not in allowed:
            unexpected_5xx.append(
                {**where, "status": rec.status, "path": rec.path, "problem": rec.problem}
            )
        if rec.broke is not None:
            breaks.append({**where, "status": rec.status, "why": rec.broke, "path": rec.path})
        elif rec.status == "conn_error" and not replica_down(rec):
            breaks.append({**where, "status": rec.status, "why": "no answer", "path": rec.path})
        elif rec.status == "timeout":
            breaks.append({**where, "status": rec.status, "why": "no answer in 60 s"})

    order = [w["name"] for w in windows]
    table = []
    for name in [*dict.fromkeys(order), *sorted(set(buckets) - set(order))]:
        recs = buckets.get(name, [])
        if not recs and name not in order:
            continue
        answered = [r.end - r.start for r in recs if isinstance(r.status, int)]
        window = next((w for w in windows if w["name"] == name), None)
        table.append(
            {
                "window": name,
                "seconds": round(window["end"] - window["start"], 1) if window else None,
                "promise": _promise(name),
                "requests": len(recs),
                "by_class": dict(sorted(Counter(_klass(r.status) for r in recs).items())),
                "by_status": dict(sorted(Counter(str(r.status) for r in recs).items())),
                "p50_ms": _percentile(answered, 0.50),
                "p95_ms": _percentile(answered, 0.95),
                "p99_ms": _percentile(answered, 0.99),
                "max_ms": _percentile(answered, 1.0),
                "notes": window["notes"] if window else {},
            }
        )

    # jobs: each followed on the replica it was not submitted to
    lost = [j.id for j in jobs.values() if j.status not in TERMINAL]
    failed = [j for j in jobs.values() if j.status == "FAILURE"]
    undocumented = [j.id for j in failed if j.error_status not in JOB_FAILURES]
    outcomes: Counter[str] = Counter()
    for log in replica_logs:
        outcomes.update(re.findall(r"search job (\S+) (?:finished|failed)", log))
    twice = sorted(job for job, n in outcomes.items() if n > 1)
    dropped = sum(log.count("outcome dropped") for log in replica_logs)
    retaken = sum(1 for j in jobs_db.values() if j["attempts"] > 1)
    db_open = sorted(k for k, j in jobs_db.items() if j["status"] not in TERMINAL)

    # requests that reached GitHub's API while it had said to wait
    blocks = []
    for w in windows:
        if w["notes"].get("mode") not in ("primary", "secondary"):
            continue
        inside = [e for e in fake_log if e["kind"] == "api" and w["start"] <= e["t"] <= w["end"]]
        told = next((e for e in inside if e.get("limited")), None)
        first = None if told is None else float(told["t"])
        # the block lasts as long as the first answer said: its reset or retry-after
        until = 0.0 if told is None else float(told.get("until", w["end"]))
        # GET /rate_limit costs no budget: a blocked server asks it (once a minute)
        api = [e for e in fake_log if e["kind"] == "api" and not e["path"].endswith("/rate_limit")]
        late = (
            [] if first is None else [e for e in api if first + RATE_LIMIT_GRACE < e["t"] < until]
        )
        blocks.append(
            {
                "window": w["name"],
                "told_to_wait": sum(1 for e in inside if e.get("limited")),
                "in_flight_at_block": 0
                if first is None
                else sum(1 for e in inside if first < e["t"] <= first + RATE_LIMIT_GRACE),
                "block_seconds": None if first is None else round(until - first, 1),
                "reached_github_during_block": len(late),
                "paths": sorted({e["path"] for e in late})[:10],
            }
        )
    hostile_reached = sum(
        1 for e in fake_log if e["kind"] == "api" and re.search(r"/users/[^/]*[^\w/-]", e["path"])
    )

    drains = [r for r in records if r.kind == "drain"]
    drain = {
        "requests": len(drains),
        "by_status": dict(sorted(Counter(str(r.status) for r in drains).items())),
        "reached_github": sum(
            1 for e in fake_log if e["kind"] == "api" and f"/{DRAIN_PREFIX}" in e["path"]
        ),
        "allowed": drain_allowed,
    }

    statuses = Counter(str(r.status) for r in records)
    return {
        "profile": dict(profile),
        "load_seconds": round(load_end - started, 1),
        "faults_seconds": round(fault_end - started, 1),
        "requests": len(records),
        "requests_per_second": round(len(records) / max(1.0, load_end - started), 1),
        "by_status": dict(sorted(statuses.items())),
        "windows": table,
        "mutations": dict(mutations),
        "github_requests": Counter(e["kind"] for e in fake_log),
        "unexpected_5xx": {"count": len(unexpected_5xx), "examples": unexpected_5xx[:20]},
        "overload_answers": {
            "count": len(overload),
            "by_problem": dict(Counter(str(o["problem"]) for o in overload)),
            "examples": overload[:10],
        },
        "contract_breaks": {
            "count": len(breaks),
            "why": dict(Counter(b["why"] for b in breaks)),
            "examples": breaks[:20],
        },
        "jobs": {
            "submitted": len(jobs),
            "succeeded": sum(1 for j in jobs.values() if j.status == "SUCCESS"),
            "failed": len(failed),
            "failed_by_status": dict(Counter(str(j.error_status) for j in failed)),
            "failed_undocumented": undocumented,
            "lost": lost,
            "unfinished_in_db": db_open,
            "recorded_twice": twice,
            "outcomes_dropped_after_takeover": dropped,
            "run_more_than_once": retaken,
        },
        "rate_limit_blocks": blocks,
        "hostile_requests_reaching_github": hostile_reached,
        "drain": drain,
        "truth": dict(truth),
    }


def targets(result: Mapping[str, Any]) -> dict[str, tuple[Any, bool]]:
    jobs = result["jobs"]
    late = sum(b["reached_github_during_block"] for b in result["rate_limit_blocks"])
    mismatches = len(result["truth"]["mismatches"])
    return {
        "5xx outside their documented windows": (
            result["unexpected_5xx"]["count"],
            result["unexpected_5xx"]["count"] == 0,
        ),
        "contract breaks": (
            result["contract_breaks"]["count"],
            not result["contract_breaks"]["count"],
        ),
        "jobs lost": (
            len(jobs["lost"]) + len(jobs["unfinished_in_db"]),
            not jobs["lost"] and not jobs["unfinished_in_db"],
        ),
        "jobs failed with an undocumented problem": (
            len(jobs["failed_undocumented"]),
            not jobs["failed_undocumented"],
        ),
        "job results recorded twice": (len(jobs["recorded_twice"]), not jobs["recorded_twice"]),
        "requests reaching GitHub during a rate-limit block": (late, late == 0),
        "hostile requests reaching GitHub": (
            result["hostile_requests_reaching_github"],
            result["hostile_requests_reaching_github"] == 0,
        ),
        "made-up names reaching GitHub beyond the client's budget": (
            f"{result['drain']['reached_github']} of {result['drain']['allowed']} allowed",
            result["drain"]["reached_github"] <= result["drain"]["allowed"],
        ),
        "users whose cache differs from GitHub after revalidation": (
            f"{mismatches} of {result['truth']['users']}",
            mismatches == 0,
        ),
    }


def targets_met(result: Mapping[str, Any]) -> bool:
    return all(ok for _, ok in targets(result).values())


def targets_line(result: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{k}: {v}{'' if ok else ' (MISSED)'}" for k, (v, ok) in targets(result).items()
    )


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in load],
    }


def _cells(values: Iterable[Any]) -> str:
    return "| " + " | ".join("" if v is None else str(v) for v in values) + " |"


def _load_words(m: Mapping[str, Any]) -> str:
    """What the machine's load says of the latencies below."""
    load = m.get("load_average") or []
    cpus = m.get("cpus") or 1
    if load and max(load) > 2 * cpus:
        return (
            "Other work shared the cores during the run (a load average above twice the "
            "CPUs), so the latencies below are noisy upper bounds, not the service's speed, "
            "and the restarts' windows are longer for the same reason."
        )
    return (
        "Nothing else ran on the machine: the latencies below are the service's own, on "
        "cores it shares with the fake GitHub, PostgreSQL and the load generator."
    )


def markdown(result: Mapping[str, Any], *, source: str) -> str:
    p = result["profile"]
    m = result.get("machine", {})
    jobs = result["jobs"]
    lines = [
        "# Reliability: the chaos soak",
        "",
        "`make chaos` (`python -m benchmarks.chaos`) starts the fake GitHub (with "
        f"{p['latency'] * 1000:g} ms of latency per request), a private PostgreSQL "
        "cluster and two `gistcache serve` replicas sharing it, each in its own process on "
        f"127.0.0.1, and drives {p['workers']} load workers over both replicas for "
        f"{p['duration']:g} s: cached and uncached lists, paged lists, `no-cache` "
        "revalidations, conditional requests, synchronous and streamed searches, search "
        "jobs submitted to one replica and polled on the other, while gists change "
        "upstream (updated, added, deleted) twice a second. A schedule of faults runs "
        "meanwhile, round after round while a whole round fits (in this run the faults "
        f"lasted until {result['faults_seconds']} s; the rest is load alone). Every answer "
        "is checked against the README's contract; a streamed search (`Accept: "
        "application/x-ndjson`) must be NDJSON, one documented event a line, ending with "
        "`done` or `error`, and a stream ended by an `error` event counts as its "
        "problem's status (a `503` in-band is a `503`). "
        "`make chaos-smoke` (`--smoke`) runs one of each fault with windows of seconds, and "
        "`tests/system/test_chaos_smoke.py` asserts its zero targets in the test suite.",
        "",
        f"This page is written from `benchmarks/results/{source}`. The machine: "
        f"{m.get('cpus')} CPUs, Python {m.get('python')}, load average after the run "
        f"{m.get('load_average')}. " + _load_words(m),
        "",
        "Settings of the replicas: `GISTCACHE_CACHE_TTL=5` (so lists go stale and are "
        "revalidated all the time), `GISTCACHE_GITHUB_TIMEOUT=2`, "
        "`GISTCACHE_GITHUB_RETRIES=1`, `GISTCACHE_SHUTDOWN_TIMEOUT=3`, "
        f"`GISTCACHE_SEARCH_JOB_LEASE={p['job_lease']:g}`, 2 search workers each.",
        "",
        "## Targets",
        "",
        "| target | result | met |",
        "|---|---|---|",
    ]
    for name, (value, ok) in targets(result).items():
        lines.append(_cells([name, value, "yes" if ok else "**no**"]))
    lines += [
        "",
        f"{result['requests']} requests in {result['load_seconds']} s "
        f"({result['requests_per_second']}/s); statuses {result['by_status']}. "
        f"Upstream changes: {result['mutations']}. Overload answers (documented at "
        "any time, counted apart from the 5xx target: a search over its time budget, "
        f"`504 search-timeout`, or over `GISTCACHE_MAX_SEARCHES`, `503 searches-busy`): "
        f"{result['overload_answers']['count']} {result['overload_answers']['by_problem']}. "
        f"Jobs: {jobs['submitted']} submitted, "
        f"{jobs['succeeded']} succeeded, {jobs['failed']} failed with a documented problem "
        f"(by status: {jobs['failed_by_status']}), {len(jobs['lost'])} lost; "
        f"{jobs['run_more_than_once']} were run more than once (taken over after a kill or "
        f"handed back at a SIGTERM) and {jobs['outcomes_dropped_after_takeover']} late "
        "outcomes were dropped by their lease, never recorded twice.",
        "",
        "## What each fault did",
        "",
        f"Answers count for a window from its start until {p['tail']:g} s after it ended "
        "(GitHub back-offs of 5 s outlive the fault); 5xx statuses named in the promise "
        "are the documented ones. `conn_error` counts connections refused by the replica "
        "that was down (the load generator keeps sending it its share; a load balancer "
        "would route around it); outside a replica's downtime one counts as a contract "
        "break. Latencies are of answered requests, in ms.",
        "",
        "| window | s | the service promises | requests | by class | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["windows"]:
        classes = ", ".join(f"{k}: {v}" for k, v in row["by_class"].items())
        lines.append(
            _cells(
                [
                    row["window"],
                    row["seconds"],
                    row["promise"],
                    row["requests"],
                    classes,
                    row["p50_ms"],
                    row["p95_ms"],
                    row["p99_ms"],
                    row["max_ms"],
                ]
            )
        )
    lines += [
        "",
        "## Rate-limit blocks",
        "",
        "At the start of each window the harness revalidates one user on replica 0, then "
        "on replica 1: the first is told to wait by GitHub, the second must learn it from "
        "the database. A request that reached the fake's API more than 1 s after the first "
        "answer telling to wait, and before the window ended, counts against the target "
        "(the fake logs every request's arrival time). The block lasts what that answer "
        "said: until `x-ratelimit-reset`, or for `retry-after` seconds.",
        "",
    ]
    lines += [
        "| window | answers telling to wait | in flight when told (1 s) | reached GitHub after |",
        "|---|---|---|---|",
    ]
    for block in result["rate_limit_blocks"]:
        lines.append(
            _cells(
                [
                    block["window"],
                    block["told_to_wait"],
                    block["in_flight_at_block"],
                    block["reached_github_during_block"],
                ]
            )
        )
    notes = []
    for row in result["windows"]:
        n = row.get("notes") or {}
        if "jobs_running_on_it" in n:
            notes.append(
                f"- {row['window']}: {n['jobs_running_on_it']} job(s) were running on it when "
                "it was killed; none was lost (a job left `STARTED` is claimed again once "
                "its lease runs out)."
            )
        if "exit_status" in n:
            graceful = n["exit_status"] == 0
            notes.append(
                f"- {row['window']}: the replica exited with status {n['exit_status']}"
                + (
                    " (a clean shutdown)."
                    if graceful
                    else ": its shutdown did not finish within `GISTCACHE_SHUTDOWN_TIMEOUT` "
                    "plus 0.9 s on the overloaded machine, so the watchdog ended it, as the "
                    "README promises; a job it could not hand back in time is claimed again "
                    "after its lease, like a killed replica's."
                )
            )
    if notes:
        lines += ["", "## Notes on the faults", "", *notes]
    lines += ["", "## Faults the soak found", "", *FOUND, ""]
    return "\n".join(lines)


# defects the soak found and that were fixed (each with a focused test)
FOUND: list[str] = [
    "- **A runner whose lease was taken over logged its job as finished.** The first "
    'smoke run counted two jobs "recorded twice": under load a runner\'s lease '
    "lapsed, another replica took the job over, and the first runner's late outcome "
    "was dropped (the lease check held, the database had one outcome) but still logged "
    "`search job … finished`. The line is now written only when the outcome was "
    "recorded (`tests/api/test_jobs.py`).",
    "- **A refresh lease left by a killed replica held the others back for 120 s.** "
    "Found while building the kill fault, from what a `kill -9` leaves behind, before "
    "a run tripped on it: a replica killed mid-refresh left its `refresh_leases` row, "
    "and a `no-cache` or "
    "uncached request for that user on the other replica waited for it to run out. "
    "The lease now lasts 10 s and is renewed while the refresh runs "
    "(`tests/system/test_multiprocess.py`: a dead server's lease lapses; a refresh "
    "longer than the lease keeps it).",
    "- **PostgreSQL shutting down or starting up was answered `500`, not `503`.** While "
    "the soak stopped and started PostgreSQL, connections failed with SQLSTATE 57P03 "
    "(`the database system is shutting down` / `is starting up`), which asyncpg raises "
    "as a class SQLAlchemy maps to a bare `DBAPIError`: the store called it a bug. "
    "Connection-exception and operator-intervention SQLSTATEs (08…, 57P…, 53300) are "
    "now an outage: `503` `database-unavailable` with `Retry-After` "
    "(`tests/api/test_health.py`, against a server that answers 57P03).",
]
