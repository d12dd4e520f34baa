"""A private PostgreSQL cluster in a temporary folder, started and stopped on demand.

Used by the outage test and the chaos soak: both need a server they may stop and start
without touching a shared one. It needs the server binaries (``initdb``, ``pg_ctl``),
found through ``pg_config --bindir`` or under ``/usr/lib/postgresql/*/bin``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when they are not installed."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["pg_config", "--bindir"],  # noqa: S607 - a fixed command, looked up on PATH
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        candidates.append(Path(out))
    # newest version first
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for path in candidates:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostgres:
    """One cluster: ``init`` once, then ``start``/``stop`` as often as wanted, ``remove``."""

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    @classmethod
    def create(cls, bindir: Path, port: int | None = None) -> PrivatePostgres:
        """A new, initialised (not started) cluster in a temporary folder."""
        datadir = Path(tempfile.mkdtemp(prefix="gistcache-pg-"))
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres", "postgres")
        cluster = cls(bindir, datadir, port or _free_port())
        cluster.init()
        return cluster

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        # the server's output goes to its log file: a pipe held open by the
        # postmaster would make this call wait for ever
        subprocess.run(  # noqa: S603 - PostgreSQL's own programs, arguments of ours
            command,
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1"
        log = str(self.datadir / "server.log")
        self._run("pg_ctl", "-D", str(self.datadir), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs, and delete the cluster's folder."""
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
