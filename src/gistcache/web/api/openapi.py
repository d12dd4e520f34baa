"""The OpenAPI 3.1 description of the whole HTTP API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gistcache import __version__
from gistcache.domain.matching import MAX_LINE_CHARS, MAX_PATTERN_LENGTH
from gistcache.web.validation import MAX_PAGE, MAX_PER_PAGE

FIXED_PATHS = ["ping", "healthz", "readyz", "metrics", "openapi.json"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


PROBLEMS: dict[str, Any] = {
    "400": _problem("Invalid input; the problem names the fault"),
    "404": _problem("No such user, search or resource"),
    "413": _problem("Request body over 64 KiB"),
    "429": _problem("Too many requests from this client", retry_after=True),
    "500": _problem("A bug; logged with the request id"),
    "502": _problem("GitHub failed and nothing is cached"),
    "503": _problem(
        "GitHub's rate limit is spent, the database is unreachable, or too many searches run",
        retry_after=True,
    ),
    "504": _problem("GitHub, or the search, took too long"),
}


def _problems(*codes: str) -> dict[str, Any]:
    return {code: PROBLEMS[code] for code in codes}


USERNAME = {
    "name": "username",
    "in": "path",
    "required": True,
    "description": "A GitHub login (case-insensitive)",
    "schema": {
        "type": "string",
        "pattern": "^[A-Za-z0-9_-]{1,39}$",
        "not": {"enum": FIXED_PATHS},
    },
}
PAGING = [
    {
        "name": "page",
        "in": "query",
        "description": "Return one slice of the list, from 1",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    },
    {
        "name": "per_page",
        "in": "query",
        "description": "Size of the slice (default 30)",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
    },
]
REQUEST_ID = {
    "name": "request_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def _list_operation(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": [
                USERNAME,
                *PAGING,
            ],
            "responses": {
                "200": {
                    "description": "The user's public gists, in GitHub's order",
                    "headers": {
                        "X-Cache": {
                            "description": "How the answer was obtained",
                            "schema": {
                                "type": "string",
                                "enum": [
                                    "HIT",
                                    "MISS",
                                    "REVALIDATED",
                                    "UPDATED",
                                    "REFRESHED",
                                    "STALE",
                                ],
                            },
                        },
                        "X-Total-Count": {
                            "description": "Number of gists in the whole list",
                            "schema": {"type": "string", "pattern": "^[0-9]+$"},
                        },
                        "ETag": {"schema": {"type": "string"}},
                        "Cache-Control": {"schema": {"type": "string"}},
                        "Link": {
                            "description": "RFC 8288 links to other slices (with page/per_page)",
                            "schema": {"type": "string"},
                        },
                    },
                    "content": {
                        "application/json": {"schema": {"type": "array", "items": _ref("Gist")}}
                    },
                },
                "304": {"description": "Unchanged since the ETag sent in If-None-Match"},
                **_problems("400", "404", "429", "500", "502", "503", "504"),
            },
        }
    }


def _search_result() -> dict[str, Any]:
    line = {
        "type": "object",
        "required": ["line_number", "text"],
        "properties": {
            "line_number": {"type": "integer", "minimum": 1},
            "column": {
                "type": "integer",
                "minimum": 1,
                "description": "Where in the line (1-based, in characters) text starts: 1 "
                f"unless the line is longer than {MAX_LINE_CHARS} characters, when text is "
                "a window of the line around its first match. Missing only from results of "
                "jobs that finished before it was added (their text starts at 1)",
            },
            "text": {
                "type": "string",
                "maxLength": MAX_LINE_CHARS,
                "description": "The line, or the window of it that holds its first match",
            },
        },
    }
    matched_file = {
        "type": "object",
        "required": ["filename", "language", "size", "raw_url", "match_count", "lines"],
        "properties": {
            "filename": {"type": "string"},
            "language": {"type": ["string", "null"]},
            "size": {"type": ["integer", "null"]},
            "raw_url": {"type": ["string", "null"]},
            "match_count": {"type": "integer", "minimum": 1},
            "lines": {"type": "array", "items": line, "maxItems": 20},
        },
    }
    return {
        "type": "object",
        "required": ["status", "username", "pattern", "total", "matches", "skipped"],
        "properties": {
            "status": {"const": "success"},
            "username": {"type": "string"},
            "pattern": {"type": "string"},
            "total": {"type": "integer", "minimum": 0},
            "matches": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "html_url", "description", "updated_at", "files"],
                    "properties": {
                        "id": {"type": "string"},
                        "html_url": {"type": "string"},
                        "description": {"type": ["string", "null"]},
                        "updated_at": TIMESTAMP,
                        "files": {"type": "array", "items": matched_file},
                    },
                },
            },
            "skipped": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "filename", "reason"],
                    "properties": {
                        "id": {"type": "string"},
                        "filename": {"type": ["string", "null"]},
                        "reason": {
                            "enum": [
                                "binary",
                                "too_large",
                                "forbidden_host",
                                "unavailable",
                                "changed",
                                "file_list_truncated",
                            ]
                        },
                    },
                },
            },
        },
    }


def build_openapi() -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gistcache",
            "version": __version__,
            "description": "List and search GitHub users' public gists through a "
            "persistent, revalidating SQL cache. Every error is an RFC 9457 problem. "
            "The GitHub-compatible endpoints under /api/v3 are not described here: they "
            "are GitHub's own (see GitHub's REST API description), errors in GitHub's shape.",
        },
        "paths": {
            "/ping": {
                "get": {
                    "operationId": "ping",
                    "summary": "Answers pong",
                    "responses": {"200": {"description": "pong", "content": text}},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness: 200 while the process runs",
                    "responses": {"200": {"description": "Alive", "content": _status_json()}},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: 200 when the database answers",
                    "responses": {
                        "200": {"description": "Ready", "content": _status_json()},
                        "503": _problem("The database does not answer", retry_after=True),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "Metrics", "content": text}},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/{username}": _list_operation(
                "listGists", "A user's public gists (fixed paths take precedence)"
            ),
            "/api/v1/users/{username}/gists": _list_operation(
                "listUserGists", "A user's public gists"
            ),
            "/api/v1/search": {
                "post": {
                    "operationId": "search",
                    "summary": "Which of a user's gists contain a pattern (RE2 syntax)",
                    "parameters": [
                        {
                            "name": "Prefer",
                            "in": "header",
                            "description": "RFC 7240 preferences: respond-async runs the "
                            "search as a job; others are ignored, as the RFC asks",
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SearchRequest")}},
                    },
                    "responses": {
                        "200": {
                            "description": "The search's answer",
                            "headers": {
                                "X-Cache": {
                                    "description": "How the searched list was obtained",
                                    "schema": {"type": "string"},
                                },
                                "Age": {
                                    "description": "Age of a STALE list, in seconds",
                                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                                },
                            },
                            "content": {"application/json": {"schema": _ref("SearchResult")}},
                        },
                        "202": {
                            "description": "Queued as a job",
                            "headers": {
                                "Location": {"schema": {"type": "string"}, "required": True}
                            },
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["request_id"],
                                        "properties": {
                                            "request_id": {"type": "string", "format": "uuid"}
                                        },
                                    }
                                }
                            },
                        },
                        **_problems("400", "404", "413", "429", "500", "502", "503", "504"),
                    },
                }
            },
            "/api/v1/search/{request_id}": {
                "get": {
                    "operationId": "searchStatus",
                    "summary": "A search job's state",
                    "parameters": [REQUEST_ID],
                    "responses": {
                        "200": {
                            "description": "The job",
                            "content": {"application/json": {"schema": _ref("Job")}},
                        },
                        **_problems("404", "429", "500", "503"),
                    },
                }
            },
            "/api/v1/search_result/{request_id}": {
                "get": {
                    "operationId": "searchResult",
                    "summary": "A finished search job's answer",
                    "parameters": [REQUEST_ID],
                    "responses": {
                        "200": {
                            "description": "The same body as a synchronous search",
                            "content": {"application/json": {"schema": _ref("SearchResult")}},
                        },
                        "409": _problem("The job has not finished", retry_after=True),
                        **_problems("400", "404", "429", "500", "502", "503", "504"),
                    },
                }
            },
        },
        "components": {
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before asking again",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                },
                "Gist": {
                    "type": "object",
                    "required": [
                        "id",
                        "html_url",
                        "description",
                        "public",
                        "created_at",
                        "updated_at",
                        "comments",
                        "owner",
                        "files",
                    ],
                    "properties": {
                        "id": {"type": "string"},
                        "html_url": {"type": "string"},
                        "description": {"type": ["string", "null"]},
                        "public": {"type": "boolean"},
                        "created_at": TIMESTAMP,
                        "updated_at": TIMESTAMP,
                        "comments": {"type": "integer", "minimum": 0},
                        "owner": {"type": ["string", "null"]},
                        "files": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["filename", "language", "type", "size", "raw_url"],
                                "properties": {
                                    "filename": {"type": "string"},
                                    "language": {"type": ["string", "null"]},
                                    "type": {"type": ["string", "null"]},
                                    "size": {"type": ["integer", "null"]},
                                    "raw_url": {"type": ["string", "null"]},
                                },
                            },
                        },
                    },
                },
                "SearchRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["username", "pattern"],
                    "properties": {
                        "username": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,39}$"},
                        "pattern": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_PATTERN_LENGTH,
                            "description": "RE2 syntax; must contain a non-blank character",
                        },
                        "ignore_case": {"type": "boolean", "default": False},
                        "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                        "async": {"type": "boolean", "default": False},
                    },
                },
                "SearchResult": _search_result(),
                "Job": {
                    "type": "object",
                    "required": [
                        "request_id",
                        "status",
                        "created_at",
                        "started_at",
                        "finished_at",
                        "error",
                    ],
                    "properties": {
                        "request_id": {"type": "string", "format": "uuid"},
                        "status": {"enum": ["PENDING", "STARTED", "SUCCESS", "FAILURE"]},
                        "created_at": TIMESTAMP,
                        "started_at": NULLABLE_TIMESTAMP,
                        "finished_at": NULLABLE_TIMESTAMP,
                        "error": {"anyOf": [{"type": "null"}, _ref("Problem")]},
                    },
                },
            },
        },
    }


def _status_json() -> dict[str, Any]:
    return {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string"}},
            }
        }
    }


OPENAPI = build_openapi()


async def document(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)
