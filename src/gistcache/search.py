"""Pure matching: compile a user's pattern with RE2, scan UTF-8 chunks line by line.

RE2 matches in time linear in the text, so no pattern can stall the server. With
``never_nl`` a match never crosses a newline, which gives grep's line semantics
while RE2 scans a whole chunk at C speed.
"""

from __future__ import annotations

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
    # we need where a match is, never its groups: without them RE2 never has to run
    # its slower submatch engines over a long match
    options.never_capture = True
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeError:
        raise PatternError("the pattern is not valid Unicode text") from None
    try:
        re2.compile(encoded, options=options)  # the pattern alone must be valid
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
    return any(token in pattern for token in ("(?=", "(?!", "(?<=", "(?<!", "(?P=")) or any(
        f"\\{digit}" in pattern for digit in "123456789"
    )


class FileHits:
    """Matching lines of one file: the first ``limit`` kept (cut at ``chars``), all counted."""

    def __init__(
        self, limit: int | None = MAX_LINES_PER_FILE, chars: int | None = MAX_LINE_CHARS
    ) -> None:
        self.match_count = 0
        self.lines: list[dict[str, Any]] = []
        self._limit = limit
        self._chars = chars
        self._last_line = 0

    def add(self, line_number: int, text: bytes) -> None:
        # a line cut between two chunks (longer than a chunk) is still one line
        if line_number == self._last_line:
            return
        self._last_line = line_number
        self.match_count += 1
        if self._limit is None or len(self.lines) < self._limit:
            decoded = text.decode("utf-8", "replace").removesuffix("\r")
            if self._chars is not None:
                decoded = decoded[: self._chars]
            self.lines.append({"line_number": line_number, "text": decoded})


def scan_chunk(regexp: Any, data: bytes, first_line: int, hits: FileHits) -> None:
    """Record each line of ``data`` that matches, once, with its line number."""
    # after a final newline there is no further line, though (?m)^ and $ match there
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    pos = 0
    counted_to = 0
    line_number = first_line
    while pos <= end and data:
        match = regexp.search(data, pos)
        if match is None or match.start() > end:
            return
        start = match.start()
        line_start = data.rfind(b"\n", 0, start) + 1
        line_end = data.find(b"\n", start)
        if line_end == -1:
            line_end = len(data)
        line_number += data.count(b"\n", counted_to, line_start)
        counted_to = line_start
        hits.add(line_number, data[line_start:line_end])
        pos = line_end + 1  # the rest of this line cannot add another matching line
