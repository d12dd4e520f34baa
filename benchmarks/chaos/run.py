"""``python -m benchmarks.chaos``: the soak. Starts the fake GitHub, a private
PostgreSQL cluster and two ``gistcache serve`` replicas, each in its own process,
drives a mixed load over both for ``--duration`` seconds while a fault schedule runs,
then checks the jobs, the rate-limit block and the cache against the fake's truth,
and writes ``benchmarks/results/chaos-<timestamp>.json`` and ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from benchmarks.chaos import report
from benchmarks.chaos.load import LIST_OK, Load, Users, client_address
from gistcache.testing.postgres import PrivatePostgres, find_bindir

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "reliability.md"


@dataclass(frozen=True)
class Profile:
    """How long each part lasts: the full soak, or the smoke run of the test suite."""

    duration: float
    workers: int
    max_requests: int
    gap: float  # quiet seconds between two faults
    kill_restart_after: float
    term_restart_after: float
    pg_down: float
    github_window: float
    hostile_window: float
    job_lease: float
    tail: float  # after a window, answers still count as the window's (back-offs end)
    fresh_users: int
    latency: float
    plain_users: int
    slow_users: int
    paged_gists: int
    # GitHub requests per client and hour (GISTCACHE_CLIENT_GITHUB_BUDGET): what the
    # draining client may make reach GitHub on each start of each replica
    client_budget: int


FULL = Profile(
    duration=300,
    workers=8,
    max_requests=500_000,
    gap=10,
    kill_restart_after=4,
    term_restart_after=3,
    pg_down=10,
    github_window=10,
    hostile_window=5,
    job_lease=10,
    tail=6,
    fresh_users=2000,
    latency=0.02,
    plain_users=12,
    slow_users=12,
    paged_gists=230,
    client_budget=40,
)
SMOKE = Profile(
    duration=24,
    workers=4,
    max_requests=20_000,
    gap=0.6,
    kill_restart_after=1,
    term_restart_after=0.5,
    pg_down=2,
    github_window=3,
    hostile_window=1,
    job_lease=4,
    tail=6,
    fresh_users=300,
    latency=0.01,
    plain_users=4,
    slow_users=4,
    paged_gists=120,
    client_budget=3,
)


@dataclass
class Window:
    name: str
    start: float
    end: float = 0.0
    allowed: tuple[int, ...] = ()  # 5xx statuses documented for this fault
    down: int | None = None  # the replica that is expected not to answer
    notes: dict[str, Any] = field(default_factory=dict)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Replica:
    def __init__(self, index: int, env: dict[str, str], logdir: Path) -> None:
        self.index = index
        self.port = _free_port()
        self.env = {**env, "GISTCACHE_PORT": str(self.port)}
        self.log = logdir / f"replica-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.starts = 0  # each start begins with an empty client budget (it is per process)

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                [sys.executable, "-m", "gistcache", "serve", "--no-migrate"],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        await wait_healthy(self.url, self.proc)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, seconds: float = 20) -> int | None:
        assert self.proc is not None
        proc = self.proc
        deadline = time.monotonic() + seconds
        while proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return proc.poll()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None, seconds: float = 60, path: str = "/healthz"
) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{url} exited with status {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url + path) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer {path} within {seconds} s")


class Soak:
    def __init__(self, profile: Profile, workdir: Path) -> None:
        self.p = profile
        self.workdir = workdir
        self.windows: list[Window] = []
        self.replicas: list[Replica] = []
        self.pg: PrivatePostgres | None = None
        self.fake_proc: subprocess.Popen[bytes] | None = None
        self.fake_url = ""
        self.started = 0.0
        self.load: Load | None = None
        self._restarting: dict[int, asyncio.Task[None]] = {}

    # --- processes -------------------------------------------------------------

    async def setup(self, bindir: Path) -> None:
        fake_port = _free_port()
        self.fake_url = f"http://127.0.0.1:{fake_port}"
        with (self.workdir / "fake.log").open("ab") as out:
            self.fake_proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                [
                    sys.executable,
                    "-m",
                    "benchmarks.chaos.upstream",
                    "--port",
                    str(fake_port),
                    "--latency",
                    str(self.p.latency),
                    "--fresh-users",
                    str(self.p.fresh_users),
                    "--plain-users",
                    str(self.p.plain_users),
                    "--slow-users",
                    str(self.p.slow_users),
                    "--paged-gists",
                    str(self.p.paged_gists),
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pg = await asyncio.to_thread(PrivatePostgres.create, bindir)
        await asyncio.to_thread(self.pg.start)
        await wait_healthy(self.fake_url, self.fake_proc, path="/_fake/stats")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GISTCACHE_")},
            "GISTCACHE_DATABASE_URL": self.pg.url,
            "GISTCACHE_HOST": "127.0.0.1",
            "GISTCACHE_GITHUB_API_URL": self.fake_url,
            "GISTCACHE_CACHE_TTL": "5",
            # the load comes through the harness as a proxy: X-Forwarded-For names a client
            # of its own for each request, and one draining client (load.DRAIN_CLIENT)
            "GISTCACHE_TRUSTED_PROXIES": "127.0.0.1/32",
            "GISTCACHE_CLIENT_GITHUB_BUDGET": f"{self.p.client_budget}/hour",
            "GISTCACHE_MAX_JOBS_PER_CLIENT": "100000",
            "GISTCACHE_NOT_FOUND_TTL": "5",
            "GISTCACHE_GITHUB_TIMEOUT": "2",
            "GISTCACHE_GITHUB_CONNECT_TIMEOUT": "1",
            "GISTCACHE_GITHUB_RETRIES": "1",
            "GISTCACHE_SHUTDOWN_TIMEOUT": "3",
            "GISTCACHE_SEARCH_WORKERS": "2",
            "GISTCACHE_SEARCH_JOB_LEASE": str(self.p.job_lease),
            "GISTCACHE_SEARCH_TIMEOUT": "30",
            "GISTCACHE_MAX_SEARCHES": "16",
            "GISTCACHE_LOG_LEVEL": "INFO",
        }
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gistcache", "migrate", env=env, cwd=ROOT
        )
        if await migrate.wait() != 0:
            raise RuntimeError("gistcache migrate failed")
        self.replicas = [Replica(n, env, self.workdir) for n in range(2)]
        await asyncio.gather(*(r.start() for r in self.replicas))

    def teardown(self) -> None:
        for replica in self.replicas:
            replica.stop()
        if self.fake_proc is not None and self.fake_proc.poll() is None:
            self.fake_proc.terminate()
            self.fake_proc.wait(timeout=10)
        if self.pg is not None:
            self.pg.remove()

    async def fake(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
            http.request(method, self.fake_url + path, json=body) as resp,
        ):
            return await resp.json()

    # --- faults ----------------------------------------------------------------

    def _open(self, name: str, allowed: tuple[int, ...] = (), down: int | None = None) -> Window:
        window = Window(name, time.time(), allowed=allowed, down=down)
        self.windows.append(window)
        now = time.time()
        busy = ""
        if self.load is not None:
            waits = sorted(f"{k}@{r}:{now - t:.0f}s" for k, r, _, t in self.load.in_flight.values())
            busy = f" ({len(self.load.records)} done; in flight: {', '.join(waits)})"
        print(f"[{now - self.started:6.1f} s] fault: {name}{busy}", flush=True)
        if os.environ.get("CHAOS_DEBUG"):
            for task in asyncio.all_tasks():
                stack = task.get_stack(limit=3)
                where = [f"{f.f_code.co_name}:{f.f_lineno}" for f in stack]
                print("   ", task.get_name(), where, flush=True)
        return window

    def _restart(self, replica: Replica, window: Window, after: float) -> None:
        """Start ``replica`` again ``after`` seconds from now, in the background; the
        window ends once it answers."""

        async def back() -> None:
            await asyncio.sleep(after)
            await replica.start()
            window.end = time.time()
            print(f"[{time.time() - self.started:6.1f} s] replica {replica.index} back")

        self._restarting[replica.index] = asyncio.create_task(back())

    async def replicas_up(self) -> None:
        tasks = list(self._restarting.values())
        self._restarting.clear()
        await asyncio.gather(*tasks)

    async def kill_replica(self) -> None:
        assert self.load is not None
        victim = self.replicas[0]
        slow = self.load.users.slow
        logins = slow[:4]
        self.load.users.slow = slow[4:] + logins  # fresh contents for the next time
        await self.fake("POST", "/_fake/chaos/slow", {"seconds": 10})
        await self.load.submit_jobs(victim.index, logins)
        running = await self._jobs_running_on(victim, within=3)
        window = self._open("kill -9 replica 0", down=victim.index)
        window.notes["jobs_running_on_it"] = running
        victim.signal(signal.SIGKILL)
        await victim.wait()
        self._restart(victim, window, self.p.kill_restart_after)

    async def _jobs_running_on(self, replica: Replica, within: float) -> int:
        deadline = time.monotonic() + within
        running = 0
        while time.monotonic() < deadline:
            started, ended = _job_events(replica.log.read_text(errors="replace"))
            running = len(started - ended)
            if running:
                break
            await asyncio.sleep(0.1)
        return running

    async def term_replica(self) -> None:
        await self.replicas_up()  # never both down
        victim = self.replicas[1]
        window = self._open("SIGTERM replica 1 (rolling restart)", allowed=(503,), down=1)
        victim.signal(signal.SIGTERM)
        window.notes["exit_status"] = await victim.wait()
        self._restart(victim, window, self.p.term_restart_after)

    async def stop_postgres(self) -> None:
        assert self.pg is not None
        await self.replicas_up()  # a server does not start without its database
        window = self._open(f"PostgreSQL stopped for {self.p.pg_down:g} s", allowed=(503,))
        await asyncio.to_thread(self.pg.stop)
        await asyncio.sleep(self.p.pg_down)
        await asyncio.to_thread(self.pg.start)
        await asyncio.gather(*(wait_healthy(r.url, r.proc, path="/readyz") for r in self.replicas))
        window.end = time.time()

    async def github_mode(self, mode: str, name: str, allowed: tuple[int, ...]) -> None:
        window = self._open(name, allowed=allowed)
        seconds = self.p.github_window
        await self.fake("POST", "/_fake/chaos/mode", {"mode": mode, "seconds": seconds})
        window.notes["mode"] = mode
        # make sure GitHub is asked in the window: a revalidation on each replica, one
        # after the other (the second must learn of a rate limit from the first)
        probes = asyncio.create_task(self._probe())
        await asyncio.sleep(seconds)
        window.end = time.time()
        await probes
        if mode == "primary":  # the reset is a whole second: let it pass before the next
            await asyncio.sleep(max(0.0, window.start + seconds + 2 - time.time()))

    async def _probe(self) -> None:
        assert self.load is not None
        load = self.load
        assert load.http is not None
        login = load.rng.choice(load.users.plain)
        for replica in range(len(self.replicas)):
            await load.request(
                "no-cache",
                replica,
                "GET",
                f"/{login}",
                ok=LIST_OK,
                headers={"Cache-Control": "no-cache"},
            )

    async def hostile_burst(self) -> None:
        assert self.load is not None
        window = self._open("hostile burst")
        self.load.hostile.set()
        # past the client's budget on every replica, however long that takes
        drain = asyncio.create_task(self.load.drain(self.p.client_budget * 2 + 4))
        await asyncio.sleep(self.p.hostile_window)
        self.load.hostile.clear()
        await drain
        window.end = time.time()

    def schedule(self) -> list[Callable[[], Awaitable[None]]]:
        """One round; the replicas' restarts overlap the GitHub faults."""
        return [
            self.kill_replica,
            lambda: self.github_mode("error500", "GitHub answers 500", (502,)),
            lambda: self.github_mode("timeout", "GitHub times out", (504,)),
            self.term_replica,
            lambda: self.github_mode("primary", "GitHub primary rate limit", (503,)),
            lambda: self.github_mode("secondary", "GitHub secondary rate limit", (503,)),
            self.hostile_burst,
            self.stop_postgres,
        ]

    async def faults(self, until: float) -> None:
        """Run the schedule, again while a whole round still fits (once when smoke)."""
        round_took = 0.0
        while True:
            begun = time.time()
            for fault in self.schedule():
                await asyncio.sleep(self.p.gap)
                await fault()
            await self.replicas_up()
            round_took = time.time() - begun
            if self.p.duration <= SMOKE.duration or time.time() + round_took > until:
                return

    # --- the run -----------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        roles = await self.fake("GET", "/_fake/chaos/users")
        users = Users(roles["plain"], roles["paged"], roles["slow"], roles["fresh"])
        self.load = Load(
            [r.url for r in self.replicas],
            self.fake_url,
            users,
            workers=self.p.workers,
            max_requests=self.p.max_requests,
        )
        self.started = time.time()
        until = self.started + self.p.duration
        smoke = self.p.duration <= SMOKE.duration
        # the smoke run's load lasts as long as its faults take (bounded all the same)
        load_task = asyncio.create_task(self.load.run(600 if smoke else self.p.duration))
        await asyncio.sleep(min(3.0, self.p.gap * 3))
        await self.faults(until - self.p.gap)
        fault_end = time.time()
        if smoke:  # the smoke run stops once its faults did
            await asyncio.sleep(2)
            self.load.stop()
        await load_task
        load_end = time.time()
        print(f"[{load_end - self.started:6.1f} s] load stopped; settling jobs", flush=True)
        await self.fake("POST", "/_fake/chaos/mode", {"mode": "ok", "seconds": 0})
        grace = self.p.job_lease * 2 + 15
        await self.load.settle_jobs(grace)
        jobs_db = await self._jobs_in_db()
        await asyncio.sleep(1)
        truth = await self._compare_with_truth()
        fake_log = await self.fake("GET", "/_fake/chaos/log")
        logs = [r.log.read_text(errors="replace") for r in self.replicas]
        return report.summarise(
            profile=self.p.__dict__,
            started=self.started,
            fault_end=fault_end,
            load_end=load_end,
            windows=[w.__dict__ for w in self.windows],
            records=self.load.records,
            jobs=self.load.jobs,
            jobs_db=jobs_db,
            replica_logs=logs,
            fake_log=fake_log,
            truth=truth,
            mutations=self.load.mutations,
            tail=self.p.tail,
            drain_allowed=self.p.client_budget * sum(r.starts for r in self.replicas),
        )

    async def _jobs_in_db(self) -> dict[str, Any]:
        assert self.pg is not None
        conn = await asyncpg.connect(
            host="127.0.0.1", port=self.pg.port, user="postgres", database="postgres"
        )
        try:
            rows = await conn.fetch("SELECT id, status, attempts FROM search_jobs")
        finally:
            await conn.close()
        return {r["id"]: {"status": r["status"], "attempts": r["attempts"]} for r in rows}

    async def _compare_with_truth(self) -> dict[str, Any]:
        """Revalidate every user the load changed or listed, on each replica, and compare
        the list and the files' revisions with the fake's truth."""
        assert self.load is not None
        users = self.load.users
        logins = users.plain + users.paged + users.slow
        mismatches: list[dict[str, Any]] = []
        timeout = aiohttp.ClientTimeout(total=120)
        limit = asyncio.Semaphore(6)

        async def check(login: str) -> None:
            async with limit:
                async with http.get(f"{self.fake_url}/_fake/chaos/users/{login}/truth") as resp:
                    truth = await resp.json()
                for replica in self.replicas:
                    problem = await _check_user(http, replica.url, login, truth)
                    if problem:
                        mismatches.append({"login": login, "replica": replica.index, **problem})

        async with aiohttp.ClientSession(timeout=timeout) as http:
            await asyncio.gather(*(check(login) for login in logins))
        return {
            "users": len(logins),
            "checks": len(logins) * len(self.replicas),
            "mismatches": mismatches,
        }


