"""Gists' file texts through GitHub's GraphQL API, with no I/O: where the endpoint is,
which gists a batch asks for (``plan_batches``), the query, and what an answer gives
(``read_batch``: the texts that are whole and of the revision the list named, or the
GitHubError the answer means).

A batch asks ``nodes(ids: …)`` for gists by the ``node_id`` their list item carries,
and each gist's ``updatedAt`` beside its files: a gist whose ``updatedAt`` is not the
list's ``updated_at`` changed in between, and none of its texts is taken (its files
come from their raw URLs, keyed on the revision the list named). A text is taken only
when GitHub says it is whole (``isTruncated`` false, ``text`` not null: null is a
binary file) and its UTF-8 length is the file's listed size; anything else a batch
lacks (a null node, a file not in the answer, an error naming the gist) is left to the
raw download, never stored empty or cut.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from yarl import URL

from gistcache.domain.gists import parse_timestamp
from gistcache.github.errors import GitHubRateLimited, GitHubUnavailable
from gistcache.github.parse import (
    DEFAULT_RETRY_AFTER,
    MAX_RATE_LIMIT_WAIT,
    RateLimitedAnswer,
    failure,
    json_body,
    names_a_wait,
    raise_failure,
)

# A batch's bounds. Its answer is the texts of its files: half a megabyte of text is an
# answer GitHub builds well inside its 10-second cap and a client reads in a moment,
# and 10 MB of a user's files are 20 batches, which run side by side. ``nodes`` takes
# at most 100 ids. A GraphQL request takes longer the more texts it returns (a floor
# of about 300 ms, then some 20 ms a file): 100 files stay near two seconds. A file
# larger than FILE_BYTES, or a gist with more files than GIST_FILES, comes from its
# raw URL (one download is as cheap for it, and GitHub cuts large texts:
# ``isTruncated``).
BATCH_BYTES = 512 * 1024
BATCH_GISTS = 100
BATCH_FILES = 100
GIST_FILES = 30
FILE_BYTES = 256 * 1024
# batches in flight at once, per process. A GraphQL request is slower than a raw
# download (about 350 ms against 30 ms for one file), so batches save time only side
# by side: a search's files are spread over at least this many batches (of at least
# MIN_BATCH_FILES files each), so that they come in one round, in about the time of
# one batch. GitHub asks for no more than 100 concurrent requests (REST and GraphQL
# together), and 2,000 points a minute (a batch costs one).
BATCHES_AT_ONCE = 20
MIN_BATCH_FILES = 4

QUERY = """\
query GistTexts($ids: [ID!]!, $files: Int!) {
  rateLimit { cost remaining resetAt }
  nodes(ids: $ids) {
    ... on Gist { name updatedAt files(limit: $files) { name isTruncated text } }
  }
}"""


def graphql_endpoint(api: URL) -> URL:
    """GitHub's GraphQL endpoint for the REST ``api`` base: ``https://api.github.com``
    has ``/graphql``, GitHub Enterprise's ``https://HOST/api/v3`` has
    ``https://HOST/api/graphql``; any other base has ``/graphql`` under its path."""
    path = api.path.rstrip("/")
    if path.endswith("/api/v3"):
        path = path.removesuffix("/v3") + "/graphql"
    else:
        path += "/graphql"
    return api.with_path(path).with_query(None).with_fragment(None)


def gist_node_id(raw_item: str | None) -> str | None:
    """The ``node_id`` of a gist's list item (the JSON GitHub sent), or None."""
    if not raw_item:
        return None
    try:
        item = json.loads(raw_item)
    except ValueError:
        return None
    node = item.get("node_id") if isinstance(item, dict) else None
    return node if isinstance(node, str) and 0 < len(node) <= 200 else None


@dataclass(frozen=True, slots=True)
class GistAsked:
    """A gist whose files' texts are wanted: its node id, its id and ``updated_at`` as
    the list gave them (the revision the texts are keyed on), and every file the list
    names with its size (the answer carries them all, wanted or not)."""

    node_id: str
    gist_id: str
    updated_at: datetime
    files: tuple[tuple[str, int | None], ...]

    @property
    def bytes(self) -> int:
        return sum(size or 0 for _, size in self.files)


def askable(gist: GistAsked) -> bool:
    """Whether a batch can give the gist's files whole: at most GIST_FILES of them,
    each of a known size up to FILE_BYTES, with distinct names."""
    names = [name for name, _ in gist.files]
    return (
        0 < len(names) <= GIST_FILES
        and len(set(names)) == len(names)
        and all(size is not None and 0 <= size <= FILE_BYTES for _, size in gist.files)
    )


