"""The fake GitHub's GraphQL API: ``POST /graphql`` (``/api/graphql`` behind an Enterprise
``/api/v3`` prefix), checked and executed against GitHub's published schema (``schema``).

What it models of GitHub (docs/development.md, "The fake's GraphQL API", says why):

- a token is required: 401 and GitHub's JSON message without one;
- a query is parsed and validated against the schema: a field GitHub does not have, a
  wrong argument or type fails as on GitHub (HTTP 200, ``errors``, no ``data``);
- connections need ``first``/``last`` (at most 100), a query at most 500,000 nodes and
  ``nodes(ids:)`` at most 100 ids, with GitHub's error types;
- the cost in points is GitHub's published rule: the requests a query's connections need
  (each connection one request per parent it is asked of), divided by 100, rounded, at
  least 1; it is charged against the token's own budget (5,000 points an hour, separate
  from REST's) and a minute's (2,000 points), with ``x-ratelimit-*`` headers of resource
  ``graphql``; a spent hour answers 200 with GitHub's rate-limit error (``type``
  ``RATE_LIMIT``, ``code`` ``graphql_rate_limit``, as GitHub answers now; the documented
  ``RATE_LIMITED`` when told), a spent minute 403 with ``retry-after`` (GitHub's
  secondary limit);
- what it resolves: ``node(id:)``/``nodes(ids:)`` on the REST items' ``node_id`` (gists
  and users), a Gist's fields and ``files(limit:, oid:)`` (10 files unless told, as the
  schema's default says; ``oid`` a revision of the gist's history), a GistFile's,
  ``rateLimit`` and ``viewer``. An id it cannot resolve, a deleted gist or another
  user's secret gist is null with a ``NOT_FOUND`` error at its path. A field of the
  schema the fake does not model fails with an error that says so, never a made-up
  value;
- ``text`` is null for a binary file (git's rule: a NUL in the first 8,000 bytes) and
  cut at TEXT_LIMIT bytes with ``isTruncated``; ``text(truncate: n)`` gives at most n
  characters of that;
- time (with the fake's latency on): a floor plus a cost per file whose text it returned,
  and GitHub's 10-second cap, past which it answers GitHub's timeout (502).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import graphql
from aiohttp import web
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from gistcache.testing.fake_github.faults import (
    GRAPHQL_DOCS,
    GRAPHQL_TIMEOUT_MESSAGE,
    Budget,
    GraphQLFault,
)
from gistcache.testing.fake_github.payloads import (
    GIST_NODE_PREFIX,
    RAW_NAME_SAFE,
    USER_NODE_PREFIX,
    binary,
    gist_node_id,
    timestamp,
    user_node_id,
)
from gistcache.testing.fake_github.schema import SchemaMissing, github_schema
from gistcache.testing.fake_github.state import FakeFile, FakeGist, FakeUser

if TYPE_CHECKING:
    from gistcache.testing.fake_github.server import FakeGitHub, RecordedRequest

# GitHub cuts a blob's ``text`` in GraphQL at 512,000 bytes (``Blob.text``, measured to
# the byte by users of the API; GistFile's cut is not documented): the fake cuts gist
# files there too. It is less than REST's 1 MiB (``GET /gists/{id}``'s ``content``), so a
# client that trusts ``isTruncated`` is right whichever GitHub uses.
TEXT_LIMIT = 512_000
MAX_NODE_IDS = 100  # nodes(ids:) takes at most this many ids
MAX_PAGE = 100  # first/last of a connection
MAX_NODES = 500_000  # the most nodes a query may ask for
EXECUTION_CAP = 10.0  # seconds: GitHub stops a request that takes longer
# the time model's defaults (seconds): one file costs 0.30 + 0.02 = 320 ms here, plus the
# fake's latency (30 ms for GitHub's raw figure): about 350 ms against 30 ms for the raw
# download of the same file, as GitHub's MCP server measured; and 100 gists of two or
# three files about 5.4 s, as `gh gist list --include-content` takes (27 s for 446 gists,
# 100 a request). docs/development.md says more.
DEFAULT_FLOOR = 0.30
DEFAULT_PER_FILE = 0.02
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".ico", ".svg"})
# the request's RecordedRequest, put on the aiohttp request by the server's middleware
RECORD: web.RequestKey[RecordedRequest] = web.RequestKey("fake_github.record")
AUTH_DOCS = f"{GRAPHQL_DOCS}/guides/forming-calls-with-graphql#authenticating-with-graphql"
LIMITS_DOCS = f"{GRAPHQL_DOCS}/overview/rate-limits-and-node-limits-for-the-graphql-api"


def graphql_path(api_prefix: str) -> str:
    """The GraphQL endpoint beside a REST prefix: ``/graphql`` for github.com's
    ``api.github.com``, ``/api/graphql`` for an Enterprise server's ``/api/v3``."""
    if api_prefix.endswith("/v3"):
        return api_prefix.removesuffix("/v3") + "/graphql"
    return api_prefix + "/graphql"


