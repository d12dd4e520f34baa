"""Process management and measuring helpers shared by the benchmark scenarios.

Everything measured runs in its own process: the fake GitHub, ``gistcache serve``,
the ceiling app and the load generator. This process only orchestrates, times
single requests and reads the fake's request counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "results"
TOKEN = "bench-token"  # the fake takes any token; it buys 5,000 requests and free 304s
USER_AGENT = {"User-Agent": "gistcache-bench"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since the process started), in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


async def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {seconds} s")


@dataclass
class Service:
    """A helper process listening on a port of 127.0.0.1."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def start_service(
    name: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Service:
    """Start ``argv`` (which listens on ``port``) and wait until ``ready_path`` answers."""
    port = port or free_port()
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived helper process
            [a.replace("{port}", str(port)) for a in argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=workdir,
        )
    service = Service(name, process, port, log)
    try:
        await wait_until_up(service.url + ready_path, process)
    except BaseException:
        service.stop()
        raise RuntimeError(f"{name} did not start:\n{service.log_tail()}") from None
    return service


async def start_fake(
    workdir: Path, *, latency: float, bulk_users: Sequence[str], huge_file_mb: int
) -> Service:
    argv = [
        sys.executable, "-m", "gistcache.testing.fake_github", "--port", "{port}",
        "--seed-users", "0", "--latency", str(latency), "--huge-file-mb", str(huge_file_mb),
    ]  # fmt: skip
    for spec in bulk_users:
        argv += ["--bulk-user", spec]
    return await start_service("fake-github", argv, workdir=workdir, ready_path="/_fake/stats")


def server_env(
    database_url: str, github_url: str, port: int, **settings: str | float | int
) -> dict[str, str]:
    """The environment of a ``gistcache serve``: ours only, no GISTCACHE_* inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GISTCACHE_")}
    env.pop("GITHUB_TOKEN", None)
    env.update(
        {
            "GISTCACHE_DATABASE_URL": database_url,
            "GISTCACHE_GITHUB_API_URL": github_url,
            "GISTCACHE_GITHUB_TOKEN": TOKEN,
            "GISTCACHE_HOST": "127.0.0.1",
            "GISTCACHE_PORT": str(port),
            "GISTCACHE_RATE_LIMIT": "",  # no client rate limit under load
            "GISTCACHE_CLIENT_GITHUB_BUDGET": "off",  # one load generator is many clients
        }
    )
    env.update({f"GISTCACHE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


async def start_server(
    workdir: Path, name: str, database_url: str, github_url: str, **settings: str | float | int
) -> Service:
    port = free_port()
    return await start_service(
        name,
        [sys.executable, "-m", "gistcache", "serve"],
        workdir=workdir,
        ready_path="/healthz",
        env=server_env(database_url, github_url, port, **settings),
        port=port,
    )


async def start_ceiling(workdir: Path) -> Service:
    """The ceiling app; ``ceiling_body(workdir, name, body)`` gives it what to serve."""
    bodies = workdir / "ceiling"
    bodies.mkdir(exist_ok=True)
    argv = [
        sys.executable, str(BENCHMARKS / "ceiling.py"), "--port", "{port}", "--dir", str(bodies),
    ]  # fmt: skip
    return await start_service("ceiling", argv, workdir=workdir, ready_path="/ping")


def ceiling_body(workdir: Path, name: str, body: bytes) -> None:
    (workdir / "ceiling" / f"{name}.body").write_bytes(body)


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    try:
        yield service
    finally:
        service.stop()


async def loadgen(url: str, *options: str) -> dict[str, Any]:
    """Run benchmarks/loadgen.py in its own process; return its JSON report."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCHMARKS / "loadgen.py"),
        url,
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode(errors='replace')}")
    report: dict[str, Any] = json.loads(out)
    if report["errors"] or set(report["statuses"]) - {"200"}:
        raise RuntimeError(f"loadgen saw failures: {report}")
    return report


WRK = shutil.which("wrk")  # Debian's wrk package; None: the Python generator instead
BURST_SECONDS = 4  # wrk's -d for a burst (the herd)
WRK_THREADS = 2  # wrk's threads (never more than connections): one a core here


def generator_info() -> dict[str, Any]:
    """Which load generator this run uses, with its flags; the figures depend on it."""
    if WRK is not None and os.environ.get("GISTCACHE_BENCH_NO_WRK") != "1":
        return {
            "name": "wrk",
            "path": WRK,
            "version": _first_line([WRK, "-v"]),
            "flags": f"-t{WRK_THREADS} -cCONCURRENCY -dSECONDS --timeout 10s "
            "-s benchmarks/wrk_report.lua (bursts: wrk_burst.lua)",
            "capped_by_generator": False,
        }
    return {
        "name": "loadgen",
        "path": "benchmarks/loadgen.py",
        "version": "aiohttp client, separate process",
        "flags": "--concurrency CONCURRENCY --duration SECONDS --warmup SECONDS",
        # an interpreter's client shares the two cores with the server: the ceiling app
        # measured through it is the generator's own ceiling, and caps every ratio
        "capped_by_generator": True,
    }


