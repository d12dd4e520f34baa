from __future__ import annotations

import pytest

from gistcache.settings import DEFAULT_DATABASE_URL, ConfigError, Settings


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
