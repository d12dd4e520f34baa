"""The fake GitHub's ``/_fake/`` endpoints, for a fake run as its own process: add, edit
and delete gists, read what a cache of a user should hold, count the requests, and tell
the GraphQL API to fail (``POST /_fake/graphql/faults``), and set an organisation's
public members (``PUT /_fake/orgs/{org}/public_members``)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from aiohttp import web

from gistcache.testing.fake_github.faults import GRAPHQL_FAULTS
from gistcache.testing.fake_github.payloads import timestamp
from gistcache.testing.fake_github.rest import set_public_members

if TYPE_CHECKING:
    from gistcache.testing.fake_github.server import FakeGitHub


class Controls:
    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_post("/_fake/users/{login}/gists", self.add_gist)
        router.add_post("/_fake/gists/{gist_id}", self.update_gist)
        router.add_delete("/_fake/gists/{gist_id}", self.delete_gist)
        router.add_get("/_fake/users/{login}/truth", self.truth)
        router.add_get("/_fake/stats", self.stats)
        router.add_post("/_fake/graphql/faults", self.graphql_fault)
        router.add_put("/_fake/orgs/{org}/public_members", self.set_public_members)

    async def set_public_members(self, request: web.Request) -> web.Response:
        """The organisation's public members: a JSON list of logins, in order."""
        logins = await request.json()
        if not isinstance(logins, list) or not all(isinstance(x, str) for x in logins):
            return web.json_response({"message": "a list of logins"}, status=400)
        set_public_members(self._fake, request.match_info["org"], logins)
        return web.Response(status=204)

    async def add_gist(self, request: web.Request) -> web.Response:
        data = await request.json()
        gist = self._fake.add_gist(
            request.match_info["login"],
            data.get("files", {}),
            description=data.get("description", ""),
        )
        return web.json_response({"id": gist.id}, status=201)

    async def update_gist(self, request: web.Request) -> web.Response:
        data = await request.json()
        try:
            gist = self._fake.update_gist(
                request.match_info["gist_id"],
                data.get("files"),
                description=data.get("description"),
            )
        except KeyError:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"id": gist.id, "updated_at": timestamp(gist.updated_at)})

    async def delete_gist(self, request: web.Request) -> web.Response:
        """A real deletion: the gist leaves its owner's list, its id and raw URLs 404."""
        try:
            self._fake.delete_gist(request.match_info["gist_id"])
        except KeyError:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.Response(status=204)

    async def truth(self, request: web.Request) -> web.Response:
        """What a cache of this user should hold now: their public gists, newest first,
        and each file's current revision (the git blob sha its raw URL names)."""
        user = self._fake.users.get(request.match_info["login"].lower())
        if user is None:
            return web.json_response({"message": "Not Found"}, status=404)
        payloads = self._fake.payloads(request)
        gists = sorted((g for g in user.gists if g.public), key=lambda g: g.created_at)
        body = {
            "login": user.login,
            "id": user.id,
            "gists": [
                {
                    "id": gist.id,
                    "description": gist.description,
                    "created_at": timestamp(gist.created_at),
                    "updated_at": timestamp(gist.updated_at),
                    "files": {
                        f.filename: {
                            "revision": f.revision,
                            "size": len(f.content),
                            "sha256": hashlib.sha256(f.content).hexdigest(),
                            "raw_url": payloads.raw_url(gist, f),
                        }
                        for f in gist.files.values()
                    },
                }
                for gist in reversed(gists)
            ],
        }
        return web.json_response(body)

    async def stats(self, request: web.Request) -> web.Response:
        """Counts since the fake started: REST API requests, GraphQL requests and the
        points they were charged, raw downloads and those the raw host refused (429)."""
        fake = self._fake
        raw_limit = fake.raw_limit
        return web.json_response(
            {
                "api_requests": len(fake.api_requests()),
                "graphql_requests": len(fake.graphql_requests()),
                "graphql_points": fake.graphql_points,
                "raw_requests": len(fake.raw_requests()),
                "raw_refused": 0 if raw_limit is None else raw_limit.refused,
                "users": len(fake.users),
            }
        )

    async def graphql_fault(self, request: web.Request) -> web.Response:
        """``{"kind": "rate_limited" | "timeout" | "secondary" | "slow" | "partial",
        "times": 1, "status": …, "delay": seconds, "retry_after": seconds or null,
        "node_ids": […], "file_names": […], "error_type": …}``: the next GraphQL
        requests' answer (see faults.GraphQLFault); 422 for anything else, and nothing
        changes."""
        try:
            data = await request.json()
            kind = data["kind"]
            if kind not in GRAPHQL_FAULTS:
                raise ValueError(kind)
            times = int(data.get("times", 1))
            status = data.get("status")
            retry_after = data.get("retry_after", 60)
            node_ids = data.get("node_ids", [])
            file_names = data.get("file_names", [])
            error_type = data.get("error_type")
            if (
                times < 1
                or (status is not None and not 100 <= int(status) <= 599)
                or not isinstance(node_ids, list)
                or not all(isinstance(n, str) for n in node_ids)
                or not isinstance(file_names, list)
                or not all(isinstance(n, str) for n in file_names)
                or (error_type is not None and not isinstance(error_type, str))
            ):
                raise ValueError(data)
            self._fake.graphql_fault(
                kind,
                times=times,
                status=None if status is None else int(status),
                delay=float(data.get("delay", 0.0)),
                retry_after=None if retry_after is None else int(retry_after),
                node_ids=node_ids,
                file_names=file_names,
                error_type=error_type,
            )
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"message": f"want a JSON object with kind one of {list(GRAPHQL_FAULTS)}"},
                status=422,
            )
        return web.Response(status=204)
