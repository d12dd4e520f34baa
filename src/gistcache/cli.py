"""Command line: ``gistcache serve | migrate | list | search``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gistcache import __version__
from gistcache.domain.gists import format_timestamp
from gistcache.observability.logs import configure_logging, drain
from gistcache.settings import ConfigError, Settings, unknown_variables

log = logging.getLogger("gistcache")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gistcache",
        description="List and search GitHub users' public gists through a SQL cache.",
        epilog=(
            "Configuration comes from GISTCACHE_* environment variables "
            "(see docs/configuration.md)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gistcache {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="apply pending migrations, then serve HTTP")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not apply migrations before serving"
    )
    commands.add_parser("migrate", help="upgrade the cache database to the newest schema")
    listing = commands.add_parser("list", help="print a user's public gists")
    listing.add_argument("user")
    listing.add_argument("--json", action="store_true", help="print the API's JSON instead")
    _verbosity(listing)
    search = commands.add_parser(
        "search",
        help="print the lines of a user's gists that match a pattern (RE2 syntax)",
        description="Prints gist_id/filename:line: text for each matching line (and "
        "gist_id/filename-line- text for context lines, groups apart marked --), gist by "
        "gist in the list's order as the search goes. "
        "Exit status: 0 when something matched, 1 when nothing did, 2 on errors.",
    )
    search.add_argument("user")
    search.add_argument("pattern")
    search.add_argument("-i", "--ignore-case", action="store_true")
    search.add_argument(
        "-C",
        "--context",
        type=int,
        default=0,
        metavar="N",
        help="print N lines before and after each matching line (0 to 10)",
    )
    search.add_argument(
        "-F",
        "--fixed-strings",
        action="store_true",
        dest="literal",
        help="the pattern is a fixed string, not a regular expression",
    )
    search.add_argument(
        "--glob",
        metavar="GLOB",
        help="search only the files whose name matches this glob (such as '*.py'), ignoring case",
    )
    search.add_argument(
        "--color",
        "--colour",
        choices=("auto", "always", "never"),
        default="auto",
        metavar="WHEN",
        help="colour the matched text: auto (the default) when standard output is a "
        "terminal and NO_COLOR is not set",
    )
    _verbosity(search)
    return parser


def _verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr at INFO (-vv: DEBUG); without it only warnings and errors",
    )


async def _offline_command(args: argparse.Namespace, settings: Settings) -> int:
    from gistcache.components import components
    from gistcache.domain.errors import InvalidInput, InvalidLogin
    from gistcache.services.failures import describe

    try:
        async with components(settings) as parts:
            if args.command == "list":
                return await _print_list(parts, args)
            return await _print_search(parts, args)
    except BrokenPipeError:
        # the reader went away (| head): stop quietly, as grep does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except InvalidInput as exc:  # the rules the API applies, in the words it uses
        what = "invalid username" if isinstance(exc, InvalidLogin) else "invalid search request"
        print(f"gistcache: {what}: {exc.detail}", file=sys.stderr)
        return 2
    except Exception as exc:
        failure = describe(exc)
        if failure is None:
            raise
        print(f"gistcache: {failure.title.lower()}: {failure.detail}", file=sys.stderr)
        return 2


async def _print_list(parts: Any, args: argparse.Namespace) -> int:
    from gistcache.domain.requests import validate_username

    result = await parts.listing.list_gists(validate_username(args.user))
    if args.json:
        print(json.dumps([g.to_json() for g in result.gists], indent=2, ensure_ascii=False))
        return 0
    for gist in result.gists:
        names = ", ".join(f.filename for f in gist.files)
        description = f"  {gist.description}" if gist.description else ""
        print(f"{gist.id}  {format_timestamp(gist.updated_at)}  [{names}]{description}")
    return 0


async def _print_search(parts: Any, args: argparse.Namespace) -> int:
    from gistcache.domain.requests import search_request
    from gistcache.domain.results import (
        FileSkipped,
        GistFound,
        GistSearched,
        SearchDone,
        SearchProgress,
    )

    # the API's own rules, so that the CLI refuses what the API refuses
    request = search_request(
        args.user,
        args.pattern,
        ignore_case=args.ignore_case,
        context=args.context,
        literal=args.literal,
        filename=args.glob,
    )
    bar = _ProgressBar() if sys.stderr.isatty() else None
    printer = _Printer(_use_colour(args.color), request.context > 0)
    # gists come as they are ready; they are printed in the list's order
    ready: dict[int, list[Any]] = {}
    done: set[int] = set()
    next_index = 0
    total = 0
    # every matching line, whole, as grep prints them
    events = parts.searches.stream(request, line_limit=None, line_chars=None)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, SearchProgress) and bar is not None:
                bar(event.files_done, event.files_total)
            elif isinstance(event, GistFound | FileSkipped):
                ready.setdefault(event.index, []).append(event)
            elif isinstance(event, GistSearched):
                done.add(event.index)
                while next_index in done:
                    if bar is not None:
                        bar.clear()
                    for item in ready.pop(next_index, ()):
                        printer(item)
                    done.discard(next_index)
                    next_index += 1
                sys.stdout.flush()
            elif isinstance(event, SearchDone):
                total = event.total
    if bar is not None:
        bar.clear()
    return 0 if total else 1


SGR_MATCH = "\x1b[01;31m\x1b[K"  # bold red, as grep colours a match
SGR_END = "\x1b[m\x1b[K"


def _use_colour(choice: str) -> bool:
    if choice == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return choice == "always"


def _coloured(text: str, ranges: Sequence[tuple[int, int]]) -> str:
    out = []
    pos = 0
    for start, end in ranges:
        if end <= start:
            continue
        out.append(text[pos:start])
        out.append(f"{SGR_MATCH}{text[start:end]}{SGR_END}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


class _Printer:
    """Prints matches as grep does; with context, ``--`` between groups of lines that
    do not follow each other."""

    def __init__(self, colour: bool, context: bool) -> None:
        self._colour = colour
        self._context = context
        self._last: tuple[str, int] | None = None  # the last line printed: file, number

    def __call__(self, event: Any) -> None:
        from gistcache.domain.results import FileSkipped

        if isinstance(event, FileSkipped):
            skipped = event.skipped
            where = skipped.gist_id + (f"/{skipped.filename}" if skipped.filename else "")
            print(f"gistcache: skipped {where}: {skipped.reason.value}", file=sys.stderr)
            return
        match = event.match
        for f in match.files:
            name = f"{match.gist.id}/{f.file.filename}"
            for line in f.lines:
                first = line.before[0].line_number if line.before else line.line_number
                if self._context and self._last is not None and self._last != (name, first - 1):
                    print("--")
                for context in line.before:
                    print(f"{name}-{context.line_number}- {context.text}")
                text = _coloured(line.text, line.ranges) if self._colour else line.text
                print(f"{name}:{line.line_number}: {text}")
                for context in line.after:
                    print(f"{name}-{context.line_number}- {context.text}")
                self._last = (name, line.after[-1].line_number if line.after else line.line_number)


class _ProgressBar:
    """``fetching contents [###...] 3/10`` on a terminal's standard error."""

    def __init__(self) -> None:
        self._shown = False  # on the terminal now
        self._used = False  # shown at all: there was something to fetch

    def __call__(self, done: int, total: int) -> None:
        if done >= total and not self._used:
            return  # nothing to fetch: no bar
        self._used = True
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(
            f"\rfetching contents [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        )
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._shown = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; exit status 2 for every error (1 is ``search``'s "nothing matched")."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}")
    level = _log_level(args, settings)
    configure_logging(level, settings.log_format)
    for sentence in unknown_variables():
        log.warning("%s", sentence)

    if args.command != "serve" or not args.no_migrate:
        failure = _migrate(settings)
        if failure is not None:
            return _fail(failure)
        configure_logging(level, settings.log_format)  # alembic may have changed levels
        log.info("database %s is at the newest schema", settings.safe_database_url)
        if args.command == "migrate":
            return 0
    if args.command in ("list", "search"):
        return asyncio.run(_offline_command(args, settings))
    return _serve(settings)


def _fail(message: str) -> int:
    print(f"gistcache: {message}", file=sys.stderr)
    return 2


def _log_level(args: argparse.Namespace, settings: Settings) -> str:
    """``list`` and ``search`` print their answer, not a log: WARNING unless ``-v``."""
    verbose = getattr(args, "verbose", None)
    if verbose is None:
        return settings.log_level
    if verbose:
        return "INFO" if verbose == 1 else "DEBUG"
    quiet = max(logging.WARNING, logging.getLevelName(settings.log_level))
    return str(logging.getLevelName(quiet))


def _migrate(settings: Settings) -> str | None:
    """Bring the database to the newest schema; the reason it could not, in one line."""
    from gistcache.store.migrate import migrations_dir, upgrade

    try:
        scripts = migrations_dir(settings.migrations_dir)
    except FileNotFoundError as exc:
        return str(exc)
    where = settings.safe_database_url
    try:
        asyncio.run(_connect(settings.database_url))
    except Exception as exc:
        log.debug("connection failure", exc_info=True)
        return f"could not connect to {where}: {_reason(exc, settings)}"
    try:
        upgrade(settings.database_url, scripts=scripts)
    except Exception as exc:
        log.debug("migration failure", exc_info=True)
        return f"migrating {where} failed: {_reason(exc, settings)}"
    return None


CONNECT_TIMEOUT = 10.0


async def _connect(database_url: str) -> None:
    """Connect once, so that a wrong password or host is told as such (not as a failed
    migration)."""
    from sqlalchemy import text

    from gistcache.store.engine import create_engine

    engine = create_engine(database_url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def _reason(exc: BaseException, settings: Settings) -> str:
    """The driver's own words (first line), never the password; the class name only when
    there are no words."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    cause: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        cause = exc.orig
    text = str(cause).strip()
    if isinstance(cause, TimeoutError) and not text:
        text = f"no answer within {CONNECT_TIMEOUT:g} s"
    text = text.splitlines()[0] if text else type(cause).__name__
    password = make_url(settings.database_url).password
    if password:
        text = text.replace(str(password), "***")
    return text


def _listen(host: str, port: int) -> socket.socket:
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


WATCHDOG_MARGIN = 0.9  # past GISTCACHE_SHUTDOWN_TIMEOUT; the promise is one second


def _arm_watchdog(seconds: float) -> threading.Timer:
    """End the process with status 2 after ``seconds`` unless it ended by itself."""

    def expire() -> None:
        log.error("shutdown still not done after %.1f s: exiting now", seconds)
        drain()  # the log's queue, written out before the process ends
        os._exit(2)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


# objects allocated (less freed) before the youngest generation is collected; Python's
# default is 700. A search's answer is tens of thousands of short-lived objects, and the
# default made the collector run over the long-lived ones (lists and contents held in
# memory) again and again: a quarter of a 100 MB warm search, in the benchmarks.
GC_YOUNG_THRESHOLD = 50_000


def _tune_garbage_collector() -> None:
    """Collect less often, and leave what start-up made (modules, the app) out of every
    collection from now on (``gc.freeze``). Reference counting still frees everything
    that is not in a cycle at once; cycles are found later, not never."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.freeze()


def _graceful_exit() -> None:
    raise web.GracefulExit  # as aiohttp's own signal handler: run_app then shuts down


def _serve(settings: Settings) -> int:
    from gistcache.app import CANCEL_GRACE, Stopping, create_app, serve

    try:
        sock = _listen(settings.host, settings.port)
    except OSError as exc:  # address in use, an address not on this machine
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
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

    def stop(_signum: int, _frame: object) -> None:
        # in the main thread as soon as it runs Python again, even while the loop is busy
        # with a long step: the time counts from here (aiohttp's own handler would run
        # only once the loop got to it, and its shutdown later still)
        if stopping.signalled_at is None and not loop.is_closed():
            stopping.signalled_at = time.monotonic()
            loop.call_soon_threadsafe(_graceful_exit)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)

    async def watchdog(_app: web.Application) -> None:
        # whatever hangs (a database that stopped answering mid-cleanup): the process
        # still ends within the promised time from the signal, before an orchestrator's
        # SIGKILL
        _arm_watchdog(stopping.left(settings.shutdown_timeout + WATCHDOG_MARGIN))

    app.on_shutdown.insert(0, watchdog)
    _tune_garbage_collector()
    serve(app, sock, loop=loop, shutdown_timeout=CANCEL_GRACE)
    # Everything is closed by now: the connections, the database, the log (written out).
    # What the interpreter would still do is tear itself down: free, object by object, a
    # heap the memory caches fill to a hundred MB and more (0.3 to 0.8 s measured, more
    # under load), run atexit hooks and join leftover threads (the default executor's,
    # one stuck in a DNS lookup) - after the watchdog stopped running, so unbounded.
    # None of it is needed; the process ends here.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
