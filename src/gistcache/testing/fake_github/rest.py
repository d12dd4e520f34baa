"""The fake GitHub's REST routes: a user, a user's gist list (paged by ``Link``, by login
or by numeric id), one gist in full, and ``GET /rate_limit``; ETags per credential and
304 on ``If-None-Match``. A page of a list is kept as made (its JSON and the digest its
ETags start from) until the fake's data changes, so that a conditional request costs the
fake no JSON nor hashing of the page: a benchmark measures gistcache, not the fake."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gistcache.testing.fake_github.faults import github_error
from gistcache.testing.fake_github.payloads import Payloads
from gistcache.testing.fake_github.state import Changes, FakeGist, FakeUser, watched

if TYPE_CHECKING:
    from gistcache.testing.fake_github.server import FakeGitHub

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
API_VERSIONS = ("2022-11-28", "2026-03-10")
KEPT_PAGES = 256  # the most pages kept at once: the oldest made goes first


@dataclass(frozen=True, slots=True)
class _Page:
    """One page of a list as made when the fake's data changed ``count`` times."""

    count: int
    user: FakeUser  # the user it was made for (its key holds the user's id())
    raw: bytes
    digest: Any  # the hash of ``raw``, the start of every credential's ETag
    total: int  # how many gists the whole list has (for the Link header)


# what else a page's JSON depends on: its user, the URLs it names, whether the token is
# the user's own, ``since``, the page and its size
_PageKey = tuple[int, Payloads, bool, str | None, int, int]


