"""Pure matching: compile a user's pattern with RE2, scan UTF-8 chunks line by line.

RE2 matches in time linear in the text, so no pattern can stall the server. With
``never_nl`` a match never crosses a newline, which gives grep's line semantics
while RE2 scans a whole chunk at C speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1000
MAX_LINES_PER_FILE = 20
MAX_LINE_CHARS = 500
_UNSUPPORTED = ("invalid perl operator", "invalid escape sequence", "bad repetition operator")


class PatternError(ValueError):
    """The pattern is not one RE2 accepts; the message says why."""


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Any:
    """Compile ``pattern`` for byte-level, line-by-line search."""
    options = re2.Options()
    options.never_nl = True
    options.case_sensitive = not ignore_case
    options.log_errors = False
    try:
        re2.compile(pattern.encode("utf-8"), options=options)  # the pattern alone must be valid
        # multi-line mode so that ^ and $ anchor at each line, as in grep
        return re2.compile(f"(?m)(?:{pattern})".encode(), options=options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if any(marker in reason for marker in _UNSUPPORTED) and _looks_perl_only(pattern):
            raise PatternError(
                "RE2 syntax does not support backreferences or lookaround "
                f"(lookahead/lookbehind): {reason}"
            ) from None
        raise PatternError(f"invalid regular expression: {reason}") from None


def _looks_perl_only(pattern: str) -> bool:
    return any(token in pattern for token in ("(?=", "(?!", "(?<=", "(?<!")) or any(
        f"\\{digit}" in pattern for digit in "123456789"
    )


@dataclass
class FileHits:
    """Matching lines of one file: the first few kept, all of them counted."""

    match_count: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)

    def add(self, line_number: int, text: bytes) -> None:
        self.match_count += 1
        if len(self.lines) < MAX_LINES_PER_FILE:
            decoded = text.decode("utf-8", "replace").removesuffix("\r")
            self.lines.append({"line_number": line_number, "text": decoded[:MAX_LINE_CHARS]})


def scan_chunk(regexp: Any, data: bytes, first_line: int, hits: FileHits) -> None:
    """Record each line of ``data`` that matches, once, with its line number."""
    size = len(data)
    pos = 0
    counted_to = 0
    line_number = first_line
    while pos < size or (pos == 0 and size == 0):
        match = regexp.search(data, pos)
        if match is None:
            return
        start = match.start()
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", start)
        if line_end == -1:
            line_end = size
        line_number += data.count(b"\n", counted_to, line_start)
        counted_to = line_start
        hits.add(line_number, data[line_start:line_end])
        pos = line_end + 1  # the rest of this line cannot add another matching line
        if size == 0:
            return
