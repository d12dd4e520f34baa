"""The page's static files, read from package data at start-up and served under names
that carry a hash of their contents, so a browser may keep each one for ever."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

STATIC_PREFIX = "/-/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str  # as shipped: page.js
    hashed: str  # as served: page.3f2a9c01d4e5.js
    body: bytes
    content_type: str

    @property
    def url(self) -> str:
        return STATIC_PREFIX + self.hashed


class Assets:
    """The static files by their shipped name (for templates) and by their served name."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._by_name: dict[str, Asset] = {}
        self._by_hashed: dict[str, Asset] = {}
        for name, body in sorted(files.items()):
            stem, dot, ext = name.rpartition(".")
            if not dot:
                stem, ext = name, ""
            fingerprint = hashlib.sha256(body).hexdigest()[:12]
            hashed = f"{stem}.{fingerprint}.{ext}" if ext else f"{stem}.{fingerprint}"
            suffix = f".{ext}" if ext else ""
            content_type = _TYPES.get(suffix) or (
                mimetypes.guess_type(name)[0] or "application/octet-stream"
            )
            asset = Asset(name, hashed, body, content_type)
            self._by_name[name] = asset
            self._by_hashed[hashed] = asset

    def url(self, name: str) -> str:
        """The address of the shipped file ``name``; a KeyError for a file not shipped."""
        return self._by_name[name].url

    def served(self, hashed: str) -> Asset | None:
        return self._by_hashed.get(hashed)


def load_assets(package: str = __package__ or "gistcache.web.pages") -> Assets:
    """Every file of the package's ``static`` folder."""
    folder = resources.files(package).joinpath("static")
    return Assets({entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()})