async def _check_user(
    http: aiohttp.ClientSession, base: str, login: str, truth: list[dict[str, Any]]
) -> dict[str, Any] | None:
    # a client of its own: the replicas' GitHub budget is per client
    same = random.Random(f"{base} {login}")  # noqa: S311 - an address for a test, not a secret
    client = {"X-Forwarded-For": client_address(same)}
    headers = {"Cache-Control": "no-cache", **client}
    async with http.get(f"{base}/api/v1/users/{login}/gists", headers=headers) as resp:
        if resp.status != 200:
            return {"what": "list", "status": resp.status}
        listed = await resp.json()
    want = [(g["id"], g["description"], g["updated_at"], sorted(g["files"])) for g in truth]
    got = [
        (g["id"], g["description"], g["updated_at"], sorted(f["filename"] for f in g["files"]))
        for g in listed
    ]
    if want != got:
        return {"what": "list", "expected": len(want), "got": len(got)}
    # every file's first line names its revision: the search shows which one is cached
    expected = {
        (g["id"], name): text.split("\n", 1)[0] for g in truth for name, text in g["files"].items()
    }
    found: dict[tuple[str, str], str] = {}
    page = 1
    while True:
        body = {"username": login, "pattern": "^rev-", "per_page": 100, "page": page}
        async with http.post(f"{base}/api/v1/search", json=body, headers=client) as resp:
            if resp.status != 200:
                return {"what": "search", "status": resp.status}
            result = await resp.json()
        for match in result["matches"]:
            for f in match["files"]:
                found[(match["id"], f["filename"])] = f["lines"][0]["text"]
        if page * 100 >= result["total"]:
            break
        page += 1
    if result.get("skipped"):
        return {"what": "files", "skipped": result["skipped"][:5]}
    wrong = [k for k in expected if found.get(k) != expected[k]]
    if wrong:
        return {"what": "files", "wrong": len(wrong), "of": len(expected)}
    return None


