"""``gistcache mcp``: the MCP server over stdio, for an agent that runs it as a local
command. It reads the same settings and database as ``serve`` and shares the cache with
it; standard output carries the protocol alone (the log goes to standard error)."""

from __future__ import annotations

from gistcache.components import components
from gistcache.mcp.answers import Answers
from gistcache.mcp.server import build_server
from gistcache.settings import Settings


async def serve_stdio(settings: Settings) -> None:
    """Serve one client on stdin and stdout until it closes them."""
    async with components(settings) as parts:
        answers = Answers(
            parts.listing, parts.searches, parts.gists, parts.listing.clock, parts.many
        )
        await build_server(answers).run_stdio_async()
