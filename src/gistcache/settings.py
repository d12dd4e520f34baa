"""Configuration, read once from ``GISTCACHE_*`` environment variables and validated.

Each setting is declared once, as a field of ``Settings`` (a pydantic-settings model): its
default, its bounds, the type that reads the variable's text, and as its description the
documentation's words for it. ``Settings.from_env`` reads the environment and words a bad value
for the user; ``configuration_table`` renders docs/configuration.md's table from the same fields
(``python -m gistcache.settings`` prints it).
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from limits import RateLimitItem
from limits import parse as parse_limit
from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL as SqlAlchemyUrl
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from yarl import URL

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/gistcache.sqlite3"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
ENV_PREFIX = "GISTCACHE_"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Accepts:
    """What a variable takes, in docs/configuration.md's words: metadata of a setting's type
    (an integer's and a number of seconds' words come from their bounds)."""

    words: str


# The readers of the variables' text. Each raises ValueError with the words that follow the
# variable's name in the message the user sees.


def _integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None


def _seconds(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {raw!r}") from None


def _log_level(raw: str) -> str:
    level = raw.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {raw!r}")
    return level


def _log_format(raw: str) -> str:
    if raw.lower() not in ("text", "json"):
        raise ValueError(f"must be one of text, json, got {raw!r}")
    return raw.lower()


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


def _database_url(raw: str) -> str:
    try:
        url = make_url(raw)
        url.port  # noqa: B018 - a malformed port raises here
    except (ArgumentError, ValueError):
        # never echo the value: it may hold a password
        raise ValueError("is not a valid SQLAlchemy URL") from None
    if url.drivername not in SUPPORTED_DRIVERS:
        raise ValueError(f"must use one of {', '.join(SUPPORTED_DRIVERS)}, got {url.drivername!r}")
    if url.drivername == "sqlite+aiosqlite":
        if _in_memory(url.database, url.query):
            raise ValueError(
                "names an in-memory SQLite database, which the cache cannot use: it must "
                "outlive the process (and every connection would see a database of its own); "
                f"give a file, such as {DEFAULT_DATABASE_URL}"
            )
        return raw
    return _asyncpg_url(url, raw)


def _in_memory(database: str | None, query: Mapping[str, Any]) -> bool:
    return (
        not database
        or database == ":memory:"
        or database.startswith("file::memory:")
        or query.get("mode") == "memory"
    )


def _asyncpg_url(url: SqlAlchemyUrl, raw: str) -> str:
    """The URL asyncpg is given: libpq's ``sslmode`` becomes asyncpg's ``ssl``, which takes
    the same modes (``disable`` ... ``verify-full``); any other parameter asyncpg does not
    take is refused here, in words, rather than by the driver at the first connection."""
    query = dict(url.query)
    if "sslmode" in query:
        mode = query.pop("sslmode")
        if "ssl" in query and query["ssl"] != mode:
            raise ValueError(
                "sets both sslmode and ssl, to different modes: keep one "
                "(asyncpg's name for it is ssl)"
            )
        query["ssl"] = mode
    unknown = sorted(set(query) - ASYNCPG_PARAMETERS)
    if unknown:
        raise ValueError(
            f"has the parameter {unknown[0]!r}, which asyncpg does not take "
            f"(it takes {', '.join(sorted(ASYNCPG_PARAMETERS))})"
        )
    if query == dict(url.query):
        return raw
    return url.set(query=query).render_as_string(hide_password=False)


def _http_url(raw: str) -> str:
    try:
        url = URL(raw)
        url.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise ValueError(f"is not a valid URL: {raw!r}") from None
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ValueError(f"must be an http(s) URL without query or fragment, got {raw!r}")
    return raw.rstrip("/")


def _host(raw: str) -> str:
    """An IP address, or a name that resolves now (else listening fails after start-up)."""
    try:
        ipaddress.ip_address(raw)
        return raw
    except ValueError:
        pass
    try:
        socket.getaddrinfo(raw, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(
            f"must be an IP address or a resolvable host name, got {raw!r} ({reason})"
        ) from None
    return raw


def _origins(raw: str) -> tuple[URL, ...]:
    """Host names (meaning https on port 443) or explicit http(s)://host[:port] origins,
    kept as the URLs of their origins."""
    entries = (h.strip().lower().rstrip("/") for h in raw.split(",") if h.strip())
    return tuple(_origin(entry) for entry in entries)


def _origin(entry: str) -> URL:
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
        raise ValueError(f"must list host names or http(s)://host[:port] origins, got {entry!r}")
    return url.origin()


def _networks(raw: str) -> tuple[Network, ...]:
    networks = []
    for part in raw.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(f"must list IP addresses or networks, got {part.strip()!r}") from None
    return tuple(networks)


def _tokens(raw: str) -> tuple[str, ...]:
    tokens = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(len(token) < 16 or not token.isprintable() or " " in token for token in tokens):
        raise ValueError("must list tokens of 16 or more printable characters, without spaces")
    return tokens


def _hosts_or_networks(raw: str) -> tuple[str, ...]:
    """Host names (lower-cased) and IP addresses or networks (kept as CIDR text)."""
    entries = []
    for part in (p.strip().lower() for p in raw.split(",") if p.strip()):
        try:
            entries.append(str(ipaddress.ip_network(part, strict=False)))
            continue
        except ValueError:
            pass
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", part):
            raise ValueError(f"must list host names, IP addresses or networks, got {part!r}")
        entries.append(part)
    return tuple(entries)


def _rate_limit(raw: str) -> RateLimitItem:
    try:
        limit = parse_limit(raw)
    except ValueError:
        raise ValueError(f"must look like 120/minute or 10/second, got {raw!r}") from None
    if limit.amount < 1:
        raise ValueError(
            f"must allow at least one request, got {raw!r} (leave it empty for no limit)"
        )
    return limit


def _budget(raw: str) -> RateLimitItem | None:
    return None if raw.lower() == "off" else _rate_limit(raw)


def _on_off(raw: str) -> bool:
    word = raw.lower()
    if word not in ("on", "off"):
        raise ValueError(f"must be on or off, got {raw!r}")
    return word == "on"


def _migrations_folder(raw: str) -> Path:
    folder = Path(raw)
    if not (folder / "env.py").is_file() or not (folder / "versions").is_dir():
        raise ValueError(
            f"must be the folder of the alembic migrations (with env.py and versions/), got {raw!r}"
        )
    return folder


def _from_text(read: Callable[[str], object]) -> BeforeValidator:
    """Reads a variable's text; a value given already read (a keyword, in tests) stays as it is."""
    return BeforeValidator(lambda value: read(value) if isinstance(value, str) else value)


