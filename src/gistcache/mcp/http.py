"""The MCP server over streamable HTTP at ``/mcp``, on the service's own port.

The SDK's transport (``StreamableHTTPSessionManager``) is an ASGI application; the
aiohttp handler here calls it with the request as an ASGI scope, its body as ``receive``
and the answer written back through ``send``: no second server, and the request passes
the application's own middlewares first (the request id, the cross-site check, the
client rate limit and GitHub budget with their trusted-proxy rules, metrics and the
access log), as every other route does.

The transport runs stateless with JSON answers: every POST stands alone (no session to
keep on one replica, so a load balancer may send each to any), and its answer is one
JSON body, not an event stream (a GET, which would open one, is a 405). The client's
``Authorization`` and ``Cookie`` headers are left out of the scope: nothing of a client's
credentials reaches the tools, let alone GitHub, which is always asked with the service's
own token. The transport's own Host check, made for a server on the loopback, is off: the
service answers to whatever name it is reached by, on /mcp as on every route."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from aiohttp import web
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from gistcache.mcp.answers import Answers
from gistcache.mcp.server import build_server
from gistcache.web.app_keys import CLOCK, GISTS, LISTING, MANY, SEARCHES
from gistcache.web.http import MAX_BODY_BYTES, body_too_large

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
# never handed on to the transport: a client's credentials are none of the tools' business
WITHHELD_HEADERS = frozenset({b"authorization", b"cookie", b"proxy-authorization"})

Message = MutableMapping[str, Any]
NO_HOST_CHECK = TransportSecuritySettings(enable_dns_rebinding_protection=False)


class McpOverHttp:
    """The transport, run for the application's lifetime in a task of its own (its task
    group must be entered and left in one task), and the handler that calls it."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        started = asyncio.Event()

        async def run() -> None:
            async with self._manager.run():
                started.set()
                await self._stop.wait()

        self._task = asyncio.create_task(run(), name="mcp-transport")
        waiting = asyncio.create_task(started.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            waiting.cancel()
            await self._task  # it ended before it started: its failure, raised

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        finished = asyncio.Event()
        response: web.StreamResponse | None = None
        body_given = False

        async def receive() -> Message:
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()  # the client is there until its answer is written
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal response
            if message["type"] == "http.response.start":
                response = web.StreamResponse(status=message["status"])
                for name, value in message.get("headers", ()):
                    response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            elif message["type"] == "http.response.body" and response is not None:
                if not response.prepared:
                    await response.prepare(request)
                if message.get("body"):
                    await response.write(message["body"])
                if not message.get("more_body", False):
                    await response.write_eof()
                    finished.set()

        try:
            await self._manager.handle_request(_scope(request), receive, send)
        finally:
            finished.set()
        if response is None:
            raise RuntimeError("the MCP transport gave no answer")
        return response


async def _body(request: web.Request) -> bytes:
    """The request's body, at most ``MAX_BODY_BYTES`` as the API's (a problem otherwise,
    as there, not the transport's own plain-text 413). A sized body is refused before it
    is read; a chunked one (no Content-Length) is read only up to the application's
    ``client_max_size``, which is ``MAX_BODY_BYTES``: aiohttp stops past it, whatever the
    framing, and that is the same problem."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise body_too_large()  # refused before a byte of it is read
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise body_too_large() from None


def _scope(request: web.Request) -> dict[str, Any]:
    """The request as an ASGI HTTP scope, without the client's credentials."""
    host, port = _server(request)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "root_path": "",
        "query_string": request.query_string.encode("latin-1"),
        "headers": [
            (name.lower(), value)
            for name, value in request.raw_headers
            if name.lower() not in WITHHELD_HEADERS
        ],
        "client": (request.remote or "", 0),
        "server": (host, port),
    }


def _server(request: web.Request) -> tuple[str, int]:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return request.host, 0


MCP_OVER_HTTP = web.AppKey("mcp_over_http", McpOverHttp)


async def _transport(app: web.Application) -> AsyncIterator[None]:
    answers = Answers(app[LISTING], app[SEARCHES], app[GISTS], app[CLOCK], app[MANY])
    server = build_server(answers)
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=MAX_BODY_BYTES,
        # the SDK's own Host and Origin check would take the service for a local one (it
        # answers a plain-text 421 to any Host but 127.0.0.1, localhost or [::1] with a
        # port): a service behind a proxy or in compose is asked as its public or service
        # name. The application's cross-site check has already refused other sites' pages
        # (as on every route), and no route checks the Host (SECURITY.md).
        transport_security=NO_HOST_CHECK,
    )
    mcp = McpOverHttp(server.session_manager)
    await mcp.start()
    app[MCP_OVER_HTTP] = mcp
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await mcp.close()


async def handle(request: web.Request) -> web.StreamResponse:
    if request.method != "POST":
        # stateless: no event stream to open (GET) and no session to end (DELETE); the
        # route takes every method so that a GET is not taken for the user "mcp"
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    return await request.app[MCP_OVER_HTTP].handle(request)


def setup_mcp(app: web.Application) -> None:
    """``/mcp`` on ``app``: its route (before the catch-all ``/{username}``), and the
    transport started once the service's parts are (its cleanup context comes after
    theirs)."""
    app.cleanup_ctx.append(_transport)
    app.router.add_route("*", MCP_PATH, handle, name="mcp")
