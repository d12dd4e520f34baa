"""The search page: ``GET /`` and the fixed paths under ``/-/`` (a sub-app, so its
failures are HTML pages, not problem+json, and no GitHub login is shadowed)."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web import UrlMappingMatchInfo

from gistcache.web.app_keys import ASSETS, CLOCK, ERROR_RENDERER, SETTINGS
from gistcache.web.failures import Problem
from gistcache.web.pages import views, watch
from gistcache.web.pages.assets import load_assets
from gistcache.web.pages.failures import problem_message
from gistcache.web.pages.form import Form
from gistcache.web.pages.text import SKIP_REASONS, cut_words, marked, plural, when
from gistcache.web.problems import problem_response

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
        # the "Watch this search" form, when the server has API tokens
        watches_on=bool(app[SETTINGS].api_tokens),
    )
    env.filters["http_url"] = http_url
    pages = web.Application()
    pages[ERROR_RENDERER] = render_error_page
    pages.router.add_get("/search", views.search, name="page-search")
    pages.router.add_get("/users/{username}", views.user_gists, name="page-user")
    pages.router.add_get("/freshness", views.freshness_words, name="page-freshness")
    pages.router.add_get("/watches/{watch_id}", watch.watch, name="page-watch")
    pages.router.add_get("/static/{name}", views.static, name="page-static")
    app.add_subapp(PAGES_PREFIX.rstrip("/"), pages)
    root = PageRoot(pages)
    app.router.register_resource(root)
    root.add_route("HEAD", views.index)
    root.add_route("GET", views.index)


class PageRoot(web.PlainResource):
    """``/``, the page's one path on the root app (the others are under ``/-/``, where
    no GitHub login is shadowed), routed as a route of the page's sub-app: its failures
    are pages, as the sub-app renders them."""

    def __init__(self, pages: web.Application) -> None:
        super().__init__("/", name="page")
        self._pages = pages

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        match_info, allowed = await super().resolve(request)
        if match_info is not None:
            match_info.add_app(self._pages)  # as aiohttp's resource of a sub-app does
        return match_info, allowed


def http_url(value: str | None) -> str:
    """A link only when it is an http(s) address: no ``javascript:`` from a payload."""
    if value and (value.startswith("https://") or value.startswith("http://")):
        return value
    return "#"


def render_error_page(request: web.Request, problem: Problem) -> web.Response:
    """The page's renderer: a failure as a page in words, with the page's headers (as
    problem+json on a route for the script)."""
    if request.match_info.route.name in JSON_ROUTES:
        return problem_response(request, problem)
    said = problem_message(problem, request.config_dict[CLOCK]())
    return views.page(
        request,
        "error.html",
        {"title": said.title, "message": said.message, "status": said.status, "form": Form()},
        status=problem.status,
        headers=problem.headers,
    )
