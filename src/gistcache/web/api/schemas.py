"""The API's typed shapes (pydantic v2): the search request body, whose shape is
checked strictly (no coercion, no unknown field, null is no value) before its values go
to the domain's rules (``domain.requests.search_request``, the page's and the command
line's too); the answers of searches and jobs, rendered through them; the list items and
problems, described for the OpenAPI document (the list's cached bytes are made by the
domain, never through these).

The wire shapes have names of their own (``SearchBody``, ``SearchResultJSON``,
``ProblemJSON``, ...), apart from the domain's types they carry; each is named in the
OpenAPI document by its public name (its title: ``SearchRequest``, ``SearchResult``,
``Problem``), which ``PublicNames`` gives the nested ones too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, NotRequired, TypeVar

from pydantic import (
    MISSING,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic.config import ExtraValues
from pydantic.json_schema import GenerateJsonSchema
from typing_extensions import TypedDict

from gistcache.domain import requests
from gistcache.domain.errors import InvalidInput, InvalidLogin
from gistcache.domain.matching import MAX_LINE_CHARS, MAX_LINES_PER_FILE, MAX_PATTERN_LENGTH
from gistcache.domain.requests import (
    GLOB_PATTERN,
    MAX_GLOB_LENGTH,
    MAX_PER_PAGE,
    NOT_BLANK_PATTERN,
    SEARCH_BOUNDS,
    USERNAME_PATTERN,
)
from gistcache.domain.results import JobStatus, SkipReason

# --- the request -------------------------------------------------------------------------


def _bounds(name: str) -> dict[str, Any]:
    low, high = SEARCH_BOUNDS[name]
    return {"minimum": low, "maximum": high}


class SearchBody(BaseModel):
    """The body of ``POST /api/v1/search``."""

    # the shape only (strict: "5" is no integer, true no page number, 1 no boolean; a
    # field left out takes its default, and null is the value of none of them). The
    # values are the domain's rules' to check (search_request, as for the page and the
    # command line), the username's and the pattern's presence too, so that every fault
    # is told in the rules' order; the document states the rules (required, minimum,
    # pattern ...)
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        title="SearchRequest",
        json_schema_extra={
            "required": ["pattern"],
            # exactly one of the three says whose gists are searched
            "oneOf": [{"required": [name]} for name in ("username", "usernames", "org")],
        },
    )

    username: str | MISSING = Field(
        MISSING,
        description="A GitHub login (case-insensitive). Exactly one of username, usernames "
        "and org is given",
        json_schema_extra={"pattern": USERNAME_PATTERN},
    )
    # the document's order, which is older than the rules' order (SEARCH_FIELDS)
    ignore_case: bool = Field(False, description="Match letters in either case")
    literal: bool = Field(
        False, description="The pattern is a fixed string, not RE2 syntax (as grep -F)"
    )
    pattern: str | MISSING = Field(
        MISSING,
        description="RE2 syntax (or a fixed string with literal); must contain a "
        "non-blank character",
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_PATTERN_LENGTH,
            "pattern": NOT_BLANK_PATTERN,
        },
    )
    page: int = Field(
        1, description="Which page of matching gists, from 1", json_schema_extra=_bounds("page")
    )
    per_page: int = Field(
        MAX_PER_PAGE,
        description="Matching gists per page",
        json_schema_extra=_bounds("per_page"),
    )
    context: int = Field(
        0,
        description="Lines shown before and after each listed line (as grep -C)",
        json_schema_extra=_bounds("context"),
    )
    filename: str | MISSING = Field(
        MISSING,
        description="A glob on file names (*.py, test_*, [ab]?.md), case-insensitive; "
        "other files are not searched. Left out: every file",
        json_schema_extra={"maxLength": MAX_GLOB_LENGTH, "pattern": GLOB_PATTERN},
    )
    usernames: list[Any] | MISSING = Field(
        MISSING,
        description=f"Several GitHub logins, searched in this order (1 to {requests.MAX_USERS}; "
        "a login given twice, in any case, is searched once): the answer groups the matches "
        "by user, each with its own status",
        json_schema_extra={
            "items": {"type": "string", "pattern": USERNAME_PATTERN},
            "minItems": 1,
            "maxItems": requests.MAX_USERS,
        },
    )
    org: str | MISSING = Field(
        MISSING,
        description="A GitHub organisation's login: its public members are searched, in "
        "GitHub's order, as with usernames",
        json_schema_extra={"pattern": USERNAME_PATTERN},
    )
    proceed_cached: bool = Field(
        False,
        description="With usernames or org: search even when the users not cached (or "
        "due for revalidation) would need more GitHub requests than its rate limit has "
        "left (else a 429 github-cost problem saying what it would cost); only for "
        "usernames and org",
    )
    run_async: bool = Field(
        False,
        alias="async",
        description="Run as a job: 202 with its request id (as Prefer: respond-async)",
    )


# --- the answers -------------------------------------------------------------------------
# TypedDicts: the renderers build plain dicts (checked by mypy against these), which the
# adapters below serialise in pydantic's core; building a model per line would cost a
# search's answer several times its rendering (see benchmarks/validation.py).

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
# each wire shape's name in the OpenAPI document, by its class's name
PUBLIC_NAMES: dict[str, str] = {SearchBody.__name__: "SearchRequest"}
_Shape = TypeVar("_Shape", bound=type)


def _wire(public: str, *, extra: ExtraValues = "forbid") -> Callable[[_Shape], _Shape]:
    """An answer's shape, named ``public`` in the OpenAPI document."""

    def named(shape: _Shape) -> _Shape:
        PUBLIC_NAMES[shape.__name__] = public
        return with_config(ConfigDict(extra=extra, title=public))(shape)

    return named


