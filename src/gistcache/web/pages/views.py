"""The page's views: each calls the services, never the HTTP API, and renders HTML."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gistcache.domain.errors import InvalidLogin
from gistcache.domain.gists import Gist, format_timestamp
from gistcache.domain.requests import ManySearchRequest, SearchRequest, validate_username
from gistcache.services.many import ManyResult
from gistcache.services.search import SearchAnswer
from gistcache.web.answers import LARGE_ANSWER_BYTES, send_bytes
from gistcache.web.app_keys import (
    ANSWERS,
    ASSETS,
    CLOCK,
    LISTING,
    MANY,
    REQUEST_ID,
    SEARCHES,
    SETTINGS,
)
from gistcache.web.failures import NotCached
from gistcache.web.pages.assets import IMMUTABLE
from gistcache.web.pages.failures import failure_message, problem_message
from gistcache.web.pages.form import LOGIN_RULE, Form, FormError, parse_form
from gistcache.web.pages.text import checked_words, freshness
from gistcache.web.problems import failure_problem

log = logging.getLogger(__name__)
CSP = "default-src 'self'"


async def index(request: web.Request) -> web.Response:
    """``GET /``: the empty search form."""
    return page(request, "search.html", {"form": Form(), "answer": None, "failure": None})


async def search(request: web.Request) -> web.StreamResponse:
    """``GET /-/search?user=…&q=…``: the results, rendered here (no JavaScript needed).

    A large page is counted among the answers in flight while it is written, in pieces
    that the client's reading paces (``web.answers``)."""
    form = Form.from_query(request.query)
    if form.empty:
        return page(request, "search.html", {"form": form, "answer": None, "failure": None})
    with contextlib.ExitStack() as holding:
        try:
            form, search_request = parse_form(request.query)
            if isinstance(search_request, ManySearchRequest):
                many = await request.config_dict[MANY].search(search_request)
                body = _many_page(request, form, many.result)
                del many
            else:
                answer = await request.config_dict[SEARCHES].search(
                    search_request, queue_if_busy=False
                )
                body = _results_page(request, form, search_request, answer)
                del answer  # the page alone is held while it is written
            holding.enter_context(request.config_dict[ANSWERS].hold(len(body)))
        except Exception as exc:
            return _failure_page(request, "search.html", {"form": form, "answer": None}, exc)
        if len(body) <= LARGE_ANSWER_BYTES:
            small = web.Response(body=body, content_type="text/html", charset="utf-8")
            set_page_headers(small)
            return small
        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        set_page_headers(response)
        stall = request.config_dict[SETTINGS].search_timeout
        what = f"search page [{request.get(REQUEST_ID)}]"
        return await send_bytes(request, response, body, stall=stall, what=what)


def _results_page(
    request: web.Request, form: Form, search_request: SearchRequest, answer: SearchAnswer
) -> bytes:
    """The search page with ``answer``'s results."""
    result = answer.result
    per_page = search_request.per_page
    pages = max(1, -(-result.total // per_page))
    context = {
        "form": form,
        "answer": result,
        "failure": None,
        "freshness": freshness(answer.listing, request.config_dict[CLOCK]()),
        "page": search_request.page,
        "pages": pages,
        "first_index": (search_request.page - 1) * per_page,
        "context_lines": search_request.context,
        "link": lambda **changes: _search_link(request, form, **changes),
    }
    return aiohttp_jinja2.render_string("search.html", request, context).encode()


def _many_page(request: web.Request, form: Form, result: ManyResult) -> bytes:
    """The search page with several users' results, user by user in the order given."""
    now = request.config_dict[CLOCK]()
    failures = {
        user.login: problem_message(failure_problem(user.failure), now, user=user.login)
        for user in result.users
        if user.failure is not None
    }
    context = {
        "form": form,
        "answer": None,
        "many": result,
        "failures": failures,
        "failure": None,
        "context_lines": result.request.search.context,
    }
    return aiohttp_jinja2.render_string("search.html", request, context).encode()


async def user_gists(request: web.Request) -> web.Response:
    """``GET /-/users/{username}``: the user's gists as a table, with a search box."""
    raw = request.match_info["username"]
    form = Form(user=raw)
    try:
        found = await request.config_dict[LISTING].list_gists(_login(raw))
    except Exception as exc:
        context = {"form": form, "login": form.user, "rows": None}
        return _failure_page(request, "user.html", context, exc)
    rows = [_row(gist) for gist in found.gists]
    return page(
        request,
        "user.html",
        {
            "form": Form(user=found.login),
            "login": found.login,
            "rows": rows,
            "freshness": freshness(found, request.config_dict[CLOCK]()),
            "failure": None,
        },
    )


async def freshness_words(request: web.Request) -> web.Response:
    """``GET /-/freshness?user=…``: how fresh the cached list is, in the page's words (the
    script shows it under streamed results). Read from the cache alone, never GitHub;
    its failures are problems (``routes.JSON_ROUTES``), for the script, not a person."""
    raw = request.query.get("user", "")
    try:
        login = validate_username(raw)
    except InvalidLogin as exc:
        raise InvalidLogin("user", exc.detail, given_as="parameter") from None
    listing = request.config_dict[LISTING]
    checked = await listing.last_checked(login)
    if checked is None:
        raise NotCached(f"no list of {login} is cached: a search for them caches it")
    words = checked_words(checked.checked_at, checked.backing_off, request.config_dict[CLOCK]())
    return _json({"text": words}, 200)


async def static(request: web.Request) -> web.Response:
    asset = request.config_dict[ASSETS].served(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=asset.body,
        content_type=asset.content_type,
        charset="utf-8",
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )


def _failure_page(
    request: web.Request, template: str, context: dict[str, Any], exc: Exception
) -> web.Response:
    """``template`` (its ``form`` as filled) telling what ``exc`` means to a person, with
    the status and the wait of the API's answer; a bug is raised again."""
    said = failure_message(exc, request.config_dict[CLOCK](), user=context["form"].user)
    if said is None:
        raise exc
    headers = {"Retry-After": str(said.retry_after)} if said.retry_after else {}
    return page(
        request, template, {**context, "failure": said}, status=said.status, headers=headers
    )


def _login(raw: str) -> str:
    try:
        return validate_username(raw)
    except InvalidLogin:
        raise FormError("user", LOGIN_RULE) from None


def _row(gist: Gist) -> dict[str, Any]:
    languages = sorted({f.language for f in gist.files if f.language})
    return {
        "gist": gist,
        "updated": format_timestamp(gist.updated_at),
        "filenames": [f.filename for f in gist.files],
        "languages": languages,
    }


def _search_link(request: web.Request, form: Form, **changes: str) -> str:
    return str(request.rel_url.with_query(form.query(**changes)))


def _json(body: dict[str, Any], status: int) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def page(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(headers or {})
    set_page_headers(response)
    return response


def set_page_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
