"""The OpenAPI 3.1 description of the whole HTTP API, served at /openapi.json: the
bodies' schemas generated from ``web.api.schemas``, the paths written here (headers such
as ``X-Cache``, ``Link``, ``Retry-After`` and ``Prefer``, and the login in a path, are
what generators say badly)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from gistcache import __version__
from gistcache.domain.requests import USERNAME_PATTERN
from gistcache.web.api import schemas
from gistcache.web.http import NDJSON
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
    "403": _problem("A browser sent this write from another site's page (Sec-Fetch-Site, Origin)"),
    "404": _problem("No such user, search or resource"),
    "413": _problem("Request body over 64 KiB"),
    "429": _problem(
        "Too many requests, GitHub requests or waiting search jobs from this client",
        retry_after=True,
    ),
    "500": _problem("A bug; logged with the request id"),
    "502": _problem("GitHub failed and nothing is cached"),
    "503": _problem(
        "GitHub's rate limit is spent, the database is unreachable, too many searches run, "
        "or the search job queue is full",
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
        "pattern": USERNAME_PATTERN,
        # "-" is the page's (/-/...), and no GitHub login: logins do not begin with "-"
        "not": {"enum": [*FIXED_PATHS, "-"]},
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
                # /- is the search page's prefix (no GitHub login begins with "-")
                "404": {
                    "description": "No such user; for /-, the search page's own 404",
                    "content": {
                        **_problems("404")["404"]["content"],
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
            },
        }
    }


REF_TEMPLATE = "#/components/schemas/{model}"
# the components and the shapes they are generated from: the request as it is
# validated, the answers as they are serialised
COMPONENTS: dict[str, tuple[Any, JsonSchemaMode]] = {
    "SearchRequest": (schemas.SearchRequest, "validation"),
    "SearchResult": (schemas.SearchResult, "serialization"),
    "AnswerCut": (schemas.AnswerCut, "serialization"),
    "JobAccepted": (schemas.JobAccepted, "serialization"),
    "Job": (schemas.Job, "serialization"),
    "Problem": (schemas.Problem, "serialization"),
    "Gist": (schemas.Gist, "serialization"),
}


def component_schemas() -> dict[str, Any]:
    """Each component's JSON Schema, with the shapes it nests (``$defs``) made
    components of their own."""
    components: dict[str, Any] = {}
    for name, (shape, mode) in COMPONENTS.items():
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            schema = shape.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
        else:
            schema = TypeAdapter(shape).json_schema(ref_template=REF_TEMPLATE, mode=mode)
        for nested, definition in schema.pop("$defs", {}).items():
            if components.setdefault(nested, definition) != definition:
                raise RuntimeError(f"two shapes are called {nested}")
        if components.setdefault(name, schema) != schema:
            raise RuntimeError(f"two shapes are called {name}")
    return components


def _page(description: str, *codes: int) -> dict[str, Any]:
    """An HTML answer of the search page for each status in ``codes``."""
    html = {"text/html": {"schema": {"type": "string"}}}
    words = {
        200: description,
        400: "A field of the form is wrong, said in words",
        404: "No such user, or no such page",
        502: "GitHub failed and nothing is cached",
        503: "GitHub's rate limit, or too many searches: said with when to try again",
        504: "GitHub or the search took too long",
    }
    return {str(code): {"description": words[code], "content": html} for code in codes}


def _page_query(*names: str) -> list[dict[str, Any]]:
    described = {
        "user": "The GitHub user whose gists are searched",
        "q": "The pattern (RE2 syntax)",
        "i": "1: ignore case",
        "literal": "1: the pattern is plain text",
        "context": "Lines before and after each listed line, 0 to 10",
        "glob": "Only files whose name matches this glob (ignoring case)",
        "page": "Which page of 100 gists, from 1",
    }
    return [
        {"name": n, "in": "query", "description": described[n], "schema": {"type": "string"}}
        for n in names
    ]


def _page_paths() -> dict[str, Any]:
    """The search page's routes (HTML for people; the page under /-/ never shadows a
    login). Its query fields are a form's: strings, checked by the page itself."""
    return {
        "/": {
            "get": {
                "operationId": "searchPage",
                "summary": "The search page",
                "tags": ["page"],
                "responses": _page("The search form", 200),
            }
        },
        "/-/search": {
            "get": {
                "operationId": "searchResultsPage",
                "summary": "A search's results rendered as HTML (no JavaScript needed)",
                "tags": ["page"],
                "parameters": _page_query("user", "q", "i", "literal", "context", "glob", "page"),
                "responses": _page("The results (or the empty form)", 200, 400, 404, 502, 503, 504),
            }
        },
        "/-/users/{username}": {
            "get": {
                "operationId": "userPage",
                "summary": "A user's gists as a table, with a search box",
                "tags": ["page"],
                "parameters": [
                    {"name": "username", "in": "path", "required": True,
                     "schema": {"type": "string"}}
                ],
                "responses": _page("The user's gists", 200, 400, 404, 502, 503, 504),
            }
        },
        "/-/freshness": {
            "get": {
                "operationId": "freshnessWords",
                "summary": "How fresh a user's cached list is, in the page's words",
                "description": "Read from the cache alone: GitHub is never asked.",
                "tags": ["page"],
                "parameters": _page_query("user"),
                "responses": {
                    "200": {
                        "description": "The words",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {"text": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "400": _problem("Not a GitHub login (`parameter`: `user`)"),
                    "404": _problem(
                        "No list of the user is cached (`not-cached`), or GitHub has no "
                        "such user (`user-not-found`, remembered)"
                    ),
                    **_problems("429", "500", "503"),
                },
            }
        },
        "/-/static/{name}": {
            "get": {
                "operationId": "pageAsset",
                "summary": "The page's stylesheet, script and icon, named by a content hash",
                "tags": ["page"],
                "parameters": [
                    {"name": "name", "in": "path", "required": True,
                     "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "The asset, cached for ever (immutable)",
                        "headers": {
                            "Cache-Control": {
                                "schema": {"const": "public, max-age=31536000, immutable"}
                            }
                        },
                        "content": {
                            kind: {"schema": {"type": "string"}}
                            for kind in ("text/javascript", "text/css", "image/svg+xml")
                        },
                    },
                    **_page("", 404),
                },
            }
        },
    }  # fmt: skip


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
            **_page_paths(),
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
                    "summary": "Readiness: 200 when the database answers and takes writes",
                    "responses": {
                        "200": {"description": "Ready", "content": _status_json()},
                        "503": _problem(
                            "The database does not answer, or is read-only", retry_after=True
                        ),
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
                            "description": "The search's answer; with Accept: "
                            f"{NDJSON}, a stream of events. " + STREAM_DESCRIPTION,
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
                            "content": {
                                "application/json": {"schema": _ref("SearchResult")},
                                NDJSON: {"schema": _stream_event()},
                            },
                        },
                        "202": {
                            "description": "Queued as a job",
                            "headers": {
                                "Location": {"schema": {"type": "string"}, "required": True}
                            },
                            "content": {"application/json": {"schema": _ref("JobAccepted")}},
                        },
                        **_problems("400", "403", "404", "413", "429", "500", "502", "503", "504"),
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
            "schemas": component_schemas(),
        },
    }