# The settings' types: what pydantic checks, how the text is read, and the words for it
DatabaseUrl = Annotated[
    str,
    AfterValidator(_database_url),
    Accepts(" or ".join(f"`{driver}://...`" for driver in SUPPORTED_DRIVERS)),
]
BaseUrl = Annotated[
    str, AfterValidator(_http_url), Accepts("`http(s)` URL without query or fragment")
]
ListenHost = Annotated[str, AfterValidator(_host), Accepts("IP address or host name that resolves")]
LogLevel = Annotated[
    str,
    AfterValidator(_log_level),
    Accepts("`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`, in any case"),
]
LogFormat = Annotated[str, AfterValidator(_log_format), Accepts("`text` or `json`")]
# numbers are read as Python reads them (pydantic would take "5.0" for an integer); their
# bounds are the fields'
Integer = Annotated[int, _from_text(_integer)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False), _from_text(_seconds)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False), _from_text(_seconds)]
Origins = Annotated[
    tuple[URL, ...],
    NoDecode,  # a list of names, not JSON
    _from_text(_origins),
    Accepts("comma-separated host names or `http(s)://host[:port]` origins"),
]
Networks = Annotated[
    tuple[Network, ...],
    NoDecode,
    _from_text(_networks),
    Accepts("comma-separated IP addresses or networks (CIDR)"),
]
RequestsPerTime = Annotated[
    RateLimitItem | None,
    _from_text(_rate_limit),
    Accepts("requests per time, in the `limits` notation: `120/minute`, `10/second`"),
]
RequestsPerTimeOrOff = Annotated[
    RateLimitItem | None,
    _from_text(_budget),
    Accepts("requests per time, in the `limits` notation (`300/hour`), or `off`"),
]
Tokens = Annotated[
    tuple[str, ...],
    NoDecode,
    _from_text(_tokens),
    Accepts("comma-separated tokens, 16 or more characters each"),
]
HostsOrNetworks = Annotated[
    tuple[str, ...],
    NoDecode,
    _from_text(_hosts_or_networks),
    Accepts("comma-separated host names, IP addresses or networks (CIDR)"),
]
OnOff = Annotated[bool, _from_text(_on_off), Accepts("`on` or `off`")]
MigrationsFolder = Annotated[
    Path | None, _from_text(_migrations_folder), Accepts("folder with `env.py` and `versions/`")
]


