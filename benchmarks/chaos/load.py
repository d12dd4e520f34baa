"""The soak's load generator: a mixed workload spread over the replicas, each answer
checked against the documented contract, and search jobs followed to their end.

It runs in the harness's process (asyncio and one aiohttp client session); the
servers and the fake GitHub are processes of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.chaos.upstream import file_text

REQUEST_TIMEOUT = 60.0  # a client that waited this long counts the answer as missing
PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"

# the statuses each kind of request may be answered with (README's HTTP API)
LIST_OK = {200, 304, 404, 502, 503, 504}
SEARCH_OK = {200, 404, 502, 503, 504}
SUBMIT_OK = {202, 503}
POLL_OK = {200, 503}
RESULT_OK = {200, 409, 404, 502, 503, 504}
HOSTILE_OK = {400, 404, 405, 413, 414, 431}
# made-up names from one client: answered as any list not cached (404 while GitHub
# answers) until the client's GitHub budget is spent (429)
DRAIN_OK = LIST_OK | {429}
DRAIN_WORKERS = 4  # the draining client's requests at once
# the address the draining client's requests come from (the replicas trust the harness
# as a proxy); every other request comes from an address of its own, as many clients
DRAIN_CLIENT = "198.51.100.7"
DRAIN_PREFIX = "drain"
TERMINAL = ("SUCCESS", "FAILURE")
# a failed job's problem is documented when it is one of these (README: search jobs)
JOB_FAILURES = {404, 500, 502, 503, 504}


@dataclass
class Record:
    kind: str
    replica: int
    start: float
    end: float
    status: int | str  # an HTTP status, "conn_error" or "timeout"
    broke: str | None = None  # why the answer broke the contract, if it did
    path: str = ""
    problem: str | None = None  # the problem's type, for an error


@dataclass
class JobTrack:
    id: str
    submitted_to: int
    polled_on: int
    submitted_at: float
    status: str = "PENDING"
    error_status: int | None = None
    finished_at: float | None = None


@dataclass
class Users:
    plain: list[str]
    paged: list[str]
    slow: list[str]
    fresh: list[str]
    fresh_next: itertools.count[int] = field(default_factory=itertools.count)


class Load:
    def __init__(
        self,
        replicas: Sequence[str],
        fake: str,
        users: Users,
        *,
        workers: int,
        max_requests: int,
        seed: int = 14,
    ) -> None:
        self.replicas = list(replicas)
        self.fake = fake
        self.users = users
        self.workers = workers
        self.max_requests = max_requests
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not secrets
        self.records: list[Record] = []
        self.jobs: dict[str, JobTrack] = {}
        self.mutations: dict[str, int] = {"update": 0, "add": 0, "delete": 0}
        self.hostile = asyncio.Event()  # set while a burst of hostile requests runs
        self._stop = asyncio.Event()
        self._pollers: set[asyncio.Task[None]] = set()
        self._revision = itertools.count(1)
        self.http: aiohttp.ClientSession | None = None
        self.harness_errors: list[str] = []
        self.in_flight: dict[object, tuple[str, int, str, float]] = {}
        self._drained = itertools.count()
        self._addresses = random.Random(seed + 1)  # noqa: S311 - test addresses, not secrets

    # --- running -------------------------------------------------------------

    async def run(self, seconds: float) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        connector = aiohttp.TCPConnector(limit=200, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            self.http = http
            tasks = [asyncio.create_task(self._worker(n)) for n in range(self.workers)]
            tasks.append(asyncio.create_task(self._mutator()))
            tasks.append(asyncio.create_task(self._hostile_worker()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)
            self._stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def settle_jobs(self, grace: float) -> None:
        """Follow every job not yet finished for at most ``grace`` seconds more."""
        deadline = time.time() + grace
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self.http = http
            for task in list(self._pollers):
                task.cancel()
            await asyncio.gather(*self._pollers, return_exceptions=True)
            while time.time() < deadline:
                open_jobs = [j for j in self.jobs.values() if j.status not in TERMINAL]
                if not open_jobs:
                    return
                await asyncio.gather(*(self._poll_once(j) for j in open_jobs))
                await asyncio.sleep(0.5)

    def stop(self) -> None:
        self._stop.set()

    # --- requests --------------------------------------------------------------

    async def request(
        self,
        kind: str,
        replica: int,
        method: str,
        path: str,
        *,
        ok: set[int],
        check: Callable[[aiohttp.ClientResponse, bytes], str | None] | None = None,
        **kwargs: Any,
    ) -> tuple[int | str, Any]:
        """One request, recorded; returns the status and the parsed JSON body (or None)."""
        assert self.http is not None
        url = self.replicas[replica] + path
        headers = {"X-Forwarded-For": self._client_address(), **kwargs.pop("headers", {})}
        start = time.time()
        token = object()
        self.in_flight[token] = (kind, replica, path, start)
        status: int | str
        broke: str | None = None
        body: Any = None
        problem: str | None = None
        try:
            async with self.http.request(method, url, headers=headers, **kwargs) as resp:
                raw = await resp.read()
                status = resp.status
                broke = _contract(resp, raw, ok)
                if broke is None and check is not None and resp.status < 300:
                    broke = check(resp, raw)
                if resp.content_type in ("application/json", PROBLEM) and raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        broke = broke or "body is not JSON"
                    if resp.status >= 400 and isinstance(body, dict):
                        problem = str(body.get("type", "")).rpartition(":")[2] or None
                elif resp.content_type == NDJSON:
                    body = raw
                    ended = _stream_failure(raw)
                    if ended is not None:  # an in-band failure counts as its status
                        status, problem = ended
        except TimeoutError:
            status = "timeout"
        except aiohttp.ClientError:
            status = "conn_error"
        finally:
            self.in_flight.pop(token, None)
        self.records.append(Record(kind, replica, start, time.time(), status, broke, path, problem))
        return status, body

    def _client_address(self) -> str:
        return client_address(self._addresses)

    async def _worker(self, n: int) -> None:
        choices: list[tuple[int, Callable[[int], Awaitable[None]]]] = [
            (30, self._cached_list),
            (8, self._uncached_list),
            (10, self._paged_list),
            (8, self._revalidate),
            (6, self._conditional),
            (10, self._sync_search),
            (6, self._streamed_search),
            (4, self._submit_job),
        ]
        weights = [w for w, _ in choices]
        actions = [a for _, a in choices]
        while not self._stop.is_set():
            if len(self.records) >= self.max_requests:
                self._stop.set()
                return
            action = self.rng.choices(actions, weights)[0]
            replica = self.rng.randrange(len(self.replicas))
            try:
                await action(replica)
            except Exception as exc:  # a harness bug must not silently stop a worker
                self.harness_errors.append(f"{action.__name__}: {exc!r}")
                print(f"load worker {n}: {action.__name__} raised {exc!r}", flush=True)
            await asyncio.sleep(0.01)

    async def _cached_list(self, replica: int) -> None:
        login = self.rng.choice(self.users.plain)
        await self.request("list", replica, "GET", f"/{login}", ok=LIST_OK, check=_is_list)

    async def _uncached_list(self, replica: int) -> None:
        n = next(self.users.fresh_next)
        login = self.users.fresh[n % len(self.users.fresh)]
        path = f"/api/v1/users/{login}/gists"
        await self.request("uncached", replica, "GET", path, ok=LIST_OK, check=_is_list)

    async def _paged_list(self, replica: int) -> None:
        page = self.rng.randint(1, 6)
        path = f"/{self.users.paged[0]}?page={page}&per_page=50"
        await self.request("paged", replica, "GET", path, ok=LIST_OK, check=_is_list)

    async def _revalidate(self, replica: int) -> None:
        login = self.rng.choice(self.users.plain + self.users.paged)
        headers = {"Cache-Control": "no-cache"}
        await self.request(
            "no-cache", replica, "GET", f"/{login}", ok=LIST_OK, check=_is_list, headers=headers
        )

    async def _conditional(self, replica: int) -> None:
        login = self.rng.choice(self.users.plain)
        status, _ = await self.request("list", replica, "GET", f"/{login}", ok=LIST_OK)
        del status
        assert self.http is not None
        # the ETag of the answer just recorded is not kept: ask for it again, then send it
        try:
            headers = {"X-Forwarded-For": self._client_address()}
            url = self.replicas[replica] + f"/{login}"
            async with self.http.get(url, headers=headers) as resp:
                etag = resp.headers.get("ETag")
                await resp.read()
        except (TimeoutError, aiohttp.ClientError):
            return
        if etag:
            await self.request(
                "conditional",
                replica,
                "GET",
                f"/{login}",
                ok=LIST_OK,
                headers={"If-None-Match": etag},
            )

    def _search_body(self) -> dict[str, Any]:
        login = self.rng.choice(self.users.plain + self.users.paged)
        pattern = self.rng.choice(["TODO", r"line \d+ of", "^rev-", "file [01]$"])
        return {"username": login, "pattern": pattern, "per_page": 20}

    async def _sync_search(self, replica: int) -> None:
        await self.request(
            "search",
            replica,
            "POST",
            "/api/v1/search",
            ok=SEARCH_OK,
            check=_is_search,
            json=self._search_body(),
        )

    async def _streamed_search(self, replica: int) -> None:
        await self.request(
            "stream",
            replica,
            "POST",
            "/api/v1/search",
            ok=SEARCH_OK,
            check=_is_stream,
            json=self._search_body(),
            headers={"Accept": NDJSON},
        )

    async def _submit_job(self, replica: int, login: str | None = None) -> None:
        body = self._search_body()
        if login is not None:
            body["username"] = login
        body["async"] = True
        status, answer = await self.request(
            "job-submit",
            replica,
            "POST",
            "/api/v1/search",
            ok=SUBMIT_OK,
            check=_is_submitted,
            json=body,
        )
        if status != 202 or not isinstance(answer, dict) or "request_id" not in answer:
            return
        other = (replica + 1) % len(self.replicas)
        job = JobTrack(answer["request_id"], replica, other, time.time())
        self.jobs[job.id] = job
        task = asyncio.create_task(self._follow(job))
        self._pollers.add(task)
        task.add_done_callback(self._pollers.discard)

    async def submit_jobs(self, replica: int, logins: Sequence[str]) -> None:
        await asyncio.gather(*(self._submit_job(replica, login) for login in logins))

    async def _follow(self, job: JobTrack) -> None:
        while job.status not in TERMINAL and not self._stop.is_set():
            await asyncio.sleep(0.5)
            await self._poll_once(job)

    async def _poll_once(self, job: JobTrack) -> None:
        status, body = await self.request(
            "job-poll",
            job.polled_on,
            "GET",
            f"/api/v1/search/{job.id}",
            ok=POLL_OK,
            check=_is_job,
        )
        if status != 200 or not isinstance(body, dict):
            return
        job.status = body.get("status", job.status)
        if job.status == "FAILURE":
            error = body.get("error") or {}
            job.error_status = error.get("status") if isinstance(error, dict) else None
            job.finished_at = time.time()
        elif job.status == "SUCCESS":
            job.finished_at = time.time()
            await self.request(
                "job-result",
                job.polled_on,
                "GET",
                f"/api/v1/search_result/{job.id}",
                ok=RESULT_OK,
                check=_is_search,
            )

    # --- upstream changes ------------------------------------------------------

    async def _mutator(self) -> None:
        assert self.http is not None
        while not self._stop.is_set():
            await asyncio.sleep(0.5)
            login = self.rng.choice(self.users.plain + self.users.paged + self.users.slow)
            try:
                async with self.http.get(f"{self.fake}/_fake/chaos/users/{login}/truth") as resp:
                    truth = await resp.json()
                action = self.rng.choices(["update", "add", "delete"], [70, 15, 15])[0]
                if action == "delete" and len(truth) <= 1:
                    action = "update"
                rev = next(self._revision)
                if action == "update":
                    gist = self.rng.choice(truth)
                    name = self.rng.choice(sorted(gist["files"]))
                    files = {name: file_text(login, 99, rev, rev)}
                    url = f"{self.fake}/_fake/gists/{gist['id']}"
                    async with self.http.post(url, json={"files": files}) as resp:
                        await resp.read()
                elif action == "add":
                    files = {"new.txt": file_text(login, 100, rev, rev)}
                    url = f"{self.fake}/_fake/users/{login}/gists"
                    body = {"files": files, "description": f"added {rev}"}
                    async with self.http.post(url, json=body) as resp:
                        await resp.read()
                else:
                    gist = self.rng.choice(truth)
                    url = f"{self.fake}/_fake/gists/{gist['id']}"
                    async with self.http.delete(url) as resp:
                        await resp.read()
                self.mutations[action] += 1
            except (TimeoutError, aiohttp.ClientError):
                continue

    # --- hostile requests ------------------------------------------------------

    async def _hostile_worker(self) -> None:
        while not self._stop.is_set():
            if not self.hostile.is_set():
                await asyncio.sleep(0.1)
                continue
            replica = self.rng.randrange(len(self.replicas))
            if self.rng.random() < 0.1:
                # a pattern RE2 scans slowly, yet allowed: answered like any search while
                # the replica goes on answering everyone else
                body = {**self._search_body(), "pattern": SLOW_PATTERN}
                await self.request(
                    "hostile", replica, "POST", "/api/v1/search", ok=SEARCH_OK, json=body
                )
                continue
            method, path, kwargs = self.rng.choice(HOSTILE)
            await self.request("hostile", replica, method, path, ok=HOSTILE_OK, **kwargs)

    async def drain(self, per_replica: int) -> None:
        """One client naming users and gists nobody has, to spend the shared GitHub budget:
        ``per_replica`` requests to each replica, a few at a time, past the client's own
        budget, which must stop it (429) after the documented number of GitHub requests."""
        todo = [r for r in range(len(self.replicas)) for _ in range(per_replica)]
        self.rng.shuffle(todo)

        async def one(replica: int) -> None:
            n = next(self._drained)
            path = self.rng.choice(
                [
                    f"/{DRAIN_PREFIX}-{n}",
                    f"/api/v1/users/{DRAIN_PREFIX}-{n}/gists",
                    f"/api/v3/users/{DRAIN_PREFIX}-{n}/gists",
                    f"/api/v3/gists/{DRAIN_PREFIX}{n}",
                ]
            )
            headers = {"X-Forwarded-For": DRAIN_CLIENT}
            await self.request("drain", replica, "GET", path, ok=DRAIN_OK, headers=headers)

        async def worker() -> None:
            while todo and not self._stop.is_set():
                await one(todo.pop())

        await asyncio.gather(*(worker() for _ in range(DRAIN_WORKERS)))


def _hostile() -> list[tuple[str, str, dict[str, Any]]]:
    search = "/api/v1/search"
    big = json.dumps({"username": "c1", "pattern": "x" * (70 * 1024)})
    bad_logins = ["/a..b", "/" + "a" * 40, "/%00", "/-", "/us%20er", "/ünïcode", "/a;drop"]
    out: list[tuple[str, str, dict[str, Any]]] = [("GET", p, {}) for p in bad_logins]
    out += [
        ("GET", "/c1?page=0", {}),
        ("GET", "/c1?per_page=1000", {}),
        ("GET", "/c1?page=abc", {}),
        ("GET", "/api/v1/search/not-a-uuid", {}),
        ("GET", "/api/v1/search_result/00000000-0000-0000-0000-000000000000", {}),
        ("POST", search, {"data": big, "headers": {"Content-Type": "application/json"}}),
        ("POST", search, {"data": b"{not json", "headers": {"Content-Type": "application/json"}}),
        (
            "POST",
            search,
            {"data": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}},
        ),
        ("POST", search, {"json": ["a", "list"]}),
        ("POST", search, {"json": {"username": "c1", "pattern": "x", "extra": 1}}),
        ("POST", search, {"json": {"username": "../etc", "pattern": "x"}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "(a)\\1"}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "(?=x)y"}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "((a{1000}){1000}){1000}"}}),
        # compiled beyond the program-size bound: refused before anything is read
        ("POST", search, {"json": {"username": "c1", "pattern": "(.{20}){50}q"}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "a\udc80", "literal": True}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "x" * 1001}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "   "}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "["}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "x", "page": -1}}),
        ("POST", search, {"json": {"username": 5, "pattern": "x"}}),
        ("POST", search, {"json": {"username": "c1", "pattern": "x", "async": "yes"}}),
    ]
    return out


HOSTILE = _hostile()
# within the program-size bound, but RE2 falls back to its NFA over some texts
SLOW_PATTERN = ".*a.{450}c"


def client_address(rng: random.Random) -> str:
    """A client of its own for a request (the replicas' budgets are per client)."""
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"


# --- the contract -------------------------------------------------------------------


def _contract(resp: aiohttp.ClientResponse, raw: bytes, ok: set[int]) -> str | None:
    """Why this answer is not one the README documents, or None."""
    if b"Traceback" in raw:
        return "a traceback in the body"
    if resp.status not in ok:
        return f"status {resp.status} is not documented here"
    path = resp.url.path
    if resp.status >= 400 and (path == "/-" or path.startswith("/-/")):
        # the search page's prefix: its errors are pages in words, with the page's CSP
        if resp.content_type != "text/html":
            return f"a page's error answered as {resp.content_type}, not HTML"
        if resp.headers.get("Content-Security-Policy") != "default-src 'self'":
            return "a page's error without its Content-Security-Policy"
        return None
    if resp.status >= 400 and (path == "/api/v3" or path.startswith("/api/v3/")):
        # GitHub's own API: its errors are in GitHub's shape, never problem+json
        error = _json(raw)
        if resp.content_type != "application/json" or not isinstance(error, dict):
            return f"a GitHub-shaped error answered as {resp.content_type}"
        if not {"message", "documentation_url"} <= error.keys():
            return "a GitHub-shaped error without message or documentation_url"
        if resp.status in (503, 429) and "Retry-After" not in resp.headers:
            return f"{resp.status} without Retry-After"
    elif resp.status >= 400:
        if resp.content_type != PROBLEM:
            return f"error answered as {resp.content_type}, not problem+json"
        try:
            problem = json.loads(raw)
        except ValueError:
            return "problem body is not JSON"
        if not isinstance(problem, dict) or problem.get("status") != resp.status:
            return "problem without its status"
        if not all(key in problem for key in ("type", "title", "detail")):
            return "problem without type, title or detail"
        if resp.status in (503, 429) and "Retry-After" not in resp.headers:
            return f"{resp.status} without Retry-After"
    if "X-Request-ID" not in resp.headers:
        return "no X-Request-ID"
    return None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _is_list(resp: aiohttp.ClientResponse, raw: bytes) -> str | None:
    if resp.status == 304:
        return None
    body = _json(raw)
    if not isinstance(body, list) or not all(isinstance(g, dict) and "id" in g for g in body):
        return "a list answer that is not an array of gists"
    if "X-Cache" not in resp.headers:
        return "a list answer without X-Cache"
    return None


def _is_search(resp: aiohttp.ClientResponse, raw: bytes) -> str | None:
    body = _json(raw)
    if not isinstance(body, dict) or not {"total", "matches", "skipped"} <= body.keys():
        return "a search answer without total, matches and skipped"
    return None


STREAM_EVENTS = {"progress", "match", "skipped", "done", "error"}


def _is_stream(resp: aiohttp.ClientResponse, raw: bytes) -> str | None:
    """A 200 to ``Accept: application/x-ndjson``: JSON objects a line, each a documented
    event, the last ``done`` or ``error`` (a stream cut off without either is broken)."""
    if resp.content_type != NDJSON:
        return f"a streamed search answered as {resp.content_type}"
    events = [_json(line) for line in raw.splitlines() if line.strip()]
    if not all(isinstance(e, dict) and e.get("event") in STREAM_EVENTS for e in events):
        return "a streamed line that is not one of the documented events"
    if not events or events[-1]["event"] not in ("done", "error"):
        return "a stream that ends without done or error"
    if any(e["event"] in ("done", "error") for e in events[:-1]):
        return "a stream that goes on after its end"
    return None


def _stream_failure(raw: bytes) -> tuple[int, str | None] | None:
    """The status and problem of a stream that ended with an ``error`` event."""
    lines = [line for line in raw.splitlines() if line.strip()]
    last = _json(lines[-1]) if lines else None
    if not isinstance(last, dict) or last.get("event") != "error":
        return None
    problem = last.get("problem")
    if not isinstance(problem, dict) or not isinstance(problem.get("status"), int):
        return None
    return problem["status"], str(problem.get("type", "")).rpartition(":")[2] or None


def _is_submitted(resp: aiohttp.ClientResponse, raw: bytes) -> str | None:
    body = _json(raw)
    if not isinstance(body, dict) or "request_id" not in body:
        return "a 202 without request_id"
    if not resp.headers.get("Location", "").endswith(body["request_id"]):
        return "a 202 without its Location"
    return None


def _is_job(resp: aiohttp.ClientResponse, raw: bytes) -> str | None:
    body = _json(raw)
    if not isinstance(body, dict) or body.get("status") not in (
        "PENDING",
        "STARTED",
        *TERMINAL,
    ):
        return "a job status that is not one of the four"
    return None
