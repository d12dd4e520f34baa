"""Answers to what aiohttp cannot parse as HTTP: an over-long request line or header, a
malformed header, bad framing. aiohttp answers those itself, before any application or
middleware sees them, with a text/plain 400 that quotes the offending input, and logs
each with a traceback at ERROR. Here they are a problem like every other error (RFC 9457,
no input quoted) and one log line.

aiohttp has no hook for it (aio-libs/aiohttp#3287): its connection protocol,
``RequestHandler``, renders them in ``handle_error``. ``ProblemRunner`` is an
``AppRunner`` whose server makes connections of ``ProblemRequestHandler``, which
overrides that method.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gistcache.domain.errors import FailureKind
from gistcache.web.failures import Problem
from gistcache.web.problems import PROBLEM_TYPE, internal_error

log = logging.getLogger("gistcache.web")


def protocol_problem(exc: BaseException | None, status: int, max_line: int) -> Problem:
    """The problem for a request aiohttp could not parse, saying what was wrong in
    general words: nothing of the request is quoted back."""
    if isinstance(exc, LineTooLong):
        detail = f"the request line or a header is longer than {max_line} bytes"
    elif isinstance(exc, BadHttpMethod):
        detail = "the request is not HTTP: its method is not a valid token"
    else:
        detail = "the request is not valid HTTP/1.1 (its request line, headers or framing)"
    return Problem(status, FailureKind.MALFORMED_REQUEST, "Bad Request", detail)


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection protocol, with its own error answers made problems."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to a request aiohttp could not parse (``status`` 400) or whose
        handling failed outside the application (500: a bug, logged with its
        traceback). Closes the connection, as aiohttp does: what follows the bad input
        on it cannot be trusted to start a request."""
        request_id = secrets.token_hex(16)
        if status >= 500:
            log.error("unhandled error outside the application [%s]", request_id, exc_info=exc)
            problem = internal_error("an unexpected error occurred")
        else:
            problem = protocol_problem(exc, status, self.max_line_size)
            # one line, no traceback and nothing of the input: a client's mistake
            kind = type(exc).__name__ if isinstance(exc, HttpProcessingError) else "error"
            log.info(
                "malformed request from %s [%s]: %d %s",
                request.remote,
                request_id,
                status,
                kind,
            )
        if request.writer.output_size > 0:  # the answer has begun: no other can follow
            raise ConnectionError("an answer was already being sent")
        body: dict[str, Any] = {**problem.to_json(), "request_id": request_id}
        response = web.Response(
            status=problem.status,
            body=json.dumps(body).encode(),
            content_type=PROBLEM_TYPE,
            headers={"X-Request-ID": request_id},
        )
        response.force_close()
        return response


class ProblemServer(web.Server):
    """aiohttp's low-level server, making ``ProblemRequestHandler`` connections."""

    def __call__(self) -> RequestHandler:
        # as web.Server.__call__ does, with the subclass
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemRunner(web.AppRunner):
    """An ``AppRunner`` serving the application through a ``ProblemServer``."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # the application started, its server made
        return ProblemServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
