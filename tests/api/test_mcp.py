"""The MCP server at /mcp, through the official SDK's own client: the tools and their
schemas, bounded answers, failures in words, resources, the cache's savings, and the
rules every route of the service keeps (client rate limit, GitHub budget, cross-site
writes, a client's credentials never forwarded)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_network
from typing import Any

from limits import RateLimitItemPerMinute, parse
from mcp import Client
from mcp_types import BlobResourceContents, CallToolResult, TextResourceContents

from gistcache.mcp.answers import ANSWER_BYTES, SLICE_LINES, file_uri
from gistcache.testing.fake_github import FakeGitHub
from tests.support.http import Client as HttpClient
from tests.support.http import ClientFactory, problem

JSON_RPC_HEADERS = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def mcp(client: HttpClient) -> AsyncIterator[Client]:
    async with Client(str(client.make_url("/mcp"))) as session:
        yield session


def answer(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] | None = result.structured_content
    assert content is not None
    return content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert "Traceback" not in text
    return text


async def test_the_tools_are_listed_with_schemas_from_their_arguments(
    client: HttpClient,
) -> None:
    async with mcp(client) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"list_gists", "search_gists", "get_gist_file"}
    search = tools["search_gists"]
    # whose gists: exactly one of username, usernames and org (said when called)
    assert search.input_schema["required"] == ["pattern"]
    properties = search.input_schema["properties"]
    assert set(properties) == {
        "username",
        "usernames",
        "org",
        "pattern",
        "literal",
        "ignore_case",
        "filename",
        "context",
        "max_results",
        "page",
    }
    assert properties["context"]["maximum"] == 10
    assert properties["max_results"]["maximum"] == 100
    assert properties["username"]["anyOf"][0]["pattern"] == "^[A-Za-z0-9_-]{1,39}$"
    assert properties["usernames"]["anyOf"][0]["maxItems"] == 100
    assert "exactly one of username, usernames" in (search.description or "")
    assert tools["get_gist_file"].input_schema["required"] == ["gist_id", "filename"]
    for tool in tools.values():
        assert tool.description
        assert tool.output_schema is not None
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint


async def test_each_tool_answers_and_asking_again_costs_github_nothing(
    client: HttpClient, fake: FakeGitHub
) -> None:
    gist = fake.add_gist("zoe", {"a.py": "import os\nprint(1)\n"}, description="first")
    async with mcp(client) as session:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("list_gists", {"username": "zoe"}),
            ("search_gists", {"username": "zoe", "pattern": "IMPORT", "ignore_case": True}),
            ("get_gist_file", {"gist_id": gist.id, "filename": "a.py", "start_line": 2}),
        ]
        first = [answer(await session.call_tool(name, args)) for name, args in calls]
        sent = len(fake.requests)
        assert sent == 2  # the list, and the file's contents
        again = [answer(await session.call_tool(name, args)) for name, args in calls]
        assert len(fake.requests) == sent  # fresh in the cache: GitHub was not asked
    assert (first[0].pop("cache"), again[0].pop("cache")) == ("MISS", "HIT")
    assert first == again

    listed, found, sliced = first
    assert (listed["total_gists"], listed["next_page"], listed["more"]) == (1, None, None)
    [entry] = listed["gists"]
    assert (entry["id"], entry["description"], entry["html_url"]) == (
        gist.id,
        "first",
        f"https://gist.github.com/{gist.id}",
    )
    assert entry["files"] == [
        {
            "filename": "a.py",
            "language": "Python",
            "type": "application/x-python",
            "size": 19,
            "uri": f"gist://{gist.id}/a.py",
        }
    ]
    assert found["total_gists"] == 1
    [line] = found["matches"][0]["files"][0]["lines"]
    assert (line["line_number"], line["text"]) == (1, "import os")
    assert line["url"] == f"https://gist.github.com/{gist.id}#file-a-py-L1"
    assert sliced["total_lines"] == 2
    assert (sliced["start_line"], sliced["end_line"], sliced["text"]) == (2, 2, "print(1)\n")
    assert sliced["next_start_line"] is None


async def test_search_gists_takes_several_users_or_an_organisation(
    client: HttpClient, fake: FakeGitHub
) -> None:
    from gistcache.testing.fake_github.rest import set_public_members

    a = fake.add_gist("amy", {"a.py": "needle\n"})
    b = fake.add_gist("ben", {"b.py": "needle\nneedle\n"})
    set_public_members(fake, "crew", ["ben", "amy"])
    async with mcp(client) as session:
        found = answer(
            await session.call_tool(
                "search_gists", {"usernames": ["amy", "nobody", "AMY", "ben"], "pattern": "needle"}
            )
        )
        crew = answer(await session.call_tool("search_gists", {"org": "crew", "pattern": "needle"}))
        both = await session.call_tool(
            "search_gists", {"username": "amy", "org": "crew", "pattern": "needle"}
        )
    assert found["username"] is None
    assert found["total_gists"] == 2
    users = found["users"]
    assert [(u["username"], u["status"], u["total_gists"]) for u in users] == [
        ("amy", "success", 1),
        ("nobody", "user-not-found", 0),
        ("ben", "success", 1),
    ]
    assert users[1]["problem"] == "GitHub has no user by this login"
    assert [m["gist_id"] for m in users[0]["matches"]] == [a.id]
    assert [m["gist_id"] for m in users[2]["matches"]] == [b.id]
    assert [u["username"] for u in crew["users"]] == ["ben", "amy"]
    assert "exactly one of username, usernames or org" in error_text(both)


async def test_failures_are_tool_errors_in_the_pages_words(
    client: HttpClient, fake: FakeGitHub
) -> None:
    gist = fake.add_gist("zoe", {"a.py": "x\n"})
    async with mcp(client) as session:
        unknown = await session.call_tool("list_gists", {"username": "no-such-user"})
        assert "No such user: GitHub has no user called “no-such-user”." in error_text(unknown)

        bad = await session.call_tool("search_gists", {"username": "zoe", "pattern": "(?=x)"})
        text = error_text(bad)
        assert "RE2 does not accept this pattern" in text
        assert "lookaround" in text  # RE2's own reason
        assert "literal" in text

        missing = await session.call_tool("get_gist_file", {"gist_id": gist.id, "filename": "b"})
        assert f"gist {gist.id} has no file called “b”; its files: “a.py”" in error_text(missing)
        no_gist = await session.call_tool("get_gist_file", {"gist_id": "cafe", "filename": "a"})
        assert "Gist not found" in error_text(no_gist)
        past = await session.call_tool(
            "get_gist_file", {"gist_id": gist.id, "filename": "a.py", "start_line": 5}
        )
        assert "the file has 1 lines" in error_text(past)
        schema = await session.call_tool("search_gists", {"username": "zoe", "context": 99})
        assert schema.is_error  # the arguments' schema: pattern missing, context too large

        fake.exhaust_rate_limit()
        limited = await session.call_tool("search_gists", {"username": "ada", "pattern": "x"})
        text = error_text(limited)
        assert text.count("GitHub's rate limit is reached") == 1
        assert re.search(r"Try again in .+ \(after \d\d:\d\d UTC\)", text), text
        # what is cached still answers
        assert answer(await session.call_tool("list_gists", {"username": "zoe"}))


async def test_answers_are_bounded_and_say_how_to_ask_for_more(
    client: HttpClient, fake: FakeGitHub
) -> None:
    long_line = "needle " + "x" * 400 + "\n"
    for n in range(12):
        fake.add_gist("wide", {f"f{n}.txt": long_line * 20}, description=f"gist {n}")
    newest_first = [f"gist {n}" for n in reversed(range(12))]
    lines = "".join(f"line {n}\n" for n in range(1, 1201))
    big = fake.add_gist("reader", {"big.txt": lines, "one.txt": "y" * 100_000})
    async with mcp(client) as session:
        seen: list[str] = []
        args: dict[str, Any] = {"username": "wide", "pattern": "needle", "max_results": 10}
        cuts = 0
        while True:
            result = await session.call_tool("search_gists", args)
            page = answer(result)
            assert page["total_gists"] == 12
            assert len(result.content[0].text.encode()) < ANSWER_BYTES + 4096  # type: ignore[union-attr]
            seen += [match["description"] for match in page["matches"]]
            if page["next_page"] is None:
                assert page["more"] is None
                break
            cuts += "size limit" in page["more"]
            assert f"page={page['next_page']} and per_page={page['next_per_page']}" in page["more"]
            args |= {"page": page["next_page"], "max_results": page["next_per_page"]}
        assert seen == newest_first  # every matching gist once, in the list's order
        assert cuts >= 1

        listed = answer(await session.call_tool("list_gists", {"username": "wide", "per_page": 5}))
        assert [g["description"] for g in listed["gists"]] == newest_first[:5]
        assert (listed["next_page"], listed["next_per_page"]) == (2, 5)
        assert listed["more"] == "7 more gists follow: call again with page=2 and per_page=5"

        head = answer(
            await session.call_tool("get_gist_file", {"gist_id": big.id, "filename": "big.txt"})
        )
        assert head["total_lines"] == 1200
        assert (head["start_line"], head["end_line"]) == (1, SLICE_LINES)
        assert head["next_start_line"] == SLICE_LINES + 1
        assert f"start_line={SLICE_LINES + 1}" in head["more"]
        tail = answer(
            await session.call_tool(
                "get_gist_file",
                {"gist_id": big.id, "filename": "big.txt", "start_line": 1195, "end_line": 1300},
            )
        )
        assert tail["text"] == "".join(f"line {n}\n" for n in range(1195, 1201))
        assert (tail["end_line"], tail["next_start_line"], tail["more"]) == (1200, None, None)

        one = answer(
            await session.call_tool("get_gist_file", {"gist_id": big.id, "filename": "one.txt"})
        )
        assert one["line_cut"] is True
        assert one["text"] == "y" * ANSWER_BYTES
        assert one["total_lines"] == 1


async def test_gist_files_are_resources_with_their_mime_type(
    client: HttpClient, fake: FakeGitHub
) -> None:
    gist = fake.add_gist("zoe", {"a b.py": "print('hi')\n", "notes.md": "# Notes\n"})
    image = fake.add_gist("zoe", {"dot.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"})
    async with mcp(client) as session:
        templates = (await session.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "gist://{gist_id}/{filename}",
            "gists://{username}",
        }
        uri = file_uri(gist.id, "a b.py")
        assert uri == f"gist://{gist.id}/a%20b.py"
        [contents] = (await session.read_resource(uri)).contents
        assert isinstance(contents, TextResourceContents)
        assert (contents.text, contents.mime_type) == ("print('hi')\n", "application/x-python")
        [markdown] = (await session.read_resource(f"gist://{gist.id}/notes.md")).contents
        assert markdown.mime_type == "text/markdown"

        [blob] = (await session.read_resource(f"gist://{image.id}/dot.png")).contents
        assert isinstance(blob, BlobResourceContents)
        assert base64.b64decode(blob.blob) == b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        assert blob.mime_type == "application/octet-stream"  # not the fake's text/plain

        [listing] = (await session.read_resource("gists://zoe")).contents
        assert isinstance(listing, TextResourceContents)
        assert listing.mime_type == "application/json"
        files = json.loads(listing.text)["files"]
        assert [(f["uri"], f["name"]) for f in files] == [
            (f"gist://{image.id}/dot.png", "dot.png"),
            (uri, "a b.py"),
            (f"gist://{gist.id}/notes.md", "notes.md"),
        ]
        sent = len(fake.requests)
        await session.read_resource(uri)
        assert len(fake.requests) == sent

        missing = await _read_error(session, f"gist://{gist.id}/nope.txt")
        assert "has no file called “nope.txt”" in missing
        nobody = await _read_error(session, "gists://nobody-here")
        assert "No such user: GitHub has no user called “nobody-here”." in nobody


async def _read_error(session: Client, uri: str) -> str:
    from mcp.shared.exceptions import MCPError

    try:
        await session.read_resource(uri)
    except MCPError as exc:
        return str(exc)
    raise AssertionError(f"{uri} was read")


async def _post(client: HttpClient, body: dict[str, Any], **headers: str) -> Any:
    return await client.post("/mcp", json=body, headers={**JSON_RPC_HEADERS, **headers})


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def test_over_http_the_services_rules_apply(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await make_client(
        rate_limit=RateLimitItemPerMinute(4),
        client_github_budget=parse("1/hour"),
        trusted_proxies=(ip_network("127.0.0.1"),),
        github_token="ghp_service",
    )
    alice = {"X-Forwarded-For": "203.0.113.7"}
    ok = await _post(
        client, _call("list_gists", username="octocat"), **alice, Authorization="token ghp_alice"
    )
    assert ok.status == 200
    assert ok.headers["RateLimit-Remaining"] == "3"
    assert (await ok.json())["result"]["structuredContent"]["total_gists"] == 1
    # GitHub was asked with the service's token, never the client's
    assert [r.headers.get("Authorization") for r in fake.api_requests()] == ["Bearer ghp_service"]

    # the GitHub budget of the client (one request an hour) is spent: an uncached user
    spent = await _post(client, _call("list_gists", username="ada"), **alice)
    body = await spent.json()
    assert body["result"]["isError"] is True
    assert "GitHub" in body["result"]["content"][0]["text"]
    assert len(fake.api_requests()) == 1

    cross = await _post(
        client, _call("list_gists", username="octocat"), **alice, Origin="https://evil.example"
    )
    await problem(cross, 403, "cross-site-request")
    get = await client.get("/mcp", headers=alice)
    await problem(get, 405, "method-not-allowed")

    cached = await _post(client, _call("list_gists", username="octocat"), **alice)
    assert cached.headers["RateLimit-Remaining"] == "0"  # the 403 was refused before counting
    over = await _post(client, _call("list_gists", username="octocat"), **alice)
    await problem(over, 429, "too-many-requests")
    # another client behind the same proxy has its own limits
    bob = await _post(
        client, _call("list_gists", username="octocat"), **{"X-Forwarded-For": "198.51.100.9"}
    )
    assert bob.status == 200


async def test_a_body_over_the_limit_is_the_apis_413_and_a_broken_one_a_parse_error(
    client: HttpClient, fake: FakeGitHub
) -> None:
    huge = _call("search_gists", username="octocat", pattern="x" * 70_000)
    await problem(await _post(client, huge), 413, "body-too-large")
    broken = await client.post(
        "/mcp", data=b"{not json", headers={**JSON_RPC_HEADERS, "Content-Type": "application/json"}
    )
    assert broken.status == 400
    assert (await broken.json())["error"]["code"] == -32700  # JSON-RPC's parse error
    assert fake.api_requests() == []


async def test_a_chunked_body_over_the_limit_is_the_apis_413_too(
    client: HttpClient, fake: FakeGitHub
) -> None:
    huge = json.dumps(_call("search_gists", username="octocat", pattern="x" * 70_000)).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 8192):
            yield huge[start : start + 8192]

    response = await client.post(
        "/mcp", data=chunks(), headers={**JSON_RPC_HEADERS, "Content-Type": "application/json"}
    )
    assert "Content-Length" not in response.request_info.headers
    assert response.request_info.headers["Transfer-Encoding"] == "chunked"
    await problem(response, 413, "body-too-large")
    assert fake.api_requests() == []

    # a chunked body within the limit is read whole and answered
    small = json.dumps(_call("list_gists", username="octocat")).encode()

    async def small_chunks() -> AsyncIterator[bytes]:
        yield small[:10]
        yield small[10:]

    ok = await client.post(
        "/mcp",
        data=small_chunks(),
        headers={**JSON_RPC_HEADERS, "Content-Type": "application/json"},
    )
    assert ok.status == 200
    assert (await ok.json())["result"]["structuredContent"]["total_gists"] == 1


async def test_any_host_name_is_served_and_other_sites_pages_are_still_refused(
    client: HttpClient, fake: FakeGitHub
) -> None:
    # behind a proxy or in compose, the Host is the service's public or service name, not
    # the loopback address the tests connect to
    for host in ("gistcache.example.com", "gistcache:8080", "localhost"):
        ok = await _post(client, _call("list_gists", username="octocat"), Host=host)
        assert ok.status == 200, (host, await ok.text())
        assert (await ok.json())["result"]["structuredContent"]["total_gists"] == 1
    # the service's own page on that host may post; another site's page may not
    own = await _post(
        client,
        _call("list_gists", username="octocat"),
        Host="gistcache.example.com",
        Origin="http://gistcache.example.com",
    )
    assert own.status == 200
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    ):
        cross = await _post(
            client, _call("list_gists", username="octocat"), Host="gistcache.example.com", **headers
        )
        await problem(cross, 403, "cross-site-request")
    assert len(fake.api_requests()) == 1