class RestRoutes:
    """The API's handlers, reading the fake's state (and its settings) per request."""

    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake
        self._pages: dict[_PageKey, _Page] = {}

    def add_to(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_get(prefix + "/users/{username}", self.get_user)
        router.add_get(prefix + "/users/{username}/gists", self.list_by_login)
        router.add_get(prefix + "/user/{user_id:[0-9]+}/gists", self.list_by_id)
        router.add_get(prefix + "/gists/{gist_id}", self.get_gist)
        router.add_get(prefix + "/rate_limit", self.rate_limit)
        router.add_get(prefix + "/orgs/{org}/public_members", self.public_members)

    async def public_members(self, request: web.Request) -> web.Response:
        """``GET /orgs/{org}/public_members``: the simple users, paged by ``Link``."""
        logins = public_members(self._fake).get(request.match_info["org"].lower())
        if logins is None:
            return github_error(
                404, "Not Found", doc="/orgs/members#list-public-organization-members"
            )
        per_page = min(max(_int_param(request.query.get("per_page"), 30), 1), MAX_PER_PAGE)
        page = max(_int_param(request.query.get("page"), 1), 1)
        users = [self._fake.user(login) for login in logins]
        chunk = users[(page - 1) * per_page : page * per_page]
        response = _json_conditional(
            request, [self._fake.payloads(request).user(user) for user in chunk]
        )
        base = str(request.url.with_query(None))
        response.headers["Link"] = self._links(base, request.query, page, per_page, len(users))
        return response

    async def get_user(self, request: web.Request) -> web.Response:
        user = self._fake.users.get(request.match_info["username"].lower())
        if user is None:
            return github_error(404, "Not Found", doc="/users/users#get-a-user")
        # GET /users/{login} answers a public user: the simple user and the profile
        public = sum(1 for g in user.gists if g.public)
        profile = dict.fromkeys(("name", "company", "blog", "location", "email", "bio"))
        counts = {"public_repos": 0, "public_gists": public, "followers": 0, "following": 0}
        joined = "2011-01-25T18:44:36Z"
        body = {
            **self._fake.payloads(request).user(user),
            **profile,
            "hireable": None,
            **counts,
            "created_at": joined,
            "updated_at": joined,
        }
        return _json_conditional(request, body)

    async def rate_limit(self, request: web.Request) -> web.Response:
        """``GET /rate_limit``: the credential's budgets (core's, and GraphQL's in points;
        search is untouched here); API version ``2026-03-10`` has no top-level ``rate``, and a
        version GitHub does not have is a 400, as GitHub answers."""
        version = request.headers.get("X-GitHub-Api-Version", "").strip() or "2022-11-28"
        if version not in API_VERSIONS:
            return github_error(
                400,
                f'The version you specified in the "X-GitHub-Api-Version" request header, '
                f'"{version[:64]}", is not a supported version. The following versions are '
                'currently supported: "2026-03-10" (most recent), "2022-11-28".',
                doc="/about-the-rest-api/api-versions",
            )
        budget = self._fake.budget_for(request.headers.get("Authorization"))
        core = {
            "limit": budget.limit,
            "used": budget.used,
            "remaining": max(0, budget.remaining),
            "reset": budget.reset,
        }
        reset = int(time.time()) + 60
        # GraphQL's budget in points is the token's (none without one, as GitHub says)
        token = _token(request)
        graphql = {"limit": 0, "used": 0, "remaining": 0, "reset": reset}
        if token is not None:
            points = self._fake.graphql_budget_for(token)
            graphql = {
                "limit": points.limit,
                "used": points.used,
                "remaining": max(0, points.remaining),
                "reset": points.reset,
            }
        resources = {
            "core": core,
            "search": {"limit": 10, "used": 0, "remaining": 10, "reset": reset},
            "graphql": graphql,
        }
        body: dict[str, Any] = {"resources": resources}
        if version == "2022-11-28":
            body["rate"] = core
        return web.json_response(body, headers={"Cache-Control": "no-cache"})

    async def list_by_login(self, request: web.Request) -> web.Response:
        user = self._fake.users.get(request.match_info["username"].lower())
        return await self._list(request, user)

    async def list_by_id(self, request: web.Request) -> web.Response:
        wanted = int(request.match_info["user_id"])
        users = self._fake.users.values()
        return await self._list(request, next((u for u in users if u.id == wanted), None))

    async def _list(self, request: web.Request, user: FakeUser | None) -> web.Response:
        if user is None:
            return github_error(404, "Not Found", doc="/gists/gists#list-gists-for-a-user")
        query = request.query
        per_page = _int_param(query.get("per_page"), DEFAULT_PER_PAGE)
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = max(_int_param(query.get("page"), 1), 1)
        # with the user's own token GitHub lists their secret gists too
        own = user.token is not None and _token(request) == user.token
        payloads = self._fake.payloads(request)
        key = (id(user), payloads, own, query.get("since"), page, per_page)
        made = self._pages.get(key)
        if made is None or made.count != Changes.count or made.user is not user:
            made_now = self._page(user, key)
            if not isinstance(made_now, _Page):
                return made_now
            made = made_now
        headers = {}
        if made.total > per_page:
            base = f"{payloads.api}/user/{user.id}/gists"
            headers["Link"] = self._links(base, query, page, per_page, made.total)
        return _conditional(request, made.raw, made.digest, headers)

    def _page(self, user: FakeUser, key: _PageKey) -> _Page | web.Response:
        """The page ``key`` names made now, and kept when every container of the data it
        is made of counts its changes."""
        _, payloads, own, since, page, per_page = key
        count = Changes.count
        gists = [g for g in user.gists if g.public or own]
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
        items = gists[(page - 1) * per_page : page * per_page]
        raw = json.dumps([payloads.gist(g, full=False) for g in items]).encode()
        made = _Page(count, user, raw, hashlib.sha256(raw), len(gists))
        if watched(user.gists) and all(_all_watched(g) for g in items):
            if len(self._pages) >= KEPT_PAGES:
                del self._pages[next(iter(self._pages))]
            self._pages[key] = made
        return made

    def _links(
        self, base: str, query: Mapping[str, str], page: int, per_page: int, total: int
    ) -> str:
        """The ``Link`` header of one page of a list GitHub splits into pages, in the
        ``/user/{id}/gists?page=N`` form GitHub uses."""
        last = max(1, -(-total // per_page))
        extra = {"per_page": str(per_page)} if "per_page" in query else {}
        since = query.get("since")
        if since is not None:
            extra["since"] = since

        def link(n: int, rel: str) -> str:
            pairs = {**extra, "page": str(n)}
            if self._fake.later_links_page_first and page > 1:
                pairs = {"page": str(n), **extra}
            params = "&".join(f"{k}={v}" for k, v in pairs.items())
            return f'<{base}?{params}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels.append(link(min(page - 1, last), "prev"))
        if page < last:
            rels.append(link(page + 1, "next"))
        rels += [link(last, "last"), link(1, "first")]
        return ", ".join(rels)

    async def get_gist(self, request: web.Request) -> web.Response:
        try:
            gist = self._fake.gist(request.match_info["gist_id"])
        except KeyError:
            return github_error(404, "Not Found", doc="/gists/gists#get-a-gist")
        return _json_conditional(request, self._fake.payloads(request).gist(gist, full=True))


def public_members(fake: FakeGitHub) -> dict[str, list[str]]:
    """Organisations' public members (lower-cased org login: member logins in order),
    kept beside the fake's state; ``set_public_members`` sets them."""
    found: dict[str, list[str]] = vars(fake).setdefault("_public_members", {})
    return found


def set_public_members(fake: FakeGitHub, org: str, logins: list[str]) -> None:
    """Make ``org`` an organisation whose public members are ``logins`` (users created
    as needed)."""
    for login in logins:
        if login.lower() not in fake.users:
            fake.add_user(login)
    public_members(fake)[org.lower()] = list(logins)


def _token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer …`` (or the older ``token …``), if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() in ("bearer", "token") else None


def _int_param(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _all_watched(gist: FakeGist) -> bool:
    files = gist.files
    return (
        watched(gist.fields) and watched(files) and all(watched(f.fields) for f in files.values())
    )


def _json_conditional(request: web.Request, body: Any) -> web.Response:
    raw = json.dumps(body).encode()
    return _conditional(request, raw, hashlib.sha256(raw))


def _conditional(
    request: web.Request, raw: bytes, digest: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """200 with a weak ETag that depends on the credential, or 304 when it still matches;
    ``digest`` is the hash of ``raw``, which the ETag continues (on a copy)."""
    digest = digest.copy()
    digest.update(b"\0" + request.headers.get("Authorization", "").encode())
    etag = f'W/"{digest.hexdigest()[:40]}"'
    out = {"ETag": etag, "Cache-Control": "public, max-age=60, s-maxage=60", **(headers or {})}
    out["Vary"] = "Accept, Authorization, Accept-Encoding"
    offered = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in offered.split(",") if tag.strip()}
    if etag.removeprefix("W/") in tags:
        return web.Response(status=304, headers=out)
    return web.Response(body=raw, content_type="application/json", headers=out)
