"""Real ``fwtriage worker`` processes on the loopback broker, for the fleet tests and ``bench/fleet.py``.

Each fleet gets its own fwtriage home (store + SQLite, or a PostgreSQL URL), its own Redis databases for the
broker and the results (flushed when the fleet starts), and worker processes in their own process groups, so a
test can kill one with SIGKILL the way the OOM killer or a lost host would.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from kombu import Connection

from pipeline.config import Settings
from pipeline.db import FINAL_STATES, Database, SubmissionRecord

FWTRIAGE = Path(sys.executable).parent / "fwtriage"
REDIS_URL = "redis://127.0.0.1:6379"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
# Redis databases kept for these tests (broker, results), away from a lab's default 0 and 1; fleets alive at the
# same time (a module's fleet and one test's own) must not share a broker, or one's workers take the other's tasks
REDIS_DB_PAIRS = ((7, 8), (9, 10), (11, 12), (13, 14))
READY_SECONDS = 90
_fleets_made = itertools.count()


class FleetError(AssertionError):
    """A worker did not start, or submissions did not finish in time; the message carries the workers' logs."""


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    queues: str

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once: no warm shutdown, no acknowledgement."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def pids(self) -> list[int]:
        """The worker's main process and its pool children."""
        found = subprocess.run(["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in found.split()]


@dataclass
class Fleet:
    """A broker, a database, a store and the workers started on them."""

    home: Path
    db_url: str | None = None
    broker_url: str | None = None  # None: a Redis database of its own
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        broker_db, results_db = REDIS_DB_PAIRS[next(_fleets_made) % len(REDIS_DB_PAIRS)]
        self.broker_url = self.broker_url or f"{REDIS_URL}/{broker_db}"
        self.results_url = f"{REDIS_URL}/{results_db}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.purge()

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "FWTRIAGE_HOME": str(self.home), "FWTRIAGE_BROKER_URL": self.broker_url,
               "FWTRIAGE_RESULT_BACKEND": self.results_url, **self.extra_env}
        env.pop("FWTRIAGE_DB_URL", None)
        if self.db_url:
            env["FWTRIAGE_DB_URL"] = self.db_url
        return env

    def purge(self) -> None:
        """Forget any message an earlier run left on the broker, and any stored result."""
        redis.Redis.from_url(self.results_url).flushdb()
        if self.broker_url.startswith("redis"):
            redis.Redis.from_url(self.broker_url).flushdb()
            return
        with Connection(self.broker_url) as connection:
            channel = connection.default_channel
            for queue in ("unpack", "analyze", "report"):  # the workers declare them again, as Celery wants them
                channel.queue_delete(queue)

    def database(self) -> Database:
        return Database.for_settings(Settings(home=self.home, db_url=self.db_url))

    def start(self, queues: str = "unpack,analyze,report", concurrency: int = 1) -> Worker:
        log = self.home / f"worker-{len(self.workers)}-{queues.replace(',', '-')}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [str(FWTRIAGE), "worker", "--queues", queues, "--concurrency", str(concurrency)],
                env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        worker = Worker(process, log, queues)
        self.workers.append(worker)
        deadline = time.monotonic() + READY_SECONDS
        while b" ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise FleetError(f"worker for {queues} did not start:\n{self.logs()}")
            time.sleep(0.2)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def submit(self, target: Path, *options: str) -> list[str]:
        """``fwtriage submit``; the submission ids it printed."""
        done = subprocess.run([str(FWTRIAGE), "submit", str(target), *options], env=self.env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise FleetError(f"fwtriage submit failed ({done.returncode}): {done.stderr}")
        return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]

    def wait(self, ids: Iterable[str], seconds: float = 300) -> dict[str, SubmissionRecord]:
        """Poll the database until every submission is done or failed."""
        ids = list(ids)
        deadline = time.monotonic() + seconds
        with self.database() as database:
            while True:
                records = {sid: database.get(sid) for sid in ids}
                if all(record.state in FINAL_STATES for record in records.values()):
                    return records
                if time.monotonic() > deadline:
                    states = {sid: str(record.state) for sid, record in records.items()}
                    raise FleetError(f"not finished after {seconds} s: {states}\n{self.logs()}")
                time.sleep(0.25)

    def logs(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.log.read_text(errors='replace')[-4000:]}" for w in self.workers)
