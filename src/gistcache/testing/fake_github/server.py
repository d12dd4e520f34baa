"""The fake GitHub's aiohttp application: the API and raw routes, their handlers and
payloads, the request log, and the ``/_fake/`` control endpoints."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.testing.fake_github.corpus import SeededState
from gistcache.testing.fake_github.faults import Faults, github_error
from gistcache.testing.fake_github.state import FakeFile, FakeGist, FakeUser

log = logging.getLogger("fake-github")

MAX_PER_PAGE = 100
RAW_WRITE_BYTES = 256 * 1024  # a raw file is sent in writes of this size
DEFAULT_PER_PAGE = 30
API_CONTENT_LIMIT = 1024 * 1024  # GET /gists/{id} gives at most this much of each file
MAX_LISTED_FILES = 300
# what GitHub leaves as it is in a raw_url's file name (a space becomes %20, non-ASCII
# its UTF-8 bytes in %XX); everything else of RFC 3986's sub-delims stays literal
RAW_NAME_SAFE = "!$&'()*+,;=:@"


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    kind: str  # "api", "raw" or "control"
    status: int | None = None  # what the fake answered
    target: str = ""  # the path and query as they came on the request line, still encoded


class FakeGitHub(SeededState, Faults):
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
        SeededState.__init__(self)
        Faults.__init__(
            self,
            anonymous_limit=anonymous_limit,
            token_limit=token_limit,
            latency=latency,
            rate_limit_status=rate_limit_status,
        )
        self.api_prefix = api_prefix.rstrip("/")
        self.raw_base = raw_base
        # False: raw_url holds the file name as it is (a literal space, non-ASCII)
        self.quote_raw_urls = True
        # True: the Link targets of pages after the first name ``page`` before the other
        # parameters (``?page=3&per_page=100``) while the first page's name it last
        # (``?per_page=100&page=3``), as in real traffic recorded by octokit.rb, whose
        # client asked for later pages with its query sorted (GitHub repeats the order)
        self.later_links_page_first = False
        self.requests: list[RecordedRequest] = []
        self.raw_peak_concurrency = 0  # most raw downloads served at once
        self._raw_in_flight = 0
        self.api_peak_concurrency = 0  # most API requests served at once
        self._api_in_flight = 0

    # --- inspection --------------------------------------------------------

    def api_requests(self, path_contains: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "api" and path_contains in r.path]

    def raw_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "raw"]

    # --- HTTP ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 30)
        p = self.api_prefix
        app.router.add_get(p + "/users/{username}", self._get_user)
        app.router.add_get(p + "/users/{username}/gists", self._list_by_login)
        app.router.add_get(p + "/user/{user_id:[0-9]+}/gists", self._list_by_id)
        app.router.add_get(p + "/gists/{gist_id}", self._get_gist)
        app.router.add_get(p + "/rate_limit", self._rate_limit)
        app.router.add_get("/gist-raw/{login}/{gist_id}/raw/{revision}/{filename}", self._raw)
        app.router.add_post("/_fake/users/{login}/gists", self._control_add_gist)
        app.router.add_post("/_fake/gists/{gist_id}", self._control_update_gist)
        app.router.add_delete("/_fake/gists/{gist_id}", self._control_delete_gist)
        app.router.add_get("/_fake/users/{login}/truth", self._control_truth)
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
            response = github_error(exc.status, exc.reason)
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
        if kind == "control":
            return await handler(request)
        await self._stall()
        if not request.headers.get("User-Agent"):
            return github_error(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header.",
            )
        failed = await self._injected_failure(request, kind)
        if failed is not None:
            return failed
        if kind == "raw":
            return await handler(request)

        budget = self._budget(request.headers.get("Authorization"))
        if request.path == self.api_prefix + "/rate_limit":
            # GitHub answers it whatever is left, and counts it against nothing
            answer = await handler(request)
            self._rate_headers(answer, budget)
            return answer
        over = self._over_limit(request, budget)
        if over is not None:
            return over
        answer = await handler(request)
        authorised_304 = answer.status == 304 and request.headers.get("Authorization")
        if not authorised_304:
            budget.remaining -= 1
        self._rate_headers(answer, budget)
        return answer

    def _api_base(self, request: web.Request) -> str:
        return str(request.url.origin()) + self.api_prefix

    def _raw_base(self, request: web.Request) -> str:
        return self.raw_base or f"{request.url.origin()}/gist-raw"

    def _raw_url(self, request: web.Request, gist: FakeGist, f: FakeFile) -> str:
        name = (
            quote(f.filename, safe=RAW_NAME_SAFE, errors="surrogatepass")
            if self.quote_raw_urls
            else f.filename
        )
        return f"{self._raw_base(request)}/{gist.owner.login}/{gist.id}/raw/{f.revision}/{name}"

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
            meta: dict[str, Any] = {
                "filename": f.filename,
                "type": f.type,
                "language": f.language,
                "raw_url": self._raw_url(request, gist, f),
                "size": len(f.content),
            }
            if meta["language"] is None:
                del meta["language"]  # the schema wants a string when present
            meta.update(f.fields)
            if full:
                meta["truncated"] = len(f.content) > API_CONTENT_LIMIT
                if _binary(f.content):
                    # GitHub gives a binary file's bytes base64-encoded, and says so
                    head = f.content[:API_CONTENT_LIMIT]
                    meta["content"] = base64.b64encode(head).decode("ascii")
                    meta["encoding"] = "base64"
                else:
                    meta["content"] = _content_prefix(f.content)
            files[f.filename] = meta
        if gist.old_format and not full:
            return {**self._old_gist_json(request, gist, files), **gist.fields}
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
        }
        if full:
            # as GitHub orders them: forks and history (newest first) before truncated
            body["forks"] = []
            body["history"] = [
                {
                    "user": body["owner"],
                    "version": rev.version,
                    "committed_at": _ts(rev.committed_at),
                    "change_status": {
                        "total": rev.additions + rev.deletions,
                        "additions": rev.additions,
                        "deletions": rev.deletions,
                    },
                    "url": f"{api}/gists/{gist.id}/{rev.version}",
                }
                for rev in reversed(gist.history)
            ]
        body["truncated"] = len(gist.files) > MAX_LISTED_FILES
        body.update(gist.fields)
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
            return github_error(404, "Not Found", doc="/users/users#get-a-user")
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

    async def _rate_limit(self, request: web.Request) -> web.Response:
        """``GET /rate_limit``: the credential's budget (every resource but core is
        untouched here); API version ``2026-03-10`` has no top-level ``rate``, and a
        version GitHub does not have is a 400, as GitHub answers."""
        version = request.headers.get("X-GitHub-Api-Version", "").strip() or "2022-11-28"
        if version not in ("2022-11-28", "2026-03-10"):
            return github_error(
                400,
                f'The version you specified in the "X-GitHub-Api-Version" request header, '
                f'"{version[:64]}", is not a supported version. The following versions are '
                'currently supported: "2026-03-10" (most recent), "2022-11-28".',
                doc="/about-the-rest-api/api-versions",
            )
        budget = self._budget(request.headers.get("Authorization"))
        core = {
            "limit": budget.limit,
            "used": budget.used,
            "remaining": max(0, budget.remaining),
            "reset": budget.reset,
        }
        reset = int(time.time()) + 60
        resources = {
            "core": core,
            "search": {"limit": 10, "used": 0, "remaining": 10, "reset": reset},
            "graphql": {"limit": 0, "used": 0, "remaining": 0, "reset": reset},
        }
        body: dict[str, Any] = {"resources": resources}
        if version == "2022-11-28":
            body["rate"] = core
        return web.json_response(body, headers={"Cache-Control": "no-cache"})

    async def _list_by_login(self, request: web.Request) -> web.Response:
        return await self._list(request, self.users.get(request.match_info["username"].lower()))

    async def _list_by_id(self, request: web.Request) -> web.Response:
        wanted = int(request.match_info["user_id"])
        return await self._list(
            request, next((u for u in self.users.values() if u.id == wanted), None)
        )

    async def _list(self, request: web.Request, user: FakeUser | None) -> web.Response:
        if user is None:
            return github_error(404, "Not Found", doc="/gists/gists#list-gists-for-a-user")
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
                return github_error(
                    422, "Validation Failed", doc="/gists/gists#list-gists-for-a-user"
                )
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
                pairs = {**extra, "page": str(n)}
                if self.later_links_page_first and page > 1:
                    pairs = {"page": str(n), **extra}
                params = "&".join(f"{k}={v}" for k, v in pairs.items())
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
            return github_error(404, "Not Found", doc="/gists/gists#get-a-gist")
        return _conditional(request, self._gist_json(request, gist, full=True))

    async def _raw(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        try:
            gist = self.gist(info["gist_id"])
        except KeyError:
            return web.Response(status=404, text="404: Not Found")
        # the name as the raw URL spelt it: aiohttp's decoded one has lost a lone
        # surrogate's %ED%A0%80 (invalid UTF-8), which names the file all the same
        encoded_name = request.raw_path.partition("?")[0].rpartition("/")[2]
        f = gist.files.get(unquote(encoded_name, errors="surrogatepass"))
        if f is None or info["revision"] != f.revision:
            return web.Response(status=404, text="404: Not Found")
        hold = self.raw_holds.get(f.filename)
        if hold is not None:
            await hold.wait()
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        resp.content_length = len(f.content)
        cut = self.raw_cuts.pop(f.filename, None)
        view = memoryview(f.content)[:cut]
        sent = 0
        try:
            await resp.prepare(request)
            for start in range(0, len(view), RAW_WRITE_BYTES):
                await resp.write(view[start : start + RAW_WRITE_BYTES])
                sent = min(start + RAW_WRITE_BYTES, len(view))
            if cut is not None and request.transport is not None:
                request.transport.close()  # the rest promised, never sent
                return resp
            await resp.write_eof()
        except ConnectionError:
            # a client that stops reading (a cancelled search, a live search's next
            # keystroke) is ordinary: one line, as the service logs it, not a traceback
            log.info(
                "GET %s: the client went away after %d of %d bytes",
                request.raw_path,
                sent,
                len(view),
            )
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

    async def _control_delete_gist(self, request: web.Request) -> web.Response:
        """A real deletion: the gist leaves its owner's list, its id and raw URLs 404."""
        try:
            self.delete_gist(request.match_info["gist_id"])
        except KeyError:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.Response(status=204)

    async def _control_truth(self, request: web.Request) -> web.Response:
        """What a cache of this user should hold now: their public gists, newest first,
        and each file's current revision (the git blob sha its raw URL names)."""
        user = self.users.get(request.match_info["login"].lower())
        if user is None:
            return web.json_response({"message": "Not Found"}, status=404)
        gists = sorted((g for g in user.gists if g.public), key=lambda g: g.created_at)
        body = {
            "login": user.login,
            "id": user.id,
            "gists": [
                {
                    "id": gist.id,
                    "description": gist.description,
                    "created_at": _ts(gist.created_at),
                    "updated_at": _ts(gist.updated_at),
                    "files": {
                        f.filename: {
                            "revision": f.revision,
                            "size": len(f.content),
                            "sha256": hashlib.sha256(f.content).hexdigest(),
                            "raw_url": self._raw_url(request, gist, f),
                        }
                        for f in gist.files.values()
                    },
                }
                for gist in reversed(gists)
            ],
        }
        return web.json_response(body)

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "api_requests": len(self.api_requests()),
                "raw_requests": len(self.raw_requests()),
                "users": len(self.users),
            }
        )


def _binary(content: bytes) -> bool:
    """Binary as git tells it: a NUL byte in the first 8,000 bytes."""
    return b"\0" in content[:8000]


def _content_prefix(content: bytes) -> str:
    """A file's ``content`` in ``GET /gists/{id}``: at most API_CONTENT_LIMIT bytes of it,
    cut before a character the limit would split (the raw URL still has all of it)."""
    if len(content) <= API_CONTENT_LIMIT:
        return content.decode("utf-8", "replace")
    cut = API_CONTENT_LIMIT
    # back up over UTF-8 continuation bytes when the next byte starts no character
    while cut > API_CONTENT_LIMIT - 3 and 0x80 <= content[cut] < 0xC0:
        cut -= 1
    return content[:cut].decode("utf-8", "replace")


def _token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer …`` (or the older ``token …``), if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() in ("bearer", "token") else None


def _int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


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
