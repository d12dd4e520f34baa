"""``gistcache mcp``: the MCP server over stdio, as an agent runs it (a process of its own,
the SDK's own client on its stdin and stdout), on the settings and database ``serve``
reads."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import TextResourceContents

from gistcache.testing.fake_github import FakeGitHub


async def test_gistcache_mcp_serves_the_tools_over_stdio(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    gist = fake.add_gist("zoe", {"a.py": "import os\nprint(1)\n"}, description="first")
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "gistcache", "mcp"],
        env={
            "GISTCACHE_DATABASE_URL": database_url,
            "GISTCACHE_GITHUB_API_URL": str(fake_server.make_url("")).rstrip("/"),
            "GISTCACHE_LOG_LEVEL": "WARNING",
        },
        cwd=tmp_path,
    )
    with (tmp_path / "stderr").open("w+") as errors:
        async with Client(stdio_client(server, errlog=errors)) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            assert tools == {"list_gists", "search_gists", "get_gist_file"}
            calls: list[tuple[str, dict[str, Any]]] = [
                ("list_gists", {"username": "zoe"}),
                ("search_gists", {"username": "zoe", "pattern": "print"}),
                ("get_gist_file", {"gist_id": gist.id, "filename": "a.py", "end_line": 1}),
            ]
            for _ in range(2):
                listed, found, sliced = [
                    (await session.call_tool(name, args)).structured_content for name, args in calls
                ]
                assert listed is not None
                assert found is not None
                assert sliced is not None
                assert [g["id"] for g in listed["gists"]] == [gist.id]
                assert found["matches"][0]["files"][0]["lines"][0]["line_number"] == 2
                assert (sliced["text"], sliced["total_lines"]) == ("import os\n", 2)
                # the list and the file once: the second round is answered by the cache
                assert len(fake.requests) == 2

            [contents] = (await session.read_resource(f"gist://{gist.id}/a.py")).contents
            assert isinstance(contents, TextResourceContents)
            assert contents.text == "import os\nprint(1)\n"

            unknown = await session.call_tool("list_gists", {"username": "nobody-here"})
            assert unknown.is_error
            assert "No such user" in unknown.content[0].text  # type: ignore[union-attr]
        errors.seek(0)
        assert "Traceback" not in errors.read()
