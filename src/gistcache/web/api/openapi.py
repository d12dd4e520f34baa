"""The OpenAPI 3.1 description of the whole HTTP API, served at /openapi.json: one row
per operation in ``OPERATIONS``, the bodies' schemas generated from ``web.api.schemas``.
The paths are written out because what they say (headers such as ``X-Cache``, ``Link``,
``Retry-After`` and ``Prefer``, the login in a path, the page's HTML) is what generators
say badly."""

from __future__ import annotations

from typing import Any, NamedTuple

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from gistcache import __version__
from gistcache.domain.requests import MAX_PAGE, MAX_PER_PAGE, USERNAME_PATTERN
from gistcache.web.api import schemas
from gistcache.web.http import NDJSON

# paths the catch-all /{username} never reaches: fixed routes of their own (/mcp: the MCP server)
FIXED_PATHS = ["ping", "healthz", "readyz", "metrics", "openapi.json", "mcp"]


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
    "401": _problem("No API token given (watches): `Authorization: Bearer <token>`"),
    "403": _problem(
        "A browser sent this write from another site's page (Sec-Fetch-Site, Origin), or the "
        "API token is not one of the server's"
    ),
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


def _content(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return _content("application/json", schema)


def _answer(
    description: str, content: dict[str, Any], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    if headers:
        return {"description": description, "headers": headers, "content": content}
    return {"description": description, "content": content}


STRING = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}
DIGITS = {"type": "string", "pattern": "^[0-9]+$"}
TEXT = _content("text/plain", STRING)
HTML = _content("text/html", STRING)
STATUS_JSON = _json({"type": "object", "required": ["status"], "properties": {"status": STRING}})


def _param(
    name: str, where: str, schema: dict[str, Any], description: str | None = None
) -> dict[str, Any]:
    """A parameter in the path (always required, as OpenAPI says), query or header."""
    param: dict[str, Any] = {"name": name, "in": where}
    if where == "path":
        param["required"] = True
    if description is not None:
        param["description"] = description
    param["schema"] = schema
    return param


USERNAME = _param(
    "username",
    "path",
    # "-" is the page's (/-/...), and no GitHub login: logins do not begin with "-"
    {"type": "string", "pattern": USERNAME_PATTERN, "not": {"enum": [*FIXED_PATHS, "-"]}},
    "A GitHub login (case-insensitive)",
)
PAGING = [
    _param(
        "page",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        "Return one slice of the list, from 1",
    ),
    _param(
        "per_page",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "Size of the slice (default 30)",
    ),
]
JOB_ID = _param(
    "job_id",
    "path",
    {"type": "string", "format": "uuid"},
    "The search job's id: the request_id its 202 answered with",
)
PREFER = _param(
    "Prefer",
    "header",
    STRING,
    "RFC 7240 preferences: respond-async runs the search as a job; others are ignored, "
    "as the RFC asks",
)

LIST_RESPONSES = {
    "200": _answer(
        "The user's public gists, in GitHub's order",
        _json({"type": "array", "items": _ref("Gist")}),
        {
            "X-Cache": {
                "description": "How the answer was obtained",
                "schema": {
                    "type": "string",
                    "enum": ["HIT", "MISS", "REVALIDATED", "UPDATED", "REFRESHED", "STALE"],
                },
            },
            "X-Total-Count": {"description": "Number of gists in the whole list", "schema": DIGITS},
            "ETag": {"schema": STRING},
            "Cache-Control": {"schema": STRING},
            "Link": {
                "description": "RFC 8288 links to other slices (with page/per_page)",
                "schema": STRING,
            },
        },
    ),
    "304": {"description": "Unchanged since the ETag sent in If-None-Match"},
    **_problems("400"),
    # /- is the search page's prefix (no GitHub login begins with "-")
    "404": {
        "description": "No such user; for /-, the search page's own 404",
        "content": {**PROBLEMS["404"]["content"], **HTML},
    },
    **_problems("429", "500", "502", "503", "504"),
}

STREAM_DESCRIPTION = (
    "With Accept: application/x-ndjson: one JSON object a line as the search goes, "
    "answered once the user's list is known. progress at most every 100 ms; match for "
    "each matching gist once all its files are in (index: its position in the list); "
    "skipped; last done (with cut: null, or where the matches told stopped at the answer "
    "size limit), or error (a problem) when the search failed after the stream began. "
    "page and per_page do not apply. X-Accel-Buffering: no. A many-user search (usernames "
    "or org) begins with users (the users in order), adds username to match and skipped, "
    "users_done and users_total to progress (files counted over every user), tells a user "
    "line when each user's part is complete (its status: success, or the kind of problem "
    "it met, with the problem), and ends with done (users: how many were searched)."
)


def _event(name: str, optional: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """One kind of line of the NDJSON stream: its fields, all required but ``optional``."""
    return {
        "type": "object",
        "required": ["event", *(f for f in fields if f not in optional)],
        "properties": {"event": {"const": name}, **fields},
    }


STREAM_EVENT = {
    "oneOf": [
        _event(
            "progress",
            ("users_done", "users_total"),
            files_done=COUNT,
            files_total=COUNT,
            bytes=COUNT,
            users_done=COUNT,
            users_total=COUNT,
        ),
        _event("match", ("username",), index=COUNT, gist=_ref("MatchedGist"), username=STRING),
        _event("users", usernames={"type": "array", "items": STRING}, left_out=COUNT),
        _event(
            "user",
            ("problem",),
            username=STRING,
            status=STRING,
            total=COUNT,
            cut={"anyOf": [_ref("AnswerCut"), {"type": "null"}]},
            problem=_ref("UserProblem"),
        ),
        _event(
            "skipped",
            ("username",),
            username=STRING,
            index=COUNT,
            id=STRING,
            filename={"type": ["string", "null"]},
            reason=_ref("SkipReason"),
        ),
        _event(
            "done",
            ("cut", "users"),
            total=COUNT,
            status={"const": "success"},
            cut={"anyOf": [_ref("AnswerCut"), {"type": "null"}]},
            users=COUNT,
        ),
        _event("error", problem=_ref("Problem")),
    ]
}

# one user's answer (username), or several users' (usernames or org)
SEARCH_ANSWER = {"oneOf": [_ref("SearchResult"), _ref("ManySearchResult")]}

SEARCH_RESPONSES = {
    "200": _answer(
        f"The search's answer; with Accept: {NDJSON}, a stream of events. " + STREAM_DESCRIPTION,
        {**_json(SEARCH_ANSWER), **_content(NDJSON, STREAM_EVENT)},
        {
            "X-Cache": {"description": "How the searched list was obtained", "schema": STRING},
            "Age": {"description": "Age of a STALE list, in seconds", "schema": DIGITS},
        },
    ),
    "202": _answer(
        "Queued as a job",
        _json(_ref("JobAccepted")),
        {"Location": {"schema": STRING, "required": True}},
    ),
    **_problems("400", "403", "404", "413", "429", "500", "502", "503", "504"),
}

# what the search page says for each status (all of it HTML)
PAGE_WORDS = {
    200: "",
    400: "A field of the form is wrong, said in words",
    404: "No such user, or no such page",
    502: "GitHub failed and nothing is cached",
    503: "GitHub's rate limit, or too many searches: said with when to try again",
    504: "GitHub or the search took too long",
}


def _page(description: str, *codes: int) -> dict[str, Any]:
    """An HTML answer of the search page for each status in ``codes``; ``description``
    is the 200's."""
    words = {**PAGE_WORDS, 200: description}
    return {str(code): {"description": words[code], "content": HTML} for code in codes}


PAGE_FAILURES = (400, 404, 502, 503, 504)

# the page's query fields are a form's: strings, checked by the page itself
PAGE_QUERY = {
    "user": "The GitHub user whose gists are searched",
    "q": "The pattern (RE2 syntax)",
    "i": "1: ignore case",
    "literal": "1: the pattern is plain text",
    "context": "Lines before and after each listed line, 0 to 10",
    "glob": "Only files whose name matches this glob (ignoring case)",
    "page": "Which page of 100 gists, from 1",
}


def _page_query(*names: str) -> list[dict[str, Any]]:
    return [_param(name, "query", STRING, PAGE_QUERY[name]) for name in names]


FRESHNESS_RESPONSES = {
    "200": _answer(
        "The words",
        _json({"type": "object", "required": ["text"], "properties": {"text": STRING}}),
    ),
    "400": _problem("Not a GitHub login (`parameter`: `user`)"),
    "404": _problem(
        "No list of the user is cached (`not-cached`), or GitHub has no such user "
        "(`user-not-found`, remembered)"
    ),
    **_problems("429", "500", "503"),
}

ASSET_RESPONSES = {
    "200": _answer(
        "The asset, cached for ever (immutable)",
        {kind: {"schema": STRING} for kind in ("text/javascript", "text/css", "image/svg+xml")},
        {"Cache-Control": {"schema": {"const": "public, max-age=31536000, immutable"}}},
    ),
    **_page("", 404),
}


WATCH_ID = _param("watch_id", "path", STRING, "The watch's id")
FEED_TOKEN = _param(
    "token", "query", STRING, "The watch's feed token (from its feed_url): no API token needed"
)
AUTH = _param("Authorization", "header", STRING, "Bearer <one of GISTCACHE_API_TOKENS>")
NULLABLE_TEXT = {"type": ["string", "null"]}
WATCH = {
    "type": "object",
    "required": ["id", "usernames", "org", "pattern", "interval", "feed_url", "events_url"],
    "properties": {
        "id": STRING,
        "usernames": {"type": ["array", "null"], "items": STRING},
        "org": NULLABLE_TEXT,
        "pattern": STRING,
        "ignore_case": {"type": "boolean"},
        "literal": {"type": "boolean"},
        "filename": NULLABLE_TEXT,
        "context": COUNT,
        "interval": COUNT,
        "report_existing": {"type": "boolean"},
        "webhook": {
            "type": ["object", "null"],
            "properties": {"url": STRING},
        },
        "feed_url": STRING,
        "events_url": STRING,
        "page_url": STRING,
        "created_at": STRING,
        "next_run_at": STRING,
        "last_run_at": NULLABLE_TEXT,
        "paused_until": NULLABLE_TEXT,
        "last_error": NULLABLE_TEXT,
        "runs": COUNT,
    },
}
WATCH_REQUEST = {
    "type": "object",
    "required": ["pattern"],
    "description": "Exactly one of usernames, username and org; docs/watches.md",
    "properties": {
        "usernames": {"type": "array", "items": STRING, "minItems": 1, "maxItems": 100},
        "username": STRING,
        "org": STRING,
        "pattern": STRING,
        "ignore_case": {"type": "boolean"},
        "literal": {"type": "boolean"},
        "filename": STRING,
        "context": {"type": "integer", "minimum": 0, "maximum": 10},
        "interval": {"type": "integer", "minimum": 60, "maximum": 86400},
        "report_existing": {"type": "boolean"},
        "webhook": {
            "type": "object",
            "required": ["url", "secret"],
            "properties": {"url": STRING, "secret": STRING},
        },
    },
}
DELIVERIES = _json(
    {
        "type": "object",
        "required": ["deliveries"],
        "properties": {"deliveries": {"type": "array", "items": {"type": "object"}}},
    }
)
WATCH_PROBLEMS = {
    "401": PROBLEMS["401"],
    "403": PROBLEMS["403"],
    "404": _problem("No such watch for this token; every path when no API token is configured"),
    **_problems("429", "500", "503"),
}
FEED_PROBLEMS = {
    "404": _problem("No such watch, or not its feed token; or no API token is configured"),
    **_problems("429", "500", "503"),
}


class Operation(NamedTuple):
    """One row of the document's paths: the method on the path, what it is, its input
    and its answers by status."""

    method: str
    path: str
    operation_id: str
    summary: str
    responses: dict[str, Any]
    parameters: list[dict[str, Any]] | None = None
    request_body: dict[str, Any] | None = None
    description: str | None = None
    tags: list[str] | None = None


PAGE = ["page"]  # the search page's operations: HTML for people, under /-/ (never a login)

OPERATIONS = [
    # method, path, operationId, summary, responses, parameters, and what few have more
    Operation("get", "/", "searchPage", "The search page",
              _page("The search form", 200), tags=PAGE),
    Operation("get", "/-/search", "searchResultsPage",
              "A search's results rendered as HTML (no JavaScript needed)",
              _page("The results (or the empty form)", 200, *PAGE_FAILURES),
              _page_query("user", "q", "i", "literal", "context", "glob", "page"), tags=PAGE),
    Operation("get", "/-/users/{username}", "userPage",
              "A user's gists as a table, with a search box",
              _page("The user's gists", 200, *PAGE_FAILURES),
              [_param("username", "path", STRING)], tags=PAGE),
    Operation("get", "/-/freshness", "freshnessWords",
              "How fresh a user's cached list is, in the page's words",
              FRESHNESS_RESPONSES, _page_query("user"), tags=PAGE,
              description="Read from the cache alone: GitHub is never asked."),
    Operation("get", "/-/static/{name}", "pageAsset",
              "The page's stylesheet, script and icon, named by a content hash",
              ASSET_RESPONSES, [_param("name", "path", STRING)], tags=PAGE),
    Operation("get", "/-/watches/{watch_id}", "watchPage",
              "A watch's page: its search and events, newest first (read with its feed token)",
              {"200": {"description": "The watch's page", "content": HTML},
               "404": {"description": "No such watch, or not its feed token",
                       "content": HTML}},
              [_param("watch_id", "path", STRING), FEED_TOKEN], tags=PAGE),
    Operation("get", "/ping", "ping", "Answers pong",
              {"200": _answer("pong", TEXT)}),
    Operation("get", "/healthz", "healthz", "Liveness: 200 while the process runs",
              {"200": _answer("Alive", STATUS_JSON)}),
    Operation("get", "/readyz", "readyz",
              "Readiness: 200 when the database answers and takes writes",
              {"200": _answer("Ready", STATUS_JSON),
               "503": _problem("The database does not answer, or is read-only",
                               retry_after=True)}),
    Operation("get", "/metrics", "metrics", "Prometheus metrics",
              {"200": _answer("Metrics", TEXT)}),
    Operation("get", "/openapi.json", "openapi", "This document",
              {"200": _answer("OpenAPI 3.1", _json({"type": "object"}))}),
    Operation("get", "/{username}", "listGists",
              "A user's public gists (fixed paths take precedence)",
              LIST_RESPONSES, [USERNAME, *PAGING]),
    Operation("get", "/api/v1/users/{username}/gists", "listUserGists",
              "A user's public gists",
              LIST_RESPONSES, [USERNAME, *PAGING]),
    Operation("post", "/api/v1/search", "search",
              "Which of a user's (or several users', or an organisation's members') gists "
              "contain a pattern (RE2 syntax)",
              SEARCH_RESPONSES, [PREFER],
              request_body={"required": True, "content": _json(_ref("SearchRequest"))}),
    Operation("get", "/api/v1/search/{job_id}", "searchStatus", "A search job's state",
              {"200": _answer("The job", _json(_ref("Job"))),
               **_problems("404", "429", "500", "503")},
              [JOB_ID]),
    Operation("get", "/api/v1/search_result/{job_id}", "searchResult",
              "A finished search job's answer",
              {"200": _answer("The same body as a synchronous search",
                              _json(SEARCH_ANSWER)),
               "409": _problem("The job has not finished", retry_after=True),
               **_problems("400", "404", "429", "500", "502", "503", "504")},
              [JOB_ID]),
    Operation("post", "/api/v1/watches", "createWatch",
              "Watch a search: re-run it on its own and tell each new match once",
              {"201": _answer("The watch", _json(WATCH),
                              {"Location": {"schema": STRING, "required": True}}),
               **_problems("400", "413"), **WATCH_PROBLEMS},
              [AUTH], request_body={"required": True, "content": _json(WATCH_REQUEST)}),
    Operation("get", "/api/v1/watches", "listWatches", "This token's watches",
              {"200": _answer("The watches", _json({
                  "type": "object", "required": ["watches"],
                  "properties": {"watches": {"type": "array", "items": WATCH}}})),
               **WATCH_PROBLEMS},
              [AUTH]),
    Operation("get", "/api/v1/watches/{watch_id}", "getWatch", "A watch",
              {"200": _answer("The watch", _json(WATCH)), **WATCH_PROBLEMS},
              [WATCH_ID, AUTH]),
    Operation("delete", "/api/v1/watches/{watch_id}", "deleteWatch",
              "Stop a watch and forget its events",
              {"204": {"description": "Deleted"}, **WATCH_PROBLEMS},
              [WATCH_ID, AUTH]),
    Operation("get", "/api/v1/watches/{watch_id}/deliveries", "watchDeliveries",
              "A watch's webhook deliveries, newest first, each with its attempts",
              {"200": _answer("The deliveries", DELIVERIES), **WATCH_PROBLEMS},
              [WATCH_ID, AUTH]),
    Operation("get", "/api/v1/watches/{watch_id}/feed.atom", "watchFeed",
              "A watch's latest 50 events as an Atom feed (RFC 4287), newest first",
              {"200": _answer("The feed", _content("application/atom+xml", STRING)),
               **FEED_PROBLEMS},
              [WATCH_ID, FEED_TOKEN]),
    Operation("get", "/api/v1/watches/{watch_id}/events", "watchEvents",
              "A watch's events as Server-Sent Events, resumable with Last-Event-ID",
              {"200": _answer("The stream: id, event: match, data: the event's JSON; a "
                              "comment line every 15 s",
                              _content("text/event-stream", STRING)),
               **FEED_PROBLEMS},
              [WATCH_ID, FEED_TOKEN,
               _param("Last-Event-ID", "header", DIGITS, "Resume after this event")]),
]  # fmt: skip


def _operation(row: Operation) -> dict[str, Any]:
    """A row as OpenAPI writes an operation (the fields it has, in the usual order)."""
    fields = {
        "operationId": row.operation_id,
        "summary": row.summary,
        "description": row.description,
        "tags": row.tags,
        "parameters": row.parameters,
        "requestBody": row.request_body,
        "responses": row.responses,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for row in OPERATIONS:
        paths.setdefault(row.path, {})[row.method] = _operation(row)
    return paths


REF_TEMPLATE = "#/components/schemas/{model}"
# the components and the shapes they are generated from: the request as it is
# validated, the answers as they are serialised
COMPONENTS: dict[str, tuple[Any, JsonSchemaMode]] = {
    "SearchRequest": (schemas.SearchBody, "validation"),
    "SearchResult": (schemas.SearchResultJSON, "serialization"),
    "ManySearchResult": (schemas.ManySearchResultJSON, "serialization"),
    "AnswerCut": (schemas.AnswerCutJSON, "serialization"),
    "JobAccepted": (schemas.JobAcceptedJSON, "serialization"),
    "Job": (schemas.JobJSON, "serialization"),
    "Problem": (schemas.ProblemJSON, "serialization"),
    "Gist": (schemas.GistJSON, "serialization"),
}


def component_schemas() -> dict[str, Any]:
    """Each component's JSON Schema, with the shapes it nests (``$defs``) made
    components of their own."""
    components: dict[str, Any] = {}
    for name, (shape, mode) in COMPONENTS.items():
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            schema = shape.model_json_schema(
                ref_template=REF_TEMPLATE, mode=mode, schema_generator=schemas.PublicNames
            )
        else:
            schema = TypeAdapter(shape).json_schema(
                ref_template=REF_TEMPLATE, mode=mode, schema_generator=schemas.PublicNames
            )
        for nested, definition in schema.pop("$defs", {}).items():
            if components.setdefault(nested, definition) != definition:
                raise RuntimeError(f"two shapes are called {nested}")
        if components.setdefault(name, schema) != schema:
            raise RuntimeError(f"two shapes are called {name}")
    return components


def build_openapi() -> dict[str, Any]:
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
        "paths": _paths(),
        "components": {
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before asking again",
                    "schema": DIGITS,
                }
            },
            "schemas": component_schemas(),
        },
    }


OPENAPI = build_openapi()


async def document(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)
