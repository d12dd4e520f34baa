"""The layers import downwards only: the web layer (and the app and CLI above it) is
never imported from below, the pure parts import no I/O layer, and the web layer reaches
GitHub and the store through the services (but for the names it is allowed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gistcache

PACKAGE = Path(gistcache.__file__).parent
TOP = (
    "gistcache.web",
    "gistcache.app",
    "gistcache.serve",
    "gistcache.cli",
    "gistcache.cli_output",
    "gistcache.web.app_keys",
    "gistcache.mcp",
)
IO = ("gistcache.services", "gistcache.github", "gistcache.store", "gistcache.components")
FORBIDDEN = {
    "domain": TOP + IO,
    "observability": TOP + IO,
    "github": (*TOP, "gistcache.services", "gistcache.store", "gistcache.components"),
    "store": (*TOP, "gistcache.services", "gistcache.github", "gistcache.components"),
    "services": (*TOP, "gistcache.components"),
    "components.py": TOP,
    # the MCP server is one more front end, as the page is: it reaches GitHub and the store
    # through the services, and is served by the app and the CLI, never the other way
    "mcp": (
        "gistcache.app",
        "gistcache.serve",
        "gistcache.cli",
        "gistcache.cli_output",
        "gistcache.github",
        "gistcache.store",
    ),
}


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_no_room_imports_a_layer_above_it(room: str) -> None:
    where = PACKAGE / room
    files = sorted(where.rglob("*.py")) if where.is_dir() else [where]
    assert files
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in imported(path)
        if _under(name, FORBIDDEN[room])
    }
    assert not wrong


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """What a file imports when it runs: not what it names under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_house_has_no_circle() -> None:
    """No module imports, through others, a module that imports it: not even for type hints,
    but in the fake GitHub, whose route classes name the server that owns them in
    annotations only."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        testing = name.startswith("gistcache.testing.")
        found = _runtime_imports(path) if testing else imported(path)
        graph[name] = {n for n in found if n in modules and n != name}

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(graph[name])
        return seen

    circles = {name for name in graph if name in reaches(name)}
    assert not circles


# What the web layer names of GitHub's and the store's modules, and why; everything else
# of them it reaches through the services
WEB_MAY_NAME = {
    # the resources the application holds, typed (readiness asks SESSIONS itself whether
    # the database takes writes: it is about the database, not a use case)
    "web/app_keys.py": ("gistcache.github.client", "gistcache.store.engine"),
    # a client's budget of GitHub requests is charged at GitHub's gate (PAYER) and refuses
    # with ClientBudgetSpent, which the services catch too
    "web/budget.py": ("gistcache.github.errors",),
    "web/ratelimit.py": ("gistcache.github.errors", "gistcache.github.gate"),
    # a gist's answer begun is broken off when GitHub fails while it is written
    "web/ghcompat/handlers.py": ("gistcache.github.errors",),
}


def test_the_web_reaches_github_and_the_store_through_the_services() -> None:
    wrong: set[str] = set()
    for path in sorted((PACKAGE / "web").rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        wrong.update(
            f"{name} imports {module}"
            for module in imported(path)
            if _under(module, ("gistcache.github", "gistcache.store"))
            and not _under(module, WEB_MAY_NAME.get(name, ()))
        )
    assert not wrong


def test_the_list_handler_never_goes_through_the_api_models() -> None:
    # the cached list is served as the domain rendered it, bytes made once per version:
    # nothing on its way loads pydantic or the models. The settings are a pydantic model, but
    # one validated once at start-up: the handler only reads their attributes
    names: set[str] = set()
    todo = ["gistcache.web.api.lists"]
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.add(name)
        if name == "gistcache.settings":
            continue
        parts = name.split(".")[1:]
        for path in (
            PACKAGE.joinpath(*parts).with_suffix(".py"),
            PACKAGE.joinpath(*parts, "__init__.py"),
        ):
            if name.startswith("gistcache.") and path.is_file():
                todo.extend(n for n in imported(path) if n.startswith(("gistcache.", "pydantic")))
    assert "gistcache.web.api.schemas" not in names
    assert not {n for n in names if n.split(".")[0] == "pydantic"}