class PublicNames(GenerateJsonSchema):
    """JSON Schema whose ``$defs`` name each wire shape by its public name."""

    def normalize_name(self, name: str) -> str:
        return super().normalize_name(PUBLIC_NAMES.get(name, name))


@_wire("ContextLine")
class ContextLineJSON(TypedDict):
    """A line shown around a listed line, as grep -C shows it."""

    line_number: Annotated[int, Field(ge=1)]
    text: Annotated[str, Field(max_length=MAX_LINE_CHARS)]
    line_length: NotRequired[
        Annotated[
            int,
            Field(
                gt=MAX_LINE_CHARS,
                description=f"Only on a line longer than {MAX_LINE_CHARS} characters, whose "
                "text is its start: the whole line's length in characters",
            ),
        ]
    ]


@_wire("LineMatch")
class LineMatchJSON(TypedDict):
    """A matching line (at most the first few of a file are listed)."""

    line_number: Annotated[int, Field(ge=1)]
    column: NotRequired[
        Annotated[
            int,
            Field(
                ge=1,
                description="Where in the line (1-based, in characters) text starts: 1 "
                f"unless the line is longer than {MAX_LINE_CHARS} characters, when text is "
                "a window of the line around its first match. Missing only from results of "
                "jobs that finished before it was added (their text starts at 1)",
            ),
        ]
    ]
    text: Annotated[
        str,
        Field(
            max_length=MAX_LINE_CHARS,
            description="The line, or the window of it that holds its first match",
        ),
    ]
    line_length: NotRequired[
        Annotated[
            int,
            Field(
                gt=MAX_LINE_CHARS,
                description=f"Only on a line longer than {MAX_LINE_CHARS} characters, whose "
                "text is a window of it: the whole line's length in characters (the window "
                "ends before the line does when column - 1 + the length of text is less)",
            ),
        ]
    ]
    ranges: NotRequired[
        Annotated[
            list[tuple[int, int]],
            Field(
                description="Every match in text as [start, end), in Unicode code points, "
                "left to right, non-overlapping (missing only from results of jobs that "
                "finished before it was added)"
            ),
        ]
    ]
    url: NotRequired[
        Annotated[
            str,
            Field(
                description="The line on GitHub: the gist's html_url + "
                "#file-<name>-L<line_number>, <name> the file name lowercased with every "
                "character other than an ASCII letter, digit, _ or - replaced by -"
            ),
        ]
    ]
    before: NotRequired[
        Annotated[
            list[ContextLineJSON],
            Field(description="Context lines before this one that no earlier line showed"),
        ]
    ]
    after: NotRequired[
        Annotated[list[ContextLineJSON], Field(description="Context lines after it")]
    ]


@_wire("MatchedFile")
class MatchedFileJSON(TypedDict):
    filename: str
    language: str | None
    size: int | None
    raw_url: str | None
    match_count: Annotated[int, Field(ge=1, description="Every matching line, even unlisted")]
    lines: Annotated[list[LineMatchJSON], Field(json_schema_extra={"maxItems": MAX_LINES_PER_FILE})]


@_wire("MatchedGist")
class MatchedGistJSON(TypedDict):
    id: str
    html_url: str
    description: str | None
    updated_at: Timestamp
    files: list[MatchedFileJSON]


