"""The API's JSON for the use cases' typed results, in the shapes of ``web.api.schemas``."""

from __future__ import annotations

from typing import Any

from gistcache.domain.gists import format_timestamp
from gistcache.domain.results import (
    ContextLine,
    FileMatch,
    GistMatch,
    LineMatch,
    SearchResult,
    Skipped,
)
from gistcache.web.api import schemas


def render_search(result: SearchResult) -> schemas.SearchResult:
    """A search's answer as ``POST /api/v1/search`` (and a finished job) returns it."""
    return {
        "status": "success",
        "username": result.request.username,
        "pattern": result.request.pattern,
        "total": result.total,
        "matches": [render_gist(match) for match in result.matches],
        "skipped": [render_skipped(entry) for entry in result.skipped],
    }


def search_body(result: SearchResult) -> bytes:
    """The answer's JSON, as the synchronous search sends it."""
    return schemas.SEARCH_RESULT.dump_json(render_search(result))


def search_json(result: SearchResult) -> dict[str, Any]:
    """The answer as JSON values: what a job stores (as ``json.dumps`` writes it, the
    same text as jobs stored before the answers were typed)."""
    values: dict[str, Any] = schemas.SEARCH_RESULT.dump_python(render_search(result), mode="json")
    return values


def render_gist(match: GistMatch) -> schemas.MatchedGist:
    """One gist of a search's ``matches`` (also a stream's ``match`` event's ``gist``)."""
    gist = match.gist
    return {
        "id": gist.id,
        "html_url": gist.html_url,
        "description": gist.description,
        "updated_at": format_timestamp(gist.updated_at),
        "files": [_file(f) for f in match.files],
    }


def _file(match: FileMatch) -> schemas.MatchedFile:
    f = match.file
    return {
        "filename": f.filename,
        "language": f.language,
        "size": f.size,
        "raw_url": f.raw_url,
        "match_count": match.match_count,
        "lines": [_line(line) for line in match.lines],
    }


def _line(line: LineMatch) -> schemas.LineMatch:
    return {
        "line_number": line.line_number,
        "column": line.column,
        "text": line.text,
        "ranges": list(line.ranges),
        "url": line.url,
        "before": [_context(c) for c in line.before] if line.before else [],
        "after": [_context(c) for c in line.after] if line.after else [],
    }


def _context(line: ContextLine) -> schemas.ContextLine:
    return {"line_number": line.line_number, "text": line.text}


def render_skipped(entry: Skipped) -> schemas.SkippedFile:
    return {"id": entry.gist_id, "filename": entry.filename, "reason": entry.reason}
