"""Configuration, read once from ``GISTCACHE_*`` environment variables and validated."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from limits import parse as parse_limit
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/gistcache.sqlite3"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")

# Every variable the program reads; the README documents each of them.
VARIABLES = (
    "GISTCACHE_DATABASE_URL",
    "GISTCACHE_GITHUB_API_URL",
    "GISTCACHE_GITHUB_TOKEN",
    "GISTCACHE_HOST",
    "GISTCACHE_PORT",
    "GISTCACHE_CACHE_TTL",
    "GISTCACHE_NOT_FOUND_TTL",
    "GISTCACHE_MEMORY_CACHE_MB",
    "GISTCACHE_GITHUB_TIMEOUT",
    "GISTCACHE_GITHUB_CONNECT_TIMEOUT",
    "GISTCACHE_GITHUB_MAX_PAGES",
    "GISTCACHE_GITHUB_RETRIES",
    "GISTCACHE_SHUTDOWN_TIMEOUT",
    "GISTCACHE_LOG_LEVEL",
    "GISTCACHE_LOG_FORMAT",
    "GISTCACHE_RAW_HOSTS",
    "GISTCACHE_FETCH_CONCURRENCY",
    "GISTCACHE_MAX_FILE_BYTES",
    "GISTCACHE_SEARCH_WORKERS",
    "GISTCACHE_SEARCH_RESULT_TTL",
    "GISTCACHE_SEARCH_TIMEOUT",
    "GISTCACHE_MAX_SEARCHES",
    "GISTCACHE_RATE_LIMIT",
    "GISTCACHE_TRUSTED_PROXIES",
    "GISTCACHE_MIGRATIONS_DIR",  # checked here, used by store.migrate: the alembic scripts
)


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    github_api_url: str = "https://api.github.com"
    github_token: str | None = field(default=None, repr=False)
    host: str = "0.0.0.0"  # noqa: S104 - a service in a container listens on every interface
    port: int = 8080
    cache_ttl: float = 60.0
    not_found_ttl: float = 300.0
    memory_cache_mb: int = 64
    github_timeout: float = 10.0
    github_connect_timeout: float = 5.0
    github_max_pages: int = 100
    github_retries: int = 2
    shutdown_timeout: float = 5.0
    log_level: str = "INFO"
    log_format: str = "text"
    raw_hosts: tuple[str, ...] = ()
    fetch_concurrency: int = 8
    max_file_bytes: int = 100 * 1024 * 1024
    search_workers: int = 2
    search_result_ttl: float = 24 * 3600.0
    search_timeout: float = 120.0
    max_searches: int = 8
    rate_limit: str = ""
    trusted_proxies: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; raise ConfigError naming the first bad value."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"GISTCACHE_{name}")
            return value.strip() if value is not None and value.strip() != "" else None

        defaults = cls()
        _migrations_dir("MIGRATIONS_DIR", get("MIGRATIONS_DIR"))  # read by store.migrate
        token = get("GITHUB_TOKEN") or (env.get("GITHUB_TOKEN") or "").strip() or None
        return cls(
            database_url=_database_url(get("DATABASE_URL") or defaults.database_url),
            github_api_url=_http_url("GITHUB_API_URL", get("GITHUB_API_URL"), defaults),
            github_token=token,
            host=_host("HOST", get("HOST"), defaults.host),
            port=_int("PORT", get("PORT"), defaults.port, low=1, high=65535),
            cache_ttl=_seconds("CACHE_TTL", get("CACHE_TTL"), defaults.cache_ttl),
            not_found_ttl=_seconds("NOT_FOUND_TTL", get("NOT_FOUND_TTL"), defaults.not_found_ttl),
            memory_cache_mb=_int(
                "MEMORY_CACHE_MB", get("MEMORY_CACHE_MB"), defaults.memory_cache_mb, low=0
            ),
            github_timeout=_seconds(
                "GITHUB_TIMEOUT", get("GITHUB_TIMEOUT"), defaults.github_timeout, positive=True
            ),
            github_connect_timeout=_seconds(
                "GITHUB_CONNECT_TIMEOUT",
                get("GITHUB_CONNECT_TIMEOUT"),
                defaults.github_connect_timeout,
                positive=True,
            ),
            github_max_pages=_int(
                "GITHUB_MAX_PAGES", get("GITHUB_MAX_PAGES"), defaults.github_max_pages, low=1
            ),
            github_retries=_int(
                "GITHUB_RETRIES", get("GITHUB_RETRIES"), defaults.github_retries, low=0, high=10
            ),
            shutdown_timeout=_seconds(
                "SHUTDOWN_TIMEOUT", get("SHUTDOWN_TIMEOUT"), defaults.shutdown_timeout
            ),
            log_level=_log_level(get("LOG_LEVEL") or defaults.log_level),
            log_format=_choice("LOG_FORMAT", get("LOG_FORMAT"), ("text", "json"), "text"),
            raw_hosts=_hosts("RAW_HOSTS", get("RAW_HOSTS")),
            fetch_concurrency=_int(
                "FETCH_CONCURRENCY",
                get("FETCH_CONCURRENCY"),
                defaults.fetch_concurrency,
                low=1,
                high=256,
            ),
            max_file_bytes=_int(
                "MAX_FILE_BYTES", get("MAX_FILE_BYTES"), defaults.max_file_bytes, low=1
            ),
            search_workers=_int(
                "SEARCH_WORKERS", get("SEARCH_WORKERS"), defaults.search_workers, low=0, high=64
            ),
            search_result_ttl=_seconds(
                "SEARCH_RESULT_TTL",
                get("SEARCH_RESULT_TTL"),
                defaults.search_result_ttl,
                positive=True,
            ),
            search_timeout=_seconds(
                "SEARCH_TIMEOUT", get("SEARCH_TIMEOUT"), defaults.search_timeout, positive=True
            ),
            max_searches=_int(
                "MAX_SEARCHES", get("MAX_SEARCHES"), defaults.max_searches, low=1, high=1024
            ),
            rate_limit=_rate_limit("RATE_LIMIT", get("RATE_LIMIT")),
            trusted_proxies=_networks("TRUSTED_PROXIES", get("TRUSTED_PROXIES")),
        )

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for logs."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def _int(name: str, raw: str | None, default: int, *, low: int, high: int | None = None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"GISTCACHE_{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"GISTCACHE_{name} must be {bounds}, got {value}")
    return value


def _seconds(name: str, raw: str | None, default: float, *, positive: bool = False) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"GISTCACHE_{name} must be a number of seconds, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ConfigError(f"GISTCACHE_{name} must be a finite, non-negative number, got {raw!r}")
    if positive and value == 0:
        raise ConfigError(f"GISTCACHE_{name} must be greater than 0")
    return value


def _http_url(name: str, raw: str | None, defaults: Settings) -> str:
    if raw is None:
        return defaults.github_api_url
    try:
        url = URL(raw)
        url.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise ConfigError(f"GISTCACHE_{name} is not a valid URL: {raw!r}") from None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ConfigError(
            f"GISTCACHE_{name} must be an http(s) URL without query or fragment, got {raw!r}"
        )
    return raw.rstrip("/")


def _hosts(name: str, raw: str | None) -> tuple[str, ...]:
    """Host names (meaning https on port 443) or explicit http(s)://host[:port] origins."""
    if raw is None:
        return ()
    entries = tuple(h.strip().lower().rstrip("/") for h in raw.split(",") if h.strip())
    for entry in entries:
        try:
            url = URL(entry if "://" in entry else f"https://{entry}")
            url.port  # noqa: B018 - a malformed port raises here
        except ValueError:
            url = None
        if (
            url is None
            or url.scheme not in ("http", "https")
            or not url.host
            or not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:]+", url.host)
            or url.path not in ("", "/")
            or url.query_string
            or url.user
        ):
            raise ConfigError(
                f"GISTCACHE_{name} must list host names or http(s)://host[:port] origins, "
                f"got {entry!r}"
            )
    return entries