class Settings(BaseSettings):
    """Every setting, read. ``Settings(...)`` takes keywords (tests build one so) and the
    defaults for the rest, reading no environment; ``from_env`` reads it.

    The class body is long because it is the list of settings, a data literal."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        validate_by_name=True,  # github_token= as a keyword, beside its variables' names
        arbitrary_types_allowed=True,  # yarl's URL, limits' RateLimitItem
        hide_input_in_errors=True,  # a database URL may hold a password
    )

    database_url: DatabaseUrl = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the cache, e.g. `sqlite+aiosqlite:///path` or "
        "`postgresql+asyncpg://user:pass@host:5432/db`",
        json_schema_extra={"shown_default": f"`{DEFAULT_DATABASE_URL}` (created on demand)"},
    )
    github_api_url: BaseUrl = Field(
        default="https://api.github.com",
        description="GitHub API base URL; GitHub Enterprise works as `https://HOST/api/v3`",
    )
    github_token: Annotated[str | None, Accepts("text")] = Field(
        default=None,
        validation_alias=AliasChoices(f"{ENV_PREFIX}GITHUB_TOKEN", "GITHUB_TOKEN"),  # in order
        repr=False,
        description="optional GitHub token (falls back to `GITHUB_TOKEN`); never logged or shown",
    )
    graphql: OnOff = Field(
        default=True,
        description="with a token, the files a search downloads come in batches from GitHub's "
        "GraphQL API (`/graphql` of the API base; `https://HOST/api/graphql` for "
        "`https://HOST/api/v3`), those it cannot give whole from their raw URLs; "
        "docs/github-api.md says what it costs. `off`, or no token: every file from its raw URL",
        json_schema_extra={"shown_default": "`on`"},
    )
    host: ListenHost = Field(
        default="0.0.0.0",  # noqa: S104 - a service in a container listens on every interface
        description="listen address",
    )
    port: Integer = Field(default=8080, ge=1, le=65535, description="listen port")
    cache_ttl: Seconds = Field(
        default=60.0, description="seconds a cached list is served without asking GitHub"
    )
    not_found_ttl: Seconds = Field(
        default=300.0,
        description="seconds an unknown user, or a gist id GitHub has no public gist by "
        "(unknown or secret), is remembered as unknown",
    )
    memory_cache_mb: Integer = Field(
        default=64,
        ge=0,
        description="megabytes each server may use to keep recently served lists with their "
        "JSON, so that a fresh list is answered without the database; `0` turns it off",
    )
    content_memory_mb: Integer = Field(
        default=64,
        ge=0,
        description="megabytes each server may use to keep recently searched files' contents, "
        "so that a warm search reads no chunk from the database (keyed on each file's stored "
        "revision: never stale; a file over an eighth of it is not kept, nor a user whose text "
        "does not fit in it whole); size it to the text bytes of the users searched again and "
        "again on this replica; `0` turns it off",
    )
    github_timeout: PositiveSeconds = Field(
        default=10.0, description="seconds for a whole GitHub request"
    )
    github_connect_timeout: PositiveSeconds = Field(
        default=5.0, description="seconds to connect to GitHub"
    )
    github_max_pages: Integer = Field(
        default=100, ge=1, description="most list pages followed for one user (100 gists each)"
    )
    github_retries: Integer = Field(
        default=2,
        ge=0,
        le=10,
        description="retries of a GitHub request whose connection failed or that answered "
        "502/503/504 (jittered, doubling back-off); never for other 4xx/5xx",
    )
    shutdown_timeout: Seconds = Field(
        default=5.0,
        description="seconds in-flight requests get to finish on SIGTERM, counted from the "
        "signal; then they are cancelled, their GitHub calls too, and the process exits within "
        "a second more",
    )
    log_level: LogLevel = Field(default="INFO", description="the least severe level logged")
    log_format: LogFormat = Field(
        default="text",
        description="how a log line is written: `json` is one JSON object per line (for log "
        "shippers)",
    )
    raw_hosts: Origins = Field(
        default=(),
        description="extra places that file contents may be fetched from, besides the API's "
        "own origin and `https://gist.githubusercontent.com`: a host name means `https` on "
        "port 443; `http://host:port` names an origin exactly",
    )
    fetch_concurrency: Integer = Field(
        default=16,
        ge=1,
        le=256,
        description="most file downloads at once, for the whole process (raw files come from "
        "GitHub's CDN and cost no API budget; docs/performance.md says why 16)",
    )
    max_file_bytes: Integer = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="files larger than this are not fetched nor searched (reported as `too_large`)",
        json_schema_extra={"shown_default": "`104857600` (100 MB)"},
    )
    content_cache_mb: Integer = Field(
        default=1024,
        ge=1,
        description="megabytes of file contents the database keeps, for every server and user "
        "together: past it, after a search (or `/api/v3/gists/{id}`) brought new contents in, "
        "the contents of the users searched least recently are deleted (their lists stay; "
        "their next search fetches them again)",
        json_schema_extra={"shown_default": "`1024` (1 GiB)"},
    )
    search_download_mb: Integer = Field(
        default=128,
        ge=1,
        description="megabytes of new file contents one search (or `/api/v3/gists/{id}`, which "
        "reads from GitHub what is past it) may download and keep, and never more than leaves "
        "its user's contents within `GISTCACHE_CONTENT_CACHE_MB`: the files past it are "
        "reported as `download_budget` (a later search fetches more); a file larger than it is "
        "`too_large`. A value over `GISTCACHE_CONTENT_CACHE_MB` counts as that",
    )
    search_workers: Integer = Field(
        default=2,
        ge=0,
        le=64,
        description="search jobs run at once by this process (`0`: it runs none, only queues them)",
    )
    search_result_ttl: PositiveSeconds = Field(
        default=24 * 3600.0,
        description="seconds a finished search job and its result are kept",
        json_schema_extra={"shown_default": "`86400` (24 h)"},
    )
    max_jobs_per_client: Integer = Field(
        default=20,
        ge=1,
        le=100_000,
        description="search jobs one client (an IPv4 address or an IPv6 /64) may have waiting "
        "or running at once, on every server together; one more is a `429` with `Retry-After`",
    )
    max_queued_jobs: Integer = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="search jobs waiting or running at once, for every client and server "
        "together; one more is a `503` with `Retry-After`",
    )
    search_job_lease: PositiveSeconds = Field(
        default=60.0,
        description="seconds a search job's claim lasts unless its server renews it (every "
        "third of it): a job whose server died is taken over by another once its lease runs out",
    )
    search_timeout: PositiveSeconds = Field(
        default=120.0,
        description="seconds a search (synchronous or a job) may take before it fails with a "
        "`504` problem",
    )
    max_searches: Integer = Field(
        default=8,
        ge=1,
        le=1024,
        description="searches run at once by this process; a synchronous search beyond it gets "
        "a `503` with `Retry-After` (jobs wait their turn)",
    )
    max_answer_bytes: Integer = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        description="about how many bytes of matching gists one search answer lists (a page, a "
        "job's result, a stream): past it the answer stops and says where in `cut` (the stream "
        "in its `done` event), with the `page` and `per_page` that ask for the rest",
        json_schema_extra={"shown_default": "`8388608` (8 MiB)"},
    )
    answers_in_flight_mb: Integer = Field(
        default=64,
        ge=1,
        description="megabytes of large answers (over 64 KiB: search results, "
        "`/api/v3/gists/{id}`) this process holds while their clients read them; an answer "
        "that would pass it is a `503` with `Retry-After`. A client that takes nothing of an "
        "answer for `GISTCACHE_SEARCH_TIMEOUT` seconds is disconnected",
    )
    rate_limit: RequestsPerTime = Field(
        default=None,
        description="requests one client may make, whatever they cost GitHub (see "
        "`GISTCACHE_CLIENT_GITHUB_BUDGET` for that); each answer carries `RateLimit-Limit`, "
        "`-Remaining` and `-Reset`; over it: `429` with `Retry-After`. `/ping`, `/healthz`, "
        "`/readyz` and `/metrics` are exempt (from both limits), and `/api/v3/rate_limit` "
        "spends none. Unset: no limit",
        json_schema_extra={"shown_default": "none (the compose file sets `120/minute`)"},
    )
    client_github_budget: RequestsPerTimeOrOff = Field(
        default=parse_limit("300/hour"),
        description="GitHub API requests one client may cause, its search jobs included (a "
        "client is an IPv4 address or an IPv6 /64): a list not cached counts each of its pages, "
        "a gist not cached one, a revalidation each page asked again (none that GitHub answers "
        "`304` to a token: GitHub counts none); cached answers and raw downloads count nothing. "
        "Over it, a request that needs GitHub is a `429` with `Retry-After` (a cached list past "
        "its TTL is served `STALE` instead). Under `/api/v3`, GitHub's `x-ratelimit-*` headers "
        "and `GET /rate_limit` report it. Per process (a job is charged where it runs). `off`: "
        "no limit",
        json_schema_extra={"shown_default": "`300/hour`"},
    )
    github_reserve_percent: Integer = Field(
        default=10,
        ge=0,
        le=90,
        description="percent of GitHub's rate limit (rounded down) kept for revalidating the "
        "lists already cached: once GitHub's remaining budget is down to it, users and gists "
        "not cached are refused with a `503` and `Retry-After` (GitHub's reset) while cached "
        "lists are still revalidated; `0` keeps none",
    )
    api_tokens: Tokens = Field(
        default=(),
        repr=False,
        description="bearer tokens that may manage watches (`Authorization: Bearer <token>`; "
        "a watch belongs to the token that made it); never logged or shown. Unset: the "
        "watches API answers `404` and no watch runs",
        json_schema_extra={"shown_default": "none (watches off)"},
    )
    webhook_allow: HostsOrNetworks = Field(
        default=(),
        description="where watches' webhooks may go besides public `https` addresses: a host "
        "named here may be `http`, and an address in a network named here (or a named host's "
        "address) may be loopback, private or link-local, which are refused otherwise "
        "(checked on the address connected to)",
        json_schema_extra={"shown_default": "none"},
    )
    webhook_retry_for: PositiveSeconds = Field(
        default=3600.0,
        description="seconds a webhook delivery is retried for (after 10 s, then doubling up to "
        "10 min between attempts) before it is given up",
        json_schema_extra={"shown_default": "`3600` (1 h)"},
    )
    watch_event_ttl: PositiveSeconds = Field(
        default=30 * 86400.0,
        description="seconds a watch's events and their webhook deliveries are kept",
        json_schema_extra={"shown_default": "`2592000` (30 days)"},
    )
    trusted_proxies: Networks = Field(
        default=(),
        description="reverse proxies whose `X-Forwarded-For` names the client; from anyone else "
        "the header is ignored",
    )
    migrations_dir: MigrationsFolder = Field(
        default=None,
        description="where the alembic scripts are (when set, only there)",
        json_schema_extra={"shown_default": "the source tree's `migrations/`, else `./migrations`"},
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the keywords alone: the environment is read by from_env, never behind a caller's back
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; raise ConfigError naming the first bad value.
        A variable that is empty, or only spaces, counts as unset."""
        env = os.environ if environ is None else environ
        # each name exactly as documented (the source would take any case)
        texts = {
            name: value.strip()
            for name in READ
            if (value := env.get(name)) is not None and value.strip()
        }
        source = EnvSettingsSource(cls)
        # these names alone, in the lower case the source looks names up in
        source.env_vars = {name.lower(): text for name, text in texts.items()}
        try:
            return cls(**source())
        except ValidationError as exc:
            raise ConfigError(_told(exc.errors()[0], texts)) from None

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for logs."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


