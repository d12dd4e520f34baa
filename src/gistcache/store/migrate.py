"""Run alembic migrations from the program (``gistcache migrate``, ``serve``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir(configured: Path | None = None) -> Path:
    """Where the alembic scripts are: ``configured`` when given (``GISTCACHE_MIGRATIONS_DIR``,
    checked by the settings), else the source tree's ``migrations/`` or the working
    directory's."""
    if configured is not None:
        return configured
    for candidate in (
        Path(__file__).resolve().parents[3] / "migrations",
        Path.cwd() / "migrations",
    ):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        "cannot find the migrations folder; run from the project root "
        "or set GISTCACHE_MIGRATIONS_DIR"
    )


def alembic_config(database_url: str, scripts: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(scripts)))
    # passed as an attribute, not an option: a '%' in a password would break ConfigParser
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head", *, scripts: Path | None = None) -> None:
    command.upgrade(alembic_config(database_url, scripts), revision)


def downgrade(database_url: str, revision: str = "base", *, scripts: Path | None = None) -> None:
    command.downgrade(alembic_config(database_url, scripts), revision)
