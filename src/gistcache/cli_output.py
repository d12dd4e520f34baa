"""How ``gistcache search`` writes to a terminal: matching lines as grep prints them
(colour, context, ``--`` between groups), and a progress bar on standard error."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from gistcache.domain.results import FileSkipped, GistFound

SGR_MATCH = "\x1b[01;31m\x1b[K"  # bold red, as grep colours a match
SGR_END = "\x1b[m\x1b[K"


def use_colour(choice: str) -> bool:
    if choice == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return choice == "always"


def _coloured(text: str, ranges: Sequence[tuple[int, int]]) -> str:
    out = []
    pos = 0
    for start, end in ranges:
        if end <= start:
            continue
        out.append(text[pos:start])
        out.append(f"{SGR_MATCH}{text[start:end]}{SGR_END}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


class Printer:
    """Prints matches as grep does; with context, ``--`` between groups of lines that
    do not follow each other."""

    def __init__(self, colour: bool, context: bool) -> None:
        self._colour = colour
        self._context = context
        self._last: tuple[str, int] | None = None  # the last line printed: file, number

    def __call__(self, event: GistFound | FileSkipped, *, prefix: str = "") -> None:
        """Print ``event``'s lines, each starting with ``prefix`` (a many-user search's
        ``login/``)."""
        if isinstance(event, FileSkipped):
            skipped = event.skipped
            where = prefix + skipped.gist_id + (f"/{skipped.filename}" if skipped.filename else "")
            print(f"gistcache: skipped {where}: {skipped.reason.value}", file=sys.stderr)
            return
        match = event.match
        for f in match.files:
            name = f"{prefix}{match.gist.id}/{f.file.filename}"
            for line in f.lines:
                first = line.before[0].line_number if line.before else line.line_number
                if self._context and self._last is not None and self._last != (name, first - 1):
                    print("--")
                for context in line.before:
                    print(f"{name}-{context.line_number}- {context.text}")
                text = _coloured(line.text, line.ranges) if self._colour else line.text
                print(f"{name}:{line.line_number}: {text}")
                for context in line.after:
                    print(f"{name}-{context.line_number}- {context.text}")
                self._last = (name, line.after[-1].line_number if line.after else line.line_number)


class ProgressBar:
    """``fetching contents [###...] 3/10`` on a terminal's standard error."""

    def __init__(self) -> None:
        self._shown = False  # on the terminal now
        self._used = False  # shown at all: there was something to fetch

    def __call__(self, done: int, total: int) -> None:
        if done >= total and not self._used:
            return  # nothing to fetch: no bar
        self._used = True
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(
            f"\rfetching contents [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        )
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._shown = False