# --- the objects the schema's fields resolve on ----------------------------------


@dataclass
class _Request:
    """What one GraphQL request resolves against and what it counts."""

    fake: FakeGitHub
    viewer: FakeUser | None
    token: str
    budget: Budget
    cost: int
    node_count: int
    failing: frozenset[str] = frozenset()  # node ids a "partial" fault answers null
    failing_files: frozenset[str] = frozenset()  # file names whose text it answers null
    partial_type: str | None = None
    text_files: int = 0  # files whose text the answer holds (the time model's count)


class _Unmodelled(GraphQLError):
    pass


class _Language:
    typename = "Language"

    def __init__(self, name: str) -> None:
        self.name = name
        self.id = "LA_fake" + hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:12]
        self.color = None


class _User:
    typename = "User"

    def __init__(self, login: str, node_id: str, numeric_id: int) -> None:
        self.login = login
        self.id = node_id
        self.databaseId = numeric_id
        self.url = f"https://github.com/{login}"
        self.resourcePath = f"/{login}"


def _user(user: FakeUser) -> _User:
    return _User(user.login, user_node_id(user), user.id)


class _File:
    typename = "GistFile"

    def __init__(self, f: FakeFile, request: _Request) -> None:
        self._file, self._request = f, request
        self.name = f.filename
        self.encodedName = quote(f.filename, safe=RAW_NAME_SAFE, errors="surrogatepass")
        dot = f.filename.rfind(".")
        self.extension = f.filename[dot:] if dot > 0 else ""
        self.size = len(f.content)
        self.isImage = self.extension.lower() in IMAGE_EXTENSIONS
        self._binary = binary(f.content)
        self.isTruncated = not self._binary and len(f.content) > TEXT_LIMIT
        self.language = None if f.language is None else _Language(f.language)

    def text(self, truncate: int | None = None) -> str | None:
        if self._binary:
            return None
        request = self._request
        if self.name in request.failing_files:
            kind = request.partial_type
            raise GraphQLError(GRAPHQL_TIMEOUT_MESSAGE, extensions={"type": kind} if kind else None)
        request.text_files += 1
        content = self._file.content
        cut = min(len(content), TEXT_LIMIT)
        # back up over UTF-8 continuation bytes when the next byte starts no character
        while 0 < cut < len(content) and cut > TEXT_LIMIT - 3 and 0x80 <= content[cut] < 0xC0:
            cut -= 1
        text = content[:cut].decode("utf-8", "replace")
        return text if truncate is None else text[: max(truncate, 0)]


class _Gist:
    typename = "Gist"

    def __init__(self, gist: FakeGist, request: _Request) -> None:
        self._gist, self._request = gist, request
        self.id = gist_node_id(gist)
        self.name = gist.id
        self.description = gist.description
        self.createdAt = timestamp(gist.created_at)
        self.updatedAt = timestamp(gist.updated_at)
        self.pushedAt = timestamp(gist.history[-1].committed_at) if gist.history else None
        self.isPublic = gist.public
        self.isFork = False
        self.url = f"https://gist.github.com/{gist.id}"
        self.resourcePath = f"/{gist.owner.login}/{gist.id}"
        self.owner = _user(gist.owner)

    def files(self, limit: int = 10, oid: str | None = None) -> list[_File] | None:
        files: Mapping[str, FakeFile] = self._gist.files
        if oid is not None:
            # a revision of the gist (a version of its history): its files then, and
            # null for an oid that is none of the gist's revisions
            revision = next((r for r in self._gist.history if r.version == oid), None)
            if revision is None:
                return None
            files = revision.files
        return [_File(f, self._request) for f in list(files.values())[: max(limit, 0)]]


class _RateLimit:
    typename = "RateLimit"

    def __init__(self, request: _Request) -> None:
        budget = request.budget
        self.cost = request.cost
        self.limit = budget.limit
        self.nodeCount = request.node_count
        self.remaining = max(0, budget.remaining)
        self.used = budget.used
        self.resetAt = timestamp_of(budget.reset)