@dataclass(frozen=True, slots=True)
class Batch:
    """Gists asked for in one GraphQL request."""

    gists: tuple[GistAsked, ...]

    @property
    def bytes(self) -> int:
        return sum(gist.bytes for gist in self.gists)

    @property
    def files(self) -> int:
        return sum(len(gist.files) for gist in self.gists)

    def request(self) -> dict[str, Any]:
        """The request's JSON body: the query and its variables."""
        return {
            "query": QUERY,
            "variables": {
                "ids": [gist.node_id for gist in self.gists],
                "files": max(len(gist.files) for gist in self.gists),
            },
        }


@dataclass(frozen=True, slots=True)
class Plan:
    batches: list[Batch]
    left: list[GistAsked]  # not askable: their files come from raw URLs


def plan_batches(
    gists: Sequence[GistAsked],
    *,
    max_bytes: int = BATCH_BYTES,
    max_gists: int = BATCH_GISTS,
    max_files: int = BATCH_FILES,
    at_once: int = BATCHES_AT_ONCE,
) -> Plan:
    """Batches of the askable ``gists`` in their order (so that the first gists of a
    list come in first), each within ``max_bytes`` of listed sizes, ``max_gists`` gists
    and ``max_files`` files, a gist never split; and as many as the bounds need, but
    at least ``at_once`` while each has MIN_BATCH_FILES files, the files spread evenly
    over them (they run side by side). A gist alone over a bound is left out, with the
    gists that are not askable."""
    asked: list[GistAsked] = []
    left: list[GistAsked] = []
    seen: set[str] = set()
    for gist in gists:
        if (
            not askable(gist)
            or gist.node_id in seen
            or gist.bytes > max_bytes
            or len(gist.files) > max_files
        ):
            left.append(gist)
            continue
        seen.add(gist.node_id)
        asked.append(gist)
    files = sum(len(gist.files) for gist in asked)
    nbytes = sum(gist.bytes for gist in asked)
    count = max(
        -(-nbytes // max_bytes),
        -(-files // max_files),
        -(-len(asked) // max_gists),
        min(at_once, files // MIN_BATCH_FILES),
        1,
    )
    share = -(-files // count)  # files per batch, spread evenly
    return Plan(_pack(asked, max_bytes, max_gists, max_files, share), left)


def _pack(
    gists: Sequence[GistAsked], max_bytes: int, max_gists: int, max_files: int, share: int
) -> list[Batch]:
    """``gists`` in order into batches within the bounds, each closed once it holds
    ``share`` files."""
    batches: list[Batch] = []
    current: list[GistAsked] = []
    nbytes = nfiles = 0
    for gist in gists:
        if current and (
            nbytes + gist.bytes > max_bytes
            or nfiles + len(gist.files) > max_files
            or len(current) >= max_gists
        ):
            batches.append(Batch(tuple(current)))
            current, nbytes, nfiles = [], 0, 0
        current.append(gist)
        nbytes += gist.bytes
        nfiles += len(gist.files)
        if nfiles >= share:
            batches.append(Batch(tuple(current)))
            current, nbytes, nfiles = [], 0, 0
    if current:
        batches.append(Batch(tuple(current)))
    return batches


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """What a batch gave: ``texts`` by (gist id, file name), whole and of the revision
    asked for; the points GitHub said it cost; how many gists changed in between and
    how many files it could not give (binary, cut, missing), for the logs."""

    texts: dict[tuple[str, str], str]
    cost: int | None = None
    moved: int = 0
    lacking: int = 0
    errors: list[str] = field(default_factory=list)


def read_batch(
    batch: Batch, status: int, headers: Mapping[str, str], raw: bytes, now: float
) -> BatchAnswer:
    """What GitHub's answer to ``batch`` gives. A rate limit (a 403/429, or a 200
    whose ``errors`` say ``RATE_LIMITED``) raises RateLimitedAnswer; any other status,
    a body that is no GraphQL answer, or ``errors`` that name no part of the answer
    (a timeout, a refused query) raise GitHubUnavailable. Errors that name gists
    (``path``) leave those gists out; the others' texts are taken."""
    body = json_body(raw)
    if status != 200:
        raise_failure(status, headers, body, now)
    if not isinstance(body, dict):
        raise GitHubUnavailable("GitHub sent a GraphQL answer that is not a JSON object")
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        raise GitHubUnavailable("GitHub sent a GraphQL answer whose errors are no list")
    failed, messages = _failed_gists(errors, headers, now)
    data = body.get("data")
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list) or len(nodes) != len(batch.gists):
        raise GitHubUnavailable(
            "GitHub's GraphQL answer has no gists" + (f": {messages[0]}" if messages else "")
        )
    if failed is None:  # an error of the whole request: nothing in it is to be trusted
        raise GitHubUnavailable(f"GitHub's GraphQL request failed: {messages[0]}")
    texts: dict[tuple[str, str], str] = {}
    moved = lacking = 0
    for index, (gist, node) in enumerate(zip(batch.gists, nodes, strict=True)):
        # ``nodes`` answers in the order of the ids; a gist's ``name`` is its REST id
        # (its node id may come back in GitHub's other format)
        if index in failed or not isinstance(node, dict) or node.get("name") != gist.gist_id:
            lacking += len(gist.files)
            continue
        if _instant(node.get("updatedAt")) != gist.updated_at:
            moved += 1
            continue
        taken = _whole_texts(gist, node.get("files"))
        lacking += len(gist.files) - len(taken)
        texts.update(((gist.gist_id, name), text) for name, text in taken.items())
    return BatchAnswer(texts, _cost(data), moved, lacking, messages)


# the ``type`` of GraphQL's error for a rate limit: RATE_LIMITED as GitHub's docs say,
# RATE_LIMIT (with ``code: graphql_rate_limit``) as GitHub answers since 2026
RATE_LIMIT_TYPES = ("RATE_LIMITED", "RATE_LIMIT")


def _failed_gists(
    errors: list[Any], headers: Mapping[str, str], now: float
) -> tuple[set[int] | None, list[str]]:
    """The indexes of the gists the ``errors`` name, or None when one names none (the
    whole request failed); a rate limit raises RateLimitedAnswer."""
    failed: set[int] | None = set()
    messages = []
    for error in errors:
        if not isinstance(error, dict):
            failed = None
            messages.append("an error GitHub did not describe")
            continue
        message = error.get("message")
        messages.append(message if isinstance(message, str) else "an unnamed error")
        if error.get("type") in RATE_LIMIT_TYPES or error.get("code") == "graphql_rate_limit":
            raise _rate_limited(headers, now)
        path = error.get("path")
        if (
            isinstance(path, list)
            and len(path) >= 2
            and path[0] == "nodes"
            and isinstance(path[1], int)
            and not isinstance(path[1], bool)
        ):
            if failed is not None:
                failed.add(path[1])
        else:
            failed = None
    return failed, messages


def _rate_limited(headers: Mapping[str, str], now: float) -> RateLimitedAnswer:
    """GraphQL's RATE_LIMITED: the primary budget of points spent when the headers say
    none remain (blocked until their reset), else a secondary limit."""
    error = failure(429, headers, None, now)
    wait = error.retry_after if isinstance(error, GitHubRateLimited) else DEFAULT_RETRY_AFTER
    return RateLimitedAnswer(
        "GitHub's GraphQL rate limit is exhausted",
        min(MAX_RATE_LIMIT_WAIT, wait),
        named=names_a_wait(headers),
        spent=headers.get("x-ratelimit-remaining") == "0",
    )


def _whole_texts(gist: GistAsked, files: Any) -> dict[str, str]:
    """The gist's listed files whose texts the answer gives whole: not cut, not binary
    (null), and as long in UTF-8 as the list says (a text GitHub re-encoded is not the
    file's bytes)."""
    if not isinstance(files, list):
        return {}
    sizes = dict(gist.files)
    taken: dict[str, str] = {}
    for item in files:
        if not isinstance(item, dict):
            continue
        name, text = item.get("name"), item.get("text")
        if not isinstance(name, str) or name not in sizes or name in taken:
            continue
        if item.get("isTruncated") is not False or not isinstance(text, str):
            continue
        try:
            length = len(text.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: no file's bytes
            continue
        if length == sizes[name]:
            taken[name] = text
    return taken


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _cost(data: Any) -> int | None:
    limit = data.get("rateLimit") if isinstance(data, dict) else None
    cost = limit.get("cost") if isinstance(limit, dict) else None
    return cost if isinstance(cost, int) and not isinstance(cost, bool) and cost >= 0 else None
