"""The command line: ``python -m gistcache.testing.fake_github --port 9000``."""

from __future__ import annotations

import argparse
import asyncio
import logging

from aiohttp import web

from gistcache.testing.fake_github.corpus import huge_text
from gistcache.testing.fake_github.graphql import DEFAULT_FLOOR, DEFAULT_PER_FILE
from gistcache.testing.fake_github.schema import SchemaMissing, github_schema
from gistcache.testing.fake_github.server import FakeGitHub


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gistcache.testing.fake_github",
        description="Run the offline fake GitHub API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--seed-users", type=int, default=3, help="demo users user1..userN")
    parser.add_argument("--gists-per-user", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    parser.add_argument("--api-prefix", default="", help="e.g. /api/v3 for GitHub Enterprise")
    parser.add_argument(
        "--anonymous-limit",
        type=int,
        default=60,
        metavar="N",
        help="API requests an hour without a token, as GitHub allows (default 60); "
        "raise it for demos",
    )
    parser.add_argument(
        "--token-limit", type=int, default=5000, metavar="N", help="API requests an hour per token"
    )
    parser.add_argument(
        "--graphql-limit",
        type=int,
        default=5000,
        metavar="POINTS",
        help="GraphQL points an hour per token (default 5000, as GitHub)",
    )
    parser.add_argument(
        "--graphql-points-per-minute",
        type=int,
        default=2000,
        metavar="POINTS",
        help="GraphQL points a minute per token before a secondary limit (default 2000)",
    )
    parser.add_argument(
        "--graphql-rate-limit-type",
        choices=("RATE_LIMIT", "RATE_LIMITED"),
        default="RATE_LIMIT",
        help="the type of GraphQL's error for a spent budget: RATE_LIMIT (what GitHub "
        "answers now, the default) or RATE_LIMITED (what its docs say)",
    )
    parser.add_argument(
        "--graphql-floor-ms",
        type=float,
        default=DEFAULT_FLOOR * 1000,
        metavar="MS",
        help="with --latency: what a GraphQL answer takes over the latency (default "
        f"{DEFAULT_FLOOR * 1000:g})",
    )
    parser.add_argument(
        "--graphql-per-file-ms",
        type=float,
        default=DEFAULT_PER_FILE * 1000,
        metavar="MS",
        help="with --latency: what each file's text adds to a GraphQL answer (default "
        f"{DEFAULT_PER_FILE * 1000:g})",
    )
    parser.add_argument(
        "--raw-hourly-limit",
        type=int,
        default=None,
        metavar="N",
        help="raw downloads an hour before the raw host answers 429 (default: no limit)",
    )
    parser.add_argument(
        "--raw-block-seconds",
        type=int,
        default=1800,
        metavar="S",
        help="how long the raw host then refuses every download (default 1800)",
    )
    parser.add_argument(
        "--huge-file-mb",
        type=int,
        default=0,
        help="give user 'huge' one gist with a text file of this many MB",
    )
    parser.add_argument(
        "--bulk-user",
        action="append",
        default=[],
        metavar="LOGIN:GISTS:FILES:BYTES",
        help="a user with GISTS gists of FILES code-like files of about BYTES bytes "
        "(deterministic contents; repeatable)",
    )
    args = parser.parse_args(argv)
    bulk = [_bulk_spec(parser, spec) for spec in args.bulk_user]
    if args.anonymous_limit < 1 or args.token_limit < 1:
        parser.error("--anonymous-limit and --token-limit want at least 1")
    if args.graphql_limit < 1 or args.graphql_points_per_minute < 1:
        parser.error("--graphql-limit and --graphql-points-per-minute want at least 1")
    if args.graphql_floor_ms < 0 or args.graphql_per_file_ms < 0:
        parser.error("--graphql-floor-ms and --graphql-per-file-ms want 0 or more")
    if (args.raw_hourly_limit is not None and args.raw_hourly_limit < 0) or (
        args.raw_block_seconds < 1
    ):
        parser.error("--raw-hourly-limit wants 0 or more, --raw-block-seconds at least 1")
    fake = FakeGitHub(
        latency=args.latency,
        api_prefix=args.api_prefix,
        anonymous_limit=args.anonymous_limit,
        token_limit=args.token_limit,
        graphql_limit=args.graphql_limit,
        graphql_points_per_minute=args.graphql_points_per_minute,
        graphql_rate_limit_type=args.graphql_rate_limit_type,
        graphql_floor=args.graphql_floor_ms / 1000,
        graphql_per_file=args.graphql_per_file_ms / 1000,
        raw_hourly_limit=args.raw_hourly_limit,
        raw_block_seconds=args.raw_block_seconds,
    )
    fake.seed_octocat()
    fake.seed_ada()
    fake.seed(args.seed_users, args.gists_per_user)
    if args.huge_file_mb:
        fake.add_gist("huge", {"huge.log": huge_text(args.huge_file_mb * 1024 * 1024)})
    for login, gists, files, size in bulk:
        fake.seed_bulk_user(login, gists, files, size)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fake-github: %(message)s")
    logging.getLogger("fake-github").info(
        "serving %d users on http://%s:%d%s", len(fake.users), args.host, args.port, args.api_prefix
    )
    app = fake.app()
    app.on_startup.append(_build_schema_ahead)
    web.run_app(app, host=args.host, port=args.port, print=None, shutdown_timeout=1)


async def _build_schema_ahead(app: web.Application) -> None:
    """GitHub's GraphQL schema built in a thread while the fake starts serving (it takes
    about 1.5 s): the first GraphQL request does not pay for it, and REST answers at once."""

    def build() -> None:
        try:
            github_schema()
        except SchemaMissing as missing:
            logging.getLogger("fake-github").warning("%s; /graphql answers 500", missing)

    # not awaited: the fake answers while it builds
    asyncio.get_running_loop().run_in_executor(None, build)


def _bulk_spec(parser: argparse.ArgumentParser, spec: str) -> tuple[str, int, int, int]:
    login, *numbers = spec.split(":")
    try:
        gists, files, size = (int(n) for n in numbers)
    except ValueError:
        parser.error(f"--bulk-user wants LOGIN:GISTS:FILES:BYTES, got {spec!r}")
    if not login or gists < 0 or files < 1 or size < 1:
        parser.error(f"--bulk-user wants a login and positive numbers, got {spec!r}")
    return login, gists, files, size


if __name__ == "__main__":
    main()
