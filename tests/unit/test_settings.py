from __future__ import annotations

import re
from ipaddress import ip_network
from pathlib import Path

import pytest
from limits import RateLimitItemPerMinute
from yarl import URL

from gistcache.settings import (
    DEFAULT_DATABASE_URL,
    VARIABLES,
    ConfigError,
    Settings,
    configuration_table,
    unknown_variables,
)


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./var/gistcache.sqlite3"
    assert s.github_api_url == "https://api.github.com"
    assert s.github_token is None
    assert (s.host, s.port, s.cache_ttl, s.log_level) == ("0.0.0.0", 8080, 60.0, "INFO")


def test_values_are_read_and_normalised() -> None:
    s = Settings.from_env(
        {
            "GISTCACHE_DATABASE_URL": "postgresql+asyncpg://app:pw@db:5432/gistcache",
            "GISTCACHE_GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "GISTCACHE_PORT": "9090",
            "GISTCACHE_CACHE_TTL": "2.5",
            "GISTCACHE_LOG_LEVEL": "debug",
            "GITHUB_TOKEN": "ghp_fallback",
        }
    )
    assert s.github_api_url == "https://ghe.example.com/api/v3"
    assert (s.port, s.cache_ttl, s.log_level) == (9090, 2.5, "DEBUG")
    assert s.github_token == "ghp_fallback"
    assert s.safe_database_url == "postgresql+asyncpg://app:***@db:5432/gistcache"


def test_own_token_wins_over_github_token_and_is_never_shown() -> None:
    s = Settings.from_env({"GISTCACHE_GITHUB_TOKEN": "ghp_own", "GITHUB_TOKEN": "ghp_other"})
    assert s.github_token == "ghp_own"
    assert "ghp_own" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GISTCACHE_PORT", "eighty"),
        ("GISTCACHE_PORT", "70000"),
        ("GISTCACHE_CACHE_TTL", "-1"),
        ("GISTCACHE_CACHE_TTL", "nan"),
        ("GISTCACHE_LOG_LEVEL", "LOUD"),
        ("GISTCACHE_GITHUB_API_URL", "ftp://example.com"),
        ("GISTCACHE_GITHUB_API_URL", "not a url"),
        ("GISTCACHE_DATABASE_URL", "mysql://root@localhost/db"),
        ("GISTCACHE_DATABASE_URL", "::::"),
        ("GISTCACHE_GITHUB_TIMEOUT", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_bad_database_url_error_does_not_echo_a_password() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"GISTCACHE_DATABASE_URL": "mysql://root:hunter2@localhost/db"})
    assert "hunter2" not in str(info.value)


def test_the_readme_table_is_the_one_the_declarations_render() -> None:
    readme = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert "\n".join(table) + "\n" == configuration_table(), (
        "docs/configuration.md's table differs: paste `python -m gistcache.settings`"
    )
    assert [row.split(" | ")[0].removeprefix("| ") for row in table[2:]] == [
        f"`{name}`" for name in VARIABLES
    ]


def test_the_table_renders_defaults_bounds_and_meaning() -> None:
    rows = {row.split(" | ")[0]: row for row in configuration_table().splitlines()}
    assert (
        rows["| `GISTCACHE_PORT`"]
        == "| `GISTCACHE_PORT` | listen port | integer, 1 to 65535 | `8080` |"
    )
    assert rows["| `GISTCACHE_CACHE_TTL`"].endswith("| seconds, 0 or more | `60` |")
    assert rows["| `GISTCACHE_GITHUB_TIMEOUT`"].endswith("| seconds, more than 0 | `10` |")
    assert rows["| `GISTCACHE_TRUSTED_PROXIES`"].endswith("| none |")
    assert rows["| `GISTCACHE_MAX_FILE_BYTES`"].endswith("| `104857600` (100 MB) |")


def test_parsed_values_are_stored() -> None:
    s = Settings.from_env(
        {
            "GISTCACHE_RATE_LIMIT": "120/minute",
            "GISTCACHE_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "GISTCACHE_RAW_HOSTS": "Raw.Example.com, http://localhost:9000/",
            "GISTCACHE_MIGRATIONS_DIR": str(Path(__file__).resolve().parents[2] / "migrations"),
        }
    )
    assert s.rate_limit == RateLimitItemPerMinute(120)
    assert s.trusted_proxies == (ip_network("10.0.0.0/8"), ip_network("::1/128"))
    assert s.raw_hosts == (URL("https://raw.example.com"), URL("http://localhost:9000"))
    assert s.migrations_dir is not None
    assert (s.migrations_dir / "env.py").is_file()
    unset = Settings.from_env({})
    assert (unset.rate_limit, unset.trusted_proxies, unset.raw_hosts) == (None, (), ())
    assert unset.migrations_dir is None


def test_an_empty_variable_is_unset() -> None:
    assert Settings.from_env({name: "  " for name in VARIABLES}) == Settings()


INTEGER_BOUNDS = [
    ("GISTCACHE_PORT", 1, 65535),
    ("GISTCACHE_MEMORY_CACHE_MB", 0, None),
    ("GISTCACHE_GITHUB_MAX_PAGES", 1, None),
    ("GISTCACHE_GITHUB_RETRIES", 0, 10),
    ("GISTCACHE_FETCH_CONCURRENCY", 1, 256),
    ("GISTCACHE_MAX_FILE_BYTES", 1, None),
    ("GISTCACHE_CONTENT_CACHE_MB", 1, None),
    ("GISTCACHE_SEARCH_DOWNLOAD_MB", 1, None),
    ("GISTCACHE_SEARCH_WORKERS", 0, 64),
    ("GISTCACHE_MAX_SEARCHES", 1, 1024),
]


