"""An offline GitHub for tests, demos and benchmarks.

It serves the gist endpoints the way GitHub documents them: ``Link`` pagination in
the ``/user/<id>/gists?page=N`` form, ``per_page`` capped at 100, ``since``, ETags
that differ per ``Authorization``, 304 on ``If-None-Match``, ``x-ratelimit-*``
headers with a budget that runs out, GitHub's error shape, 403 without a
``User-Agent``, raw file contents on a raw path (named in ``raw_url`` with the file
name percent-encoded, as GitHub does), and files over 1 MB truncated in
``GET /gists/{id}``. As on GitHub, a user's list includes their secret gists
(``"public": false``) when the request carries that user's own token, and a gist
may be given in the 2012 item shape (its owner only in ``user``). It records every
request so tests can count them, and it can be told to fail, stall or rate-limit.

Run it alone for a demo: ``python -m gistcache.testing.fake_github --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

API_DOCS = "https://docs.github.com/rest"
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
API_CONTENT_LIMIT = 1024 * 1024  # GET /gists/{id} gives at most this much of each file
MAX_LISTED_FILES = 300
# what GitHub leaves as it is in a raw_url's file name (a space becomes %20, non-ASCII
# its UTF-8 bytes in %XX); everything else of RFC 3986's sub-delims stays literal
RAW_NAME_SAFE = "!$&'()*+,;=:@"

LANGUAGES = {
    ".py": ("Python", "application/x-python"),
    ".rb": ("Ruby", "application/x-ruby"),
    ".md": ("Markdown", "text/markdown"),
    ".js": ("JavaScript", "application/javascript"),
    ".sh": ("Shell", "application/x-sh"),
    ".txt": ("Text", "text/plain"),
    ".json": ("JSON", "application/json"),
}


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeFile:
    filename: str
    content: bytes
    revision: str = field(init=False)

    def __post_init__(self) -> None:
        # stands for the sha GitHub puts in a raw URL: it names this content, so an
        # edit of the gist that leaves the file alone leaves its raw URL alone too
        blob = hashlib.sha1(usedforsecurity=False)
        blob.update(b"blob %d\0" % len(self.content))
        blob.update(self.content)
        self.revision = blob.hexdigest()

    @property
    def language(self) -> str | None:
        return LANGUAGES.get(_suffix(self.filename), (None, ""))[0]

    @property
    def type(self) -> str:
        return LANGUAGES.get(_suffix(self.filename), (None, "text/plain"))[1]


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


@dataclass
class FakeUser:
    login: str
    id: int
    gists: list[FakeGist] = field(default_factory=list)
    token: str | None = None  # the user's own token: their list then shows secret gists too


@dataclass
class FakeGist:
    id: str
    owner: FakeUser
    description: str | None
    public: bool
    created_at: datetime
    updated_at: datetime
    files: dict[str, FakeFile]
    comments: int = 0
    old_format: bool = False  # listed in the 2012 shape: the owner only in ``user``


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    kind: str  # "api", "raw" or "control"
    status: int | None = None  # what the fake answered
    target: str = ""  # the path and query as they came on the request line, still encoded


@dataclass
class Failure:
    """An injected failure for the next ``times`` matching API (or raw) requests."""

    status: int = 502
    times: int = 1
    path_contains: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    kind: str = "api"
    cut_off: bool = False  # promise the whole body, send half, drop the connection


@dataclass
class Budget:
    limit: int
    remaining: int
    reset: int

    @property
    def used(self) -> int:
        return self.limit - self.remaining


class FakeGitHub:
    """State and behaviour of the fake; ``app()`` gives the aiohttp application."""

    def __init__(
        self,
        *,
        api_prefix: str = "",
        anonymous_limit: int = 60,
        token_limit: int = 5000,
        latency: float = 0.0,
        raw_base: str | None = None,
        rate_limit_status: int = 403,
    ) -> None:
        self.api_prefix = api_prefix.rstrip("/")
        self.anonymous_limit = anonymous_limit
        self.token_limit = token_limit
        self.latency = latency
        self.raw_base = raw_base
        # False: raw_url holds the file name as it is (a literal space, non-ASCII)
        self.quote_raw_urls = True
        self.rate_limit_status = rate_limit_status
        self.users: dict[str, FakeUser] = {}
        self.requests: list[RecordedRequest] = []
        self.failures: list[Failure] = []
        self.budgets: dict[str, Budget] = {}
        self.raw_peak_concurrency = 0  # most raw downloads served at once
        self._raw_in_flight = 0
        self.api_peak_concurrency = 0  # most API requests served at once
        self._api_in_flight = 0
        self._clock = datetime(2024, 1, 1, tzinfo=UTC)
        self._next_user_id = 1000

    # --- state -------------------------------------------------------------

    def add_user(
        self, login: str, user_id: int | None = None, *, token: str | None = None
    ) -> FakeUser:
        """A user; with ``token``, requests carrying it are that user's own."""
        if user_id is None:
            self._next_user_id += 1
            user_id = self._next_user_id
        user = FakeUser(login=login, id=user_id, token=token)
        self.users[login.lower()] = user
        return user

    def user(self, login: str) -> FakeUser:
        return self.users[login.lower()]

    def _tick(self) -> datetime:
        self._clock += timedelta(seconds=1)
        return self._clock

    def add_gist(
        self,
        login: str,
        files: Mapping[str, str | bytes],
        *,
        description: str | None = "",
        public: bool = True,
        gist_id: str | None = None,
        comments: int = 0,
        old_format: bool = False,
    ) -> FakeGist:
        """Create a gist owned by ``login`` (created if unknown); it becomes the newest.

        ``public=False`` makes a secret gist, listed only to its owner's token;
        ``old_format`` lists it as GitHub's API did in 2012 (``user``, no ``owner``).
        """
        user = self.users.get(login.lower()) or self.add_user(login)
        now = self._tick()
        if gist_id is None:
            seed = f"{user.login}:{len(user.gists)}:{now.isoformat()}"
            gist_id = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()[:32]
        gist = FakeGist(
            id=gist_id,
            owner=user,
            description=description,
            public=public,
            created_at=now,
            updated_at=now,
            files={name: FakeFile(name, _bytes(content)) for name, content in files.items()},
            comments=comments,
            old_format=old_format,
        )
        user.gists.append(gist)
        return gist

    def gist(self, gist_id: str) -> FakeGist:
        for user in self.users.values():
            for gist in user.gists:
                if gist.id == gist_id:
                    return gist
        raise KeyError(gist_id)

    def update_gist(
        self,
        gist_id: str,
        files: Mapping[str, str | bytes | None] | None = None,
        *,
        description: str | None = None,
    ) -> FakeGist:
        """Edit a gist as GitHub would: new contents (None deletes a file), new updated_at."""
        gist = self.gist(gist_id)
        for name, content in (files or {}).items():
            if content is None:
                gist.files.pop(name, None)
            else:
                gist.files[name] = FakeFile(name, _bytes(content))
        if description is not None:
            gist.description = description
        gist.updated_at = self._tick()
        return gist

    def delete_gist(self, gist_id: str) -> None:
        gist = self.gist(gist_id)
        gist.owner.gists.remove(gist)

    def seed(self, users: int, gists_per_user: int = 5, *, seed: int = 1) -> None:
        """Deterministic demo users ``user1`` … ``userN`` with small multi-file gists."""
        rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
        words = ["alpha", "beta", "gamma", "delta", "import requests", "TODO", "print('hi')"]
        for n in range(1, users + 1):
            login = f"user{n}"
            self.add_user(login)
            for g in range(gists_per_user):
                files = {
                    f"file{f}{rng.choice(['.py', '.md', '.txt', '.sh'])}": "\n".join(
                        rng.choice(words) for _ in range(rng.randint(1, 20))
                    )
                    + "\n"
                    for f in range(rng.randint(1, 3))
                }
                self.add_gist(login, files, description=f"{login} gist {g}")

    def seed_bulk_user(self, login: str, gists: int, files_per_gist: int, file_bytes: int) -> None:
        """``login`` with ``gists`` gists of ``files_per_gist`` code-like files of at most
        ``file_bytes`` bytes each (whole lines), for benchmarks.

        A file's contents depend only on (login, gist number, file number), so the same
        arguments give the same bytes in any process (see ``bulk_gist_files``).
        """
        self.add_user(login)
        for g in range(gists):
            files = bulk_gist_files(login, g, files_per_gist, file_bytes)
            self.add_gist(login, files, description=f"{login} bulk gist {g}")

    def seed_octocat(self) -> None:
        """octocat and the gist of GitHub's own documentation examples."""
        if "octocat" not in self.users:
            self.add_user("octocat", 1)
            self.add_gist(
                "octocat",
                {
                    "hello_world.rb": "class HelloWorld\n  def initialize(name)\n    @name = name\n"
                    '  end\n  def hello\n    "Hello #{@name}!"\n  end\nend\n'
                },
                description="Hello World Examples",
                gist_id="aa5a315d61ae9438b18d",
            )

    # --- inspection and fault injection ------------------------------------

    def api_requests(self, path_contains: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "api" and path_contains in r.path]

    def raw_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "raw"]

    def fail_next(
        self,
        status: int = 502,
        *,
        times: int = 1,
        path_contains: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        kind: str = "api",
        cut_off: bool = False,
    ) -> None:
        self.failures.append(
            Failure(status, times, path_contains, body, dict(headers or {}), delay, kind, cut_off)
        )

    def exhaust_rate_limit(self, authorization: str | None = None) -> None:
        """Spend the whole primary budget of one credential (anonymous by default)."""
        self._budget(authorization).remaining = 0

    def secondary_rate_limit(self, retry_after: int | None = 60, times: int = 1) -> None:
        """403 for a secondary limit, with ``retry-after`` unless it is None."""
        self.fail_next(
            403,
            times=times,
            body={
                "message": "You have exceeded a secondary rate limit. "
                "Please wait a few minutes before you try again.",
                "documentation_url": f"{API_DOCS}/overview/rate-limits-for-the-rest-api",
            },
            headers={} if retry_after is None else {"retry-after": str(retry_after)},
        )

    def _budget(self, authorization: str | None) -> Budget:
        key = authorization or "anonymous"
        budget = self.budgets.get(key)
        if budget is None or budget.reset <= time.time():
            limit = self.token_limit if authorization else self.anonymous_limit
            budget = Budget(limit, limit, int(time.time()) + 3600)
            self.budgets[key] = budget
        return budget

    # --- HTTP ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 30)
        p = self.api_prefix
        app.router.add_get(p + "/users/{username}", self._get_user)
        app.router.add_get(p + "/users/{username}/gists", self._list_by_login)
        app.router.add_get(p + "/user/{user_id:[0-9]+}/gists", self._list_by_id)
        app.router.add_get(p + "/gists/{gist_id}", self._get_gist)
        app.router.add_get("/gist-raw/{login}/{gist_id}/raw/{revision}/{filename}", self._raw)
        app.router.add_post("/_fake/users/{login}/gists", self._control_add_gist)
        app.router.add_post("/_fake/gists/{gist_id}", self._control_update_gist)
        app.router.add_get("/_fake/stats", self._control_stats)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        kind = (
            "control"
            if path.startswith("/_fake/")
            else "raw"
            if path.startswith("/gist-raw/")
            else "api"
        )
        record = RecordedRequest(
            request.method,
            path,
            request.query_string,
            dict(request.headers),
            kind,
            target=request.raw_path,
        )
        self.requests.append(record)
        if kind == "raw":
            self._raw_in_flight += 1
            self.raw_peak_concurrency = max(self.raw_peak_concurrency, self._raw_in_flight)
        elif kind == "api":
            self._api_in_flight += 1
            self.api_peak_concurrency = max(self.api_peak_concurrency, self._api_in_flight)
        try:
            response = await self._answer(request, handler, kind)
        except web.HTTPException as exc:
            # unknown paths and methods get GitHub's JSON error shape, not aiohttp's text
            response = _error(exc.status, exc.reason)
        finally:
            if kind == "raw":
                self._raw_in_flight -= 1
            elif kind == "api":
                self._api_in_flight -= 1
        record.status = response.status
        return response

    async def _answer(
        self, request: web.Request, handler: Handler, kind: str
    ) -> web.StreamResponse:
        path = request.path
        if kind == "control":
            return await handler(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        if not request.headers.get("User-Agent"):
            return _error(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header.",
            )
        for failure in self.failures:
            if failure.kind == kind and (
                failure.path_contains is None or failure.path_contains in path
            ):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                if failure.delay:
                    await asyncio.sleep(failure.delay)
                body = failure.body
                if body is None:
                    body = {"message": "Server Error", "documentation_url": API_DOCS}
                if failure.cut_off:
                    return await _cut_off(request, json.dumps(body).encode(), failure.status)
                resp = web.json_response(body, status=failure.status)
                if kind == "api":
                    self._rate_headers(resp, self._budget(request.headers.get("Authorization")))
                resp.headers.update(failure.headers)  # an injected header wins
                return resp
        if kind == "raw":
            return await handler(request)

        budget = self._budget(request.headers.get("Authorization"))
        if budget.remaining <= 0:
            resp = _error(
                self.rate_limit_status,
                f"API rate limit exceeded for {request.remote}. (But here's the good news: "
                "Authenticated requests get a higher rate limit.)",
                doc="/overview/rate-limits-for-the-rest-api",
            )
            self._rate_headers(resp, budget)
            return resp
        answer = await handler(request)
        authorised_304 = answer.status == 304 and request.headers.get("Authorization")
        if not authorised_304:
            budget.remaining -= 1
        self._rate_headers(answer, budget)
        return answer

    @staticmethod
    def _rate_headers(resp: web.StreamResponse, budget: Budget) -> None:
        resp.headers["x-ratelimit-limit"] = str(budget.limit)
        resp.headers["x-ratelimit-remaining"] = str(max(0, budget.remaining))
        resp.headers["x-ratelimit-used"] = str(budget.used)
        resp.headers["x-ratelimit-reset"] = str(budget.reset)
        resp.headers["x-ratelimit-resource"] = "core"

    def _api_base(self, request: web.Request) -> str:
        return str(request.url.origin()) + self.api_prefix

    def _raw_base(self, request: web.Request) -> str:
        return self.raw_base or f"{request.url.origin()}/gist-raw"

    def _user_json(self, request: web.Request, user: FakeUser) -> dict[str, Any]:
        api, login = self._api_base(request), user.login
        return {
            "login": login,
            "id": user.id,
            "node_id": f"U_fake{user.id}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "gravatar_id": "",
            "url": f"{api}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{api}/users/{login}/followers",
            "following_url": f"{api}/users/{login}/following{{/other_user}}",
            "gists_url": f"{api}/users/{login}/gists{{/gist_id}}",
            "starred_url": f"{api}/users/{login}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/users/{login}/subscriptions",
            "organizations_url": f"{api}/users/{login}/orgs",
            "repos_url": f"{api}/users/{login}/repos",
            "events_url": f"{api}/users/{login}/events{{/privacy}}",
            "received_events_url": f"{api}/users/{login}/received_events",
            "type": "User",
            "site_admin": False,
        }

    def _gist_json(self, request: web.Request, gist: FakeGist, *, full: bool) -> dict[str, Any]:
        api = self._api_base(request)
        files: dict[str, Any] = {}
        for f in list(gist.files.values())[:MAX_LISTED_FILES]:
            name = quote(f.filename, safe=RAW_NAME_SAFE) if self.quote_raw_urls else f.filename
            meta: dict[str, Any] = {
                "filename": f.filename,
                "type": f.type,
                "language": f.language,
                "raw_url": f"{self._raw_base(request)}/{gist.owner.login}/{gist.id}/raw/"
                f"{f.revision}/{name}",
                "size": len(f.content),
            }
            if meta["language"] is None:
                del meta["language"]  # the schema wants a string when present
            if full:
                meta["truncated"] = len(f.content) > API_CONTENT_LIMIT
                meta["content"] = f.content[:API_CONTENT_LIMIT].decode("utf-8", "replace")
            files[f.filename] = meta
        if gist.old_format and not full:
            return self._old_gist_json(request, gist, files)
        body: dict[str, Any] = {
            "url": f"{api}/gists/{gist.id}",
            "forks_url": f"{api}/gists/{gist.id}/forks",
            "commits_url": f"{api}/gists/{gist.id}/commits",
            "id": gist.id,
            "node_id": f"G_fake{gist.id}",
            "git_pull_url": f"https://gist.github.com/{gist.id}.git",
            "git_push_url": f"https://gist.github.com/{gist.id}.git",
            "html_url": f"https://gist.github.com/{gist.id}",
            "files": files,
            "public": gist.public,
            "created_at": _ts(gist.created_at),
            "updated_at": _ts(gist.updated_at),
            "description": gist.description,
            "comments": gist.comments,
            "user": None,
            "comments_url": f"{api}/gists/{gist.id}/comments",
            "owner": self._user_json(request, gist.owner),
            "truncated": len(gist.files) > MAX_LISTED_FILES,
        }
        if full:
            body["forks"] = []
            body["history"] = []
            body["fork_of"] = None
        return body

    def _old_gist_json(
        self, request: web.Request, gist: FakeGist, files: dict[str, Any]
    ) -> dict[str, Any]:
        """A list item as GitHub's API gave it in 2012: ``user`` (a short object) instead
        of ``owner``, none of the later URLs, no ``truncated``."""
        api, user = self._api_base(request), gist.owner
        return {
            "updated_at": _ts(gist.updated_at),
            "url": f"{api}/gists/{gist.id}",
            "comments": gist.comments,
            "public": gist.public,
            "git_pull_url": f"git://gist.github.com/{gist.id}.git",
            "git_push_url": f"git@gist.github.com:{gist.id}.git",
            "files": files,
            "user": {
                "url": f"{api}/users/{user.login}",
                "avatar_url": f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
                "gravatar_id": "",
                "login": user.login,
                "id": user.id,
            },
            "description": gist.description,
            "created_at": _ts(gist.created_at),
            "id": gist.id,
            "html_url": f"https://gist.github.com/{gist.id}",
        }

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(request.match_info["username"].lower())
        if user is None:
            return _error(404, "Not Found", doc="/users/users#get-a-user")
        # GET /users/{login} answers a public user: the simple user and the profile
        public = sum(1 for g in user.gists if g.public)
        profile = dict.fromkeys(("name", "company", "blog", "location", "email", "bio"))
        counts = {"public_repos": 0, "public_gists": public, "followers": 0, "following": 0}
        joined = "2011-01-25T18:44:36Z"
        body = {
            **self._user_json(request, user),
            **profile,
            "hireable": None,
            **counts,
            "created_at": joined,
            "updated_at": joined,
        }
        return _conditional(request, body)

    async def _list_by_login(self, request: web.Request) -> web.Response:
        return await self._list(request, self.users.get(request.match_info["username"].lower()))

    async def _list_by_id(self, request: web.Request) -> web.Response:
        wanted = int(request.match_info["user_id"])
        return await self._list(
            request, next((u for u in self.users.values() if u.id == wanted), None)
        )

    async def _list(self, request: web.Request, user: FakeUser | None) -> web.Response:
        if user is None:
            return _error(404, "Not Found", doc="/gists/gists#list-gists-for-a-user")
        query = request.query
        per_page = _int_param(query.get("per_page"), DEFAULT_PER_PAGE)
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = max(_int_param(query.get("page"), 1), 1)
        # with the user's own token GitHub lists their secret gists too
        own = user.token is not None and _token(request) == user.token
        gists = [g for g in user.gists if g.public or own]
        since = query.get("since")
        if since is not None:
            try:
                threshold = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                return _error(422, "Validation Failed", doc="/gists/gists#list-gists-for-a-user")
            if threshold.tzinfo is None:
                threshold = threshold.replace(tzinfo=UTC)
            gists = [g for g in gists if g.updated_at >= threshold]
        gists.sort(key=lambda g: g.created_at, reverse=True)  # newest first
        last = max(1, -(-len(gists) // per_page))
        items = gists[(page - 1) * per_page : page * per_page]
        body = [self._gist_json(request, g, full=False) for g in items]

        headers = {}
        if len(gists) > per_page:
            base = f"{self._api_base(request)}/user/{user.id}/gists"
            extra = {"per_page": str(per_page)} if "per_page" in query else {}
            if since is not None:
                extra["since"] = since

            def link(n: int, rel: str) -> str:
                params = "&".join(f"{k}={v}" for k, v in {**extra, "page": str(n)}.items())
                return f'<{base}?{params}>; rel="{rel}"'

            rels = []
            if page > 1:
                rels.append(link(min(page - 1, last), "prev"))
            if page < last:
                rels.append(link(page + 1, "next"))
            rels += [link(last, "last"), link(1, "first")]
            headers["Link"] = ", ".join(rels)
        return _conditional(request, body, headers)

    async def _get_gist(self, request: web.Request) -> web.Response:
        try:
            gist = self.gist(request.match_info["gist_id"])
        except KeyError:
            return _error(404, "Not Found", doc="/gists/gists#get-a-gist")
        return _conditional(request, self._gist_json(request, gist, full=True))

    async def _raw(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        try:
            gist = self.gist(info["gist_id"])
        except KeyError:
            return web.Response(status=404, text="404: Not Found")
        f = gist.files.get(info["filename"])
        if f is None or info["revision"] != f.revision:
            return web.Response(status=404, text="404: Not Found")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        resp.content_length = len(f.content)
        await resp.prepare(request)
        view = memoryview(f.content)
        for start in range(0, len(view), 256 * 1024):
            await resp.write(view[start : start + 256 * 1024])
        await resp.write_eof()
        return resp

    async def _control_add_gist(self, request: web.Request) -> web.Response:
        data = await request.json()
        gist = self.add_gist(
            request.match_info["login"],
            data.get("files", {}),
            description=data.get("description", ""),
        )
        return web.json_response({"id": gist.id}, status=201)

    async def _control_update_gist(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            gist = self.update_gist(
                request.match_info["gist_id"],
                data.get("files"),
                description=data.get("description"),
            )
        except KeyError:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"id": gist.id, "updated_at": _ts(gist.updated_at)})

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "api_requests": len(self.api_requests()),
                "raw_requests": len(self.raw_requests()),
                "users": len(self.users),
            }
        )


def huge_text(size: int) -> bytes:
    """``size`` bytes of log-like lines, with one line saying ``needle`` at the very end."""
    line = b"2024-01-01T00:00:00Z INFO request handled in 12 ms by worker-7 ok\n"
    tail = b"the needle is here\n"
    body = line * ((size - len(tail)) // len(line))
    return body + b"." * (size - len(body) - len(tail)) + tail


@functools.cache
def _corpus() -> bytes:
    """About 1 MB of deterministic code- and log-like lines, built once per process.

    Most lines are ordinary; a few say TODO, FIXME or HACK, or hold an IPv4 address,
    so that benchmark patterns find some (not all) lines.
    """
    rng = random.Random("gistcache-bulk-corpus")  # noqa: S311 - test data
    words = [
        "alpha", "beta", "cache", "delta", "event", "frame", "graph", "index",
        "queue", "retry", "session", "token", "upload", "value", "worker", "yield",
    ]  # fmt: skip
    templates = [
        (30, "def {a}_{b}(self, {c}):"),
        (30, "    return self.{a}.get('{b}', {n})"),
        (25, "    {a} = {b}_{c}({n}, timeout={n})"),
        (15, "import {a}"),
        (15, "from {a}.{b} import {c}"),
        (20, "    if {a} > {n}:"),
        (20, "        log.info('{a} {b} %s', {c})"),
        (20, "# {a} {b} {c} {a} {b}"),
        (20, "2024-01-01T00:{n2}:{n2}Z INFO {a} handled in {n} ms by worker-{n2}"),
        (3, "    # TODO: {a} the {b} before {c}"),
        (1, "    # FIXME {a} breaks when {b} is empty"),
        (1, "    # HACK: {c} until {a} is fixed"),
        (2, "    host = '10.{n3}.{n3}.{n3}'  # {a}"),
    ]
    weights = [w for w, _ in templates]
    forms = [t for _, t in templates]
    lines = []
    for _ in range(24_000):
        form = rng.choices(forms, weights)[0]
        lines.append(
            form.format(
                a=rng.choice(words),
                b=rng.choice(words),
                c=rng.choice(words),
                n=rng.randrange(10_000),
                n2=f"{rng.randrange(60):02d}",
                n3=rng.randrange(256),
            )
        )
    return ("\n".join(lines) + "\n").encode()


def bulk_gist_files(login: str, gist: int, files: int, size: int) -> dict[str, bytes]:
    """The files of a bulk user's gist number ``gist``, by name."""
    suffixes = (".py", ".md", ".txt")
    return {
        f"file{f}{suffixes[f % len(suffixes)]}": bulk_file_text(login, gist, f, size)
        for f in range(files)
    }


def bulk_file_text(login: str, gist: int, file: int, size: int) -> bytes:
    """At most ``size`` bytes of whole lines from the corpus, starting at a place that
    depends only on the arguments: any process computes the same bytes."""
    corpus = _corpus()
    offset = random.Random(f"{login}/{gist}/{file}").randrange(len(corpus))  # noqa: S311
    offset = corpus.find(b"\n", offset) + 1  # start on a line; 0 after the last one
    if offset + size <= len(corpus):
        text = corpus[offset : offset + size]
    else:
        text = (corpus[offset:] + corpus * (size // len(corpus) + 1))[:size]
    return text[: text.rfind(b"\n") + 1]


async def _cut_off(request: web.Request, raw: bytes, status: int) -> web.StreamResponse:
    resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    resp.content_length = len(raw)
    await resp.prepare(request)
    await resp.write(raw[: len(raw) // 2])
    if request.transport is not None:
        request.transport.close()
    return resp


def _bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def _token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer …`` (or the older ``token …``), if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() in ("bearer", "token") else None


def _int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _error(status: int, message: str, *, doc: str = "") -> web.Response:
    return web.json_response(
        {"message": message, "documentation_url": API_DOCS + doc, "status": str(status)},
        status=status,
    )


def _conditional(
    request: web.Request, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """200 with a weak ETag that depends on the credential, or 304 when it still matches."""
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(raw)
    digest.update(b"\0" + request.headers.get("Authorization", "").encode())
    etag = f'W/"{digest.hexdigest()[:40]}"'
    out = {"ETag": etag, "Cache-Control": "public, max-age=60, s-maxage=60", **(headers or {})}
    out["Vary"] = "Accept, Authorization, Accept-Encoding"
    offered = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in offered.split(",") if tag.strip()}
    if etag.removeprefix("W/") in tags:
        return web.Response(status=304, headers=out)
    return web.Response(body=raw, content_type="application/json", headers=out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the offline fake GitHub API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--seed-users", type=int, default=3, help="demo users user1..userN")
    parser.add_argument("--gists-per-user", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    parser.add_argument("--api-prefix", default="", help="e.g. /api/v3 for GitHub Enterprise")
    parser.add_argument(
        "--anonymous-limit",
        type=int,
        default=60,
        metavar="N",
        help="API requests an hour without a token, as GitHub allows (default 60); "
        "raise it for demos",
    )
    parser.add_argument(
        "--token-limit", type=int, default=5000, metavar="N", help="API requests an hour per token"
    )
    parser.add_argument(
        "--huge-file-mb",
        type=int,
        default=0,
        help="give user 'huge' one gist with a text file of this many MB",
    )
    parser.add_argument(
        "--bulk-user",
        action="append",
        default=[],
        metavar="LOGIN:GISTS:FILES:BYTES",
        help="a user with GISTS gists of FILES code-like files of about BYTES bytes "
        "(deterministic contents; repeatable)",
    )
    args = parser.parse_args(argv)
    bulk = [_bulk_spec(parser, spec) for spec in args.bulk_user]
    if args.anonymous_limit < 1 or args.token_limit < 1:
        parser.error("--anonymous-limit and --token-limit want at least 1")
    fake = FakeGitHub(
        latency=args.latency,
        api_prefix=args.api_prefix,
        anonymous_limit=args.anonymous_limit,
        token_limit=args.token_limit,
    )
    fake.seed_octocat()
    fake.seed(args.seed_users, args.gists_per_user)
    if args.huge_file_mb:
        fake.add_gist("huge", {"huge.log": huge_text(args.huge_file_mb * 1024 * 1024)})
    for login, gists, files, size in bulk:
        fake.seed_bulk_user(login, gists, files, size)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fake-github: %(message)s")
    logging.getLogger("fake-github").info(
        "serving %d users on http://%s:%d%s", len(fake.users), args.host, args.port, args.api_prefix
    )
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, shutdown_timeout=1)


def _bulk_spec(parser: argparse.ArgumentParser, spec: str) -> tuple[str, int, int, int]:
    login, *numbers = spec.split(":")
    try:
        gists, files, size = (int(n) for n in numbers)
    except ValueError:
        parser.error(f"--bulk-user wants LOGIN:GISTS:FILES:BYTES, got {spec!r}")
    if not login or gists < 0 or files < 1 or size < 1:
        parser.error(f"--bulk-user wants a login and positive numbers, got {spec!r}")
    return login, gists, files, size


if __name__ == "__main__":
    main()
