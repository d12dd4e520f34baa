"""The ceiling for a list request: a minimal aiohttp app that answers ``GET /NAME``
with the bytes of ``DIR/NAME.body``, held in memory after the first request. Whatever
the service does beyond that (database, JSON, headers) is the gap between the two.

    python benchmarks/ceiling.py --port 8081 --dir bodies/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web


def make_app(directory: Path, content_type: str) -> web.Application:
    bodies: dict[str, bytes] = {}

    async def answer(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = bodies.get(name)
        if body is None:
            path = directory / f"{name}.body"
            if not path.is_file():
                raise web.HTTPNotFound()
            body = bodies[name] = path.read_bytes()
        return web.Response(body=body, content_type=content_type)

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    app = web.Application()
    app.router.add_get("/ping", ping)
    app.router.add_get("/{name:[A-Za-z0-9_-]+}", answer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="where NAME.body files are")
    parser.add_argument("--content-type", default="application/json")
    args = parser.parse_args()
    app = make_app(args.dir, args.content_type)
    web.run_app(
        app, host=args.host, port=args.port, access_log=None, print=None, shutdown_timeout=1
    )


if __name__ == "__main__":
    main()