@pytest.mark.parametrize(("name", "low", "high"), INTEGER_BOUNDS)
def test_integer_bounds_are_enforced_as_documented(name: str, low: int, high: int | None) -> None:
    bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
    field = name.removeprefix("GISTCACHE_").lower()
    assert getattr(Settings.from_env({name: str(low)}), field) == low
    with pytest.raises(ConfigError, match=f"^{name} must be {bounds}, got {low - 1}$"):
        Settings.from_env({name: str(low - 1)})
    if high is not None:
        assert getattr(Settings.from_env({name: str(high)}), field) == high
        with pytest.raises(ConfigError, match=f"^{name} must be {bounds}, got {high + 1}$"):
            Settings.from_env({name: str(high + 1)})
    row = next(r for r in configuration_table().splitlines() if r.startswith(f"| `{name}`"))
    documented = f"integer, {low} to {high}" if high is not None else f"integer, at least {low}"
    assert f"| {documented} |" in row


def test_a_misspelt_variable_is_named_with_the_closest_setting() -> None:
    told = unknown_variables(
        {
            "GISTCACHE_PROT": "9000",
            "GISTCACHE_DATABSE_URL": "sqlite+aiosqlite:///x",
            "GISTCACHE_SOMETHING_ELSE_ENTIRELY": "1",
            "GISTCACHE_PORT": "8080",  # a setting: nothing to say
            "PROT": "1",  # not ours
        }
    )
    assert told == [
        "GISTCACHE_DATABSE_URL is not a setting gistcache reads, and is ignored: "
        "did you mean GISTCACHE_DATABASE_URL?",
        "GISTCACHE_PROT is not a setting gistcache reads, and is ignored: "
        "did you mean GISTCACHE_PORT?",
        "GISTCACHE_SOMETHING_ELSE_ENTIRELY is not a setting gistcache reads, and is ignored: "
        "see docs/configuration.md",
    ]


def test_the_test_suites_and_benchmarks_variables_are_not_taken_for_misspellings() -> None:
    assert (
        unknown_variables(
            {
                "GISTCACHE_TEST_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/test",
                "GISTCACHE_TEST_CHROMIUM": "/usr/bin/chromium",
                "GISTCACHE_SCREENSHOTS": "var/screenshots",
                "GISTCACHE_BENCH_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/b",
                "GISTCACHE_BENCH_NO_WRK": "1",
            }
        )
        == []
    )


def test_every_gistcache_variable_the_project_uses_is_a_setting_or_a_tools_own() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [
        *root.glob("src/**/*.py"),
        *root.glob("benchmarks/**/*.py"),
        *root.glob("scripts/*.py"),
        *root.glob("tests/support/*.py"),
        *root.glob("tests/browser/*.py"),
        root / "tests" / "conftest.py",
        *root.glob("*.md"),
        *root.glob("docs/*.md"),
        root / "Makefile",
        root / "Dockerfile",
        root / "docker-compose.yml",
        *root.glob("deploy/*"),
    ]
    mentioned = {m for path in sources for m in re.findall(r"GISTCACHE_\w*\*?", path.read_text())}
    used = {name.rstrip("_") for name in mentioned if not name.endswith("*")}  # not a pattern
    used.discard("GISTCACHE_PROT")  # the documented example of a misspelling
    env = dict.fromkeys(used, "1")
    assert unknown_variables(env) == [], "declare it as a setting, or as a tool's in NOT_SETTINGS"


def test_an_in_memory_sqlite_database_is_refused_in_words() -> None:
    for url in (
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///file::memory:?uri=true",
        "sqlite+aiosqlite:///file:cache?mode=memory&uri=true",
    ):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({"GISTCACHE_DATABASE_URL": url})
        assert str(info.value).startswith(
            "GISTCACHE_DATABASE_URL names an in-memory SQLite database, which the cache "
            "cannot use: it must outlive the process"
        ), url
        assert DEFAULT_DATABASE_URL in str(info.value)


def test_libpqs_sslmode_is_given_to_asyncpg_as_ssl() -> None:
    for mode in ("disable", "require", "verify-full"):
        s = Settings.from_env(
            {"GISTCACHE_DATABASE_URL": f"postgresql+asyncpg://app:p%40ss@db/cache?sslmode={mode}"}
        )
        assert s.database_url == f"postgresql+asyncpg://app:p%40ss@db/cache?ssl={mode}"
    same = "postgresql+asyncpg://app@db/cache?sslmode=require&ssl=require"
    assert Settings.from_env({"GISTCACHE_DATABASE_URL": same}).database_url.endswith(
        "/cache?ssl=require"
    )
    untouched = "postgresql+asyncpg://app:pw@db:5432/cache?ssl=require&command_timeout=10"
    assert Settings.from_env({"GISTCACHE_DATABASE_URL": untouched}).database_url == untouched


def test_a_database_parameter_asyncpg_refuses_is_told_before_connecting() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"GISTCACHE_DATABASE_URL": "postgresql+asyncpg://app:hunter2@db/c?application_name=x"}
        )
    assert str(info.value).startswith(
        "GISTCACHE_DATABASE_URL has the parameter 'application_name', which asyncpg does not "
        "take (it takes "
    )
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match="sets both sslmode and ssl, to different modes"):
        Settings.from_env(
            {"GISTCACHE_DATABASE_URL": "postgresql+asyncpg://db/c?sslmode=require&ssl=disable"}
        )