def _first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    out = (done.stdout or done.stderr).decode(errors="replace").strip()
    return out.splitlines()[0] if out else "unknown"


async def _run_wrk(
    url: str, script: str, *options: str, args: Sequence[str] = ()
) -> dict[str, Any]:
    assert WRK is not None
    argv = [WRK, *options, "--timeout", "10s", "-s", str(BENCHMARKS / script), url]
    if args:
        argv += ["--", *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError(
            f"wrk failed ({proc.returncode}): {out.decode(errors='replace')[-2000:]}"
            f" {err.decode(errors='replace')[-2000:]}"
        )
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _wrk_seconds(seconds: float) -> int:
    return max(1, round(seconds))  # wrk takes whole seconds


def _ms(latency_us: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v / 1000, 3) for k, v in latency_us.items()}


async def load(url: str, concurrency: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Keep ``concurrency`` connections busy on ``url`` for ``seconds`` (after an
    unmeasured ``warmup``): wrk when on the PATH, else benchmarks/loadgen.py. The
    report has loadgen's shape (requests, rps, latency_ms, ...) and names its generator."""
    info = generator_info()
    if info["name"] != "wrk":
        report = await loadgen(
            url, "--concurrency", str(concurrency), "--duration", str(seconds),
            "--warmup", str(warmup),
        )  # fmt: skip
        report["generator"] = "loadgen"
        return report
    options = [f"-t{min(WRK_THREADS, concurrency)}", f"-c{concurrency}"]
    if warmup >= 0.5:
        await _run_wrk(url, "wrk_report.lua", *options, f"-d{_wrk_seconds(warmup)}s")
    raw = await _run_wrk(url, "wrk_report.lua", *options, f"-d{_wrk_seconds(seconds)}s")
    if any(raw["errors"].values()):
        raise RuntimeError(f"wrk saw failures on {url}: {raw}")
    elapsed = raw["duration_us"] / 1e6
    return {
        "url": url,
        "generator": "wrk",
        "concurrency": concurrency,
        "threads": raw["threads"],
        "requests": raw["requests"],
        "errors": {},
        "seconds": round(elapsed, 4),
        "rps": round(raw["requests"] / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": _ms(raw["latency_us"]),
        "body_bytes": raw["bytes"],
    }


async def burst(url: str, requests: int, count_header: str) -> dict[str, Any]:
    """``requests`` requests at once, one per connection (a thundering herd): wrk with a
    script that stops each thread at its share, else loadgen's ``--requests``."""
    if generator_info()["name"] != "wrk":
        report = await loadgen(
            url, "--concurrency", str(requests), "--requests", str(requests),
            "--open-with", "/ping", "--count-header", count_header,
        )  # fmt: skip
        report["generator"] = "loadgen"
        return report
    threads = WRK_THREADS if requests % WRK_THREADS == 0 else 1
    # wrk runs for its whole -d even once every thread has stopped: long enough for a
    # slow refresh on a loaded machine, and a burst not all answered by then fails
    raw = await _run_wrk(
        url, "wrk_burst.lua", f"-t{threads}", f"-c{requests}", f"-d{BURST_SECONDS}s",
        args=[str(requests // threads), count_header],
    )  # fmt: skip
    if any(raw["errors"].values()) or set(raw["statuses"]) - {"200"}:
        raise RuntimeError(f"wrk saw failures on {url}: {raw}")
    if raw["answered"] != requests:
        raise RuntimeError(f"wrk had {raw['answered']} of {requests} answers in {BURST_SECONDS} s")
    return {
        "url": url,
        "generator": "wrk",
        "concurrency": requests,
        "requests": raw["answered"],
        "errors": {},
        "statuses": raw["statuses"],
        "header_values": raw["header_values"],
        "latency_ms": _ms(raw["latency_us"]),
    }


async def fake_stats(http: aiohttp.ClientSession, fake: Service) -> dict[str, int]:
    async with http.get(f"{fake.url}/_fake/stats") as resp:
        stats: dict[str, int] = await resp.json()
    return stats


@dataclass
class Upstream:
    """Requests that reached the fake GitHub between ``start()`` and ``stop()``: REST
    API requests, raw downloads, GraphQL requests and the points they were charged, and
    raw downloads the raw host refused (429, its hourly limit)."""

    api: int = 0
    raw: int = 0
    graphql: int = 0
    points: int = 0
    raw_refused: int = 0


@contextlib.asynccontextmanager
async def counting(http: aiohttp.ClientSession, fake: Service) -> AsyncIterator[Upstream]:
    before = await fake_stats(http, fake)
    counted = Upstream()
    try:
        yield counted
    finally:
        after = await fake_stats(http, fake)
        counted.api = after["api_requests"] - before["api_requests"]
        counted.raw = after["raw_requests"] - before["raw_requests"]
        counted.graphql = after["graphql_requests"] - before["graphql_requests"]
        counted.points = after["graphql_points"] - before["graphql_points"]
        counted.raw_refused = after["raw_refused"] - before["raw_refused"]


@dataclass(frozen=True)
class Timed:
    seconds: float
    status: int
    body: Any
    headers: Mapping[str, str]


async def timed_request(
    http: aiohttp.ClientSession, method: str, url: str, json_body: Any = None
) -> Timed:
    started = time.perf_counter()
    async with http.request(method, url, json=json_body) as resp:
        raw = await resp.read()
        status, headers = resp.status, dict(resp.headers)
    seconds = time.perf_counter() - started
    body: Any = raw
    if resp.content_type.endswith("json"):
        body = json.loads(raw)
    if status != 200:
        raise RuntimeError(f"{method} {url} answered {status}: {raw[:500]!r}")
    return Timed(seconds, status, body, headers)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def run_grep(pattern: str, directory: Path) -> tuple[float, dict[str, int]]:
    """``grep -E -c -r`` over ``directory``: wall seconds and matching lines per file."""
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    started = time.perf_counter()
    done = subprocess.run(
        ["grep", "-E", "-c", "-r", "--", pattern, str(directory)],
        capture_output=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"grep failed: {done.stderr.decode(errors='replace')}")
    counts = {}
    for line in done.stdout.decode().splitlines():
        path, _, count = line.rpartition(":")
        counts[path] = int(count)
    return seconds, counts


RG = shutil.which("rg")  # Debian's ripgrep package; a second search baseline


def run_rg(pattern: str, directory: Path) -> tuple[float, dict[str, int]] | None:
    """``rg -c`` over ``directory`` (no ignore files, hidden files too, one thread per
    core): wall seconds and matching lines per file; None without ripgrep."""
    if RG is None:
        return None
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    started = time.perf_counter()
    done = subprocess.run(
        [RG, "-c", "--no-config", "-uuu", "--", pattern, str(directory)],
        capture_output=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"rg failed: {done.stderr.decode(errors='replace')}")
    counts = {}
    for line in done.stdout.decode().splitlines():
        path, _, count = line.rpartition(":")
        counts[path] = int(count)
    return seconds, counts


def rg_version() -> str:
    return _first_line([RG, "--version"]) if RG is not None else "not installed"


def grep_version() -> str:
    try:
        out = subprocess.run(["grep", "--version"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.decode().splitlines()[0]


# --- databases ----------------------------------------------------------------


def _asyncpg_dsn(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


async def _postgres_admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url, "postgres"), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


POSTGRES_SETTINGS = ("autovacuum", "shared_buffers", "work_mem", "synchronous_commit")


async def postgres_version(url: str) -> tuple[str, dict[str, str]]:
    """The server's version, and the settings that move the figures most (without
    autovacuum, freshly written tables have no planner statistics)."""
    conn = await asyncpg.connect(_asyncpg_dsn(url, make_url(url).database or "postgres"))
    try:
        version: str = await conn.fetchval("SHOW server_version")
        settings = {name: await conn.fetchval(f"SHOW {name}") for name in POSTGRES_SETTINGS}
    finally:
        await conn.close()
    return f"PostgreSQL {version}", settings


def database_kind(url: str | None) -> str:
    if url is None:
        return "sqlite"
    backend = make_url(url).get_backend_name()
    if backend != "postgresql":
        raise ValueError(f"--database-url must be a postgresql+asyncpg URL, got {backend!r}")
    return "postgresql"


@contextlib.asynccontextmanager
async def bench_database(server_url: str | None, workdir: Path) -> AsyncIterator[str]:
    """A cache database of our own: a SQLite file in ``workdir``, or a throwaway
    ``bench_<random>`` database on the PostgreSQL server of ``server_url`` (created
    through its ``postgres`` maintenance database and dropped afterwards; the
    database named in the URL is never used)."""
    if server_url is None:
        yield f"sqlite+aiosqlite:///{workdir / 'cache.sqlite3'}"
        return
    name = f"bench_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _postgres_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the machine ----------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "aiohttp": version("aiohttp"),
        "sqlalchemy": version("sqlalchemy"),
        "grep": grep_version(),
        "ripgrep": rg_version(),
        "load_generator": generator_info(),
    }


def sqlite_version() -> str:
    return f"SQLite {sqlite3.sqlite_version}"


@contextlib.contextmanager
def elapsed() -> Iterator[list[float]]:
    """``with elapsed() as t: ...`` then ``t[0]`` is the wall time in seconds."""
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)