# Every variable the program reads; docs/configuration.md documents each of them.
VARIABLES = tuple(env_name(name) for name in Settings.model_fields)


def _read_by(field_name: str, field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (env_name(field_name),)


# ... and the other names some are read by, as a fallback (GITHUB_TOKEN)
READ = tuple(name for f, field in Settings.model_fields.items() for name in _read_by(f, field))


def _bound(field: FieldInfo, kind: str) -> Any:
    return next((getattr(m, kind) for m in field.metadata if hasattr(m, kind)), None)


def _integer_range(field: FieldInfo) -> tuple[int, int | None]:
    return _bound(field, "ge"), _bound(field, "le")


def _told(error: ErrorDetails, texts: Mapping[str, str]) -> str:
    """A validation error in the user's words, naming the variable."""
    field_name = str(error["loc"][0])
    name, field = env_name(field_name), Settings.model_fields[field_name]
    kind, value = error["type"], error["input"]
    if kind == "value_error":  # a reader's words
        return f"{name} {error.get('ctx', {}).get('error')}"
    if field.annotation is int and kind in ("greater_than_equal", "less_than_equal"):
        low, high = _integer_range(field)
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        return f"{name} must be {bounds}, got {value}"
    if field.annotation is float and kind == "greater_than" and value == 0:
        return f"{name} must be greater than 0"
    if field.annotation is float:  # not finite, or below 0
        return f"{name} must be a finite, non-negative number, got {texts[name]!r}"
    return f"{name}: {error['msg']}"


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


def _accepts(field: FieldInfo) -> str:
    if field.annotation is int:
        low, high = _integer_range(field)
        return f"integer, at least {low}" if high is None else f"integer, {low} to {high}"
    if field.annotation is float:
        return "seconds, more than 0" if _bound(field, "gt") == 0 else "seconds, 0 or more"
    return next(m.words for m in field.metadata if isinstance(m, Accepts))


def _shown(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    value = field.default
    if value is None or value == ():
        return "none"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def configuration_table() -> str:
    """docs/configuration.md's table, rendered from the fields."""
    rows = ["| variable | meaning | accepts | default |", "|---|---|---|---|"]
    for field_name, field in Settings.model_fields.items():
        rows.append(
            f"| `{env_name(field_name)}` | {field.description} | {_accepts(field)} "
            f"| {_shown(field)} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(configuration_table())