_STARTED = re.compile(r"search job (\S+) started")
_ENDED = re.compile(r"search job (\S+) (finished|failed|handed back|given up)")


def _job_events(log: str) -> tuple[set[str], set[str]]:
    return set(_STARTED.findall(log)), {m[0] for m in _ENDED.findall(log)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, help="seconds of load (default 300)")
    parser.add_argument("--smoke", action="store_true", help="seconds, one of each fault")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON")
    parser.add_argument("--page", type=Path, default=None, help="markdown page to write")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only write the page (docs/reliability.md) again from a results file",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        result = json.loads(args.render.read_text())
        (args.page or PAGE).write_text(report.markdown(result, source=args.render.name))
        print(report.targets_line(result))
        return 0 if report.targets_met(result) else 1
    profile = SMOKE if args.smoke else FULL
    if args.duration:
        profile = Profile(**{**profile.__dict__, "duration": args.duration})
    page = args.page if args.page is not None else (None if args.smoke else PAGE)
    bindir = find_bindir()
    if bindir is None:
        print("the chaos soak needs PostgreSQL's initdb and pg_ctl", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="gistcache-chaos-"))
    soak = Soak(profile, workdir)

    async def go() -> dict[str, Any]:
        try:
            await soak.setup(bindir)
            return await soak.run()
        finally:
            soak.teardown()

    result = asyncio.run(go())
    result["machine"] = report.machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"chaos-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {out} (logs in {workdir})")
    markdown = report.markdown(result, source=out.name)
    if page is not None:
        page.write_text(markdown)
        print(f"page: {page}")
    else:
        (args.out / f"chaos-{stamp}.md").write_text(markdown)
    print(report.targets_line(result))
    return 0 if report.targets_met(result) else 1
