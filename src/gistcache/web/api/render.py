"""The API's JSON for the use cases' typed results, in the shapes of ``web.api.schemas``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from pydantic import TypeAdapter

from gistcache.domain.gists import format_timestamp
from gistcache.domain.results import (
    AnswerCut,
    ContextLine,
    FileMatch,
    GistMatch,
    LineMatch,
    SearchResult,
    Skipped,
    match_weight,
)
from gistcache.services.failures import Failure
from gistcache.services.many import ManyResult, UserAnswer
from gistcache.web.api import schemas
from gistcache.web.problems import failure_problem


def render_search(result: SearchResult) -> schemas.SearchResultJSON:
    """A search's answer as ``POST /api/v1/search`` (and a finished job) returns it."""
    return {
        "status": "success",
        "username": result.request.username,
        "pattern": result.request.pattern,
        "total": result.total,
        "matches": [render_gist(match) for match in result.matches],
        "skipped": [render_skipped(entry) for entry in result.skipped],
        "cut": render_cut(result.cut),
    }


def render_cut(cut: AnswerCut | None) -> schemas.AnswerCutJSON | None:
    """Where an answer stopped at the answer size limit (a search's ``cut``, the stream's
    ``done`` event's)."""
    if cut is None:
        return None
    following: schemas.NextPageJSON | None = None
    if cut.next_page is not None and cut.next_per_page is not None:
        following = {"page": cut.next_page, "per_page": cut.next_per_page}
    return {
        "limit_bytes": cut.limit,
        "listed": cut.listed,
        "lines_cut": cut.lines_cut,
        "next": following,
    }


def answer_weight(result: SearchResult) -> int:
    """About how many bytes the answer's JSON takes (``match_weight``, and the skips)."""
    matches = result.matches_weight
    if matches is None:
        matches = sum(match_weight(match) for match in result.matches)
    return matches + 120 * len(result.skipped)


def search_pieces(result: SearchResult) -> Iterator[bytes]:
    """The answer's JSON (as ``search_body``) in pieces: one per matching gist, each made
    when it is wanted, so that a large answer is never held whole."""
    values = render_search(result)
    values["matches"] = []
    frame = _dump(values, schemas.SEARCH_RESULT)
    marker = b'"matches":[]'
    at = frame.index(marker) + len(marker) - 1
    yield frame[:at]
    for n, match in enumerate(result.matches):
        yield (b"," if n else b"") + _dump(render_gist(match), schemas.MATCHED_GIST)
    yield frame[at:]


def search_body(result: SearchResult) -> bytes:
    """The answer's JSON, as the synchronous search sends it."""
    return _dump(render_search(result), schemas.SEARCH_RESULT)


def _dump(values: Any, shape: TypeAdapter[Any]) -> bytes:
    """``values`` (already in the JSON shape ``shape``, a TypeAdapter of the schemas) as
    compact JSON: the same bytes as ``shape.dump_json`` writes, by orjson, in a third
    to a half of the time of a large answer; by ``shape`` when orjson refuses a value
    (text that is not Unicode, an integer past 64 bits)."""
    try:
        return orjson.dumps(values)
    except orjson.JSONEncodeError:
        dumped: bytes = shape.dump_json(values)
        return dumped


def search_json(result: SearchResult | ManyResult) -> dict[str, Any]:
    """The answer as JSON values: what a job stores (as ``json.dumps`` writes it, the
    same text as jobs stored before the answers were typed)."""
    if isinstance(result, ManyResult):
        many: dict[str, Any] = schemas.MANY_SEARCH_RESULT.dump_python(
            render_many(result), mode="json"
        )
        return many
    values: dict[str, Any] = schemas.SEARCH_RESULT.dump_python(render_search(result), mode="json")
    return values


def render_many(result: ManyResult) -> schemas.ManySearchResultJSON:
    """A many-user search's answer: each user's part in the users' order."""
    return {
        "status": "success",
        "usernames": [user.login for user in result.users],
        "org": result.request.org,
        "pattern": result.request.pattern,
        "total": result.total,
        "left_out": result.left_out,
        "users": [_user(user) for user in result.users],
    }


def _user(user: UserAnswer) -> schemas.UserResultJSON:
    if user.result is None:
        return failed_user(user.login, user.failure)
    return {
        "username": user.login,
        "status": "success",
        "total": user.result.total,
        "matches": [render_gist(match) for match in user.result.matches],
        "skipped": [render_skipped(entry) for entry in user.result.skipped],
        "cut": render_cut(user.result.cut),
    }


def failed_user(login: str, failure: Failure | None) -> schemas.UserResultJSON:
    """A user's part that failed: its status the failure's kind, and its problem."""
    if failure is None:  # pragma: no cover - a part has a result or a failure
        raise ValueError("a user's part with neither result nor failure")
    problem = failure_problem(failure)
    return {
        "username": login,
        "status": failure.kind.value,
        "total": 0,
        "matches": [],
        "skipped": [],
        "cut": None,
        "problem": {
            "type": f"urn:gistcache:problem:{failure.kind}",
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
        },
    }


def many_body(result: ManyResult) -> bytes:
    """A many-user search's answer as JSON."""
    return _dump(render_many(result), schemas.MANY_SEARCH_RESULT)


def render_gist(match: GistMatch) -> schemas.MatchedGistJSON:
    """One gist of a search's ``matches`` (also a stream's ``match`` event's ``gist``)."""
    gist = match.gist
    return {
        "id": gist.id,
        "html_url": gist.html_url,
        "description": gist.description,
        "updated_at": format_timestamp(gist.updated_at),
        "files": [_file(f) for f in match.files],
    }


def _file(match: FileMatch) -> schemas.MatchedFileJSON:
    f = match.file
    return {
        "filename": f.filename,
        "language": f.language,
        "size": f.size,
        "raw_url": f.raw_url,
        "match_count": match.match_count,
        "lines": [_line(line) for line in match.lines],
    }


def _line(line: LineMatch) -> schemas.LineMatchJSON:
    rendered: schemas.LineMatchJSON = {
        "line_number": line.line_number,
        "column": line.column,
        "text": line.text,
        "ranges": list(line.ranges),
        "url": line.url,
        "before": [_context(c) for c in line.before] if line.before else [],
        "after": [_context(c) for c in line.after] if line.after else [],
    }
    if line.line_length is not None:
        rendered["line_length"] = line.line_length
    return rendered


def _context(line: ContextLine) -> schemas.ContextLineJSON:
    if line.line_length is None:
        return {"line_number": line.line_number, "text": line.text}
    return {"line_number": line.line_number, "text": line.text, "line_length": line.line_length}


def render_skipped(entry: Skipped) -> schemas.SkippedFileJSON:
    return {"id": entry.gist_id, "filename": entry.filename, "reason": entry.reason}
