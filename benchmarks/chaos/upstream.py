"""The fake GitHub of the chaos soak: ``gistcache.testing.fake_github`` with windows of
failure switched over HTTP, a log of when each request arrived, and the truth of a
user's gists to compare the cache with.

Control endpoints (besides the fake's own ``/_fake/...``):

- ``POST /_fake/chaos/mode`` ``{"mode": M, "seconds": S}``: for S seconds every API
  request is answered by M: ``error500`` (a 500), ``timeout`` (no answer until the
  client gives up), ``primary`` (the budget is spent until the window ends: 403 with
  ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` at its end), ``secondary``
  (403 with ``retry-after`` up to the window's end), ``ok`` (back to normal).
- ``POST /_fake/chaos/slow`` ``{"seconds": S}``: for S seconds the raw downloads of
  the ``slow`` users take a while each (so that a search job runs long enough).
- ``GET /_fake/chaos/log``: every API and raw request: arrival time, kind, path, status.
- ``GET /_fake/chaos/users/{login}/truth``: the user's public gists as GitHub lists
  them now, with each file's contents (the fake's own ``/_fake/users/{login}/truth``
  gives revisions and digests instead; deletions use its ``DELETE /_fake/gists/{id}``).
- ``GET /_fake/chaos/users``: the logins seeded, by role.

Run: ``python -m benchmarks.chaos.upstream --port N --latency S``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.testing.fake_github import API_DOCS, Budget, FakeGitHub

MODES = ("ok", "error500", "timeout", "primary", "secondary")
SLOW_RAW_SECONDS = 0.4  # raw downloads of the "slow" users, so a search job runs a while


def file_text(login: str, gist: int, file: int, revision: int) -> str:
    """A file of a chaos user: its first line names its revision, so a search for
    ``^rev-`` shows which revision the cache holds."""
    body = "\n".join(f"line {n} of {login} gist {gist} file {file}" for n in range(30))
    return f"rev-{login}-{gist}-{file}-{revision}\n{body}\nTODO check {login}\n"


class ChaosGitHub(FakeGitHub):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = "ok"
        self.mode_until = 0.0
        self.log: list[dict[str, Any]] = []
        self.roles: dict[str, list[str]] = {}
        self.slow_until = 0.0  # till then the slow users' downloads are slow

    def seed_chaos(self, *, plain: int, paged_gists: int, slow: int, fresh: int) -> None:
        """Users whose files carry revision lines: ``cN`` (3 gists), ``paged`` (many gists,
        several GitHub pages), ``slowN`` (16 gists of slow downloads, for jobs), and
        ``freshN`` (1 gist, each asked for once: the uncached lists)."""

        def add(login: str, gists: int, files: int) -> None:
            for g in range(gists):
                self.add_gist(
                    login,
                    {f"f{f}.txt": file_text(login, g, f, 0) for f in range(files)},
                    description=f"{login} gist {g}",
                )

        self.roles = {"plain": [], "paged": [], "slow": [], "fresh": []}
        for n in range(1, plain + 1):
            add(f"c{n}", 3, 2)
            self.roles["plain"].append(f"c{n}")
        add("paged", paged_gists, 1)
        self.roles["paged"].append("paged")
        for n in range(1, slow + 1):
            add(f"slow{n}", 16, 1)
            self.roles["slow"].append(f"slow{n}")
        for n in range(1, fresh + 1):
            add(f"fresh{n}", 1, 1)
            self.roles["fresh"].append(f"fresh{n}")

    def app(self) -> web.Application:
        app = super().app()
        app.middlewares.insert(0, self._chaos_middleware)
        app.router.add_post("/_fake/chaos/mode", self._set_mode)
        app.router.add_post("/_fake/chaos/slow", self._set_slow)
        app.router.add_get("/_fake/chaos/log", self._get_log)
        app.router.add_get("/_fake/chaos/users/{login}/truth", self._truth)
        app.router.add_get("/_fake/chaos/users", self._users)
        return app

    def current_mode(self) -> str:
        if self.mode != "ok" and time.time() >= self.mode_until:
            self.mode = "ok"
        return self.mode

    @web.middleware
    async def _chaos_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_fake/"):
            return await handler(request)
        kind = "raw" if path.startswith("/gist-raw/") else "api"
        entry: dict[str, Any] = {"t": time.time(), "kind": kind, "path": path, "status": None}
        self.log.append(entry)
        if kind == "raw" and "/slow" in path and time.time() < self.slow_until:
            await asyncio.sleep(SLOW_RAW_SECONDS)
        mode = self.current_mode() if kind == "api" else "ok"
        entry["mode"] = mode
        if mode == "error500":
            entry["status"] = 500
            return web.json_response(
                {"message": "Server Error", "documentation_url": API_DOCS}, status=500
            )
        if mode == "timeout":
            # hold the request until the window ends (the client gives up long before)
            await asyncio.sleep(max(0.0, self.mode_until - time.time()) + 1)
            entry["status"] = 504
            return web.json_response({"message": "timed out"}, status=504)
        if mode == "secondary":
            entry["status"] = 403
            entry["limited"] = True
            retry = max(1, round(self.mode_until - time.time()))
            entry["until"] = time.time() + retry  # what retry-after told the client
            return web.json_response(
                {
                    "message": "You have exceeded a secondary rate limit. "
                    "Please wait a few minutes before you try again.",
                    "documentation_url": f"{API_DOCS}/overview/rate-limits-for-the-rest-api",
                },
                status=403,
                headers={"retry-after": str(retry)},
            )
        response = await handler(request)
        entry["status"] = response.status
        if response.headers.get("x-ratelimit-remaining") == "0" and response.status in (403, 429):
            entry["limited"] = True
            entry["until"] = float(response.headers.get("x-ratelimit-reset", 0))
        return response

    async def _set_mode(self, request: web.Request) -> web.Response:
        data = await request.json()
        mode, seconds = data.get("mode"), float(data.get("seconds", 0))
        if mode not in MODES:
            return web.json_response({"message": f"mode is one of {MODES}"}, status=400)
        now = time.time()
        self.mode, self.mode_until = mode, now + seconds
        if mode == "primary":
            # the real budget runs out and resets at the window's end
            for key in ("anonymous", *self.budgets):
                limit = self.token_limit if key != "anonymous" else self.anonymous_limit
                self.budgets[key] = Budget(limit, 0, int(now + seconds) + 1)
            self.mode = "ok"  # the budget does the rest
        elif mode == "ok":
            for key, budget in list(self.budgets.items()):
                if budget.remaining <= 0:
                    del self.budgets[key]
        logging.getLogger("fake-github").info("chaos mode %s for %.1f s", mode, seconds)
        return web.json_response({"mode": mode, "until": now + seconds})

    async def _set_slow(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.slow_until = time.time() + float(data.get("seconds", 0))
        return web.json_response({"until": self.slow_until})

    async def _get_log(self, request: web.Request) -> web.Response:
        return web.json_response(self.log)

    async def _truth(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["login"].lower())
        if user is None:
            return web.json_response({"message": "Not Found"}, status=404)
        gists = sorted((g for g in user.gists if g.public), key=lambda g: g.created_at)
        body = [
            {
                "id": g.id,
                "description": g.description,
                "updated_at": g.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "files": {
                    name: f.content.decode("utf-8", "replace") for name, f in g.files.items()
                },
            }
            for g in reversed(gists)  # newest first, as GitHub lists them
        ]
        return web.json_response(body)

    async def _users(self, request: web.Request) -> web.Response:
        return web.json_response(self.roles)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The chaos soak's fake GitHub.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--plain-users", type=int, default=12)
    parser.add_argument("--paged-gists", type=int, default=230)
    parser.add_argument("--slow-users", type=int, default=12)
    parser.add_argument("--fresh-users", type=int, default=400)
    args = parser.parse_args(argv)
    fake = ChaosGitHub(latency=args.latency, anonymous_limit=10**9, token_limit=10**9)
    fake.seed_chaos(
        plain=args.plain_users,
        paged_gists=args.paged_gists,
        slow=args.slow_users,
        fresh=args.fresh_users,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fake-github: %(message)s")
    web.run_app(fake.app(), host="127.0.0.1", port=args.port, print=None, shutdown_timeout=1)


if __name__ == "__main__":
    main()
