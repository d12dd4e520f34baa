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
        "gist in the list's order as the search goes. With --users or --org (and no "
        "USER), several users' gists: each line starts with login/, user by user in the "
        "order given. Exit status: 0 when something matched, 1 when nothing did, 2 on "
        "errors (a user that could not be searched too).",
    )
    # with --users or --org the one positional argument is the pattern (in ``user``: a
    # second, optional positional keeps ``search USER --glob G PATTERN`` as it was)
    search.add_argument(
        "user", metavar="USER", help="a GitHub login (left out with --users or --org)"
    )
    search.add_argument("pattern", metavar="PATTERN", nargs="?")
    search.add_argument(
        "--users",
        metavar="LOGINS",
        help="search these users' gists instead of USER: logins separated by commas "
        "(1 to 100; a login given twice is searched once)",
    )
    search.add_argument(
        "--org",
        metavar="NAME",
        help="search the gists of an organisation's public members instead of USER",
    )
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

    if args.users is not None or args.org is not None:
        return await _print_many(parts, args)
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


async def _print_many(parts: Any, args: argparse.Namespace) -> int:
    """Several users' matches (``--users`` or ``--org``), each line prefixed with the
    user's login, user by user in the order given (a user is printed once its part and
    every part before it are complete); a user that failed is told on stderr."""
    from gistcache.cli_output import Printer, ProgressBar, use_colour
    from gistcache.domain.errors import InvalidInput
    from gistcache.domain.requests import many_search_request
    from gistcache.services.many import (
        UserDone,
        UserFileSkipped,
        UserGistFound,
        UsersKnown,
        UsersProgress,
    )

    if args.pattern is not None:
        raise InvalidInput("user", "give USER, or --users, or --org: not more than one")
    if args.users is not None and args.org is not None:
        raise InvalidInput("org", "give USER, or --users, or --org: not more than one")
    usernames = None
    if args.users is not None:
        usernames = [login.strip() for login in args.users.split(",") if login.strip()]
    request = many_search_request(
        usernames,
        args.org,
        args.user,  # the one positional argument: the pattern
        ignore_case=args.ignore_case,
        context=args.context,
        literal=args.literal,
        filename=args.glob,
    )
    bar = ProgressBar() if sys.stderr.isatty() else None
    printer = Printer(use_colour(args.color), request.search.context > 0)
    logins: list[str] = []
    parts_of: dict[str, list[Any]] = {}
    complete: dict[str, UserDone] = {}
    printed = total = failed = 0
    events = parts.many.stream(request)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, UserGistFound | UserFileSkipped):
                parts_of.setdefault(event.login, []).append(event)
            elif isinstance(event, UserDone):
                complete[event.login] = event
                total += event.total
            elif isinstance(event, UsersKnown):
                logins = list(event.logins)
                if event.left_out:
                    print(
                        f"gistcache: {args.org}: only the first {len(logins)} public members "
                        f"are searched ({event.left_out} left out)",
                        file=sys.stderr,
                    )
            elif isinstance(event, UsersProgress) and bar is not None:
                bar(event.files_done, event.files_total)
            while printed < len(logins) and logins[printed] in complete:
                if bar is not None:
                    bar.clear()
                login = logins[printed]
                done = complete.pop(login)
                if done.failure is not None:
                    failed += 1
                    title = done.failure.title.lower()
                    print(f"gistcache: {login}: {title}: {done.failure.detail}", file=sys.stderr)
                items = parts_of.pop(login, [])
                for item in sorted(items, key=_index_of):
                    inner = item.found if isinstance(item, UserGistFound) else item.skipped
                    printer(inner, prefix=f"{login}/")
                printed += 1
                sys.stdout.flush()
    if bar is not None:
        bar.clear()
    if failed:
        return 2
    return 0 if total else 1


def _index_of(item: Any) -> int:
    inner = getattr(item, "found", None) or item.skipped
    index: int = inner.index
    return index


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; exit status 2 for every error (1 is ``search``'s "nothing matched")."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # search's PATTERN is optional (with --users or --org the one positional is the
    # pattern), so argparse takes it empty when an option parts it from USER
    # (``search USER --glob G PATTERN``): the argument left over is the pattern
    if (
        args.command == "search"
        and args.pattern is None
        and len(extra) == 1
        and not extra[0].startswith("-")
    ):
        args.pattern, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
