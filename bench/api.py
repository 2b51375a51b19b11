"""The HTTP service under load: a 1 GiB upload to a real ``fwtriage serve``, and the review queue over 10,000
submissions.

(a) Upload. A lab sends images of gigabytes; the service must take them at disk-and-hash speed and hold none of
    them in memory (``pipeline/api/upload.py`` streams each file part into the blob store, hashing md5, sha1 and
    sha256 on two worker threads). A real ``fwtriage serve --dispatch fleet`` runs as a subprocess on a free
    loopback port, on a fwtriage home of its own and the bench's Redis databases (``bench.fleet.BENCH_REDIS_DBS``,
    flushed at the end): each submission is only queued, no worker triages it, so the server's memory is the
    upload's alone. A lab user's API token is made beforehand with ``fwtriage admin``. The client (httpx, in this
    process) sends a generated image, pseudo-random (numpy's SFC64, a new seed each run), made one ``CHUNK`` at a
    time and never held whole, framed as multipart/form-data by hand (file field ``files``, plus ``case`` and
    ``exhibit``) with its exact Content-Length. One small upload first warms the server (Celery imported, broker
    connection open) and the keep-alive connection; each measured run then reports:

    - MB/s (10^6 bytes), wall time from the request's first byte to the 201; target >= ``TARGET_MBPS``;
    - the server's RSS before the upload and its peak during it (``VmHWM``, reset before each run through
      ``/proc/PID/clear_refs``, exact), MB as in ``bench.common``; target peak < ``TARGET_PEAK_MB``;
    - the CPU time of the server (``/proc/PID/stat``: every thread, and its main thread alone, the event loop
      that runs HTTP and the multipart parser, while the other threads hash and write) and of this client
      (generation and sending): both share the machine's cores, so a client that burns a core is a server that
      lacks one;
    - the hashing floor: md5, sha1 and sha256 one after the other over the same image in this process (its
      generation untimed), and upload / floor. The server hashes in two lanes, so it can beat this floor when
      a core is free. The server's sha256 must equal this one's, or the run stops;
    - the write floor: the same image written by this process to a scratch file beside the store (page cache,
      as the server's blob writer does; generation untimed), then flushed to disk (``sync``) and deleted.

    Why the write floor comes right before each upload: on a virtual machine whose host backs guest memory
    lazily (virtio-balloon free page reporting hands pages free for a few seconds back to the host), writing
    into page-cache pages not used lately costs 1.5 to 4 s of kernel time per GiB, against 0.25 s into pages
    just freed, and the upload's figure would then depend on the machine's memory history. Writing and
    deleting the scratch file leaves just-freed pages to the upload, as a host with resident memory always has
    them; a slow write floor says the machine, not the service, was slow. Three runs of 1 GiB by default,
    judged on the median; memory on the largest peak.

(b) The review queue. A reviewer opens ``/queue`` all day; it must stay fast when the database holds a lab's
    year. 10,000 submissions (four labs, 400 cases; verdicts backdoor, suspicious, clean, incomplete with scores
    to match; review statuses from unreviewed to signed off; about 5% still running and 1% failed) are bulk
    inserted (SQLAlchemy core) into a new database. A reviewer of every lab (so the whole table is in scope)
    then opens ``GET /queue`` signed in (session cookie), and a script of theirs reads ``GET /api/v1/queue``
    with their API token, both through FastAPI's TestClient in this process: ``RENDERS`` times each after ``WARMUP``
    untimed, median and p95 ms, target median < ``TARGET_PAGE_MS``. Beside them the SQL statements one request
    issues (a ``before_cursor_execute`` listener on the app's engine; SQLite's explicit BEGINs count), and the
    baseline: ``pipeline.queries.review_queue`` alone, the page's two queries, and the ratio page / query.
    ``--postgres`` runs (b) on a fresh PostgreSQL database instead of the embedded SQLite.

A summary table ends the run: each figure, its target, met or MISSED. Figures are printed, never asserted.

Run: ``make bench`` (or ``.venv/bin/python bench/api.py [--quick] [--postgres] [--repeat N]``); ``--quick`` is
one run of 256 MiB and 5 renders. Needs the loopback Redis (and PostgreSQL for ``--postgres``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
from sqlalchemy import Engine, event, insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import _status, remove_tree  # noqa: E402
from bench.fleet import BENCH_REDIS_DBS, _met  # noqa: E402
from pipeline.accounts import Accounts  # noqa: E402
from pipeline.api.app import create_app, services_for  # noqa: E402
from pipeline.config import Detection, Service, Settings  # noqa: E402
from pipeline.queries import SubmissionFilters, review_queue  # noqa: E402
from pipeline.signin import SignIn  # noqa: E402
from pipeline.tables import CaseRow, ReviewStatus, Role, SubmissionRow, SubmissionState  # noqa: E402
from pipeline.web.routes import LISTING_LIMIT  # noqa: E402
from tests.conftest import fresh_postgres  # noqa: E402
from tests.workers import REDIS_URL  # noqa: E402

FWTRIAGE = ROOT / ".venv" / "bin" / "fwtriage"
HOST = "127.0.0.1"
MIB = 1 << 20
GIB = 1 << 30
CHUNK = MIB  # the client's generation and send unit
WARM_UP_BYTES = MIB
READY_SECONDS = 60
UPLOAD_TIMEOUT = 600.0
TARGET_MBPS = 200.0
TARGET_PEAK_MB = 200.0
TARGET_PAGE_MS = 300.0
SUBMISSIONS = 10_000
LABS = ("north", "south", "east", "west")
CASES = 400
RENDERS = 20
WARMUP = 3
REVIEWER = "bench-reviewer"
LAB_USER = "bench-intake"
PASSWORD = "a bench passphrase, long enough"
ACTOR = "bench"


# --- (a) the upload --------------------------------------------------------------------------------------

def image_chunks(seed: int, size: int) -> Iterator[memoryview]:
    """The generated image, ``CHUNK`` bytes at a time: SFC64's raw 64-bit draws, about 2 GB/s on one core, so the
    client's share of the cores goes to sending. The same seed gives the same bytes (the hashing floor's)."""
    generator = np.random.SFC64(seed)
    for offset in range(0, size, CHUNK):
        count = min(CHUNK, size - offset)
        yield memoryview(generator.random_raw(-(-count // 8)).view(np.uint8))[:count]


def write_floor(scratch: Path, seed: int, size: int) -> float:
    """Seconds to write the image to ``scratch`` (into the page cache; generation untimed); the file is then
    flushed to disk and deleted, leaving its pages free for the upload that follows (see the module docstring)."""
    seconds = 0.0
    with open(scratch, "wb") as handle:
        for chunk in image_chunks(seed, size):
            start = time.perf_counter()
            handle.write(chunk)
            seconds += time.perf_counter() - start
    os.sync()
    scratch.unlink()
    return seconds


def hashing_floor(seed: int, size: int) -> tuple[str, float]:
    """md5, sha1 and sha256 of the image one after the other, as one thread would; only the hashing is timed.
    Returns the sha256 (what the server must report) and the seconds."""
    hashes = (hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False), hashlib.sha256())
    seconds = 0.0
    for chunk in image_chunks(seed, size):
        start = time.perf_counter()
        for digest in hashes:
            digest.update(chunk)
        seconds += time.perf_counter() - start
    return hashes[2].hexdigest(), seconds


@dataclass(frozen=True)
class FormBody:
    """One generated image as a multipart/form-data body, streamed: httpx gets the framing and the image's chunks
    from a generator and an exact Content-Length, so it neither buffers nor falls back to chunked encoding."""

    seed: int
    size: int
    exhibit: str
    boundary: str = field(default_factory=lambda: f"fwtriage-bench-{secrets.token_hex(16)}")

    def _head(self) -> bytes:
        fields = "".join(f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                         for name, value in (("case", "BENCH-API"), ("exhibit", self.exhibit)))
        return (f'{fields}--{self.boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="bench-{self.seed}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n').encode()

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}",
                "Content-Length": str(len(self._head()) + self.size + len(self._tail()))}

    def chunks(self) -> Iterator[bytes | memoryview]:
        yield self._head()
        yield from image_chunks(self.seed, self.size)
        yield self._tail()


class Server:
    """A real ``fwtriage serve --dispatch fleet`` on a free loopback port, its output in ``home/serve.log``."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.log = home / "serve.log"
        with socket.socket() as probe:  # a port free now; the server binds it a moment later
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([str(FWTRIAGE), "serve", "--host", HOST, "--port", str(self.port),
                                             "--dispatch", "fleet"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"fwtriage serve did not answer /healthz within {READY_SECONDS} s:\n"
                           f"{self.log.read_text(errors='replace')}")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> tuple[float, float]:
        """User + system time so far of the server's main thread (the event loop: HTTP, multipart parsing) and
        of all its threads (the loop and the hashing lanes)."""
        proc = Path(f"/proc/{self.pid}")
        return _cpu_seconds(proc / "task" / str(self.pid) / "stat"), _cpu_seconds(proc / "stat")

    def memory_mb(self) -> tuple[float, float]:
        """(RSS now, peak RSS since start or the last ``reset_peak``), MB."""
        status = _status(self.pid)
        if status is None:
            raise RuntimeError(f"fwtriage serve is gone:\n{self.log.read_text(errors='replace')}")
        return status[1], status[2]

    def reset_peak(self) -> bool:
        """Set the kernel's peak RSS of the server back to its RSS now; False where the kernel refuses."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True


def _cpu_seconds(stat_file: Path) -> float:
    stat = stat_file.read_text()
    utime, stime = stat[stat.rindex(")") + 2:].split()[11:13]  # the command name may hold spaces
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def lab_token(env: dict[str, str]) -> str:
    """A lab and its intake user in the server's home, with an API token, made as an admin would."""
    def admin(*args: str) -> str:
        done = subprocess.run([str(FWTRIAGE), "admin", *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"fwtriage admin {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    admin("add-lab", LABS[0])
    admin("add-user", LAB_USER, "--role", "lab", "--lab", LABS[0])
    return admin("issue-token", LAB_USER, "--label", "bench")


@dataclass(frozen=True)
class UploadRun:
    size: int
    seconds: float
    hash_seconds: float
    write_seconds: float
    server_cpu: float
    loop_cpu: float  # of it, the server's main thread
    client_cpu: float
    rss_before_mb: float
    peak_mb: float
    peak_since_start: bool  # the kernel refused the reset: the peak covers the server's whole life

    @property
    def mbps(self) -> float:
        return self.size / self.seconds / 1e6

    @property
    def floor_mbps(self) -> float:
        return self.size / self.hash_seconds / 1e6

    @property
    def write_mbps(self) -> float:
        return self.size / self.write_seconds / 1e6

    def row(self, label: str) -> str:
        since = " (since start)" if self.peak_since_start else ""
        return (f"{label:6} {self.size / MIB:6.0f} {self.seconds:7.2f} {self.mbps:6.0f} {self.floor_mbps:7.0f} "
                f"{self.mbps / self.floor_mbps:6.2f}x {self.write_mbps:8.0f} {self.server_cpu:8.2f} "
                f"{self.loop_cpu:8.2f} {self.client_cpu:8.2f} {self.rss_before_mb:8.0f} {self.peak_mb:8.0f}{since}")


UPLOAD_HEADER = (f"{'run':6} {'MiB':>6} {'wall s':>7} {'MB/s':>6} {'hash fl':>7} {'/floor':>7} {'write fl':>8} "
                 f"{'srv CPU':>8} "
                 f"{'srv loop':>8} {'cli CPU':>8} {'RSS pre':>8} {'RSS peak':>8}")


def upload(client: httpx.Client, body: FormBody) -> dict[str, Any]:
    """POST the body; the created submission, or RuntimeError with the server's answer."""
    response = client.post("/api/v1/submissions", content=body.chunks(), headers=body.headers)
    if response.status_code != 201:
        raise RuntimeError(f"upload answered {response.status_code}: {response.text[:500]}")
    return response.json()["submissions"][0]


def measured_upload(server: Server, client: httpx.Client, seed: int, size: int) -> UploadRun:
    """One run: the hashing and write floors of the image, then its upload, checked against the floor's digest."""
    sha256, hash_seconds = hashing_floor(seed, size)
    write_seconds = write_floor(server.home / "write-floor.bin", seed, size)
    body = FormBody(seed, size, exhibit=f"SEAL-{seed:04d}")
    rss_before, _ = server.memory_mb()
    reset = server.reset_peak()
    (loop_cpu, server_cpu), client_cpu = server.cpu_seconds(), time.process_time()
    start = time.perf_counter()
    created = upload(client, body)
    seconds = time.perf_counter() - start
    (loop_after, server_after), client_cpu = server.cpu_seconds(), time.process_time() - client_cpu
    _, peak = server.memory_mb()
    if (created["sha256"], created["size"]) != (sha256, size):
        raise RuntimeError(f"the server stored sha256 {created['sha256']} of {created['size']} bytes, "
                           f"the client sent {sha256} of {size}")
    return UploadRun(size, seconds, hash_seconds, write_seconds, server_after - server_cpu, loop_after - loop_cpu,
                     client_cpu, rss_before, peak, not reset)


def bench_upload(work: Path, size: int, repeat: int) -> list[UploadRun]:
    print(f"\n== (a) upload of {size / MIB:.0f} MiB to fwtriage serve --dispatch fleet over loopback, {repeat} run(s)")
    home = work / "serve-home"
    home.mkdir()
    broker_db, results_db = BENCH_REDIS_DBS
    env = {**os.environ, "FWTRIAGE_HOME": str(home), "FWTRIAGE_DB_URL": "",
           "FWTRIAGE_BROKER_URL": f"{REDIS_URL}/{broker_db}", "FWTRIAGE_RESULT_BACKEND": f"{REDIS_URL}/{results_db}"}
    headers = {"Authorization": f"Bearer {lab_token(env)}"}
    runs = []
    try:
        with Server(home, env) as server, httpx.Client(base_url=server.url, headers=headers,
                                                       timeout=UPLOAD_TIMEOUT) as client:
            upload(client, FormBody(0, WARM_UP_BYTES, exhibit="SEAL-WARM-UP"))
            print(f"server pid {server.pid}, RSS after start and one {WARM_UP_BYTES // MIB} MiB warm-up upload "
                  f"{server.memory_mb()[0]:.0f} MB")
            print(UPLOAD_HEADER)
            for index in range(1, repeat + 1):
                runs.append(measured_upload(server, client, index, size))
                print(runs[-1].row(f"#{index}"))
    finally:
        for db in BENCH_REDIS_DBS:
            redis.Redis.from_url(f"{REDIS_URL}/{db}").flushdb()
    print("MB/s and floors in 10^6 bytes/s; hash floor: md5+sha1+sha256 one after the other in this process; "
          "write floor: the image into a scratch file's page cache; "
          "CPU in s (server: all its threads; loop: its main thread, the event loop; client: generating and "
          "sending); RSS in MB; sha256 verified each run")
    return runs


# --- (b) the review queue --------------------------------------------------------------------------------

def submission_rows(count: int, lab_ids: list[int], rng: random.Random) -> list[dict[str, Any]]:
    """``count`` submissions as a lab's year leaves them (see the module docstring for the mix)."""
    now = datetime.now(UTC)
    devices = ("mini-phone", "feature phone", "android handset", "router", "smartwatch")
    verdicts = (("backdoor", 15, 70, 100), ("suspicious", 20, 30, 69), ("clean", 50, 0, 10), ("incomplete", 15, 0, 40))
    reviews = ((ReviewStatus.UNREVIEWED, 60), (ReviewStatus.IN_REVIEW, 15), (ReviewStatus.AWAITING_SECOND, 5),
               (ReviewStatus.SIGNED_OFF, 20))
    running = (SubmissionState.QUEUED, SubmissionState.UNPACKING, SubmissionState.ANALYZING, SubmissionState.REPORTING)
    rows = []
    for index in range(count):
        received = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        device = rng.choice(devices)
        row: dict[str, Any] = {
            "id": uuid.UUID(int=rng.getrandbits(128)).hex, "filename": f"{device.replace(' ', '-')}-{index:05d}.bin",
            "size": rng.randint(4 * MIB, 2 * GIB), "md5": rng.randbytes(16).hex(), "sha1": rng.randbytes(20).hex(),
            "sha256": rng.randbytes(32).hex(), "case": f"CASE-{rng.randrange(CASES):04d}",
            "exhibit": f"SEAL-{index:05d}", "device": device, "examiner": f"examiner {rng.randrange(12)}",
            "received_at": received, "updated_at": received + timedelta(minutes=rng.uniform(1, 30)),
            "lab_id": rng.choice(lab_ids), "state": SubmissionState.DONE, "progress_done": 0, "progress_total": 0,
            "failure": None, "verdict": None, "score": None, "summary": None, "report_digest": None,
            "analyzer_calls": 0, "cache_hits": 0, "review_status": ReviewStatus.UNREVIEWED, "human_verdict": None,
            "signed_off_at": None}
        roll = rng.random()
        if roll < 0.05:
            total = rng.randint(10, 5000)
            row.update(state=rng.choice(running), progress_total=total, progress_done=rng.randint(0, total))
        elif roll < 0.06:
            row.update(state=SubmissionState.FAILED, failure="unpack failed: truncated squashfs superblock")
        else:
            verdict, _, low, high = rng.choices(verdicts, weights=[v[1] for v in verdicts])[0]
            status = rng.choices([s for s, _ in reviews], weights=[w for _, w in reviews])[0]
            calls = rng.randint(50, 20_000)
            row.update(verdict=verdict, score=rng.randint(low, high), summary=f"{verdict}: {calls} files analysed",
                       report_digest=rng.randbytes(32).hex(), analyzer_calls=calls, cache_hits=rng.randint(0, calls),
                       progress_done=calls, progress_total=calls, review_status=status)
            if status is ReviewStatus.SIGNED_OFF:
                row.update(human_verdict=verdict, signed_off_at=row["updated_at"] + timedelta(days=2))
        rows.append(row)
    return rows


class StatementCounter:
    """Every SQL statement an engine sends, by its first word, while ``counting``."""

    def __init__(self, engine: Engine) -> None:
        self._seen: Counter[str] | None = None
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, _connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self._seen is not None:
            self._seen[statement.split(None, 1)[0].upper()] += 1

    def counting(self, call: Callable[[], object]) -> Counter[str]:
        """The statements ``call`` sends (the listener stays, idle, for the timed calls)."""
        self._seen = seen = Counter()
        try:
            call()
        finally:
            self._seen = None
        return seen


@dataclass(frozen=True)
class Timing:
    label: str
    ms: list[float]
    statements: Counter[str]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.ms, n=20, method="inclusive")[-1]

    def row(self) -> str:
        words = ", ".join(f"{count} {word}" for word, count in sorted(self.statements.items()))
        return (f"{self.label:28} {self.median:8.1f} {self.p95:8.1f} {min(self.ms):8.1f} {max(self.ms):8.1f}   "
                f"{sum(self.statements.values())} ({words})")


def timed(label: str, call: Callable[[], object], counter: StatementCounter, renders: int) -> Timing:
    """``WARMUP`` untimed calls (the last one counted), then ``renders`` timed ones, in ms."""
    for _ in range(WARMUP - 1):
        call()
    statements = counter.counting(call)
    ms = []
    for _ in range(renders):
        start = time.perf_counter()
        call()
        ms.append((time.perf_counter() - start) * 1000)
    return Timing(label, ms, statements)


def ok(response: httpx.Response) -> httpx.Response:
    """A timed request must be the page itself, not a redirect to the sign-in page or an error."""
    if response.status_code != 200:
        raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text[:500]}")
    return response


def bench_queue(work: Path, renders: int, postgres: bool) -> list[Timing]:
    from fastapi.testclient import TestClient  # imported here: it needs httpx, like the client of (a)

    with (fresh_postgres() if postgres else nullcontext()) as url:
        settings = Settings(home=work / "queue-home",
                            db_url=url.render_as_string(hide_password=False) if url is not None else None)
        services = services_for(settings, Service(dispatch="fleet"), Detection())  # fleet: nothing taken back
        database = services.database
        print(f"\n== (b) the review queue over {SUBMISSIONS} submissions ({database.engine.dialect.name}), "
              f"{renders} requests each after {WARMUP} untimed")
        accounts, signin = Accounts(database), SignIn(database)
        lab_ids = [accounts.add_lab(name, ACTOR) for name in LABS]
        accounts.add_user(REVIEWER, Role.REVIEWER, ACTOR)  # no lab: every lab's submissions are in scope
        signin.set_password(REVIEWER, PASSWORD, ACTOR)
        token = accounts.issue_token(REVIEWER, ACTOR, "bench").secret
        reviewer = next(principal for principal in accounts.users() if principal.name == REVIEWER)
        rows = submission_rows(SUBMISSIONS, lab_ids, random.Random(SUBMISSIONS))
        start = time.perf_counter()
        with database.writing() as session:
            session.execute(insert(CaseRow), [{"ref": ref} for ref in sorted({row["case"] for row in rows})])
            session.execute(insert(SubmissionRow), rows)
        print(f"filled in {time.perf_counter() - start:.2f} s (bulk insert of {len(rows)} submissions)")
        counter = StatementCounter(database.engine)
        app = create_app(services)
        with TestClient(app) as browser:
            ok(browser.post("/signin", data={"user": REVIEWER, "password": PASSWORD, "next": "/queue"}))
            script = TestClient(app, headers={"Authorization": f"Bearer {token}"})
            filters = SubmissionFilters(limit=LISTING_LIMIT)
            timings = [
                timed("GET /queue (session)", lambda: ok(browser.get("/queue")), counter, renders),
                timed("GET /api/v1/queue (token)", lambda: ok(script.get("/api/v1/queue")), counter, renders),
                timed("review_queue() alone", lambda: review_queue(database, reviewer, filters), counter, renders),
            ]
            page = review_queue(database, reviewer, filters)
            print(f"the page lists {len(page.items)} of {page.total} submissions; ms over {renders} requests:")
            print(f"{'':28} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}   SQL statements per request")
            for timing in timings:
                print(timing.row())
            query = timings[-1].median
            print(f"ratio to the query alone (median): page {timings[0].median / query:.1f}x, "
                  f"API {timings[1].median / query:.1f}x")
    return timings


# --- the run ---------------------------------------------------------------------------------------------

def summary(uploads: list[UploadRun], queue: list[Timing]) -> None:
    mbps = statistics.median(run.mbps for run in uploads)
    peak = max(run.peak_mb for run in uploads)
    rows = [
        ("(a) upload MB/s (median)", f"{mbps:.0f}", f">= {TARGET_MBPS:.0f}", _met(mbps >= TARGET_MBPS)),
        ("(a) server peak RSS MB (max)", f"{peak:.0f}", f"< {TARGET_PEAK_MB:.0f}", _met(peak < TARGET_PEAK_MB)),
        ("(a) server RSS before MB", f"{statistics.median(run.rss_before_mb for run in uploads):.0f}", "-", ""),
        ("(a) hashing floor MB/s", f"{statistics.median(run.floor_mbps for run in uploads):.0f}", "-", ""),
        ("(a) upload / hashing floor", f"{statistics.median(run.mbps / run.floor_mbps for run in uploads):.2f}x",
         "-", ""),
        ("(a) write floor MB/s", f"{statistics.median(run.write_mbps for run in uploads):.0f}", "-", ""),
    ]
    for timing in queue[:2]:
        rows.append((f"(b) {timing.label} ms", f"{timing.median:.1f} (p95 {timing.p95:.1f})",
                     f"< {TARGET_PAGE_MS:.0f}", _met(timing.median < TARGET_PAGE_MS)))
    rows.append((f"(b) {queue[2].label} ms", f"{queue[2].median:.1f} (p95 {queue[2].p95:.1f})", "-", ""))
    print("\n== summary")
    print(f"{'figure':36} {'value':>20} {'target':>8}  outcome")
    for figure, value, target, outcome in rows:
        print(f"{figure:36} {value:>20} {target:>8}  {outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: one upload of 256 MiB, 5 requests each")
    parser.add_argument("--postgres", action="store_true", help="(b) on a fresh PostgreSQL database")
    parser.add_argument("--repeat", type=int, help="uploads (default 3, or 1 with --quick)")
    args = parser.parse_args()
    size, renders = (256 * MIB, 5) if args.quick else (GIB, RENDERS)
    repeat = max(args.repeat or (1 if args.quick else 3), 1)
    print(f"machine: {os.cpu_count()} cores ({platform.machine()}), load average "
          f"{' '.join(f'{value:.2f}' for value in os.getloadavg())} at start; client and server share them")
    print(f"targets: (a) >= {TARGET_MBPS:.0f} MB/s and server peak RSS < {TARGET_PEAK_MB:.0f} MB; "
          f"(b) median < {TARGET_PAGE_MS:.0f} ms per request")
    work = Path(tempfile.mkdtemp(prefix="fwtriage-bench-api-"))
    try:
        uploads = bench_upload(work, size, repeat)
        queue = bench_queue(work, renders, args.postgres)
    finally:
        remove_tree(work)
    summary(uploads, queue)


if __name__ == "__main__":
    main()
