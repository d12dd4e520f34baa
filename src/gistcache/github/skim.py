"""A few top-level fields of a JSON object read as its bytes stream past, with no I/O
and without keeping the rest.

GitHub's ``GET /gists/{id}`` sends every file's contents (up to 1 MiB each, 300 files)
before ``public`` and ``owner``: learning whose gist it is must not hold the whole body.
``FieldSkimmer`` is fed the body in pieces and keeps only the wanted fields' values
(each at most ``value_limit`` bytes of JSON), skipping long strings with ``bytes.find``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WS = b" \t\r\n"
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = b"{[", b"}]"
_LOGIN = re.compile(r"[A-Za-z0-9_-]{1,39}", re.ASCII)  # what a login may be (domain.requests)
KEY_LIMIT = 1024  # a longer key is wanted by nobody: it is skipped, not kept


class SkimError(ValueError):
    """The bytes are not a JSON object, or a wanted value is larger than its limit."""


class FieldSkimmer:
    """Feed it a JSON object's bytes in pieces; it keeps the top-level fields named in
    ``wanted`` and says when it has them all (the rest of the body need not be read)."""

    def __init__(self, wanted: frozenset[str], *, value_limit: int = 64 * 1024) -> None:
        self._wanted = wanted
        self._limit = value_limit
        self.fields: dict[str, Any] = {}
        self.ended = False  # the object's closing brace was read
        self._started = False
        self._depth = 0  # 1 inside the top-level object
        self._expect = "key"  # at depth 1: "key", "colon", "value", "comma"
        self._in_string = False
        self._run = 0  # parity of the backslashes ending the string read so far
        self._key = bytearray()
        self._key_kept = True
        self._key_is_string = False  # the string being read is a key (depth 1)
        self._name: str | None = None  # the field whose value is being read
        self._value = bytearray()
        self._keeping = False
        self._scalar = False  # the value at depth 1 is a number, true, false or null

    @property
    def done(self) -> bool:
        """Every wanted field seen, or the object ended."""
        return self.ended or self._wanted <= self.fields.keys()

    def feed(self, data: bytes) -> bool:
        """Read the next piece; True once ``done``. Raises SkimError."""
        i, n = 0, len(data)
        while i < n and not self.done:
            if self._in_string:
                i = self._string(data, i)
                continue
            byte = data[i]
            if not self._started:
                if byte in _WS:
                    i += 1
                    continue
                if byte != ord("{"):
                    raise SkimError("not a JSON object")
                self._started, self._depth = True, 1
                i += 1
                continue
            if self._depth == 1 and not self._scalar:
                i = self._top(data, i, byte)
                continue
            i = self._inside(data, i, byte)
        if self._keeping and self._value_start is not None:
            self._keep(data[self._value_start : i])
            self._value_start = 0
        return self.done

    _value_start: int | None = None

    def _top(self, data: bytes, i: int, byte: int) -> int:
        """One byte between the top-level object's fields."""
        if byte in _WS:
            return i + 1
        expect = self._expect
        if expect == "key" and byte == _QUOTE:
            self._key.clear()
            self._key_kept = True
            self._key_is_string = True
            self._in_string = True
            return i + 1
        if expect in ("key", "comma") and byte == ord("}"):
            self._depth = 0
            self.ended = True
            return i + 1
        if expect == "colon" and byte == ord(":"):
            self._expect = "value"
            return i + 1
        if expect == "comma" and byte == ord(","):
            self._expect = "key"
            return i + 1
        if expect == "value":
            self._begin_value(i)
            if byte == _QUOTE:
                self._in_string = True
                return i + 1
            if byte in _OPEN:
                self._depth += 1
                return i + 1
            self._scalar = True
            return i  # read by _inside, up to the comma or brace that ends it
        raise SkimError(f"unexpected {chr(byte)!r} in the object")

    def _begin_value(self, i: int) -> None:
        self._keeping = self._name is not None
        self._value.clear()
        self._value_start = i if self._keeping else None

    def _inside(self, data: bytes, i: int, byte: int) -> int:
        """One byte of a top-level value (a scalar, or within an array or object)."""
        if self._scalar:
            if byte in b",}" or byte in _WS:
                self._end_value(data, i)
                return i
            return i + 1
        if byte == _QUOTE:
            self._in_string = True
        elif byte in _OPEN:
            self._depth += 1
        elif byte in _CLOSE:
            self._depth -= 1
            if self._depth == 1:
                self._end_value(data, i + 1)
        return i + 1

    def _string(self, data: bytes, i: int) -> int:
        """Skip through a string to its closing quote (or the piece's end): a quote after
        an odd run of backslashes is escaped; a run may begin in an earlier piece."""
        start, n = i, len(data)
        while True:
            quote = data.find(b'"', i)
            end = n if quote < 0 else quote
            run = 0
            while end - run - 1 >= start and data[end - run - 1] == _BACKSLASH:
                run += 1
            if run == end - start:  # the run goes back to the piece's start
                run += self._run
            if quote < 0:
                self._key_byte(data, start, n)
                self._run = run % 2
                return n
            if run % 2:  # an escaped quote: still inside
                i = quote + 1
                continue
            self._key_byte(data, start, quote)
            self._in_string = False
            self._run = 0
            if self._key_is_string:
                self._key_is_string = False
                self._expect = "colon"
                self._name = self._field_name()
            elif self._depth == 1:  # a top-level string value ends here
                self._end_value(data, quote + 1)
            return quote + 1

    def _key_byte(self, data: bytes, start: int, end: int) -> None:
        if not self._key_is_string or not self._key_kept:
            return
        self._key += data[start:end]
        if len(self._key) > KEY_LIMIT:
            self._key_kept = False

    def _field_name(self) -> str | None:
        if not self._key_kept:
            return None
        try:
            name = json.loads(b'"' + bytes(self._key) + b'"')
        except ValueError as exc:
            raise SkimError("a malformed key") from exc
        return name if name in self._wanted and name not in self.fields else None

    def _end_value(self, data: bytes, end: int) -> None:
        self._scalar = False
        self._expect = "comma"
        if self._keeping and self._name is not None:
            self._keep(data[self._value_start or 0 : end])
            try:
                self.fields[self._name] = json.loads(bytes(self._value))
            except ValueError as exc:
                raise SkimError(f"a malformed value of {self._name!r}") from exc
        self._keeping = False
        self._value_start = None
        self._name = None

    def _keep(self, piece: bytes) -> None:
        self._value += piece
        if len(self._value) > self._limit:
            raise SkimError(f"the value of {self._name!r} is larger than {self._limit} bytes")


# what says whose gist it is, and whether it is public (older items name the owner in "user")
OWNER_FIELDS = frozenset({"public", "owner", "user"})


def owner_known(skimmer: FieldSkimmer) -> bool:
    """Whether the owner fields read so far settle the answer: all of them, or a gist
    that is not public (whoever owns it, it is not served)."""
    return skimmer.done or ("public" in skimmer.fields and skimmer.fields["public"] is not True)


def gist_owner(fields: dict[str, Any]) -> str | None:
    """The owner's login of a public gist from its ``OWNER_FIELDS``; None when the gist is
    not public (only a plain true is) or names no owner."""
    if fields.get("public") is not True:
        return None
    owner = fields.get("owner")
    if not isinstance(owner, dict):
        owner = fields.get("user")
    login = owner.get("login") if isinstance(owner, dict) else None
    return login if isinstance(login, str) and _LOGIN.fullmatch(login) else None
