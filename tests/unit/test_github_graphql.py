"""Gists' texts over GitHub's GraphQL API, with no server (gistcache.github.graphql):
the endpoint for a REST base, the batches a list's sizes make, the request, and GitHub's
answers in the shapes it sends them (whole, partial, refused, rate limited)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from multidict import CIMultiDict
from yarl import URL

from gistcache.github.errors import GitHubUnavailable
from gistcache.github.graphql import (
    BATCH_BYTES,
    FILE_BYTES,
    GIST_FILES,
    QUERY,
    Batch,
    GistAsked,
    gist_node_id,
    graphql_endpoint,
    plan_batches,
    read_batch,
)
from gistcache.github.parse import DEFAULT_RETRY_AFTER, RateLimitedAnswer

NOW = 1_800_000_000.0
UPDATED = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def gist(n: int, *files: tuple[str, int | None], updated: datetime = UPDATED) -> GistAsked:
    return GistAsked(f"G_kwDOA{n:04d}", f"{n:032x}", updated, tuple(files))


def node(asked: GistAsked, *files: Any, updated: str = "2024-03-01T12:00:00Z") -> Any:
    return {"name": asked.gist_id, "updatedAt": updated, "files": list(files)}


def file(name: str, text: str | None, *, cut: bool = False) -> dict[str, Any]:
    return {"name": name, "isTruncated": cut, "text": text}


def answer(*nodes: Any, errors: list[Any] | None = None, cost: int = 1) -> bytes:
    body: dict[str, Any] = {
        "data": {
            "rateLimit": {"cost": cost, "remaining": 4990, "resetAt": "2027-01-15T08:00:00Z"},
            "nodes": list(nodes),
        }
    }
    if errors is not None:
        body["errors"] = errors
    return json.dumps(body).encode()


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


GRAPHQL_HEADERS = (("x-ratelimit-resource", "graphql"), ("x-ratelimit-limit", "5000"))


@pytest.mark.parametrize(
    ("api", "endpoint"),
    [
        ("https://api.github.com", "https://api.github.com/graphql"),
        ("https://api.github.com/", "https://api.github.com/graphql"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/api/graphql"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765/graphql"),
        ("http://127.0.0.1:8765/github", "http://127.0.0.1:8765/github/graphql"),
    ],
)
def test_the_endpoint_is_derived_from_the_rest_base(api: str, endpoint: str) -> None:
    assert graphql_endpoint(URL(api)) == URL(endpoint)


def test_a_gists_node_id_is_read_from_its_list_item() -> None:
    assert gist_node_id('{"id": "aa", "node_id": "G_kwDOAB"}') == "G_kwDOAB"
    for raw in (None, "", "not json", "[]", '{"id": "aa"}', '{"node_id": 5}', '{"node_id": ""}'):
        assert gist_node_id(raw) is None


def test_batches_follow_the_list_within_the_byte_bound() -> None:
    size = BATCH_BYTES // 5  # two files a gist: two gists a batch
    gists = [gist(n, ("a.py", size), ("b.py", size)) for n in range(5)]
    plan = plan_batches(gists)
    assert [[g.gist_id for g in batch.gists] for batch in plan.batches] == [
        [gists[0].gist_id, gists[1].gist_id],
        [gists[2].gist_id, gists[3].gist_id],
        [gists[4].gist_id],
    ]
    assert all(batch.bytes <= BATCH_BYTES for batch in plan.batches)
    assert plan.left == []


def test_batches_are_bounded_in_gists_and_files() -> None:
    gists = [gist(n, ("a.txt", 10), ("b.txt", 10)) for n in range(7)]
    plan = plan_batches(gists, max_gists=3, at_once=1)
    assert [len(batch.gists) for batch in plan.batches] == [3, 3, 1]
    plan = plan_batches(gists, max_files=5, at_once=1)
    assert [batch.files for batch in plan.batches] == [4, 4, 4, 2]


def test_files_are_spread_over_batches_that_run_side_by_side() -> None:
    many = [gist(n, ("a.txt", 10)) for n in range(40)]
    assert [batch.files for batch in plan_batches(many).batches] == [4] * 10
    more = [gist(n, ("a.txt", 10)) for n in range(120)]
    assert [batch.files for batch in plan_batches(more).batches] == [6] * 20
    assert [batch.files for batch in plan_batches(many, at_once=3).batches] == [14, 14, 12]
    # no batch of fewer than MIN_BATCH_FILES files only to run more at once
    assert [batch.files for batch in plan_batches(many[:12]).batches] == [4, 4, 4]
    assert [batch.files for batch in plan_batches(many[:3]).batches] == [3]
    # at least as many as the bounds need, in list order
    plan = plan_batches(many, max_files=5, at_once=2)
    assert [batch.files for batch in plan.batches] == [5] * 8
    assert [g for batch in plan.batches for g in batch.gists] == many


def test_what_a_batch_cannot_give_whole_is_left_to_raw_downloads() -> None:
    small = gist(1, ("a.txt", 10))
    large = gist(2, ("a.txt", 10), ("big.bin", FILE_BYTES + 1))
    unknown = gist(3, ("a.txt", None))
    many = gist(4, *((f"{n}.txt", 1) for n in range(GIST_FILES + 1)))
    empty = gist(5)
    again = gist(1, ("a.txt", 10))  # the same gist listed twice is asked once
    plan = plan_batches([small, large, unknown, many, empty, again])
    assert [batch.gists for batch in plan.batches] == [(small,)]
    assert plan.left == [large, unknown, many, empty, again]


def test_a_gist_over_the_batch_bound_alone_is_left_out() -> None:
    big = gist(1, *((f"{n}.txt", BATCH_BYTES // 5) for n in range(6)))
    plan = plan_batches([big, gist(2, ("a.txt", 1))])
    assert plan.left == [big]
    assert len(plan.batches) == 1


def test_the_request_asks_each_gist_by_node_id_with_as_many_files_as_the_largest_lists() -> None:
    batch = Batch((gist(1, ("a", 1)), gist(2, ("a", 1), ("b", 1), ("c", 1))))
    body = batch.request()
    assert body["query"] == QUERY
    assert body["variables"] == {"ids": ["G_kwDOA0001", "G_kwDOA0002"], "files": 3}
    for field in ("nodes(ids: $ids)", "name updatedAt", "files(limit: $files)", "isTruncated"):
        assert field in QUERY
    assert "rateLimit { cost" in QUERY


def test_whole_texts_of_the_listed_revision_are_taken() -> None:
    one = gist(1, ("a.py", 5), ("é.txt", 2))
    two = gist(2, ("b.md", 0))
    batch = Batch((one, two))
    raw = answer(
        node(one, file("a.py", "print"), file("é.txt", "é")),
        node(two, file("b.md", "")),
        cost=1,
    )
    got = read_batch(batch, 200, headers(*GRAPHQL_HEADERS), raw, NOW)
    assert got.texts == {
        (one.gist_id, "a.py"): "print",
        (one.gist_id, "é.txt"): "é",
        (two.gist_id, "b.md"): "",
    }
    assert (got.cost, got.moved, got.lacking) == (1, 0, 0)


def test_a_gist_that_moved_since_the_list_gives_nothing() -> None:
    moved = gist(1, ("a.py", 5))
    raw = answer(node(moved, file("a.py", "print"), updated="2024-03-01T12:00:01Z"))
    got = read_batch(Batch((moved,)), 200, headers(), raw, NOW)
    assert got.texts == {}
    assert got.moved == 1


def test_binary_cut_resized_and_missing_files_are_left_to_raw_downloads() -> None:
    asked = gist(1, ("bin", 4), ("cut.txt", 9), ("latin1.txt", 1), ("gone.txt", 3), ("ok", 2))
    raw = answer(
        node(
            asked,
            file("bin", None),
            file("cut.txt", "cut", cut=True),
            file("latin1.txt", "é"),  # two bytes in UTF-8: not the file's one byte
            file("unlisted.txt", "new"),
            None,
            file("ok", "ok"),
        )
    )
    got = read_batch(Batch((asked,)), 200, headers(), raw, NOW)
    assert got.texts == {(asked.gist_id, "ok"): "ok"}
    assert got.lacking == 4


def test_partial_data_gives_the_gists_no_error_names() -> None:
    gone, kept, failed = gist(1, ("a", 1)), gist(2, ("b", 1)), gist(3, ("c", 1))
    errors = [
        {
            "type": "NOT_FOUND",
            "path": ["nodes", 0],
            "locations": [{"line": 3, "column": 3}],
            "message": f"Could not resolve to a node with the global id of '{gone.node_id}'",
        },
        {"path": ["nodes", 2, "files", 0, "text"], "message": "timedout"},
    ]
    raw = answer(None, node(kept, file("b", "b")), node(failed, file("c", "c")), errors=errors)
    got = read_batch(Batch((gone, kept, failed)), 200, headers(), raw, NOW)
    assert got.texts == {(kept.gist_id, "b"): "b"}
    assert got.lacking == 2
    assert "Could not resolve" in got.errors[0]


def test_a_node_that_is_another_gist_gives_nothing() -> None:
    asked, other = gist(1, ("a", 1)), gist(2, ("a", 1))
    got = read_batch(Batch((asked,)), 200, headers(), answer(node(other, file("a", "x"))), NOW)
    assert got.texts == {}


@pytest.mark.parametrize(
    "body",
    [
        {
            "data": None,
            "errors": [
                {
                    "message": "Something went wrong while executing your query. This may be "
                    "the result of a timeout, or it could be a GitHub bug."
                }
            ],
        },
        {"errors": [{"message": "Field 'nope' doesn't exist on type 'Gist'"}]},
        {"data": {"nodes": []}},
        {"data": {"nodes": [None]}, "errors": [{"message": "an error of the whole request"}]},
        {"data": {"nodes": [None]}, "errors": ["not an object"]},
        {"data": {"nodes": [None]}, "errors": {"message": "not a list"}},
        [],
    ],
)
def test_an_answer_that_failed_as_a_whole_is_unavailable(body: Any) -> None:
    with pytest.raises(GitHubUnavailable):
        read_batch(Batch((gist(1, ("a", 1)),)), 200, headers(), json.dumps(body).encode(), NOW)


def test_a_body_that_is_no_json_is_unavailable() -> None:
    with pytest.raises(GitHubUnavailable):
        read_batch(Batch((gist(1, ("a", 1)),)), 200, headers(), b"<html>Unicorn!</html>", NOW)


@pytest.mark.parametrize(
    "error",
    [
        {"type": "RATE_LIMITED", "message": "API rate limit exceeded"},  # GitHub's docs
        {  # what GitHub answers since 2026
            "type": "RATE_LIMIT",
            "code": "graphql_rate_limit",
            "message": "API rate limit already exceeded for user ID 1.",
        },
    ],
)
def test_rate_limited_with_no_points_left_blocks_until_the_reset(error: dict[str, str]) -> None:
    body = {"errors": [error]}
    spent = headers(
        *GRAPHQL_HEADERS, ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", str(int(NOW) + 900))
    )
    with pytest.raises(RateLimitedAnswer) as refused:
        read_batch(Batch((gist(1, ("a", 1)),)), 200, spent, json.dumps(body).encode(), NOW)
    assert (refused.value.retry_after, refused.value.named, refused.value.spent) == (
        900,
        True,
        True,
    )


@pytest.mark.parametrize("kind", ["RATE_LIMITED", "RATE_LIMIT"])
def test_rate_limited_with_points_left_is_a_secondary_limit(kind: str) -> None:
    body = {"data": None, "errors": [{"type": kind, "message": "secondary"}]}
    raw = json.dumps(body).encode()
    with pytest.raises(RateLimitedAnswer) as refused:
        read_batch(Batch((gist(1, ("a", 1)),)), 200, headers(*GRAPHQL_HEADERS), raw, NOW)
    assert (refused.value.retry_after, refused.value.named, refused.value.spent) == (
        DEFAULT_RETRY_AFTER,
        False,
        False,
    )
    with pytest.raises(RateLimitedAnswer) as told:
        read_batch(Batch((gist(1, ("a", 1)),)), 200, headers(("retry-after", "30")), raw, NOW)
    assert (told.value.retry_after, told.value.named) == (30, True)


@pytest.mark.parametrize("status", [403, 429])
def test_a_refusal_for_a_secondary_limit_is_rate_limited(status: int) -> None:
    raw = b'{"message": "You have exceeded a secondary rate limit."}'
    with pytest.raises(RateLimitedAnswer) as refused:
        read_batch(Batch((gist(1, ("a", 1)),)), status, headers(("retry-after", "60")), raw, NOW)
    assert refused.value.retry_after == 60


@pytest.mark.parametrize("status", [401, 500, 502])
def test_other_statuses_are_unavailable(status: int) -> None:
    raw = b'{"message": "This endpoint requires you to be authenticated."}'
    with pytest.raises(GitHubUnavailable) as failed:
        read_batch(Batch((gist(1, ("a", 1)),)), status, headers(), raw, NOW)
    assert not isinstance(failed.value, RateLimitedAnswer)
