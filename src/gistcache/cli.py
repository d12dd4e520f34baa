"""Command line: ``gistcache serve | migrate | list | search | mcp``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from gistcache import __version__
from gistcache.domain.gists import format_timestamp
from gistcache.observability.logs import configure_logging
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
    commands.add_parser(
        "mcp",
        help="serve the Model Context Protocol on stdin and stdout (for an agent that runs "
        "gistcache as a local command; see docs/mcp.md)",
    )
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
    except Exception as exc:
        # known by its kind: the rules the API applies and what failed, in its words
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
    from gistcache.cli_output import Printer, ProgressBar, use_colour
    from gistcache.domain.requests import search_request
    from gistcache.domain.results import (
        FileSkipped,
        GistFound,
        GistSearched,
        SearchDone,
        SearchProgress,
    )
    from gistcache.services.search import EVERY_LINE

    # the API's own rules, so that the CLI refuses what the API refuses
    request = search_request(
        args.user,
        args.pattern,
        ignore_case=args.ignore_case,
        context=args.context,
        literal=args.literal,
        filename=args.glob,
    )
    bar = ProgressBar() if sys.stderr.isatty() else None
    printer = Printer(use_colour(args.color), request.context > 0)
    # gists come as they are ready; they are printed in the list's order
    ready: dict[int, list[Any]] = {}
    done: set[int] = set()
    next_index = 0
    total = 0
    events = parts.searches.stream(request, options=EVERY_LINE)
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
    if args.command == "mcp":
        return _serve_mcp(settings)
    return _serve(settings)


def _serve_mcp(settings: Settings) -> int:
    from gistcache.mcp.stdio import serve_stdio

    asyncio.run(serve_stdio(settings))
    return 0


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


def _serve(settings: Settings) -> int:
    from gistcache.serve import listen, serve

    try:
        sock = listen(settings.host, settings.port)
    except OSError as exc:  # address in use, an address not on this machine
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    serve(settings, sock)
