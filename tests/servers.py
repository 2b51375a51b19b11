"""A Redis server and a PostgreSQL cluster of a test module's own, on free loopback ports, in temporary folders.

Why private servers: the fault tests stop and restart their broker and their database in the middle of a triage,
which the shared services on 6379 and 5432 (used by every other test running at the same time) must never see.
PostgreSQL refuses to run as root, so the cluster is created and run as the ``postgres`` OS user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from sqlalchemy import create_engine

POSTGRES_USER = "postgres"
START_SECONDS = 30


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(ready: Callable[[], bool], what: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {seconds:g} s")
        time.sleep(0.1)


@dataclass
class PrivateRedis:
    """``redis-server`` with an append-only file in ``folder``: a restart keeps every queued message."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                 "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        _wait_until(lambda: self._answers(client), f"redis-server on port {self.port}")

    def _answers(self, client: redis.Redis) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(self.folder / 'redis.log').read_text()[-2000:]}")
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


def _as_postgres() -> None:
    """Run a child as the ``postgres`` user (``preexec_fn``): PostgreSQL will not run as root."""
    account = pwd.getpwnam(POSTGRES_USER)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)


def postgres_bin(name: str) -> Path:
    """A PostgreSQL server program (``initdb``, ``pg_ctl``): Debian keeps them under a versioned folder."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"no {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


@dataclass
class PrivatePostgres:
    """A throw-away cluster (trust authentication, loopback only) whose data and socket live in ``folder``."""

    folder: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str | Path) -> None:
        done = subprocess.run([str(a) for a in argv], preexec_fn=_as_postgres, capture_output=True, text=True,
                              timeout=120)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, POSTGRES_USER, POSTGRES_USER)
        self._run(postgres_bin("initdb"), "-D", self.data, "-U", POSTGRES_USER, "--auth=trust", "--no-sync",
                  "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(postgres_bin("pg_ctl"), "-D", self.data, "-l", self.folder / "postgres.log", "-o", options,
                  "-w", "-t", str(START_SECONDS), "start")

    def stop(self) -> None:
        """Fast shutdown: every client connection is cut at once, as when the database host goes away."""
        if (self.data / "postmaster.pid").exists():
            self._run(postgres_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        """A new empty database of the cluster; its URL."""
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)
