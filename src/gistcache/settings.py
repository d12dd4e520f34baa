"""Configuration, read once from ``GISTCACHE_*`` environment variables and validated.

Each setting is declared once, as a field of ``Settings``: its default, the parser that
turns the variable's text into the stored value (with its bounds) and the documentation's words
for it. ``from_env`` loops over the fields; ``configuration_table`` renders docs/configuration.md's
table from the same declarations (``python -m gistcache.settings`` prints it).
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

from limits import RateLimitItem
from limits import parse as parse_limit
from sqlalchemy.engine import URL as SqlAlchemyUrl
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/gistcache.sqlite3"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
ENV_PREFIX = "GISTCACHE_"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Parser(Protocol[T_co]):
    """Turns a variable's (stripped, non-empty) text into its value, or raises ConfigError
    naming the variable; ``accepts`` tells docs/configuration.md what it takes."""

    @property
    def accepts(self) -> str: ...

    def __call__(self, name: str, raw: str) -> T_co: ...


@dataclass(frozen=True)
class Variable:
    """What a ``Settings`` field knows of its environment variable."""

    parse: Parser[Any]
    meaning: str
    shown_default: str | None = None  # the documented default, when the value alone says too little
    fallback: str | None = None  # another variable read when this one is unset


def setting(
    default: T,
    parse: Parser[T],
    meaning: str,
    *,
    shown_default: str | None = None,
    fallback: str | None = None,
    secret: bool = False,
) -> T:
    """A ``Settings`` field read from ``GISTCACHE_<FIELD NAME>``."""
    variable = Variable(parse, meaning, shown_default, fallback)
    declared: T = field(default=default, repr=not secret, metadata={Variable: variable})
    return declared


# the parsers


@dataclass(frozen=True)
class Integer:
    low: int
    high: int | None = None

    @property
    def accepts(self) -> str:
        if self.high is None:
            return f"integer, at least {self.low}"
        return f"integer, {self.low} to {self.high}"

    def __call__(self, name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if value < self.low or (self.high is not None and value > self.high):
            if self.high is None:
                raise ConfigError(f"{name} must be at least {self.low}, got {value}")
            raise ConfigError(f"{name} must be between {self.low} and {self.high}, got {value}")
        return value


@dataclass(frozen=True)
class Seconds:
    positive: bool = False

    @property
    def accepts(self) -> str:
        return "seconds, more than 0" if self.positive else "seconds, 0 or more"

    def __call__(self, name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise ConfigError(f"{name} must be a finite, non-negative number, got {raw!r}")
        if self.positive and value == 0:
            raise ConfigError(f"{name} must be greater than 0")
        return value


@dataclass(frozen=True)
class Choice:
    allowed: tuple[str, ...]

    @property
    def accepts(self) -> str:
        return " or ".join(f"`{a}`" for a in self.allowed)

    def __call__(self, name: str, raw: str) -> str:
        if raw.lower() not in self.allowed:
            raise ConfigError(f"{name} must be one of {', '.join(self.allowed)}, got {raw!r}")
        return raw.lower()


@dataclass(frozen=True)
class LogLevel:
    accepts = "`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`, in any case"

    def __call__(self, name: str, raw: str) -> str:
        level = raw.upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ConfigError(
                f"{name} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}"
            )
        return level


@dataclass(frozen=True)
class Text:
    accepts = "text"

    def __call__(self, name: str, raw: str) -> str:
        return raw


# what asyncpg.connect takes as keywords (a URL's query parameters become keywords), and
# the two SQLAlchemy's asyncpg dialect takes for itself; asyncpg refuses any other
ASYNCPG_PARAMETERS = frozenset(
    {
        "passfile", "service", "servicefile", "timeout", "statement_cache_size",
        "max_cached_statement_lifetime", "max_cacheable_statement_size", "command_timeout",
        "ssl", "direct_tls", "server_settings", "target_session_attrs", "krbsrvname", "gsslib",
        "prepared_statement_cache_size", "prepared_statement_name_func",
    }
)  # fmt: skip


@dataclass(frozen=True)
class DatabaseUrl:
    accepts = " or ".join(f"`{driver}://...`" for driver in SUPPORTED_DRIVERS)

    def __call__(self, name: str, raw: str) -> str:
        try:
            url = make_url(raw)
            url.port  # noqa: B018 - a malformed port raises here
        except (ArgumentError, ValueError):
            # never echo the value: it may hold a password
            raise ConfigError(f"{name} is not a valid SQLAlchemy URL") from None
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ConfigError(
                f"{name} must use one of {', '.join(SUPPORTED_DRIVERS)}, got {url.drivername!r}"
            )
        if url.drivername == "sqlite+aiosqlite":
            if _in_memory(url.database, url.query):
                raise ConfigError(
                    f"{name} names an in-memory SQLite database, which the cache cannot use: "
                    "it must outlive the process (and every connection would see a database "
                    "of its own); give a file, such as "
                    f"{DEFAULT_DATABASE_URL}"
                )
            return raw
        return _asyncpg_url(name, url, raw)


def _in_memory(database: str | None, query: Mapping[str, Any]) -> bool:
    return (
        not database
        or database == ":memory:"
        or database.startswith("file::memory:")
        or query.get("mode") == "memory"
    )


def _asyncpg_url(name: str, url: SqlAlchemyUrl, raw: str) -> str:
    """The URL asyncpg is given: libpq's ``sslmode`` becomes asyncpg's ``ssl``, which takes
    the same modes (``disable`` ... ``verify-full``); any other parameter asyncpg does not
    take is refused here, in words, rather than by the driver at the first connection."""
    query = dict(url.query)
    if "sslmode" in query:
        mode = query.pop("sslmode")
        if "ssl" in query and query["ssl"] != mode:
            raise ConfigError(
                f"{name} sets both sslmode and ssl, to different modes: keep one "
                "(asyncpg's name for it is ssl)"
            )
        query["ssl"] = mode
    unknown = sorted(set(query) - ASYNCPG_PARAMETERS)
    if unknown:
        raise ConfigError(
            f"{name} has the parameter {unknown[0]!r}, which asyncpg does not take "
            f"(it takes {', '.join(sorted(ASYNCPG_PARAMETERS))})"
        )
    if query == dict(url.query):
        return raw
    return url.set(query=query).render_as_string(hide_password=False)


@dataclass(frozen=True)
class HttpUrl:
    accepts = "`http(s)` URL without query or fragment"

    def __call__(self, name: str, raw: str) -> str:
        try:
            url = URL(raw)
            url.port  # noqa: B018 - a malformed port raises here
        except ValueError:
            raise ConfigError(f"{name} is not a valid URL: {raw!r}") from None
        if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
            raise ConfigError(
                f"{name} must be an http(s) URL without query or fragment, got {raw!r}"
            )
        return raw.rstrip("/")


@dataclass(frozen=True)
class Host:
    """An IP address, or a name that resolves now (else listening fails after start-up)."""

    accepts = "IP address or host name that resolves"

    def __call__(self, name: str, raw: str) -> str:
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
                f"{name} must be an IP address or a resolvable host name, got {raw!r} ({reason})"
            ) from None
        return raw


@dataclass(frozen=True)
class Origins:
    """Host names (meaning https on port 443) or explicit http(s)://host[:port] origins,
    stored as the URLs of their origins."""

    accepts = "comma-separated host names or `http(s)://host[:port]` origins"

    def __call__(self, name: str, raw: str) -> tuple[URL, ...]:
        entries = (h.strip().lower().rstrip("/") for h in raw.split(",") if h.strip())
        return tuple(self._origin(name, entry) for entry in entries)

    @staticmethod
    def _origin(name: str, entry: str) -> URL:
        url: URL | None
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
                f"{name} must list host names or http(s)://host[:port] origins, got {entry!r}"
            )
        return url.origin()


@dataclass(frozen=True)
class Networks:
    accepts = "comma-separated IP addresses or networks (CIDR)"

    def __call__(self, name: str, raw: str) -> tuple[Network, ...]:
        networks = []
        for part in raw.split(","):
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"{name} must list IP addresses or networks, got {part.strip()!r}"
                ) from None
        return tuple(networks)


@dataclass(frozen=True)
class RateLimit:
    accepts = "requests per time, in the `limits` notation: `120/minute`, `10/second`"

    def __call__(self, name: str, raw: str) -> RateLimitItem:
        try:
            limit = parse_limit(raw)
        except ValueError:
            raise ConfigError(
                f"{name} must look like 120/minute or 10/second, got {raw!r}"
            ) from None
        if limit.amount < 1:
            raise ConfigError(
                f"{name} must allow at least one request, got {raw!r} (leave it empty for no limit)"
            )
        return limit


@dataclass(frozen=True)
class Budget:
    """A number per time, or ``off``."""

    accepts = "requests per time, in the `limits` notation (`300/hour`), or `off`"

    def __call__(self, name: str, raw: str) -> RateLimitItem | None:
        if raw.lower() == "off":
            return None
        return RateLimit()(name, raw)


@dataclass(frozen=True)
class MigrationsFolder:
    accepts = "folder with `env.py` and `versions/`"

    def __call__(self, name: str, raw: str) -> Path:
        folder = Path(raw)
        if not (folder / "env.py").is_file() or not (folder / "versions").is_dir():
            raise ConfigError(
                f"{name} must be the folder of the alembic migrations "
                f"(with env.py and versions/), got {raw!r}"
            )
        return folder


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting, parsed: tests build one with keywords or ``dataclasses.replace``."""

    database_url: str = setting(
        DEFAULT_DATABASE_URL,
        DatabaseUrl(),
        "SQLAlchemy URL of the cache, e.g. `sqlite+aiosqlite:///path` or "
        "`postgresql+asyncpg://user:pass@host:5432/db`",
        shown_default=f"`{DEFAULT_DATABASE_URL}` (created on demand)",
    )
    github_api_url: str = setting(
        "https://api.github.com",
        HttpUrl(),
        "GitHub API base URL; GitHub Enterprise works as `https://HOST/api/v3`",
    )
    github_token: str | None = setting(
        None,
        Text(),
        "optional GitHub token (falls back to `GITHUB_TOKEN`); never logged or shown",
        fallback="GITHUB_TOKEN",
        secret=True,
    )
    host: str = setting(
        "0.0.0.0",  # noqa: S104 - a service in a container listens on every interface
        Host(),
        "listen address",
    )
    port: int = setting(8080, Integer(1, 65535), "listen port")
    cache_ttl: float = setting(
        60.0, Seconds(), "seconds a cached list is served without asking GitHub"
    )
    not_found_ttl: float = setting(
        300.0,
        Seconds(),
        "seconds an unknown user, or a gist id GitHub has no public gist by (unknown or "
        "secret), is remembered as unknown",
    )
    memory_cache_mb: int = setting(
        64,
        Integer(0),
        "megabytes each server may use to keep recently served lists with their JSON, "
        "so that a fresh list is answered without the database; `0` turns it off",
    )
    content_memory_mb: int = setting(
        64,
        Integer(0),
        "megabytes each server may use to keep recently searched files' contents, so that a "
        "warm search reads no chunk from the database (keyed on each file's stored revision: "
        "never stale; a file over an eighth of it is not kept, nor a user whose text does not "
        "fit in it whole); size it to the text bytes of the users searched again and again on "
        "this replica; `0` turns it off",
    )
    github_timeout: float = setting(
        10.0, Seconds(positive=True), "seconds for a whole GitHub request"
    )
    github_connect_timeout: float = setting(
        5.0, Seconds(positive=True), "seconds to connect to GitHub"
    )
    github_max_pages: int = setting(
        100, Integer(1), "most list pages followed for one user (100 gists each)"
    )
    github_retries: int = setting(
        2,
        Integer(0, 10),
        "retries of a GitHub request whose connection failed or that answered 502/503/504 "
        "(jittered, doubling back-off); never for other 4xx/5xx",
    )
    shutdown_timeout: float = setting(
        5.0,
        Seconds(),
        "seconds in-flight requests get to finish on SIGTERM, counted from the signal; then "
        "they are cancelled, their GitHub calls too, and the process exits within a second "
        "more",
    )
    log_level: str = setting("INFO", LogLevel(), "the least severe level logged")
    log_format: str = setting(
        "text",
        Choice(("text", "json")),
        "how a log line is written: `json` is one JSON object per line (for log shippers)",
    )
    raw_hosts: tuple[URL, ...] = setting(
        (),
        Origins(),
        "extra places that file contents may be fetched from, besides the API's own origin "
        "and `https://gist.githubusercontent.com`: a host name means `https` on port 443; "
        "`http://host:port` names an origin exactly",
    )
    fetch_concurrency: int = setting(
        16,
        Integer(1, 256),
        "most file downloads at once, for the whole process (raw files come from GitHub's "
        "CDN and cost no API budget; docs/performance.md says why 16)",
    )
    max_file_bytes: int = setting(
        100 * 1024 * 1024,
        Integer(1),
        "files larger than this are not fetched nor searched (reported as `too_large`)",
        shown_default="`104857600` (100 MB)",
    )
    content_cache_mb: int = setting(
        1024,
        Integer(1),
        "megabytes of file contents the database keeps, for every server and user together: "
        "past it, after a search (or `/api/v3/gists/{id}`) brought new contents in, the "
        "contents of the users searched least recently are deleted (their lists stay; their "
        "next search fetches them again)",
        shown_default="`1024` (1 GiB)",
    )
    search_download_mb: int = setting(
        128,
        Integer(1),
        "megabytes of new file contents one search (or `/api/v3/gists/{id}`, which reads "
        "from GitHub what is past it) may download and keep, and never more "
        "than leaves its user's contents within `GISTCACHE_CONTENT_CACHE_MB`: the files past "
        "it are reported as `download_budget` (a later search fetches more); a file larger "
        "than it is `too_large`. A value over `GISTCACHE_CONTENT_CACHE_MB` counts as that",
    )
    search_workers: int = setting(
        2,
        Integer(0, 64),
        "search jobs run at once by this process (`0`: it runs none, only queues them)",
    )
    search_result_ttl: float = setting(
        24 * 3600.0,
        Seconds(positive=True),
        "seconds a finished search job and its result are kept",
        shown_default="`86400` (24 h)",
    )
    max_jobs_per_client: int = setting(
        20,
        Integer(1, 100_000),
        "search jobs one client (an IPv4 address or an IPv6 /64) may have waiting or running "
        "at once, on every server together; one more is a `429` with `Retry-After`",
    )
    max_queued_jobs: int = setting(
        1000,
        Integer(1, 1_000_000),
        "search jobs waiting or running at once, for every client and server together; one "
        "more is a `503` with `Retry-After`",
    )
    search_job_lease: float = setting(
        60.0,
        Seconds(positive=True),
        "seconds a search job's claim lasts unless its server renews it (every third of "
        "it): a job whose server died is taken over by another once its lease runs out",
    )
    search_timeout: float = setting(
        120.0,
        Seconds(positive=True),
        "seconds a search (synchronous or a job) may take before it fails with a `504` problem",
    )
    max_searches: int = setting(
        8,
        Integer(1, 1024),
        "searches run at once by this process; a synchronous search beyond it gets a `503` "
        "with `Retry-After` (jobs wait their turn)",
    )
    max_answer_bytes: int = setting(
        8 * 1024 * 1024,
        Integer(64 * 1024),
        "about how many bytes of matching gists one search answer lists (a page, a job's "
        "result, a stream): past it the answer stops and says where in `cut` (the stream "
        "in its `done` event), with the `page` and `per_page` that ask for the rest",
        shown_default="`8388608` (8 MiB)",
    )
    answers_in_flight_mb: int = setting(
        64,
        Integer(1),
        "megabytes of large answers (over 64 KiB: search results, `/api/v3/gists/{id}`) "
        "this process holds while their clients read them; an answer that would pass it "
        "is a `503` with `Retry-After`. A client that takes nothing of an answer for "
        "`GISTCACHE_SEARCH_TIMEOUT` seconds is disconnected",
    )
    rate_limit: RateLimitItem | None = setting(
        None,
        RateLimit(),
        "requests one client may make, whatever they cost GitHub (see "
        "`GISTCACHE_CLIENT_GITHUB_BUDGET` for that); each answer carries `RateLimit-Limit`, "
        "`-Remaining` and `-Reset`; over it: `429` with `Retry-After`. `/ping`, `/healthz`, "
        "`/readyz` and `/metrics` are exempt (from both limits), and `/api/v3/rate_limit` "
        "spends none. Unset: no limit",
        shown_default="none (the compose file sets `120/minute`)",
    )
    client_github_budget: RateLimitItem | None = setting(
        parse_limit("300/hour"),
        Budget(),
        "GitHub API requests one client may cause, its search jobs included (a client is "
        "an IPv4 address or an IPv6 /64): a list not cached counts each of its pages, a "
        "gist not cached one, a "
        "revalidation each page asked again (none that GitHub answers `304` to a token: "
        "GitHub counts none); cached answers and raw downloads count nothing. Over it, a "
        "request that needs GitHub is a `429` with `Retry-After` (a cached list past its TTL "
        "is served `STALE` instead). Under `/api/v3`, GitHub's `x-ratelimit-*` headers and "
        "`GET /rate_limit` report it. Per process (a job is charged where it runs). `off`: no "
        "limit",
        shown_default="`300/hour`",
    )
    github_reserve_percent: int = setting(
        10,
        Integer(0, 90),
        "percent of GitHub's rate limit (rounded down) kept for revalidating the lists "
        "already cached: "
        "once GitHub's remaining budget is down to it, users and gists not cached are "
        "refused with a `503` and `Retry-After` (GitHub's reset) while cached lists are "
        "still revalidated; `0` keeps none",
    )
    trusted_proxies: tuple[Network, ...] = setting(
        (),
        Networks(),
        "reverse proxies whose `X-Forwarded-For` names the client; from anyone else the "
        "header is ignored",
    )
    migrations_dir: Path | None = setting(
        None,
        MigrationsFolder(),
        "where the alembic scripts are (when set, only there)",
        shown_default="the source tree's `migrations/`, else `./migrations`",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; raise ConfigError naming the first bad value.
        A variable that is empty counts as unset."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for declared in fields(cls):
            name, variable = env_name(declared), _variable(declared)
            raw = _read(env, name)
            if raw is None and variable.fallback is not None:
                raw = _read(env, variable.fallback)
            if raw is not None:
                values[declared.name] = variable.parse(name, raw)
        return cls(**values)

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for logs."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def _read(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def _variable(declared: Field[Any]) -> Variable:
    variable = declared.metadata.get(Variable)
    if not isinstance(variable, Variable):
        raise TypeError(f"Settings.{declared.name} is not declared with setting()")
    return variable


def env_name(declared: Field[Any]) -> str:
    return ENV_PREFIX + declared.name.upper()


# Every variable the program reads; docs/configuration.md documents each of them.
VARIABLES = tuple(env_name(f) for f in fields(Settings))


# GISTCACHE_ variables that are not settings, on purpose: the test suite's
# (GISTCACHE_TEST_*, GISTCACHE_SCREENSHOTS) and the benchmarks' (GISTCACHE_BENCH_*)
NOT_SETTINGS = re.compile(r"GISTCACHE_(?:TEST|BENCH)_\w*|GISTCACHE_SCREENSHOTS")


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A sentence for each ``GISTCACHE_*`` variable that is set but is no setting (a
    misspelt one is otherwise silently ignored), naming the closest setting."""
    env = os.environ if environ is None else environ
    told = []
    suffixes = {name.removeprefix(ENV_PREFIX): name for name in VARIABLES}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in VARIABLES or NOT_SETTINGS.fullmatch(name):
            continue
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
        hint = f"did you mean {suffixes[close[0]]}?" if close else "see docs/configuration.md"
        told.append(f"{name} is not a setting gistcache reads, and is ignored: {hint}")
    return told


def _shown(value: object) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def configuration_table() -> str:
    """docs/configuration.md's table, rendered from the declarations."""
    rows = ["| variable | meaning | accepts | default |", "|---|---|---|---|"]
    for declared in fields(Settings):
        variable = _variable(declared)
        default = variable.shown_default or _shown(declared.default)
        rows.append(
            f"| `{env_name(declared)}` | {variable.meaning} | {variable.parse.accepts} "
            f"| {default} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(configuration_table())
