"""In-process timings of the search body's validation and the answer's rendering, and a
check that the cached list path does not go through pydantic:

    python -m benchmarks.validation                   # against the parser at BASELINE
    python -m benchmarks.validation --baseline <rev>  # another revision's parser

The hand-written parser this replaced is read from the git history (``--baseline``), so
the repository keeps one parser. The figures go in notes and reports, never in a test.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from gistcache.domain.gists import Gist, GistFile
from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import FileMatch, GistMatch, LineMatch, SearchResult
from gistcache.web.api.render import render_search, search_body
from gistcache.web.api.schemas import parse_search

BASELINE = "e533387"  # the last revision with domain.requests.parse_search
ROOT = Path(__file__).resolve().parent.parent

BODIES: list[dict[str, Any]] = [
    {"username": "alice", "pattern": "import"},
    {"username": "bob-9", "pattern": r"def \w+\(", "ignore_case": True, "page": 2},
    {"username": "carol", "pattern": "TODO", "literal": True, "filename": "*.py", "context": 2},
    {"username": "dave_x", "pattern": "x", "per_page": 50, "async": True},
]


def _old_parser(revision: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:src/gistcache/domain/requests.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_requests.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_requests", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_requests"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _old_render(result: SearchResult) -> bytes:
    """The answer as it was sent before: plain dicts and ``json.dumps``."""
    answer = {
        "status": "success",
        "username": result.request.username,
        "pattern": result.request.pattern,
        "total": result.total,
        "matches": [
            {
                "id": m.gist.id,
                "html_url": m.gist.html_url,
                "description": m.gist.description,
                "updated_at": m.gist.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "files": [
                    {
                        "filename": f.file.filename,
                        "language": f.file.language,
                        "size": f.file.size,
                        "raw_url": f.file.raw_url,
                        "match_count": f.match_count,
                        "lines": [
                            {"line_number": x.line_number, "column": x.column, "text": x.text}
                            for x in f.lines
                        ],
                    }
                    for f in m.files
                ],
            }
            for m in result.matches
        ],
        "skipped": [],
    }
    return json.dumps(answer).encode()


def _result(gists: int) -> SearchResult:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    matches = []
    for g in range(gists):
        files = tuple(
            GistFile(f"f{i}.py", "Python", "text/x-python", 900, f"https://x/{g}/f{i}.py")
            for i in range(2)
        )
        gist = Gist(
            f"{g:032x}", f"https://gist.github.com/{g}", "d", True, when, when, 0, "a", files
        )
        lines = tuple(LineMatch(n + 1, 1, "import requests  # fetch the page") for n in range(10))
        matches.append(GistMatch(gist, tuple(FileMatch(f, 10, lines) for f in files)))
    return SearchResult(SearchRequest("alice", "import"), gists, tuple(matches), ())


def _best(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - started)
    return best


def _list_path_loads_pydantic() -> list[str]:
    """The pydantic modules a fresh interpreter holds once it has loaded the list
    handler (and the domain rendering of a list)."""
    code = (
        "import sys, gistcache.web.api.lists, gistcache.domain.results;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')"
        " or m == 'gistcache.web.api.schemas'))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded: list[str] = json.loads(out.stdout.replace("'", '"'))
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="the revision of the old parser")
    parser.add_argument("--bodies", type=int, default=10_000)
    args = parser.parse_args(argv)

    old = _old_parser(args.baseline)
    bodies = [BODIES[n % len(BODIES)] for n in range(args.bodies)]
    for body in BODIES:  # the same requests either way
        assert old.parse_search(body)[0].to_json() == parse_search(body)[0].to_json()

    def old_parse() -> None:
        for body in bodies:
            old.parse_search(body)

    def new_parse() -> None:
        for body in bodies:
            parse_search(body)

    bad = {"username": "alice", "pattern": "x", "page": True}

    def refuse(fn: Callable[[Any], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(len(bodies)):
                with contextlib.suppress(Exception):
                    fn(bad)

        return run

    result = _result(50)
    figures = {
        "bodies": args.bodies,
        "validate_old_ms": 1000 * _best(old_parse, 1),
        "validate_new_ms": 1000 * _best(new_parse, 1),
        "refuse_old_ms": 1000 * _best(refuse(old.parse_search), 1),
        "refuse_new_ms": 1000 * _best(refuse(parse_search), 1),
        "render_50_gists_old_ms": 1000 * _best(lambda: _old_render(result), 20) / 20,
        "render_50_gists_new_ms": 1000 * _best(lambda: search_body(result), 20) / 20,
        "list_path_loads": _list_path_loads_pydantic(),
    }
    assert json.loads(_old_render(result)) == json.loads(search_body(result))
    assert render_search(result)["total"] == 50
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
