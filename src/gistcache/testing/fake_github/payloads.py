"""The fake GitHub's JSON: users, gists (as listed, in full, and in the 2012 shape) and
the raw URLs of their files, as GitHub's REST API writes them."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from gistcache.testing.fake_github.state import FakeFile, FakeGist, FakeUser

API_CONTENT_LIMIT = 1024 * 1024  # GET /gists/{id} gives at most this much of each file
MAX_LISTED_FILES = 300
# what GitHub leaves as it is in a raw_url's file name (a space becomes %20, non-ASCII
# its UTF-8 bytes in %XX); everything else of RFC 3986's sub-delims stays literal
RAW_NAME_SAFE = "!$&'()*+,;=:@"


GIST_NODE_PREFIX = "G_fake"  # a gist's node_id (its GraphQL id): this and its REST id
USER_NODE_PREFIX = "U_fake"  # a user's: this and their numeric id


def gist_node_id(gist: FakeGist) -> str:
    return GIST_NODE_PREFIX + gist.id


def user_node_id(user: FakeUser) -> str:
    return f"{USER_NODE_PREFIX}{user.id}"


def timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Payloads:
    """JSON for one request: ``api`` and ``raw`` are the base URLs its answer names."""

    api: str
    raw: str
    quote_raw_urls: bool = True  # False: a raw_url holds the file name as it is

    def raw_url(self, gist: FakeGist, f: FakeFile) -> str:
        name = (
            quote(f.filename, safe=RAW_NAME_SAFE, errors="surrogatepass")
            if self.quote_raw_urls
            else f.filename
        )
        return f"{self.raw}/{gist.owner.login}/{gist.id}/raw/{f.revision}/{name}"

    def user(self, user: FakeUser) -> dict[str, Any]:
        """The simple user, as a gist's ``owner`` gives it."""
        api, login = self.api, user.login
        return {
            "login": login,
            "id": user.id,
            "node_id": user_node_id(user),
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

    def gist(self, gist: FakeGist, *, full: bool) -> dict[str, Any]:
        """A gist as a list item, or ``full`` as ``GET /gists/{id}`` gives it (with each
        file's contents and the gist's history)."""
        files = {
            f.filename: self._file(gist, f, full=full)
            for f in list(gist.files.values())[:MAX_LISTED_FILES]
        }
        if gist.old_format and not full:
            return {**self._old_gist(gist, files), **gist.fields}
        api = self.api
        body: dict[str, Any] = {
            "url": f"{api}/gists/{gist.id}",
            "forks_url": f"{api}/gists/{gist.id}/forks",
            "commits_url": f"{api}/gists/{gist.id}/commits",
            "id": gist.id,
            "node_id": gist_node_id(gist),
            "git_pull_url": f"https://gist.github.com/{gist.id}.git",
            "git_push_url": f"https://gist.github.com/{gist.id}.git",
            "html_url": f"https://gist.github.com/{gist.id}",
            "files": files,
            "public": gist.public,
            "created_at": timestamp(gist.created_at),
            "updated_at": timestamp(gist.updated_at),
            "description": gist.description,
            "comments": gist.comments,
            "user": None,
            "comments_url": f"{api}/gists/{gist.id}/comments",
            "owner": self.user(gist.owner),
        }
        if full:
            # as GitHub orders them: forks and history (newest first) before truncated
            body["forks"] = []
            body["history"] = self._history(gist, body["owner"])
        body["truncated"] = len(gist.files) > MAX_LISTED_FILES
        body.update(gist.fields)
        return body

    def _file(self, gist: FakeGist, f: FakeFile, *, full: bool) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "filename": f.filename,
            "type": f.type,
            "language": f.language,
            "raw_url": self.raw_url(gist, f),
            "size": len(f.content),
        }
        if meta["language"] is None:
            del meta["language"]  # the schema wants a string when present
        meta.update(f.fields)
        if full:
            meta["truncated"] = len(f.content) > API_CONTENT_LIMIT
            if binary(f.content):
                # GitHub gives a binary file's bytes base64-encoded, and says so
                head = f.content[:API_CONTENT_LIMIT]
                meta["content"] = base64.b64encode(head).decode("ascii")
                meta["encoding"] = "base64"
            else:
                meta["content"] = _content_prefix(f.content)
        return meta

    def _history(self, gist: FakeGist, owner: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "user": owner,
                "version": rev.version,
                "committed_at": timestamp(rev.committed_at),
                "change_status": {
                    "total": rev.additions + rev.deletions,
                    "additions": rev.additions,
                    "deletions": rev.deletions,
                },
                "url": f"{self.api}/gists/{gist.id}/{rev.version}",
            }
            for rev in reversed(gist.history)
        ]

    def _old_gist(self, gist: FakeGist, files: dict[str, Any]) -> dict[str, Any]:
        """A list item as GitHub's API gave it in 2012: ``user`` (a short object) instead
        of ``owner``, none of the later URLs, no ``truncated``."""
        api, user = self.api, gist.owner
        return {
            "updated_at": timestamp(gist.updated_at),
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
            "created_at": timestamp(gist.created_at),
            "id": gist.id,
            "html_url": f"https://gist.github.com/{gist.id}",
        }


def binary(content: bytes) -> bool:
    """Binary as git tells it: a NUL byte in the first 8,000 bytes."""
    return b"\0" in content[:8000]


# services/gists.py cuts the same way in its own copy: the fake stays independent of it
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
