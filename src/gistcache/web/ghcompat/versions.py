"""GitHub's REST API versions (``X-GitHub-Api-Version``), as GitHub applies them: to
every endpoint. A request names one (``2022-11-28`` when it names none); a version
GitHub does not have is a ``400`` wherever it is sent, and each answer takes the shape
of the version asked for.

What the versions change of what gistcache serves: ``2026-03-10`` removed the
deprecated top-level ``rate`` of ``GET /rate_limit`` and the ``user`` of a gist list's
items (``BaseGist``); a single gist (``GistSimple``) keeps its ``user``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.web.ghcompat.errors import github_error

HEADER = "X-GitHub-Api-Version"
DEFAULT = "2022-11-28"
V2026_03_10 = "2026-03-10"
SUPPORTED = (V2026_03_10, DEFAULT)  # newest first, as GitHub lists them
DOCS = "/about-the-rest-api/api-versions"

API_VERSION = web.RequestKey("github_api_version", str)


def _unsupported(asked: str) -> web.Response:
    listed = ", ".join(
        f'"{version}"' + (" (most recent)" if n == 0 else "") for n, version in enumerate(SUPPORTED)
    )
    return github_error(
        400,
        f'The version you specified in the "{HEADER}" request header, "{asked}", is not a '
        f"supported version. The following versions are currently supported: {listed}.",
        doc=DOCS,
    )


@web.middleware
async def api_version(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request under ``/api/v3`` (known paths or not, as GitHub checks the header
    first): the version it names, or a ``400`` naming the ones there are."""
    asked = request.headers.get(HEADER, "").strip() or DEFAULT
    if asked not in SUPPORTED:
        return _unsupported(asked[:64])  # never echo a long header whole
    request[API_VERSION] = asked
    return await handler(request)


def version_of(request: web.Request) -> str:
    version = request.get(API_VERSION)
    return DEFAULT if version is None else version


def list_item(item: Any, version: str) -> Any:
    """A gist list's item as ``version`` shapes it: without ``user`` from ``2026-03-10``
    (kept when it is all an old item says of its owner)."""
    if version != V2026_03_10 or not isinstance(item, dict) or "user" not in item:
        return item
    if "owner" not in item and item["user"] is not None:
        return item
    return {key: value for key, value in item.items() if key != "user"}