@_wire("SkippedFile")
class SkippedFileJSON(TypedDict):
    """A file (or, with filename null, part of a gist's file list) that was not searched."""

    id: Annotated[str, Field(description="The gist's id")]
    filename: str | None
    reason: SkipReason


@_wire("NextPage")
class NextPageJSON(TypedDict):
    """The same search with these values starts with the first gist not listed."""

    page: Annotated[int, Field(ge=1)]
    per_page: Annotated[int, Field(ge=1)]


@_wire("AnswerCut")
class AnswerCutJSON(TypedDict):
    """Where an answer stopped at the server's answer size limit (about
    GISTCACHE_MAX_ANSWER_BYTES of matching gists), and how to ask for the rest."""

    limit_bytes: Annotated[int, Field(ge=1, description="The server's answer size limit")]
    listed: Annotated[int, Field(ge=0, description="Matching gists listed before the cut")]
    lines_cut: Annotated[
        bool,
        Field(
            description="The last listed gist alone was over the limit: some of its lines "
            "are not listed (its files' match_count still count them)"
        ),
    ]
    next: Annotated[
        NextPageJSON | None,
        Field(
            description="The page and per_page of the same search that start with the first "
            "gist not listed; null when none follows (or in a stream, which is not in the "
            "list's order: ask the plain search)"
        ),
    ]


@_wire("SearchResult")
class SearchResultJSON(TypedDict):
    """A search's answer: one page of the matching gists, in the list's order."""

    status: Literal["success"]
    username: str
    pattern: str
    total: Annotated[int, Field(ge=0, description="Matching gists on every page")]
    matches: list[MatchedGistJSON]
    skipped: list[SkippedFileJSON]
    cut: NotRequired[
        Annotated[
            AnswerCutJSON | None,
            Field(
                description="null, or where the page stopped at the answer size limit "
                "(missing only from results of jobs that finished before it was added)"
            ),
        ]
    ]


@_wire("UserProblem")
class UserProblemJSON(TypedDict):
    """Why one user's part of a many-user search failed (the problem a search of that
    user alone would have answered with)."""

    type: str
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str


@_wire("UserResult")
class UserResultJSON(TypedDict):
    """One user's part of a many-user search: its matches (as a single search's
    answer has them), or, with another status than success, the problem it met."""

    username: str
    status: Annotated[
        str,
        Field(
            description="success, or the kind of problem this user met (user-not-found, "
            "github-rate-limited, github-unavailable, github-timeout ...)"
        ),
    ]
    total: Annotated[int, Field(ge=0, description="Matching gists on every page (0 on failure)")]
    matches: list[MatchedGistJSON]
    skipped: list[SkippedFileJSON]
    cut: AnswerCutJSON | None
    problem: NotRequired[UserProblemJSON]


@_wire("ManySearchResult")
class ManySearchResultJSON(TypedDict):
    """A many-user search's answer (usernames or org): each user's part, in the order the
    users were given (an organisation's members in GitHub's order)."""

    status: Literal["success"]
    usernames: Annotated[list[str], Field(description="The users searched, in order")]
    org: str | None
    pattern: str
    total: Annotated[int, Field(ge=0, description="Matching gists of every user")]
    left_out: Annotated[
        int,
        Field(
            ge=0,
            description=f"An organisation's public members past its first "
            f"{requests.MAX_USERS}, not searched (0 for usernames)",
        ),
    ]
    users: list[UserResultJSON]


# a job's id; named request_id in the answers since jobs began (the HTTP request's own
# id is X-Request-ID, and a problem's request_id)
JobId = Annotated[
    str,
    Field(
        description="The search job's id (not the X-Request-ID of the request that queued it)",
        json_schema_extra={"format": "uuid"},
    ),
]


@_wire("JobAccepted")
class JobAcceptedJSON(TypedDict):
    """A search queued as a job; its state is at ``Location``."""

    request_id: JobId


@_wire("Problem", extra="allow")
class ProblemJSON(TypedDict):
    """An RFC 9457 problem; some carry more: field, fields, parameter, job_status."""

    type: str
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    instance: NotRequired[str]
    request_id: NotRequired[str]


@_wire("JobProgress")
class JobProgressJSON(TypedDict):
    """How far a running (or finished) job's search has come."""

    files_done: Annotated[int, Field(ge=0)]
    files_total: Annotated[int, Field(ge=0)]


