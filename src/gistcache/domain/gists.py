"""Plain data shared by the layers: a gist and its files as the API presents them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# a gist id as GitHub makes them (hex today, digits for the oldest), with room to spare;
# anything else is no gist, and is never sent to GitHub as one
GIST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class GistFile:
    filename: str
    language: str | None
    type: str | None
    size: int | None
    raw_url: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "language": self.language,
            "type": self.type,
            "size": self.size,
            "raw_url": self.raw_url,
        }


@dataclass(frozen=True, slots=True)
class Gist:
    id: str
    html_url: str
    description: str | None
    public: bool
    created_at: datetime
    updated_at: datetime
    comments: int
    owner: str | None
    files: tuple[GistFile, ...]
    truncated: bool = False
    # the list item's JSON as GitHub sent it (keys in GitHub's order), for answers in
    # GitHub's own shape; None for a gist cached before it was kept
    raw: str | None = field(default=None, compare=False, repr=False)
    # the owner's numeric id on GitHub, when the item gave it: read at a refresh to learn
    # the user's id, not stored with the gist, so not part of what makes two gists equal
    owner_id: int | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "html_url": self.html_url,
            "description": self.description,
            "public": self.public,
            "created_at": format_timestamp(self.created_at),
            "updated_at": format_timestamp(self.updated_at),
            "comments": self.comments,
            "owner": self.owner,
            "files": [f.to_json() for f in self.files],
        }


# NUL, which PostgreSQL text cannot hold (SQLite can), and UTF-16 surrogates, which no
# UTF-8 text can (JSON's "\ud800" escape makes one): a pair that was whole is already
# one code point once JSON is read, so every surrogate left is a lone one
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` with every character no database or UTF-8 answer can hold (NUL, a
    lone surrogate) replaced by U+FFFD, so that both databases store the same text."""
    return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value


def render_gists(gists: Sequence[Gist]) -> bytes:
    """Gists as the API's JSON array."""
    return json.dumps([gist.to_json() for gist in gists], ensure_ascii=False).encode()


def digest(body: bytes) -> str:
    """A short, stable fingerprint of a rendered body (what its ETag is made of)."""
    return hashlib.sha256(body).hexdigest()[:32]


def format_timestamp(value: datetime) -> str:
    """GitHub's own timestamp form: UTC, second precision, a trailing Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; a value without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
