"""Pure matching: compile a user's pattern with RE2, scan UTF-8 chunks line by line.

RE2 matches in time linear in the text, never backtracking, but the constant depends
on the pattern and the text: while its DFA's state cache holds, a megabyte takes
milliseconds; when the cache runs out (a long counted repetition over multi-byte
text, ``.{800}x``, or a pattern such as ``.*a.{400}`` over text of a and b) RE2 falls
back to simulating the NFA, about 10 s a megabyte. So a regular expression whose
compiled program is larger than ``MAX_PROGRAM_SIZE`` (the size at which the DFA's
states stop fitting) is refused, and ``scan_chunk`` scans in line-aligned slices,
asking between two whether to stop: the caller runs it off the event loop and stops
it when its time is up. With ``never_nl`` a match never crosses a newline, which
gives grep's line semantics while RE2 scans a slice at C speed.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

from gistcache.domain.errors import PatternError

MAX_PATTERN_LENGTH = 1000
MAX_LINES_PER_FILE = 20
MAX_LINE_CHARS = 500
# RE2 instructions: (.{20}){25}q (4,005) or [^\n]{600}Z (4,805) over CJK text still
# scan at DFA speed, (.{20}){35}q or [^\n]{700}Z (5,605) at NFA speed, 50 times slower
MAX_PROGRAM_SIZE = 4000
SCAN_SLICE = 32 * 1024  # bytes scanned between two looks at whether to stop
_UNSUPPORTED = ("invalid perl operator", "invalid escape sequence", "bad repetition operator")


class ScanStopped(Exception):
    """``scan_chunk`` was told to stop between two slices."""


def compile_pattern(pattern: str, *, ignore_case: bool = False, literal: bool = False) -> Any:
    """Compile ``pattern`` for byte-level, line-by-line search; with ``literal`` it is a
    fixed string whose regex metacharacters match themselves (``grep -F``)."""
    try:
        pattern.encode("utf-8")
    except UnicodeError:  # a lone surrogate (or an argument's stray byte): no text
        raise PatternError("the pattern is not valid Unicode text") from None
    if literal:
        pattern = re2.escape(pattern)
    options = re2.Options()
    options.never_nl = True
    options.case_sensitive = not ignore_case
    options.log_errors = False
    # we need where a match is, never its groups: without them RE2 never has to run
    # its slower submatch engines over a long match
    options.never_capture = True
    try:
        # multi-line mode so that ^ and $ anchor at each line, as in grep: a flag of its
        # own before the pattern, not a group around it (a ")" in the pattern could
        # close that group early, and a \Q in it would quote the group's end)
        regexp = re2.compile(f"(?m){pattern}".encode(), options=options)
    except re2.error:
        raise _refused(pattern, options) from None
    # a fixed string keeps RE2 fast at any length (a literal is at most 1,000 characters)
    if not literal and regexp.programsize > MAX_PROGRAM_SIZE:
        raise PatternError(
            f"the pattern is too complex: RE2 compiles it to {regexp.programsize:,} "
            f"instructions, more than the {MAX_PROGRAM_SIZE:,} allowed, beyond which matching "
            "can be 50 times slower; a long counted repetition such as .{500} or \\pL{5} "
            "is the usual cause"
        )
    return regexp


def _refused(pattern: str, options: Any) -> PatternError:
    """Why RE2 refuses ``pattern``, in its words about the pattern as it was written
    (compiled again without the flag before it: only a refused pattern pays for that)."""
    try:
        re2.compile(pattern.encode("utf-8"), options=options)
        reason = "RE2 refuses it"  # pragma: no cover - refused with the flag, so alone too
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if any(marker in reason for marker in _UNSUPPORTED) and _looks_perl_only(pattern):
        return PatternError(
            "RE2 syntax does not support backreferences or lookaround "
            f"(lookahead/lookbehind): {reason}"
        )
    return PatternError(f"invalid regular expression: {reason}")


def _looks_perl_only(pattern: str) -> bool:
    return any(token in pattern for token in ("(?=", "(?!", "(?<=", "(?<!", "(?P=")) or any(
        f"\\{digit}" in pattern for digit in "123456789"
    )


class FileHits:
    """Matching lines of one file: the first ``limit`` kept, all counted.

    A kept line longer than ``chars`` is cut to a window of that many characters around
    its first match; ``column`` says where in the line (1-based, in code points) the
    listed text starts, so 1 when nothing before it was cut, and ``line_length`` (only
    on a line that was cut) how long the whole line is. With a ``find`` each kept line
    gets ``ranges``: every match on it in code points of the listed text. With
    ``context`` each kept line gets ``before`` and ``after``: up to that many lines
    around it as ``(line_number, text, line_length)`` (``line_length`` None unless the
    text is cut to its first ``chars``), never a line already shown (as grep -C);
    the chunks' ends must then be told with ``end_chunk`` (``scan_chunk`` does).
    """

    def __init__(
        self,
        limit: int | None = MAX_LINES_PER_FILE,
        chars: int | None = MAX_LINE_CHARS,
        *,
        find: Finder | None = None,
        context: int = 0,
    ) -> None:
        self.match_count = 0
        self.lines: list[dict[str, Any]] = []
        self._limit = limit
        self._chars = chars
        self._find = find
        self._context = context
        self._last_line = 0
        self._shown = 0  # the last line number shown, listed or as context
        self._new: list[dict[str, Any]] = []  # kept from the current chunk
        self._open: tuple[dict[str, Any], int] | None = None  # after-context going on
        self._tail: list[tuple[int, str, int | None]] = []  # the previous chunks' last lines

    def add(self, line_number: int, data: bytes, start: int, end: int, line_end: int) -> None:
        """Count the line of ``data`` whose first match spans ``start`` to ``end`` and that
        ends at ``line_end``; its text is cut out only while lines are still being kept."""
        # a line cut between two chunks (longer than a chunk) is still one line
        if line_number == self._last_line:
            return
        self._last_line = line_number
        self.match_count += 1
        if self._limit is not None and len(self.lines) >= self._limit:
            return
        line_start = data.rfind(b"\n", 0, start) + 1
        text = data[line_start:line_end].decode("utf-8", "replace").removesuffix("\r")
        length = len(text)
        column = 1
        chars = self._chars
        cut = chars is not None and length > chars
        if chars is not None and cut:
            first = len(data[line_start:start].decode("utf-8", "replace"))
            last = first + len(data[start:end].decode("utf-8", "replace"))
            column = _window(first, min(last, length), length, chars) + 1
            text = text[column - 1 : column - 1 + chars]
        entry: dict[str, Any] = {"line_number": line_number, "column": column, "text": text}
        if cut:
            entry["line_length"] = length
        if self._find is not None:
            # the line's first match is the one found: its search is not made again
            spans = [
                (s if s < length else length, e if e < length else length)
                for s, e in line_ranges(self._find, data, line_start, line_end, (start, end))
            ]
            # a whole line holds every span (each cut to its length) as it is
            entry["ranges"] = window_ranges(spans, column - 1, len(text)) if cut else spans
        if self._context:
            entry["before"] = []
            entry["after"] = []
            self._new.append(entry)
        self.lines.append(entry)

    def end_chunk(self, data: bytes, first_line: int) -> None:
        """Fill in the context of the lines kept from ``data`` (a chunk whose first line
        is ``first_line``), and of a line before it whose after-context runs into it."""
        n = self._context
        if not n:
            return
        if self._new or self._open is not None:
            lines = data.split(b"\n")
            if data.endswith(b"\n"):
                lines.pop()
            last_line = first_line + len(lines) - 1
            tail = {number: (text, length) for number, text, length in self._tail}

            def text(number: int) -> tuple[str, int | None]:
                if number >= first_line:
                    return self._context_text(lines[number - first_line])
                return tail.get(number, ("", None))

            if self._open is not None:
                entry, until = self._open
                self._open = None
                stop = min(until, last_line)
                if self._new:
                    stop = min(stop, self._new[0]["line_number"] - 1)
                for number in range(max(first_line, self._shown + 1), stop + 1):
                    entry["after"].append((number, *text(number)))
                self._shown = max(self._shown, stop)
                if stop == last_line and stop < until and not self._new:
                    self._open = (entry, until)
            for i, entry in enumerate(self._new):
                number = entry["line_number"]
                for before in range(max(number - n, self._shown + 1, 1), number):
                    if before >= first_line or before in tail:
                        entry["before"].append((before, *text(before)))
                self._shown = number
                until = number + n
                stop = min(until, last_line)
                if i + 1 < len(self._new):
                    stop = min(stop, self._new[i + 1]["line_number"] - 1)
                for after in range(number + 1, stop + 1):
                    entry["after"].append((after, *text(after)))
                self._shown = max(number, stop)
                if i + 1 == len(self._new) and stop == last_line and stop < until:
                    self._open = (entry, until)
            self._new = []
        self._tail = (self._tail + _last_lines(data, first_line, n, self._context_text))[-n:]

    def _context_text(self, raw: bytes) -> tuple[str, int | None]:
        """A context line as listed lines are: decoded, and a long one cut to its start
        (then with the whole line's length)."""
        text = raw.decode("utf-8", "replace").removesuffix("\r")
        if self._chars is not None and len(text) > self._chars:
            return text[: self._chars], len(text)
        return text, None


def _last_lines(
    data: bytes, first_line: int, n: int, decode: Callable[[bytes], tuple[str, int | None]]
) -> list[tuple[int, str, int | None]]:
    """The last ``n`` lines of a chunk, with their numbers, without splitting all of it."""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    if end < 0 or not data:
        return []
    last_line = first_line + data.count(b"\n", 0, end)
    found: list[tuple[int, str, int | None]] = []
    stop = end
    while len(found) < n and stop >= 0:
        start = data.rfind(b"\n", 0, stop) + 1
        found.append((last_line - len(found), *decode(data[start:stop])))
        if start == 0:
            break
        stop = start - 1
    found.reverse()
    return found


def _window(first: int, last: int, length: int, width: int) -> int:
    """Where a ``width`` long window of a ``length`` long line starts so that it holds
    the match from ``first`` to ``last`` (its start, if the match is longer), centred."""
    spare = width - (last - first)
    begin = first if spare <= 0 else first - spare // 2
    return max(0, min(begin, length - width))


Finder = Callable[[bytes, int, int], tuple[int, int]]

# the characters that make a pattern more than the text it is: without them (and
# matched case-sensitively) every match is the pattern's own bytes
_REGEX_SPECIALS = frozenset("\\.^$|?*+()[]{}")


def fixed_text(pattern: str, *, ignore_case: bool = False, literal: bool = False) -> bytes | None:
    """The bytes every match of ``pattern`` is, when it is a fixed string matched
    case-sensitively on one line; None when RE2 must do the matching."""
    if ignore_case or not pattern or "\n" in pattern:
        return None  # RE2 never matches a newline (never_nl); an empty one matches anywhere
    if not literal and any(char in _REGEX_SPECIALS for char in pattern):
        return None
    return pattern.encode("utf-8")


def match_finder(
    regexp: Any, *, _force_public_api: bool = False, text: bytes | None = None
) -> Finder:
    """A function giving where the next match in ``data[pos:endpos]`` starts and ends,
    or ``(-1, -1)``.

    With ``text`` (``fixed_text``'s answer for the pattern ``regexp`` was compiled
    from) the match is a plain substring search, several times RE2's speed: UTF-8
    being self-synchronising, a valid text can match only where RE2 would. The
    binding's ``search`` builds a match object per call, which costs more than RE2's
    own scan when most lines match; where the binding exposes RE2's call, it is used
    directly (the same call ``search`` makes, with the same arguments). That call is
    private: pyproject.toml holds google-re2 to the versions it was tested with, and
    ``_force_public_api`` (for the tests alone) takes the public ``search`` so that the
    tests can check the faster ways give its answers.
    """
    if text is not None and not _force_public_api:
        size = len(text)
        find_bytes = bytes.find

        def find_text(data: bytes, pos: int, endpos: int) -> tuple[int, int]:
            start = find_bytes(data, text, pos, endpos)
            return (start, start + size) if start >= 0 else (-1, -1)

        return find_text
    raw = getattr(regexp, "_regexp", None)
    unanchored = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if not _force_public_api and unanchored is not None and callable(getattr(raw, "Match", None)):
        match = raw.Match  # type: ignore[union-attr]

        def find(data: bytes, pos: int, endpos: int) -> tuple[int, int]:
            span: tuple[int, int] = match(unanchored, data, pos, endpos)[0]
            return span

        return find

    def find_public(data: bytes, pos: int, endpos: int) -> tuple[int, int]:
        found = regexp.search(data, pos, endpos)
        return (-1, -1) if found is None else (int(found.start()), int(found.end()))

    return find_public


@dataclass(frozen=True, slots=True, eq=False)
class Pattern:
    """A search's pattern compiled once, for every scan of the search: the RE2 program
    (``compile_pattern``), the bytes every match is when it is a fixed string
    (``fixed_text``), and the finder built from them (``match_finder``)."""

    text: str
    ignore_case: bool
    literal: bool
    regexp: Any
    fixed: bytes | None
    find: Finder

    @classmethod
    def compile(cls, text: str, *, ignore_case: bool = False, literal: bool = False) -> Pattern:
        """``text`` compiled, or the ``PatternError`` saying why RE2 refuses it."""
        regexp = compile_pattern(text, ignore_case=ignore_case, literal=literal)
        fixed = fixed_text(text, ignore_case=ignore_case, literal=literal)
        return cls(text, ignore_case, literal, regexp, fixed, match_finder(regexp, text=fixed))


def scan_chunk(
    regexp: Any,
    data: bytes,
    first_line: int,
    hits: FileHits | None,
    find: Finder | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    slice_bytes: int = SCAN_SLICE,
    new_hits: Callable[[], FileHits] | None = None,
) -> FileHits | None:
    """Record each line of ``data`` that matches, once, with its line number, in
    ``hits``; the hits recorded in. With ``hits`` None they are made by ``new_hits`` at
    the first matching line (a file that does not match costs no object): None when
    no line matches.

    With ``stop``, ``data`` is scanned in slices of about ``slice_bytes`` that end at a
    line's end (a longer line is one slice), and ``stop()`` is asked before each: when
    it answers true, ``ScanStopped`` is raised. RE2 reads past a slice's edges for
    ``^``, ``$`` and ``\\b``, so the slices find exactly what one scan would."""
    if find is None:
        find = match_finder(regexp)
    size = len(data)
    # after a final newline there is no further line, though (?m)^ and $ match there
    end = size - 1 if data.endswith(b"\n") else size
    pos = 0
    counted_to = 0
    line_number = first_line
    slice_end = size if stop is None else 0
    while pos <= end and data:
        if pos >= slice_end:
            if stop is not None and stop():
                raise ScanStopped()
            cut = data.find(b"\n", pos + slice_bytes - 1)
            slice_end = size if cut < 0 else cut + 1
        start, stop_at = find(data, pos, slice_end)
        if start < 0 or start > end:
            if slice_end >= size:
                break
            pos = slice_end  # nothing in this slice: on to the next
            continue
        line_number += data.count(b"\n", counted_to, start)
        counted_to = start
        line_end = data.find(b"\n", start)
        if line_end == -1:
            line_end = len(data)
        if hits is None:
            assert new_hits is not None  # noqa: S101 - hits or a way to make them
            hits = new_hits()
        hits.add(line_number, data, start, stop_at, line_end)
        pos = line_end + 1  # the rest of this line cannot add another matching line
    if hits is not None:
        hits.end_chunk(data, first_line)
    return hits


def any_match(
    find: Finder,
    data: bytes,
    *,
    stop: Callable[[], bool] | None = None,
    slice_bytes: int = SCAN_SLICE,
) -> bool:
    """Whether a line of ``data`` matches, as ``scan_chunk`` would find one (no line is
    cut out or counted): in the same line-aligned slices, asking ``stop()`` before
    each (``ScanStopped`` when it answers true)."""
    size = len(data)
    end = size - 1 if data.endswith(b"\n") else size  # nothing after a final newline
    pos = 0
    while pos < size:
        if stop is not None and stop():
            raise ScanStopped()
        cut = data.find(b"\n", pos + slice_bytes - 1)
        slice_end = size if cut < 0 else cut + 1
        start, _ = find(data, pos, slice_end)
        if 0 <= start <= end:
            return True
        pos = slice_end
    return False


def line_ranges(
    find: Finder,
    data: bytes,
    line_start: int,
    line_end: int,
    first: tuple[int, int] | None = None,
) -> list[tuple[int, int]]:
    """Every match on the line ``data[line_start:line_end]`` as ``[start, end)`` pairs in
    code points of the line's text, left to right and non-overlapping, as RE2 finds them.
    ``first``: the line's first match, when the caller found it already (in bytes of
    ``data``)."""
    line = data[line_start:line_end]
    ascii_only = line.isascii()  # then a code point is a byte: nothing to decode
    spans: list[tuple[int, int]] = []
    pos = line_start
    while pos <= line_end:
        # within the line only: a search to the end of the chunk would scan on to the
        # next matching line, again for every kept line
        if first is not None:
            (start, stop), first = first, None
        else:
            start, stop = find(data, pos, line_end)
        if start < 0 or start > line_end:
            break
        if ascii_only:
            spans.append((start - line_start, stop - line_start))
        else:
            spans.append(
                (_code_points(line, start - line_start), _code_points(line, stop - line_start))
            )
        # past an empty match, go on at the next character (never inside one)
        pos = stop if stop > start else _next_char(data, stop)
    return spans


def _code_points(line: bytes, offset: int) -> int:
    return len(line[:offset].decode("utf-8", "replace"))


def _next_char(data: bytes, pos: int) -> int:
    pos += 1
    while pos < len(data) and data[pos] & 0xC0 == 0x80:
        pos += 1
    return pos


def window_ranges(ranges: list[tuple[int, int]], begin: int, length: int) -> list[tuple[int, int]]:
    """``ranges`` relative to a window of ``length`` code points from ``begin`` (0-based),
    cut at its edges; a range wholly outside it is left out."""
    inside = []
    for start, end in ranges:
        overlaps = start < begin + length and end > begin
        empty_inside = start == end and begin <= start <= begin + length
        if overlaps or empty_inside:
            inside.append((max(start - begin, 0), min(end - begin, length)))
    return inside


def glob_matches(glob: str, filename: str) -> bool:
    """Whether ``filename`` matches the shell-style ``glob`` (``*``, ``?``, ``[...]``),
    ignoring case."""
    return fnmatch.fnmatchcase(filename.casefold(), glob.casefold())


_NOT_ANCHOR_CHAR = re.compile(r"[^a-z0-9_-]")


def line_anchor(filename: str, line_number: int) -> str:
    """GitHub's anchor of a line in a gist: ``#file-<name>-L<n>``, ``<name>`` the file name
    lowercased with every character other than an ASCII letter, digit, ``_`` or ``-``
    replaced by ``-``."""
    return f"{line_anchor_prefix(filename)}{line_number}"


@functools.lru_cache(maxsize=4096)  # a search makes one per matching file, every time
def line_anchor_prefix(filename: str) -> str:
    """``line_anchor`` without the line number: ``#file-<name>-L``."""
    return f"#file-{_NOT_ANCHOR_CHAR.sub('-', filename.lower())}-L"
