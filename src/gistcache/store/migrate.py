"""Run alembic migrations from the program (``gistcache migrate``, ``serve``, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    """Where the alembic scripts are: ``GISTCACHE_MIGRATIONS_DIR`` when set (and only
    there), else the source tree's ``migrations/`` or the working directory's."""
    configured = os.environ.get("GISTCACHE_MIGRATIONS_DIR", "").strip()
    if configured:
        if not (Path(configured) / "env.py").is_file():
            raise FileNotFoundError(
                f"cannot find the migrations folder: GISTCACHE_MIGRATIONS_DIR={configured} "
                "holds no env.py"
            )
        return Path(configured)
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


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # passed as an attribute, not an option: a '%' in a password would break ConfigParser
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