def _database_url(raw: str) -> str:
    try:
        url = make_url(raw)
        url.port  # noqa: B018 - a malformed port raises here
    except (ArgumentError, ValueError):
        # never echo the value: it may hold a password
        raise ConfigError("GISTCACHE_DATABASE_URL is not a valid SQLAlchemy URL") from None
    if url.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError(
            "GISTCACHE_DATABASE_URL must use one of "
            f"{', '.join(SUPPORTED_DRIVERS)}, got {url.drivername!r}"
        )
    return raw


def _rate_limit(name: str, raw: str | None) -> str:
    if raw is None:
        return ""
    try:
        limit = parse_limit(raw)
    except ValueError:
        raise ConfigError(
            f"GISTCACHE_{name} must look like 120/minute or 10/second, got {raw!r}"
        ) from None
    if limit.amount < 1:
        raise ConfigError(
            f"GISTCACHE_{name} must allow at least one request, got {raw!r} "
            "(leave it empty for no limit)"
        )
    return raw


def _host(name: str, raw: str | None, default: str) -> str:
    """An IP address, or a name that resolves now (else listening fails after start-up)."""
    if raw is None:
        return default
    try:
        ipaddress.ip_address(raw)
        return raw
    except ValueError:
        pass
    try:
        socket.getaddrinfo(raw, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"GISTCACHE_{name} must be an IP address or a resolvable host name, "
            f"got {raw!r} ({reason})"
        ) from None
    return raw


def _migrations_dir(name: str, raw: str | None) -> None:
    if raw is None:
        return
    folder = Path(raw)
    if not (folder / "env.py").is_file() or not (folder / "versions").is_dir():
        raise ConfigError(
            f"GISTCACHE_{name} must be the folder of the alembic migrations "
            f"(with env.py and versions/), got {raw!r}"
        )


def _networks(name: str, raw: str | None) -> str:
    if raw is None:
        return ""
    for part in raw.split(","):
        try:
            ipaddress.ip_network(part.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"GISTCACHE_{name} must list IP addresses or networks, got {part.strip()!r}"
            ) from None
    return raw


def _choice(name: str, raw: str | None, allowed: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if raw.lower() not in allowed:
        raise ConfigError(f"GISTCACHE_{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw.lower()


def _log_level(raw: str) -> str:
    level = raw.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ConfigError(
            f"GISTCACHE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}"
        )
    return level
