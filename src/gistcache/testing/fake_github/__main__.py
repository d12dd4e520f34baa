"""The command line: ``python -m gistcache.testing.fake_github --port 9000``."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from gistcache.testing.fake_github.corpus import huge_text
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
    fake = FakeGitHub(
        latency=args.latency,
        api_prefix=args.api_prefix,
        anonymous_limit=args.anonymous_limit,
        token_limit=args.token_limit,
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
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, shutdown_timeout=1)


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
