"""The search page: ``GET /`` and the fixed paths under ``/-/`` (a sub-app, so its
failures are HTML pages, not problem+json, and no GitHub login is shadowed)."""

from __future__ import annotations

import logging

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.web.app_keys import ASSETS, ERROR_RENDERER, PAGE_ERRORS, REQUEST_ID
from gistcache.web.pages import views
from gistcache.web.pages.assets import load_assets
from gistcache.web.pages.words import SKIP_REASONS, Form, cut_words, marked, plural, when
from gistcache.web.problems import Problem, from_http_exception, problem_response

log = logging.getLogger("gistcache.web")

PAGES_PREFIX = "/-/"
# routes the page's script reads: JSON answers, their failures problem+json
JSON_ROUTES = frozenset({"page-freshness"})


def setup_pages(app: web.Application) -> None:
    """Mount the page on ``app``: ``/`` on it, everything else in a sub-app at ``/-/``."""
    assets = load_assets()
    app[ASSETS] = assets
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("gistcache.web.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        asset=assets.url,
        skip_reasons=SKIP_REASONS,
        plural=plural,
        when=when,
        marked=marked,
        cut_words=cut_words,
    )
    env.filters["http_url"] = http_url
    app.router.add_get("/", views.index, name="page")

    app[PAGE_ERRORS] = render_problem  # for "/", which lives on the root app
    pages = web.Application(middlewares=[html_errors])
    pages[ERROR_RENDERER] = render_problem
    pages.router.add_get("/search", views.search, name="page-search")
    pages.router.add_get("/users/{username}", views.user_gists, name="page-user")
    pages.router.add_get("/freshness", views.freshness_words, name="page-freshness")
    pages.router.add_get("/static/{name}", views.static, name="page-static")
    app.add_subapp(PAGES_PREFIX.rstrip("/"), pages)


def http_url(value: str | None) -> str:
    """A link only when it is an http(s) address: no ``javascript:`` from a payload."""
    if value and (value.startswith("https://") or value.startswith("http://")):
        return value
    return "#"


def render_problem(request: web.Request, problem: Problem) -> web.Response:
    """A failure met outside the page's own handlers (the client rate limit, say) as a
    page in words, with the page's headers (as problem+json on a route for the script)."""
    if request.match_info.route.name in JSON_ROUTES:
        return problem_response(request, problem)
    return views.page(
        request,
        "error.html",
        {
            "title": problem.title,
            "message": problem.detail,
            "status": problem.status,
            "form": Form(),
        },
        status=problem.status,
        headers=dict(problem.headers),
    )


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A failure under ``/-/`` is a page in words (no such page, wrong method, a bug);
    on a route for the script it is left to the application's problems (render_problem)."""
    if request.match_info.route.name in JSON_ROUTES:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        problem = from_http_exception(exc)
        status, title = problem.status, problem.title
        message = {
            404: "There is no page at this address.",
            405: "This page cannot be asked for that way.",
        }.get(status, problem.detail)
        headers = dict(problem.headers)
    except Exception:
        log.exception(
            "unhandled error in %s %s [%s]",
            request.method,
            request.rel_url.raw_path,
            request.get(REQUEST_ID),
        )
        status, title, message, headers = (
            500,
            "Something went wrong",
            "The server failed to show this page. Try again, or tell whoever runs it.",
            {},
        )
    else:
        if request.match_info.route.name != "page-static":
            views.set_page_headers(response)
        return response
    return views.page(
        request,
        "error.html",
        {"title": title, "message": message, "status": status, "form": Form()},
        status=status,
        headers=headers,
    )
