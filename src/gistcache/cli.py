"""Command line: ``gistcache serve | migrate``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from gistcache import __version__
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
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # alembic announces every plugin it loads at INFO; that is noise in a service log
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"gistcache: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    if args.command == "migrate" or (args.command == "serve" and not args.no_migrate):
        from gistcache.store.migrate import upgrade

        try:
            upgrade(settings.database_url)
        except Exception as exc:
            # the driver's message can echo the URL; name the database without its password
            log.error("migrating %s failed: %s", settings.safe_database_url, type(exc).__name__)
            log.debug("migration failure", exc_info=True)
            return 1
        configure_logging(settings.log_level)  # alembic's fileConfig may have changed levels
        log.info("database %s is at the newest schema", settings.safe_database_url)
        if args.command == "migrate":
            return 0

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
