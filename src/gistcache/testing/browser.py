"""Which Chromium the browser tests and the screenshot script drive, and how: Debian's
(Playwright downloads nothing), headless, with nothing fetched from the network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """``GISTCACHE_TEST_CHROMIUM`` when set, else Debian's chromium if installed."""
    configured = os.environ.get("GISTCACHE_TEST_CHROMIUM")
    if configured:
        return configured
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None
