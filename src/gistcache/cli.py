"""Command line: ``gistcache serve | migrate | list | search``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gistcache import __version__
from gistcache.domain.gists import format_timestamp
from gistcache.observability.logs import configure_logging
from gistcache.settings import ConfigError, Settings

log = logging.getLogger("gistcache")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gistcache",
        description="List and search GitHub users' public gists through a SQL cache.",
        epilog="Configuration comes from GISTCACHE_* environment variables (see README).",
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
    search = commands.add_parser(
        "search",
        help="print the lines of a user's gists that match a pattern (RE2 syntax)",
        description="Prints gist_id/filename:line: text for each matching line. "
        "Exit status: 0 when something matched, 1 when nothing did, 2 on errors.",
    )
    search.add_argument("user")
    search.add_argument("pattern")
    search.add_argument("-i", "--ignore-case", action="store_true")
    return parser


async def _offline_command(args: argparse.Namespace, settings: Settings) -> int:
    from gistcache.components import components
    from gistcache.domain.errors import InvalidInput, InvalidLogin
    from gistcache.errors import problem_for

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
        problem = problem_for(exc)
        if problem is None:
            raise
        print(f"gistcache: {problem.title.lower()}: {problem.detail}", file=sys.stderr)
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
    from gistcache.domain.requests import parse_search

    # the API's own rules, so that the CLI refuses what the API refuses
    request, _ = parse_search(
        {"username": args.user, "pattern": args.pattern, "ignore_case": args.ignore_case}
    )
    progress = _progress_bar if sys.stderr.isatty() else None
    # every matching line, whole, as grep prints them
    answer = await parts.searches.search(
        request, progress=progress, line_limit=None, line_chars=None
    )
    result = answer.result
    for match in result.matches:
        for f in match.files:
            name = f"{match.gist.id}/{f.file.filename}"
            for line in f.lines:
                print(f"{name}:{line.line_number}: {line.text}")
    for skipped in result.skipped:
        where = skipped.gist_id + (f"/{skipped.filename}" if skipped.filename else "")
        print(f"gistcache: skipped {where}: {skipped.reason.value}", file=sys.stderr)
    return 0 if result.total else 1


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    end = "\n" if done >= total else ""
    sys.stderr.write(
        f"\rfetching contents [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}"
    )
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"gistcache: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)

    if args.command != "serve" or not args.no_migrate:
        from gistcache.store.migrate import upgrade

        try:
            upgrade(settings.database_url)
        except Exception as exc:
            # the driver's message can echo the URL; name the database without its password
            log.error("migrating %s failed: %s", settings.safe_database_url, type(exc).__name__)
            log.debug("migration failure", exc_info=True)
            return 1
        configure_logging(
            settings.log_level, settings.log_format
        )  # alembic's fileConfig may have changed levels
        log.info("database %s is at the newest schema", settings.safe_database_url)
        if args.command == "migrate":
            return 0
    if args.command in ("list", "search"):
        return asyncio.run(_offline_command(args, settings))

    from gistcache.app import create_app

    log.info(
        "gistcache %s serving on http://%s:%d (GitHub API %s)",
        __version__,
        settings.host,
        settings.port,
        settings.github_api_url,
    )
    try:
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            shutdown_timeout=settings.shutdown_timeout,
            access_log=None,
            print=None,
        )
    except OSError as exc:  # address in use, unknown host: a configuration problem
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    return 0
