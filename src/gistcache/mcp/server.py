"""The MCP server on the official SDK (``mcp``): the tools, whose JSON Schemas the SDK
generates from their typed arguments and answers, and the resources.

A failure a client can be told of is a tool error (a resource error, for resources) in
the page's own words (``web.pages.failures``): unknown user, a pattern RE2 refuses and
why, GitHub's rate limit and when to try again. A bug is logged here with its traceback
and told as an opaque sentence; no traceback or internal text reaches the client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, TypeVar

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.uri_template import UriTemplate
from mcp_types import InputRequiredResult, ToolAnnotations
from pydantic import AnyUrl, Field

from gistcache import __version__
from gistcache.domain.errors import (
    FailureKind,
    GistNotFound,
    InvalidLogin,
    UserNotFound,
    kind_of,
)
from gistcache.domain.matching import MAX_LINE_CHARS, MAX_LINES_PER_FILE
from gistcache.domain.requests import MAX_CONTEXT, MAX_PAGE, MAX_USERS, USERNAME_PATTERN
from gistcache.mcp.answers import (
    ANSWER_BYTES,
    DEFAULT_MAX_RESULTS,
    DEFAULT_PER_PAGE,
    GIST_FILE_URI,
    MAX_PER_PAGE,
    SLICE_LINES,
    USER_FILES_URI,
    Answers,
    FileSlice,
    GistPage,
    Refusal,
    SearchOut,
)
from gistcache.services.failures import describe
from gistcache.web.pages.failures import failure_message

log = logging.getLogger(__name__)

T = TypeVar("T")

SOMETHING_WENT_WRONG = (
    "Something went wrong: the server failed to answer. Try again, or tell whoever runs it."
)
INSTRUCTIONS = (
    "gistcache lists and searches GitHub users' public gists through a cache that respects "
    "GitHub's rate limit: a repeated call while the cache is fresh costs GitHub nothing. "
    "Start with search_gists to find lines, or list_gists to see a user's gists; read a "
    "file with get_gist_file (a slice of lines at a time). Answers are bounded: when one "
    "is cut, its 'more' field says how to ask for the rest."
)
# what a model reads of each tool before it calls it: what it answers, and its bounds
_BOUND = f"about {ANSWER_BYTES // 1024} KiB"
LIST_GISTS = (
    "A GitHub user's public gists, newest first: each with its id, description, html_url, "
    "created_at and updated_at, and its files (filename, language, MIME type, size, and a "
    f"gist:// resource URI). Paged; an answer also stops at {_BOUND}, and then 'more' says "
    "which page to ask for next."
)
SEARCH_GISTS = (
    "Search the lines of one GitHub user's public gists, as grep does: for each matching "
    f"gist, its files' matching lines (the first {MAX_LINES_PER_FILE} of a file), each with "
    f"its line number, the line (a window of {MAX_LINE_CHARS} characters around the match "
    "when longer) and its link on GitHub. Bounded by max_results gists and "
    f"{_BOUND}; when cut, 'more' says how to ask for the rest. Give exactly one of "
    "username, usernames (up to 100 users) or org (an organisation's public members): "
    "with usernames or org, 'users' holds each user's matches in order, and a user that "
    "could not be searched says why there without failing the others."
)
GET_GIST_FILE = (
    "The text of a file of a public gist: lines start_line to end_line, at most "
    f"{SLICE_LINES} lines and {_BOUND} at a time, with the file's total line count; when "
    "cut, 'more' says where to go on."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True)

Username = Annotated[
    str, Field(pattern=USERNAME_PATTERN, description="a GitHub login, such as octocat")
]
SearchedUser = Annotated[
    str | None,
    Field(
        pattern=USERNAME_PATTERN,
        description="a GitHub login, such as octocat (or give usernames or org instead)",
    ),
]
SearchedUsers = Annotated[
    list[Annotated[str, Field(pattern=USERNAME_PATTERN)]] | None,
    Field(
        min_length=1,
        max_length=MAX_USERS,
        description="several GitHub logins, searched in this order (instead of username)",
    ),
]
SearchedOrg = Annotated[
    str | None,
    Field(
        pattern=USERNAME_PATTERN,
        description="a GitHub organisation: its public members are searched (instead of username)",
    ),
]


def failure_words(exc: BaseException, answers: Answers, user: str = "") -> str | None:
    """What a failure means, in the page's words; None for a bug."""
    if isinstance(exc, Refusal):
        return str(exc)
    if kind_of(exc) is FailureKind.INVALID_PATTERN:
        failure = describe(exc)
        detail = failure.detail if failure is not None else str(exc)
        return (
            f"RE2 does not accept this pattern: {detail}. Set literal to true to search "
            "for the text as it is."
        )
    message = failure_message(exc, answers.clock(), user=user)
    if message is None:
        return None
    return f"{message.title}: {message.message}"


async def _tool(answers: Answers, call: Callable[[], Awaitable[T]], user: str = "") -> T:
    try:
        return await call()
    except Exception as exc:
        words = failure_words(exc, answers, user)
        if words is None:
            log.exception("MCP tool failed")
            raise ToolError(SOMETHING_WENT_WRONG) from None
        raise ToolError(words) from None


