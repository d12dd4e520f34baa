"""Migrations: the stairway (upgrade, downgrade, upgrade) on both databases, a schema
that matches the models, and the command-line entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from gistcache.store.migrate import alembic_config, downgrade, upgrade
from gistcache.store.models import metadata
from tests.support.database import TABLES, run_sync, table_names

ROOT = Path(__file__).resolve().parents[2]


def test_stairway_and_schema_matches_models(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    assert table_names(empty_database_url) == TABLES
    downgrade(empty_database_url)
    assert table_names(empty_database_url) == set()
    upgrade(empty_database_url)
    assert table_names(empty_database_url) == TABLES

    diff = run_sync(
        empty_database_url,
        lambda conn: compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        ),
    )
    assert diff == []
    # alembic's comparison leaves out primary keys: a key the models and the migrations
    # disagreed on once made two fetches of one file collide
    keys = run_sync(
        empty_database_url,
        lambda conn: {
            name: inspect(conn).get_pk_constraint(name)["constrained_columns"] for name in TABLES
        },
    )
    assert keys == {
        table.name: [column.name for column in table.primary_key.columns]
        for table in metadata.sorted_tables
    }


def schema(url: str) -> dict[str, Any]:
    """The revision a database is at, and its tables' columns and indexes."""

    def look(conn: Any) -> dict[str, Any]:
        inspector = inspect(conn)
        tables = {
            name: (
                sorted(column["name"] for column in inspector.get_columns(name)),
                sorted(str(index["name"]) for index in inspector.get_indexes(name)),
            )
            for name in inspector.get_table_names()
            if name != "alembic_version"
        }
        return {"revision": MigrationContext.configure(conn).get_current_revision(), **tables}

    result: dict[str, Any] = run_sync(url, look)
    return result


def test_every_revision_goes_up_down_and_up_again(empty_database_url: str) -> None:
    url = empty_database_url
    scripts = ScriptDirectory.from_config(alembic_config(url))
    revisions = [script.revision for script in scripts.walk_revisions()][::-1]  # base first
    assert revisions[-1] == scripts.get_current_head()
    below = schema(url)
    for revision in revisions:
        upgrade(url, revision)
        step = schema(url)
        assert step["revision"] == revision
        downgrade(url, "-1")
        assert schema(url) == below, f"{revision} does not downgrade to where it started"
        upgrade(url, revision)
        assert schema(url) == step, f"{revision} upgrades differently the second time"
        below = step
    assert set(below) - {"revision"} == TABLES


def test_each_step_up_and_down_keeps_cached_users(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url, "0002")
    row = "('octocat', false, 'anonymous', NULL, '2026-01-01 12:00:00+00')"

    def insert(conn: Any) -> None:
        conn.exec_driver_sql(f"INSERT INTO users VALUES {row}")
        conn.commit()

    run_sync(url, insert)
    upgrade(url, "0003")
    users = run_sync(url, lambda conn: conn.exec_driver_sql("SELECT * FROM users").all())
    assert [(u.login, u.retry_at) for u in users] == [("octocat", None)]
    downgrade(url, "0002")
    users = run_sync(url, lambda conn: conn.exec_driver_sql("SELECT login FROM users").all())
    assert [u.login for u in users] == ["octocat"]
    assert "github_blocks" not in table_names(url)


def test_cli_and_alembic_use_gistcache_database_url(
    tmp_path: Path, empty_database_url: str
) -> None:
    url = empty_database_url
    env = {**os.environ, "GISTCACHE_DATABASE_URL": url}
    bin_dir = Path(sys.executable).parent

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )

    done = run(str(bin_dir / "gistcache"), "migrate", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert table_names(url) == TABLES

    down = run(str(bin_dir / "alembic"), "downgrade", "base", cwd=ROOT)
    assert down.returncode == 0, down.stderr
    assert table_names(url) == set()
    up = run(str(bin_dir / "alembic"), "upgrade", "head", cwd=ROOT)
    assert up.returncode == 0, up.stderr
    assert table_names(url) == TABLES