@_wire("Job")
class JobJSON(TypedDict):
    """A search job's state."""

    request_id: JobId
    status: JobStatus
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    error: Annotated[ProblemJSON | None, Field(description="The problem of a failed job")]
    progress: Annotated[
        JobProgressJSON | None,
        Field(description="Files searched so far; null until the search knows its files"),
    ]


# --- the list (described only: the cached list is served as the domain rendered it) ----


@_wire("GistFile")
class GistFileJSON(TypedDict):
    filename: str
    language: str | None
    type: str | None
    size: int | None
    raw_url: str | None


@_wire("Gist")
class GistJSON(TypedDict):
    """A gist as ``domain.gists.Gist.to_json`` renders it."""

    id: str
    html_url: str
    description: str | None
    public: bool
    created_at: Timestamp
    updated_at: Timestamp
    comments: Annotated[int, Field(ge=0)]
    owner: str | None
    files: list[GistFileJSON]


SEARCH_RESULT: TypeAdapter[SearchResultJSON] = TypeAdapter(SearchResultJSON)
MANY_SEARCH_RESULT: TypeAdapter[ManySearchResultJSON] = TypeAdapter(ManySearchResultJSON)
MATCHED_GIST: TypeAdapter[MatchedGistJSON] = TypeAdapter(MatchedGistJSON)
ANSWER_CUT: TypeAdapter[AnswerCutJSON] = TypeAdapter(AnswerCutJSON)
JOB: TypeAdapter[JobJSON] = TypeAdapter(JobJSON)
JOB_ACCEPTED: TypeAdapter[JobAcceptedJSON] = TypeAdapter(JobAcceptedJSON)
GIST_LIST: TypeAdapter[list[GistJSON]] = TypeAdapter(list[GistJSON])


# --- the body's problems -----------------------------------------------------------------

# the body's fields, in the order their faults are told
SEARCH_FIELDS = (
    "username",
    "usernames",
    "org",
    "pattern",
    "ignore_case",
    "page",
    "per_page",
    "context",
    "literal",
    "filename",
    "proceed_cached",
    "async",
)
_TYPE_NAMES = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "list_type": "a list of logins",
}
WHO = ("username", "usernames", "org")  # whose gists: exactly one of these


def parse_search(
    body: Any,
) -> tuple[requests.SearchRequest | requests.ManySearchRequest, bool]:
    """A validated search request (a decoded JSON body): one user's (username), or
    several users' (usernames or org); and whether it asked to run as a job. Of several
    faults the client is told one: an unknown field, else a value of the wrong type (in
    the order of ``SEARCH_FIELDS``), else more than one of username, usernames and org
    (the second named), else the first rule broken, in the order the rules are checked."""
    try:
        shape = SearchBody.model_validate(body)
    except ValidationError as exc:
        raise _shape_fault(exc) from None
    fields = shape.model_dump(exclude={"run_async"})  # without the fields left out
    given = [name for name in WHO if name in fields]
    if len(given) > 1:
        raise InvalidInput(
            given[1], f"give exactly one of username, usernames and org, not {' and '.join(given)}"
        )
    try:
        request: requests.SearchRequest | requests.ManySearchRequest
        if given and given[0] != "username":
            request = requests.many_search_request(
                fields.pop("usernames", None),
                fields.pop("org", None),
                fields.pop("pattern", None),
                **fields,
            )
        else:
            if fields.pop("proceed_cached", False):
                raise InvalidInput(
                    "proceed_cached", "proceed_cached applies to usernames and org only"
                )
            request = requests.search_request(
                fields.pop("username", None), fields.pop("pattern", None), **fields
            )
    except InvalidLogin as fault:
        # a body's field, named as every other refused field is
        raise InvalidLogin(fault.field, fault.detail, given_as="field") from None
    return request, shape.run_async


def _shape_fault(exc: ValidationError) -> InvalidInput:
    """The one fault of a body of the wrong shape that the client is told of (pydantic's
    own messages and URLs never reach the client): an unknown field, a body that is no
    object, or a value of the wrong type."""
    errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return InvalidInput(None, f"unknown field(s): {', '.join(unknown)}", unknown=unknown)
    if any(not e["loc"] for e in errors):  # the body itself: not an object
        return InvalidInput(None, "the body must be a JSON object")
    error = min(errors, key=lambda e: SEARCH_FIELDS.index(str(e["loc"][0])))
    name = str(error["loc"][0])
    wanted = _TYPE_NAMES.get(error["type"])
    if wanted is None:  # pragma: no cover - a strict type with no words yet: a bug
        return InvalidInput(name, f"{name} is not valid")
    return InvalidInput(name, f"{name} must be {wanted}")
