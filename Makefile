# gistcache: `make run` serves, `make test` tests. Everything lives in ./.venv,
# installed from the hash-pinned lock files; nothing is installed elsewhere.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# GitHub's GraphQL schema for the fake's /graphql (pinned, checked, downloaded once here;
# see src/gistcache/testing/fake_github/schema.py)
SCHEMA_PIN := src/gistcache/testing/fake_github/schema.py
SCHEMA := $(VENV)/.installed-graphql-schema
FAKE_PORT ?= 9000

.DEFAULT_GOAL := help
.PHONY: help install run fake migrate test lint audit format bench bench-smoke screenshot chaos chaos-smoke lock clean

help:
	@echo "make install  create ./.venv from the hash-pinned lock files, and GitHub's GraphQL schema for the"
	@echo "              fake (pinned, checked; other targets do it when needed)"
	@echo "make run      serve on :8080 (applies migrations first)"
	@echo "make fake     run the offline fake GitHub on :$(FAKE_PORT); 60 anonymous requests an hour,"
	@echo "              as GitHub: FAKE_ARGS=\"--anonymous-limit 5000\" raises it"
	@echo "make test     run the test suite (SQLite, and PostgreSQL when configured)"
	@echo "make lint     ruff check, ruff format --check, mypy, hadolint Dockerfile"
	@echo "make format   fix what ruff can: ruff format, ruff check --fix"
	@echo "make audit    pip-audit the lock files against PyPI's vulnerability data (network; not in CI)"
	@echo "make migrate  upgrade the cache database to the newest schema"
	@echo "make bench    run the benchmarks on SQLite (results in benchmarks/results/, and docs/performance.md);"
	@echo "              BENCH_ARGS=\"--database-url postgresql+asyncpg://...\" adds PostgreSQL"
	@echo "make bench-smoke  the benchmarks at tiny sizes, in seconds (results in var/bench-smoke/)"
	@echo "make screenshot  docs/screenshot.png: starts its own fake GitHub and server, shoots a"
	@echo "              results page in Chromium (nothing needs to be running)"
	@echo "make chaos    the chaos soak: 2 replicas, a private PostgreSQL, faults, 5 minutes"
	@echo "              (needs initdb/pg_ctl; results in benchmarks/results/, docs/reliability.md)"
	@echo "make chaos-smoke  the soak in seconds, one of each fault (results in var/chaos-smoke/)"
	@echo "make lock     re-resolve requirements*.lock from pyproject.toml (hash-pinned)"
	@echo "make help     this list"

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gistcache needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(SCHEMA): $(STAMP) $(SCHEMA_PIN)
	$(BIN)/python -c "from gistcache.testing.fake_github.schema import main; main()"
	@touch $@

install: $(STAMP) $(SCHEMA)

run: $(STAMP)
	$(BIN)/gistcache serve

fake: $(STAMP) $(SCHEMA)
	$(BIN)/python -m gistcache.testing.fake_github --port $(FAKE_PORT) $(FAKE_ARGS)

migrate: $(STAMP)
	$(BIN)/gistcache migrate

test: $(STAMP) $(SCHEMA)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# Not part of lint or CI: the answer depends on the vulnerability data of the day, not on
# this tree. --strict: a package it could not look up fails the audit (a skip proves nothing).
audit: $(STAMP)
	$(BIN)/pip-audit --strict --disable-pip --require-hashes --progress-spinner off \
		-r requirements.lock -r requirements-dev.lock $(AUDIT_ARGS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) $(SCHEMA)
	$(BIN)/python -m benchmarks.run --docs docs/performance.md $(BENCH_ARGS)

bench-smoke: $(STAMP) $(SCHEMA)
	$(BIN)/python -m benchmarks.run --smoke --out var/bench-smoke $(BENCH_ARGS)

screenshot: $(STAMP) $(SCHEMA)
	$(BIN)/python scripts/screenshot.py

chaos: $(STAMP) $(SCHEMA)
	$(BIN)/python -m benchmarks.chaos $(CHAOS_ARGS)

chaos-smoke: $(STAMP) $(SCHEMA)
	$(BIN)/python -m benchmarks.chaos --smoke --out var/chaos-smoke $(CHAOS_ARGS)

# requirements-build.lock: the wheel's build tools (setuptools, wheel) for the image
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

lock: $(STAMP)
	$(LOCK) --extra dev -o requirements-dev.lock pyproject.toml
	$(LOCK) -c requirements-dev.lock -o requirements.lock pyproject.toml
	$(LOCK) --build-deps-for wheel --only-build-deps -c requirements-dev.lock \
		-o requirements-build.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
