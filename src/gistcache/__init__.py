"""gistcache: list and search GitHub users' public gists through a revalidating SQL cache."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gistcache")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
