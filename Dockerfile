# syntax=docker/dockerfile:1

# Base images: by tag until pinned by digest (python:3.11-slim@sha256:...), which
# docs/operations.md ("Base images") tells how to look up and update.

# --- build: the locked runtime dependencies, and the wheel built with locked tools ---
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.lock requirements-build.lock ./
# setuptools and wheel by hash, like everything else; the build uses them, not a fresh
# download (--no-build-isolation)
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r requirements-build.lock \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# the wheel leaves out gistcache.testing (the fake GitHub): see pyproject.toml
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/*.whl

# --- runtime: the virtualenv, the migrations, an unprivileged user ---
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GISTCACHE_MIGRATIONS_DIR=/app/migrations \
    GISTCACHE_SHUTDOWN_TIMEOUT=5
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin gistcache
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY alembic.ini ./
COPY migrations ./migrations
RUN mkdir -p /app/var && chown 10001 /app/var
# numeric, so that Kubernetes' runAsNonRoot can check it
USER 10001
EXPOSE 8080
# on the port the server listens on: GISTCACHE_PORT when set (empty counts as unset)
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('GISTCACHE_PORT', '').strip() or '8080'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
CMD ["gistcache", "serve"]