def timestamp_of(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class _Query:
    typename = "Query"

    def __init__(self, request: _Request) -> None:
        self._request = request

    def _find(self, node_id: str) -> _Gist | _User | None:
        request = self._request
        fake = request.fake
        if node_id.startswith(GIST_NODE_PREFIX):
            try:
                gist = fake.gist(node_id.removeprefix(GIST_NODE_PREFIX))
            except KeyError:
                return None
            if gist.public or gist.owner is request.viewer:
                return _Gist(gist, request)
            return None  # another user's secret gist: as if it did not exist
        if node_id.startswith(USER_NODE_PREFIX):
            wanted = node_id.removeprefix(USER_NODE_PREFIX)
            for user in fake.users.values():
                if str(user.id) == wanted:
                    return _user(user)
        return None

    def _resolve(self, node_id: str) -> _Gist | _User | GraphQLError:
        if node_id in self._request.failing:
            return GraphQLError(
                GRAPHQL_TIMEOUT_MESSAGE,
                extensions={"type": self._request.partial_type}
                if self._request.partial_type
                else None,
            )
        found = self._find(node_id)
        if found is None:
            return GraphQLError(
                f"Could not resolve to a node with the global id of '{node_id}'.",
                extensions={"type": "NOT_FOUND"},
            )
        return found

    def node(self, id: str) -> _Gist | _User:
        found = self._resolve(id)
        if isinstance(found, GraphQLError):
            raise found
        return found

    def nodes(self, ids: list[str]) -> list[_Gist | _User | GraphQLError]:
        return [self._resolve(node_id) for node_id in ids]

    def rateLimit(self, dryRun: bool = False) -> _RateLimit:
        if dryRun:
            raise _Unmodelled("rateLimit(dryRun: true) is not modelled by the fake GitHub")
        return _RateLimit(self._request)

    @property
    def viewer(self) -> _User:
        request = self._request
        if request.viewer is not None:
            return _user(request.viewer)
        number = _token_number(request.token)
        return _User(f"viewer{number}", f"{USER_NODE_PREFIX}{number}", number)


def _token_number(token: str) -> int:
    """A stable user id for a token that belongs to none of the fake's users."""
    return 10_000_000 + int(hashlib.sha256(token.encode()).hexdigest()[:6], 16)


_UNSET = object()


def _field(source: Any, info: graphql.GraphQLResolveInfo[Any], **args: Any) -> Any:
    value = getattr(source, info.field_name, _UNSET)
    if value is _UNSET or info.field_name.startswith("_"):
        raise _Unmodelled(
            f"{info.parent_type.name}.{info.field_name} is not modelled by the fake GitHub"
        )
    return value(**args) if callable(value) else value


def _type(value: Any, info: graphql.GraphQLResolveInfo[Any], abstract: Any) -> str:
    return str(value.typename)


# --- the cost of a query, as GitHub computes it ---------------------------------


@dataclass
class _Plan:
    requests: int = 0
    nodes: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    null_data: bool = False  # an error GitHub answers with "data": null

    @property
    def cost(self) -> int:
        return max(1, int(self.requests / 100 + 0.5))


def plan(
    schema: GraphQLSchema,
    document: graphql.DocumentNode,
    operation: OperationDefinitionNode,
    variables: VariableValues,
) -> _Plan:
    """GitHub's accounting of a valid query: the requests its connections need (its
    cost), the nodes it may return, and the limits it breaks."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = schema.get_root_type(operation.operation)
    result = _Plan()
    if root is None:
        return result

    def walk(
        selections: SelectionSetNode, parent: Any, multiplier: int, seen: frozenset[str]
    ) -> None:
        for node in selections.selections:
            if isinstance(node, FieldNode):
                _plan_field(node, parent, multiplier, seen)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                inner = parent if condition is None else schema.get_type(condition.name.value)
                walk(node.selection_set, inner, multiplier, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    inner = schema.get_type(fragment.type_condition.name.value)
                    walk(fragment.selection_set, inner, multiplier, seen | {name})

    def _plan_field(node: FieldNode, parent: Any, multiplier: int, seen: frozenset[str]) -> None:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return
        args = get_argument_values(definition, node, variables)
        named = graphql.get_named_type(definition.type)
        where = _where(node)
        inner = multiplier
        if parent is root and node.name.value == "nodes":
            count = len(args.get("ids") or ())
            if count > MAX_NODE_IDS:
                result.null_data = True
                result.errors.append(
                    {
                        "type": "ARGUMENT_LIMIT",
                        "path": [(node.alias or node.name).value],
                        **where,
                        "message": f"You may not provide more than {MAX_NODE_IDS} node ids; "
                        f"you provided {count}.",
                    }
                )
        if named.name.endswith("Connection"):
            name = node.name.value
            size = args.get("first")
            bound = "first"
            if size is None:
                size, bound = args.get("last"), "last"
            if size is None:
                result.errors.append(
                    {
                        "type": "MISSING_PAGINATION_BOUNDARIES",
                        **where,
                        "message": f"You must provide a `first` or `last` value to properly "
                        f"paginate the `{name}` connection.",
                    }
                )
                size = 0
            elif not 0 <= size <= MAX_PAGE:
                result.errors.append(
                    {
                        "type": "EXCESSIVE_PAGINATION",
                        **where,
                        "message": f"Requesting {size} records on the `{name}` connection "
                        f"exceeds the `{bound}` limit of {MAX_PAGE} records.",
                    }
                )
                size = 0
            result.requests += multiplier
            result.nodes += multiplier * size
            inner = multiplier * size
        if node.selection_set is not None:
            walk(node.selection_set, named, inner, seen)

    walk(operation.selection_set, root, 1, frozenset())
    if result.nodes > MAX_NODES:
        result.errors.append(
            {
                "type": "MAX_NODE_LIMIT_EXCEEDED",
                "message": f"This query requests up to {result.nodes:,} possible nodes which "
                f"exceeds the maximum limit of {MAX_NODES:,}.",
            }
        )
    return result


def _where(node: FieldNode) -> dict[str, Any]:
    if node.loc is None:
        return {}
    location = node.loc.source.get_location(node.loc.start)
    return {"locations": [{"line": location.line, "column": location.column}]}


# --- errors as GitHub writes them --------------------------------------------------

_UNKNOWN_FIELD = re.compile(r"Cannot query field '(?P<field>[^']+)' on type '(?P<type>[^']+)'\.")


def github_error_entry(error: GraphQLError) -> dict[str, Any]:
    """One entry of ``errors`` in GitHub's order: type, path, locations, message."""
    out: dict[str, Any] = {}
    extensions = dict(error.extensions or {})
    kind = extensions.pop("type", None)
    if kind:
        out["type"] = kind
    if error.path:
        out["path"] = list(error.path)
    if extensions:
        out["extensions"] = extensions
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    message = error.message
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown is not None:
        # GitHub's server (graphql-ruby) words it so, with a code clients match on
        message = f"Field '{unknown['field']}' doesn't exist on type '{unknown['type']}'"
        out["extensions"] = {
            "code": "undefinedField",
            "typeName": unknown["type"],
            "fieldName": unknown["field"],
        }
    out["message"] = message
    return out


@functools.lru_cache(maxsize=64)
def _checked(query: str) -> tuple[graphql.DocumentNode | None, tuple[dict[str, Any], ...]]:
    """A query parsed and validated against the schema (a client sends the same few
    queries again and again: each is checked once), or the errors that refuse it."""
    schema = github_schema()
    try:
        document = graphql.parse(query)
    except GraphQLError as error:
        return None, (github_error_entry(error),)
    invalid = graphql.validate(schema, document)
    if invalid:
        return None, tuple(github_error_entry(e) for e in invalid)
    return document, ()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _errors(*entries: dict[str, Any], data: bool = False) -> dict[str, Any]:
    return {"data": None, "errors": list(entries)} if data else {"errors": list(entries)}


def _token(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() in ("bearer", "token") else None


# --- the endpoint --------------------------------------------------------------------


class GraphQLRoutes:
    """``POST /graphql``: the handler, reading the fake's state and settings per request."""

    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake

    def add_to(self, router: web.UrlDispatcher, api_prefix: str) -> None:
        router.add_post(graphql_path(api_prefix), self.graphql)

    async def graphql(self, request: web.Request) -> web.Response:
        token = _token(request)
        if token is None:
            return _json(
                {
                    "message": "This endpoint requires you to be authenticated.",
                    "documentation_url": AUTH_DOCS,
                },
                status=401,
            )
        fake = self._fake
        budget = fake.graphql_budget_for(token)
        answer = await self._answer(request, token, budget)
        if "x-ratelimit-resource" not in answer.headers:
            _rate_headers(answer, budget)
        return answer

    async def _answer(self, request: web.Request, token: str, budget: Budget) -> web.Response:
        fake = self._fake
        try:
            body = await request.json()
        except ValueError:
            return _json(
                {"message": "Problems parsing JSON", "documentation_url": GRAPHQL_DOCS},
                status=400,
            )
        record = request.get(RECORD)
        if record is not None:
            record.body = body  # what a test reads of the batches sent
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str):
            return _json(
                _errors({"message": "A query attribute must be specified and must be a string."})
            )
        variables = body.get("variables") or {}
        operation_name = body.get("operationName") or None
        if not isinstance(variables, dict):
            return _json(_errors({"message": "Variables are invalid JSON."}))
        try:
            schema = github_schema()
        except SchemaMissing as missing:
            return _json({"message": str(missing)}, status=500)
        document, refused = _checked(query)
        if document is None:
            return _json(_errors(*refused))
        operation = graphql.get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f'No operation named "{operation_name}"'
                if operation_name
                else "An operation name is required"
            )
            return _json(_errors({"message": message}))
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):  # the variables' errors: refused before it runs
            return _json(_errors(*(github_error_entry(e) for e in coerced)))
        try:
            costs = plan(schema, document, operation, coerced)
        except GraphQLError as error:
            return _json(_errors(github_error_entry(error)))
        if costs.errors:
            return _json(_errors(*costs.errors, data=costs.null_data))
        fault = fake.next_graphql_fault()
        if fault is not None and fault.kind != "partial":
            faulted = await self._fault(fault, token, budget)
            if faulted is not None:
                return faulted
        viewer = next((u for u in fake.users.values() if u.token == token), None)
        cost = costs.cost
        if budget.remaining < cost:
            return _rate_limited(token, viewer, fake.graphql_rate_limit_type)
        wait = fake.graphql_minute_wait(token, cost, time.monotonic())
        if wait is not None:
            return _secondary(403, wait)
        budget.remaining -= cost
        fake.graphql_points += cost
        context = _Request(fake, viewer, token, budget, cost, costs.nodes)
        if fault is not None:  # partial
            context.failing, context.partial_type = fault.node_ids, fault.error_type
            context.failing_files = fault.file_names
        result = graphql.execute(
            schema,
            document,
            root_value=_Query(context),
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=_field,
            type_resolver=_type,
        )
        if not isinstance(result, graphql.ExecutionResult):  # no resolver is async
            raise TypeError("the fake's GraphQL resolvers are synchronous")
        if fake.graphql_time_model:
            spent = fake.graphql_floor + fake.graphql_per_file * context.text_files
            if spent > EXECUTION_CAP:
                await fake.sleep(EXECUTION_CAP)
                return _timeout(502)
            await fake.sleep(spent)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [github_error_entry(e) for e in result.errors]
        return _json(out)

    async def _fault(self, fault: GraphQLFault, token: str, budget: Budget) -> web.Response | None:
        if fault.delay:
            await self._fake.sleep(fault.delay)
        if fault.kind == "rate_limited":
            viewer = next((u for u in self._fake.users.values() if u.token == token), None)
            kind = fault.error_type or self._fake.graphql_rate_limit_type
            answer = _rate_limited(token, viewer, kind)
            # this answer says the hour is spent; the token's budget itself is left alone
            _rate_headers(answer, Budget(budget.limit, 0, budget.reset))
            return answer
        if fault.kind == "timeout":
            return _timeout(fault.status or 502)
        if fault.kind == "secondary":
            return _secondary(fault.status or 403, fault.retry_after)
        return None  # slow: the real answer, late