class GistServer(MCPServer[Any]):
    """The SDK's server, but for a gist file's MIME type: a resource template has one
    for all its resources, and each file has its own (GitHub's ``type``)."""

    def __init__(self, answers: Answers) -> None:
        super().__init__(
            "gistcache", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
        )
        self.answers = answers
        self._gist_file = UriTemplate.parse(GIST_FILE_URI)

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        params = self._gist_file.match(str(uri))
        if params is None:
            return await super().read_resource(uri, context)
        gist_id, filename = params["gist_id"], params["filename"]
        if not isinstance(gist_id, str) or not isinstance(filename, str):  # pragma: no cover
            raise ResourceNotFoundError(f"Unknown resource: {uri}")
        content, mime_type = await self.read_file(gist_id, filename)
        return [ReadResourceContents(content=content, mime_type=mime_type)]

    async def read_file(self, gist_id: str, filename: str) -> tuple[str | bytes, str]:
        try:
            return await self.answers.resource(gist_id, filename)
        except (GistNotFound, Refusal) as exc:
            raise ResourceNotFoundError(failure_words(exc, self.answers) or "") from None
        except Exception as exc:
            words = failure_words(exc, self.answers)
            if words is None:
                log.exception("MCP resource failed")
                raise ResourceError(SOMETHING_WENT_WRONG) from None
            raise ResourceError(words) from None


def build_server(answers: Answers) -> GistServer:
    """The MCP server over ``answers``: its tools and resources."""
    server = GistServer(answers)

    @server.tool(annotations=READ_ONLY, description=LIST_GISTS)
    async def list_gists(
        username: Username,
        page: Annotated[int, Field(ge=1, le=MAX_PAGE, description="1 for the newest")] = 1,
        per_page: Annotated[
            int, Field(ge=1, le=MAX_PER_PAGE, description="gists in one answer")
        ] = DEFAULT_PER_PAGE,
    ) -> GistPage:
        return await _tool(answers, lambda: answers.list_gists(username, page, per_page), username)

    @server.tool(annotations=READ_ONLY, description=SEARCH_GISTS)
    async def search_gists(
        pattern: Annotated[
            str,
            Field(
                min_length=1,
                description="an RE2 regular expression (no lookaround "
                "or backreferences), or a plain string with literal=true",
            ),
        ],
        literal: Annotated[bool, Field(description="the pattern is plain text")] = False,
        ignore_case: bool = False,
        filename: Annotated[
            str | None,
            Field(
                description="search only files whose name matches this glob, "
                "such as *.py (case ignored)"
            ),
        ] = None,
        context: Annotated[
            int,
            Field(
                ge=0, le=MAX_CONTEXT, description="lines shown before and after each matching line"
            ),
        ] = 0,
        max_results: Annotated[
            int, Field(ge=1, le=MAX_PER_PAGE, description="matching gists in one answer")
        ] = DEFAULT_MAX_RESULTS,
        page: Annotated[
            int,
            Field(
                ge=1, le=MAX_PAGE, description="which max_results matching gists: 1 for the first"
            ),
        ] = 1,
        username: SearchedUser = None,
        usernames: SearchedUsers = None,
        org: SearchedOrg = None,
    ) -> SearchOut:
        given = [
            n
            for n, v in (("username", username), ("usernames", usernames), ("org", org))
            if v is not None
        ]
        if len(given) != 1:
            raise ToolError("give exactly one of username, usernames or org")
        if username is None:

            def many() -> Awaitable[SearchOut]:
                return answers.search_many(
                    usernames,
                    org,
                    pattern,
                    literal=literal,
                    ignore_case=ignore_case,
                    filename=filename,
                    context=context,
                    page=page,
                    max_results=max_results,
                )

            return await _tool(answers, many, org or "")

        def call() -> Awaitable[SearchOut]:
            return answers.search_gists(
                username,
                pattern,
                literal=literal,
                ignore_case=ignore_case,
                filename=filename,
                context=context,
                page=page,
                max_results=max_results,
            )

        return await _tool(answers, call, username)

    @server.tool(annotations=READ_ONLY, description=GET_GIST_FILE)
    async def get_gist_file(
        gist_id: Annotated[
            str, Field(description="the gist's id, as list_gists or search_gists give it")
        ],
        filename: str,
        start_line: Annotated[int, Field(ge=1, description="the first line to give")] = 1,
        end_line: Annotated[
            int | None, Field(ge=1, description="the last line to give (inclusive)")
        ] = None,
    ) -> FileSlice:
        return await _tool(
            answers, lambda: answers.get_gist_file(gist_id, filename, start_line, end_line)
        )

    @server.resource(
        GIST_FILE_URI,
        name="gist_file",
        description="a file of a public gist: its text (at most its first MiB), with its MIME type",
    )
    async def gist_file(gist_id: str, filename: str) -> str | bytes:
        content, _ = await server.read_file(gist_id, filename)
        return content

    @server.resource(
        USER_FILES_URI,
        name="user_gist_files",
        description="every file of a user's public gists, as a list of gist:// resources "
        "(JSON: uri, name, mimeType, size, description)",
        mime_type="application/json",
    )
    async def user_gist_files(username: str) -> str:
        try:
            return await answers.user_files(username)
        except (UserNotFound, InvalidLogin) as exc:
            words = failure_words(exc, answers, username)
            raise ResourceNotFoundError(words or "") from None
        except Exception as exc:
            words = failure_words(exc, answers, username)
            if words is None:
                log.exception("MCP resource failed")
                raise ResourceError(SOMETHING_WENT_WRONG) from None
            raise ResourceError(words) from None

    return server