STREAM_DESCRIPTION = (
    "With Accept: application/x-ndjson: one JSON object a line as the search goes, "
    "answered once the user's list is known. progress at most every 100 ms; match for "
    "each matching gist once all its files are in (index: its position in the list); "
    "skipped; last done (with cut: null, or where the matches told stopped at the answer "
    "size limit), or error (a problem) when the search failed after the stream began. "
    "page and per_page do not apply. X-Accel-Buffering: no."
)


def _stream_event() -> dict[str, Any]:
    """One line of the NDJSON stream."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "files_done", "files_total", "bytes"],
                "properties": {
                    "event": {"const": "progress"},
                    "files_done": {"type": "integer", "minimum": 0},
                    "files_total": {"type": "integer", "minimum": 0},
                    "bytes": {"type": "integer", "minimum": 0},
                },
            },
            {
                "type": "object",
                "required": ["event", "index", "gist"],
                "properties": {
                    "event": {"const": "match"},
                    "index": {"type": "integer", "minimum": 0},
                    "gist": _ref("MatchedGist"),
                },
            },
            {
                "type": "object",
                "required": ["event", "index", "id", "filename", "reason"],
                "properties": {
                    "event": {"const": "skipped"},
                    "index": {"type": "integer", "minimum": 0},
                    "id": {"type": "string"},
                    "filename": {"type": ["string", "null"]},
                    "reason": _ref("SkipReason"),
                },
            },
            {
                "type": "object",
                "required": ["event", "total", "status"],
                "properties": {
                    "event": {"const": "done"},
                    "total": {"type": "integer", "minimum": 0},
                    "status": {"const": "success"},
                    "cut": {"anyOf": [_ref("AnswerCut"), {"type": "null"}]},
                },
            },
            {
                "type": "object",
                "required": ["event", "problem"],
                "properties": {"event": {"const": "error"}, "problem": _ref("Problem")},
            },
        ]
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