def _rate_limited(token: str, viewer: FakeUser | None, kind: str) -> web.Response:
    number = viewer.id if viewer is not None else _token_number(token)
    return _json(
        _errors(
            {
                "type": kind,
                "code": "graphql_rate_limit",
                "message": f"API rate limit already exceeded for user ID {number}.",
            }
        )
    )


def _timeout(status: int) -> web.Response:
    return _json(_errors({"message": GRAPHQL_TIMEOUT_MESSAGE}, data=True), status=status)


def _secondary(status: int, retry_after: int | None) -> web.Response:
    body = {
        "documentation_url": f"{LIMITS_DOCS}#secondary-rate-limits",
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
        "you try again. If you reach out to GitHub Support for help, please include the "
        "request ID 0400:3B5A:5E6F4C:6E3C5B:65A1B2C3.",
    }
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return _json(body, status=status, headers=headers)


def _rate_headers(resp: web.StreamResponse, budget: Budget) -> None:
    resp.headers["x-ratelimit-limit"] = str(budget.limit)
    resp.headers["x-ratelimit-remaining"] = str(max(0, budget.remaining))
    resp.headers["x-ratelimit-used"] = str(budget.used)
    resp.headers["x-ratelimit-reset"] = str(budget.reset)
    resp.headers["x-ratelimit-resource"] = "graphql"
