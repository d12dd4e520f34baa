"""POST /api/v1/search: the requests refused, the problem that names the field at fault,
and the documented request schema agreeing with the validation."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.models import search_jobs, users
from gistcache.testing.fake_github import FakeGitHub

Client = TestClient[Any, Any]


BAD_BODIES: list[tuple[Any, str]] = [
    ("not json", "invalid-json"),
    ([1, 2], "invalid-body"),
    ({"username": "alice", "pattern": "x", "colour": "red"}, "invalid-body"),
    ({"username": 5, "pattern": "x"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "ignore_case": "yes"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "page": True}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "page": 0}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "per_page": 101}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "page": 1.5}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "per_page": None}, "invalid-body"),
    ({"username": None, "pattern": "x"}, "invalid-body"),
    ({"pattern": "x"}, "invalid-body"),
    ({"username": "a..b", "pattern": "x"}, "invalid-username"),
    ({"username": "alice"}, "invalid-body"),
    ({"username": "alice", "pattern": ""}, "invalid-body"),
    ({"username": "alice", "pattern": "  \t"}, "invalid-body"),
    ({"username": "alice", "pattern": "x" * 1001}, "invalid-body"),
    ({"username": "alice", "pattern": "(unclosed"}, "invalid-pattern"),
    ({"username": "alice", "pattern": r"(a)\1"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "foo(?=bar)"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "(?<!x)y"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "(?P<n>x)(?P=n)"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "\ud800"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "a\udc80b", "literal": True}, "invalid-pattern"),
    ('{"username": "alice", "pattern": ' + "[" * 60_000, "invalid-json"),
    ({"username": "alice", "pattern": "x", "async": "yes"}, "invalid-body"),
    ({"username": "alice", "pattern": "(x", "async": True}, "invalid-pattern"),
    ({"username": "alice", "pattern": "x", "context": 11}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "context": -1}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "context": "2"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "context": False}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "literal": "yes"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "literal": None}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": ""}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "a/b.py"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "a\nb"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "*" * 256}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": 3}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "\udc80.py"}, "invalid-body"),
    ({"username": "alice", "usernames": ["bob"], "pattern": "x"}, "invalid-body"),
    ({"usernames": ["bob"], "org": "acme", "pattern": "x"}, "invalid-body"),
    ({"usernames": [], "pattern": "x"}, "invalid-body"),
    ({"usernames": ["a"] * 101, "pattern": "x"}, "invalid-body"),
    ({"usernames": "bob", "pattern": "x"}, "invalid-body"),
    ({"usernames": None, "pattern": "x"}, "invalid-body"),
    ({"usernames": ["bob", "a..b"], "pattern": "x"}, "invalid-username"),
    ({"usernames": ["bob", 5], "pattern": "x"}, "invalid-username"),
    ({"org": "a b", "pattern": "x"}, "invalid-username"),
    ({"org": "acme"}, "invalid-body"),
]


@pytest.mark.parametrize(("body", "slug"), BAD_BODIES)
async def test_invalid_requests_are_400_and_change_nothing(
    client: Client, fake: FakeGitHub, body: Any, slug: str, engine: AsyncEngine
) -> None:
    if isinstance(body, str):
        resp = await client.post("/api/v1/search", data=body)
    else:
        resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == f"urn:gistcache:problem:{slug}"
    assert problem["detail"]
    assert fake.requests == []
    async with engine.connect() as conn:  # no job was queued, nothing was cached
        for table in (search_jobs, users):
            assert await conn.scalar(select(func.count()).select_from(table)) == 0


FIELD_FAULTS: list[tuple[dict[str, Any], str]] = [
    ({"username": "a..b", "pattern": "x"}, "username"),
    ({"username": "ali ce", "pattern": "x"}, "username"),
    ({"username": 5, "pattern": "x"}, "username"),
    ({"pattern": "x"}, "username"),
    ({"username": "alice", "pattern": "  "}, "pattern"),
    ({"username": "alice", "pattern": "(unclosed"}, "pattern"),
    ({"username": "alice", "pattern": "x", "context": 11}, "context"),
]


@pytest.mark.parametrize(("body", "field"), FIELD_FAULTS)
async def test_a_refused_field_is_named_in_the_problem(
    client: Client, body: dict[str, Any], field: str
) -> None:
    # malformed or wrongly typed, the field at fault is named alike, as the README says
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 400
    assert (await resp.json())["field"] == field


async def test_unsupported_constructs_say_so(client: Client) -> None:
    resp = await client.post("/api/v1/search", json={"username": "a", "pattern": r"(x)\1"})
    assert "backreferences or lookaround" in (await resp.json())["detail"]


async def test_a_body_over_64_kib_is_413(client: Client, fake: FakeGitHub) -> None:
    body = b'{"username": "alice", "pattern": "' + b"x" * (70 * 1024) + b'"}'
    resp = await client.post(
        "/api/v1/search", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    assert fake.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context", 11),
        ("context", "2"),
        ("literal", 1),
        ("filename", ""),
        ("filename", "dir/*.py"),
    ],
)
async def test_a_bad_search_option_is_named_in_the_problem(
    client: Client, fake: FakeGitHub, field: str, value: Any
) -> None:
    resp = await client.post(
        "/api/v1/search", json={"username": "alice", "pattern": "x", field: value}
    )
    assert resp.status == 400
    problem = await resp.json()
    assert problem["field"] == field
    assert field in problem["detail"]
    assert fake.requests == []


VALID_BODIES: list[dict[str, Any]] = [
    {"username": "alice", "pattern": "x"},
    {
        "username": "al-ice_9",
        "pattern": r"import \w+",
        "ignore_case": True,
        "page": 2,
        "per_page": 100,
        "context": 10,
        "literal": False,
        "filename": "*.py",
        "async": True,
    },
    {"usernames": ["alice", "Bob", "alice"], "pattern": "x", "context": 2},
    {"org": "acme", "pattern": "x", "literal": True, "proceed_cached": True},
]


def test_the_documented_search_request_agrees_with_the_validation() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from gistcache.web.api import schemas
    from gistcache.web.api.openapi import OPENAPI

    document = OPENAPI["components"]["schemas"]
    documented = document["SearchRequest"]
    accepted = {field.alias or name for name, field in schemas.SearchBody.model_fields.items()}
    assert set(documented["properties"]) == accepted
    assert set(VALID_BODIES[1]) | {"usernames", "org", "proceed_cached"} == accepted
    assert documented["additionalProperties"] is False
    assert set(documented["required"]) == {"pattern"}
    # whose gists: exactly one of username, usernames and org
    assert documented["oneOf"] == [{"required": [n]} for n in ("username", "usernames", "org")]
    validator = jsonschema.Draft202012Validator(documented)
    for body in VALID_BODIES:
        assert list(validator.iter_errors(body)) == []
        schemas.parse_search(body)
    for body, slug in BAD_BODIES:
        if isinstance(body, str):
            continue  # not JSON
        refused = not validator.is_valid(body)
        # what RE2 refuses is beyond a JSON Schema: the document says RE2 syntax
        assert refused == (slug != "invalid-pattern"), body


async def test_a_refused_body_is_told_in_plain_words(client: Client) -> None:
    for body, _ in BAD_BODIES:
        if isinstance(body, str):
            continue
        resp = await client.post("/api/v1/search", json=body)
        text = await resp.text()
        assert resp.status == 400
        assert "pydantic" not in text.lower()
        assert "Input should" not in text  # pydantic's own wording
