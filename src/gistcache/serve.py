"""``gistcache serve`` as a process: the application on a socket bound before the log
says the server is up, until SIGINT or SIGTERM; a shutdown whose grace counts from the
signal, ended by a watchdog if it hangs; and an exit without the interpreter's teardown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import NoReturn

from aiohttp import web

from gistcache import __version__
from gistcache.app import CANCEL_GRACE, Stopping, create_app
from gistcache.observability.logs import drain
from gistcache.settings import Settings
from gistcache.web.protocol import ProblemRunner

log = logging.getLogger("gistcache")

# aiohttp closes a connection that has not sent a whole request (line and headers) this
# long after it opened or after its last answer, and an idle keep-alive one: web.run_app's
# value. Longer than a load balancer's idle timeout (60 s on most), or the balancer may
# reuse a connection the server is closing.
KEEPALIVE_TIMEOUT = 75.0

WATCHDOG_MARGIN = 0.9  # past GISTCACHE_SHUTDOWN_TIMEOUT; the promise is one second

# objects allocated (less freed) before the youngest generation is collected; Python's
# default is 700. A search's answer is tens of thousands of short-lived objects, and the
# default made the collector run over the long-lived ones (lists and contents held in
# memory) again and again: a quarter of a 100 MB warm search, in the benchmarks.
GC_YOUNG_THRESHOLD = 50_000


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything says the server is up."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve(settings: Settings, sock: socket.socket) -> NoReturn:
    """Serve on ``sock`` until a signal, shut down within GISTCACHE_SHUTDOWN_TIMEOUT
    (and a second), and end the process."""
    log.info(
        "gistcache %s serving on http://%s:%d (GitHub API %s)",
        __version__,
        settings.host,
        settings.port,
        settings.github_api_url,
    )
    stopping = Stopping()
    app = create_app(settings, stopping=stopping)
    loop = asyncio.new_event_loop()
    _stop_on_signals(stopping, loop)
    app.on_shutdown.insert(0, _watchdog(stopping, settings.shutdown_timeout))
    _tune_garbage_collector()
    run(app, sock, loop=loop, shutdown_timeout=CANCEL_GRACE)
    _exit_now()


def _stop_on_signals(stopping: Stopping, loop: asyncio.AbstractEventLoop) -> None:
    def stop(_signum: int, _frame: object) -> None:
        # in the main thread as soon as it runs Python again, even while the loop is busy
        # with a long step: the time counts from here (aiohttp's own handler would run
        # only once the loop got to it, and its shutdown later still)
        if stopping.signalled_at is None and not loop.is_closed():
            stopping.signalled_at = time.monotonic()
            loop.call_soon_threadsafe(_graceful_exit)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def _graceful_exit() -> None:
    raise web.GracefulExit  # as aiohttp's own signal handler: run then shuts down


def _watchdog(
    stopping: Stopping, shutdown_timeout: float
) -> Callable[[web.Application], Awaitable[None]]:
    async def watchdog(_app: web.Application) -> None:
        # whatever hangs (a database that stopped answering mid-cleanup): the process
        # still ends within the promised time from the signal, before an orchestrator's
        # SIGKILL
        arm_watchdog(stopping.left(shutdown_timeout + WATCHDOG_MARGIN))

    return watchdog


def arm_watchdog(seconds: float) -> threading.Timer:
    """End the process with status 2 after ``seconds`` unless it ended by itself."""

    def expire() -> None:
        log.error("shutdown still not done after %.1f s: exiting now", seconds)
        drain()  # the log's queue, written out before the process ends
        os._exit(2)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def _tune_garbage_collector() -> None:
    """Collect less often, and leave what start-up made (modules, the app) out of every
    collection from now on (``gc.freeze``). Reference counting still frees everything
    that is not in a cycle at once; cycles are found later, not never."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.freeze()


def run(
    app: web.Application,
    sock: socket.socket,
    *,
    loop: asyncio.AbstractEventLoop,
    shutdown_timeout: float,
) -> None:
    """Serve ``app`` on ``sock`` in ``loop`` until ``web.GracefulExit`` is raised in it
    (the signal handler does), as ``web.run_app`` does, but through a runner that
    answers unparsable requests with a problem (web/protocol.py), which run_app cannot
    be given. The loop is closed on the way out."""
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve_until_cancelled(app, sock, shutdown_timeout))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        # as run_app: the server's own cleanup first (it drains the requests), then
        # whatever task is left
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


async def _serve_until_cancelled(
    app: web.Application, sock: socket.socket, shutdown_timeout: float
) -> None:
    runner = ProblemRunner(
        app,
        handle_signals=False,  # the handler of _stop_on_signals raises GracefulExit
        # the app's own shutdown waits GISTCACHE_SHUTDOWN_TIMEOUT, then cancels what
        # runs; aiohttp's wait (twice this, before it cancels anything) is a backstop
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
        access_log=None,
        # a client that goes away cancels its handler (a search stream stops, and the
        # downloads only it wanted), as aiohttp's test server does too; the work
        # handlers share (list refreshes, downloads others wait for) runs shielded
        handler_cancellation=True,
    )
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()  # until cancelled, after a signal
    finally:
        await runner.cleanup()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _exit_now() -> NoReturn:
    """End the process: everything is closed by now (the connections, the database, the
    log, written out). What the interpreter would still do is tear itself down: free,
    object by object, a heap the memory caches fill to a hundred MB and more (0.3 to
    0.8 s measured, more under load), run atexit hooks and join leftover threads (the
    default executor's, one stuck in a DNS lookup), after the watchdog stopped running,
    so unbounded. None of it is needed."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
