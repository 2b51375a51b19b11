"""The distributed pipeline under load: real ``fwtriage worker`` processes on the loopback Redis.

Prints, each part on fleets started for it (``tests/workers.py``: a new fwtriage home, so a cold store,
database and analysis cache; Redis databases of the bench's own, see ``BenchFleet``), one worker on every
queue per fleet:

(a) 100 submissions of 5 distinct builds against the 5 alone, the worker with two pool processes. Hundreds
    of seized phones share a handful of firmware builds, so the 95 repeats should cost little: target at
    most 1.5x the time of the 5. The analyzer runs and cache hits summed over the 100 show the analysis
    cache at work (each blob analysed once per build, not once per exhibit).
(b) distinct images through one pool process, then two: images per minute of each and their ratio, target
    at least 1.7x (the second process must add nearly a whole core's worth of work; needs two free cores).
(c) the queue's own cost per task: N ``fwtriage.analyze`` tasks with an empty batch (the task machinery, a
    database read and a counter update, no analyzer), sent from here and awaited, on each fleet of (b).
(d) peak memory of each worker during (a) and (b), sampled from ``/proc``: the kernel's peak (``VmHWM``) of
    the main process and of each pool process, the heaviest program a worker started (extractors), and the
    largest sum over the worker's process tree at one instant, as RSS and as PSS. Pool processes are forks
    of the main one: the pages they still share with it copy-on-write appear in the RSS of each, so the
    RSS sum overstates what the machine held; PSS splits shared pages between their sharers and does not
    (it is read from ``smaps_rollup``, heavier, so one sample in ``PSS_EVERY``). Sampled sums are lower
    bounds of their peak: a peak shorter than the interval can be missed.

Times run from the ``fwtriage submit`` call (ingest and queueing included) to the last final state the
database recorded (``updated_at``), so the poll interval adds nothing; worker start-up is not counted.
Beside them: the ``submit`` command's own time, the CPU time the worker used (``cores``: CPU / wall), the
CPU time the rest of the machine used meanwhile (``rest``: the submit command, Redis, this bench's sampling,
and anything else running there: a run well above its repeats' was disturbed), and the pool's busy time per
task type from the worker's log, which tell a slow queue from a slow step. Each part runs ``--repeat``
times (3 by default: a run takes seconds, and on a small shared machine single runs vary by a third) and its
target is judged on the median; memory is the largest seen over the repeats.

Run: ``make bench`` (or ``.venv/bin/python bench/fleet.py [--quick] [--postgres] [--repeat N]``).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import SAMPLE_SECONDS, _status, _tree, remove_tree  # noqa: E402
from pipeline.db import FINAL_STATES, SubmissionRecord, SubmissionState  # noqa: E402
from tests.conftest import fresh_postgres  # noqa: E402
from tests.workers import REDIS_URL, Fleet, FleetError, Worker  # noqa: E402

SAMPLES = ROOT / "samples" / "out"
# (a): a backdoored and a clean Linux rootfs of one build family, a router, an Android OTA, a feature phone
BUILDS = ("linux-rootfs-backdoor.squashfs", "linux-rootfs-clean.squashfs", "router-netupdate.squashfs",
          "android-ota-update.zip", "featurephone-sc6531e.pac")
# (b): eight different images, each a second or so of work
DISTINCT = (*BUILDS, "mtk-scatter-firmware.zip", "android-block-ota.zip", "flash-dump.bin")
# away from a lab's default (0, 1) and from the fleet tests' (7 to 14), which may be running meanwhile
BENCH_REDIS_DBS = (5, 6)
TARGET_REPEATS_RATIO = 1.5
TARGET_SCALING = 1.7
PSS_EVERY = 10
FINISH_SECONDS = 1800
POLL_SECONDS = 0.5
TASK_DONE = re.compile(r"Task fwtriage\.(\w+)\[[^\]]+\] succeeded in ([0-9.e-]+)s")  # Celery's INFO line


class BenchFleet(Fleet):
    """A fleet on the bench's own Redis databases: the tests' fleets may run at the same time on theirs, and
    each fleet flushes its databases when it starts. The bench runs one fleet at a time, so one pair does."""

    def __post_init__(self) -> None:
        broker_db, results_db = BENCH_REDIS_DBS
        self.broker_url = f"{REDIS_URL}/{broker_db}"
        self.results_url = f"{REDIS_URL}/{results_db}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.purge()


@dataclass(frozen=True)
class WorkerMemory:
    """Peaks of one worker's process tree, MB (see the module docstring)."""

    main_mb: float
    pool_mb: tuple[float, ...]  # each pool process, largest first
    tool: tuple[str, float] | None  # the heaviest program started, and its peak
    tree_rss_mb: float
    tree_pss_mb: float

    def merged(self, other: WorkerMemory) -> WorkerMemory:
        """The larger of two runs' peaks, field by field (pool processes by rank; a pool process that died and
        was replaced makes one run's list longer)."""
        tools = [tool for tool in (self.tool, other.tool) if tool is not None]
        return WorkerMemory(max(self.main_mb, other.main_mb),
                            tuple(max(pair) for pair in zip_longest(self.pool_mb, other.pool_mb, fillvalue=0.0)),
                            max(tools, key=lambda tool: tool[1]) if tools else None,
                            max(self.tree_rss_mb, other.tree_rss_mb), max(self.tree_pss_mb, other.tree_pss_mb))


class TreeSampler:
    """Samples the memory of a worker's process tree on a thread until stopped: the main process, its direct
    children (the pool), and anything deeper (the programs pool processes start) that has called exec; a fork
    that has not still shares its parent's pages and is left out."""

    def __init__(self, worker: Worker) -> None:
        self.main = worker.process.pid
        self.main_mb = self.tree_rss_mb = self.tree_pss_mb = 0.0
        self.pool_mb: dict[int, float] = {}
        self.tool_mb: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self) -> WorkerMemory:
        tool = max(self.tool_mb.items(), key=lambda entry: entry[1], default=None)
        return WorkerMemory(self.main_mb, tuple(sorted(self.pool_mb.values(), reverse=True)),
                            (tool[0][1], tool[1]) if tool else None, self.tree_rss_mb, self.tree_pss_mb)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample(with_pss=tick % PSS_EVERY == 0)
            tick += 1

    def _sample(self, with_pss: bool) -> None:
        rss_total = pss_total = 0.0
        for pid, parent in _tree(self.main):
            if pid != self.main and parent != self.main and _is_fork_of(pid, parent):
                continue
            status = _status(pid)
            if status is None:
                continue
            name, rss, peak = status
            rss_total += rss
            if with_pss:
                pss_total += _pss_mb(pid)
            if pid == self.main:
                self.main_mb = max(self.main_mb, peak)
            elif parent == self.main:
                self.pool_mb[pid] = max(peak, self.pool_mb.get(pid, 0.0))
            else:
                self.tool_mb[pid, name] = max(peak, self.tool_mb.get((pid, name), 0.0))
        self.tree_rss_mb = max(self.tree_rss_mb, rss_total)
        self.tree_pss_mb = max(self.tree_pss_mb, pss_total)


def _is_fork_of(pid: int, parent: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return True  # gone: nothing to count


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_seconds(worker: Worker) -> float:
    """CPU time so far of a worker's main and pool processes, with the programs they started and reaped
    (``/proc/PID/stat``: utime, stime, cutime, cstime)."""
    ticks = 0
    main = worker.process.pid
    for pid, parent in _tree(main):
        if pid != main and parent != main:
            continue  # a program still running: its time reaches its parent's cutime once reaped
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, every core (``/proc/stat``; idle and iowait out)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _task_seconds(log: Path) -> dict[str, list[float]]:
    """Run time of each task the worker finished, by task type (unpack, analyze, report), from its log."""
    found: dict[str, list[float]] = defaultdict(list)
    for name, seconds in TASK_DONE.findall(log.read_text(errors="replace")):
        found[name].append(float(seconds))
    return found


@dataclass
class BatchRun:
    """Submissions sent as one folder and followed to their final states."""

    seconds: float
    submit_seconds: float  # of them, the ``fwtriage submit`` command: ingest (hashing) and queueing
    cpu_seconds: float  # used by the worker meanwhile
    rest_cpu_seconds: float  # used meanwhile by everything else on the machine
    records: list[SubmissionRecord]
    memory: WorkerMemory
    tasks: dict[str, list[float]]
    overhead_seconds: float = 0.0  # (c) on the same fleet, when asked

    @property
    def failed(self) -> list[SubmissionRecord]:
        return [record for record in self.records if record.state is not SubmissionState.DONE]

    def row(self, label: str) -> str:
        outcome = (f"all {len(self.records)} done" if not self.failed else
                   f"{len(self.failed)} of {len(self.records)} FAILED, e.g. {self.failed[0].failure}")
        calls = sum(record.analyzer_calls for record in self.records)
        hits = sum(record.cache_hits for record in self.records)
        return (f"{label:12} {len(self.records):5} {self.seconds:8.2f} {self.submit_seconds:9.2f} "
                f"{self.cpu_seconds:7.1f} {self.cpu_seconds / self.seconds:6.2f} {self.rest_cpu_seconds:7.1f} "
                f"{calls:14} {hits:11}  {outcome}")


ROW_HEADER = (f"{'run':12} {'subs':>5} {'wall s':>8} {'submit s':>9} {'CPU s':>7} {'cores':>6} {'rest s':>7} "
              f"{'analyzer runs':>14} {'cache hits':>11}  outcome")


@contextmanager
def running_fleet(home: Path, concurrency: int, postgres: bool) -> Iterator[BenchFleet]:
    """One worker on every queue, on a fresh home (and a fresh PostgreSQL database when asked); removed after."""
    with (fresh_postgres() if postgres else _no_database()) as url:
        fleet = BenchFleet(home, url.render_as_string(hide_password=False) if url is not None else None)
        try:
            fleet.start(concurrency=concurrency)
            yield fleet
        finally:
            fleet.stop()
            remove_tree(home)


@contextmanager
def _no_database() -> Iterator[None]:
    """The embedded SQLite under the fleet's home."""
    yield None


def run_batch(work: Path, folder: Path, concurrency: int, postgres: bool, tasks: int = 0) -> BatchRun:
    """On a new fleet: submit every image of ``folder`` at once and wait until all are final, sampling the
    worker's memory; then, with ``tasks``, time that many empty tasks on the same fleet (part (c))."""
    with running_fleet(Path(tempfile.mkdtemp(dir=work)), concurrency, postgres) as fleet:
        worker = fleet.workers[0]
        with TreeSampler(worker) as sampler:
            cpu, machine = _cpu_seconds(worker), _machine_cpu_seconds()
            start, clock = datetime.now(UTC), time.perf_counter()
            ids = fleet.submit(folder, "--case", "BENCH-FLEET")
            submitted = time.perf_counter() - clock
            records = _wait(fleet, ids)
            cpu, machine = _cpu_seconds(worker) - cpu, _machine_cpu_seconds() - machine
        end = max(record.updated_at for record in records)
        run = BatchRun((end - start).total_seconds(), submitted, cpu, machine - cpu, records, sampler.peaks(),
                       _task_seconds(worker.log))
        if tasks:
            done = [record.id for record in records if record.state is SubmissionState.DONE]
            run.overhead_seconds = task_overhead(done[0] if done else records[0].id, tasks)
    return run


def _wait(fleet: BenchFleet, ids: list[str]) -> list[SubmissionRecord]:
    """Poll with one query (the fleet's database holds only these submissions) until every one is final."""
    wanted = set(ids)
    deadline = time.monotonic() + FINISH_SECONDS
    with fleet.database() as database:
        while True:
            records = [r for r in database.list_submissions(limit=len(wanted) + 1) if r.id in wanted]
            if len(records) == len(wanted) and all(record.state in FINAL_STATES for record in records):
                return records
            if time.monotonic() > deadline:
                waiting = sum(1 for record in records if record.state not in FINAL_STATES)
                raise FleetError(f"{waiting} submissions not final after {FINISH_SECONDS} s:\n{fleet.logs()}")
            time.sleep(POLL_SECONDS)


def task_overhead(submission_id: str, tasks: int) -> float:
    """Wall seconds for ``tasks`` empty analysis batches of a submission, from the first send to the last
    result; a few are sent first and not timed, so neither side opens a connection on the clock."""
    from celery.result import ResultSet

    from pipeline.tasks import analyze  # reads FWTRIAGE_BROKER_URL when first imported: set by main()

    def send(count: int) -> ResultSet:
        return ResultSet([analyze.apply_async((submission_id, []), queue="analyze") for _ in range(count)])

    send(10).get(timeout=120)
    start = time.perf_counter()
    send(tasks).get(timeout=FINISH_SECONDS)
    return time.perf_counter() - start


def exhibits_folder(work: Path, name: str, images: Sequence[str], copies: int) -> Path:
    """``copies`` exhibits of each image under distinct names, hard-linked to the samples (copied across
    file systems): each is ingested and hashed as a separate submission."""
    folder = work / name
    folder.mkdir()
    for exhibit in range(copies):
        for image in images:
            source, target = SAMPLES / image, folder / (f"exhibit-{exhibit:02d}-{image}" if copies > 1 else image)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    return folder


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _ratios(values: Sequence[float]) -> str:
    """One run's ratio, or the median and each run's."""
    median = f"{statistics.median(values):.2f}x"
    return median if len(values) == 1 else f"median {median} ({', '.join(f'{value:.2f}x' for value in values)})"


def _pool_time(label: str, runs: Sequence[BatchRun]) -> str:
    """Tasks per run and their mean run time, by type: where the pool's time went."""
    names = sorted({name for run in runs for name in run.tasks}, key=("unpack", "analyze", "report").index)
    parts = []
    for name in names:
        times = [seconds for run in runs for seconds in run.tasks.get(name, [])]
        parts.append(f"{name} {len(times) / len(runs):.0f} x {statistics.mean(times):.3f} s")
    busy = statistics.mean(sum(sum(times) for times in run.tasks.values()) for run in runs)
    return f"{label}: {', '.join(parts)}; pool busy {busy:.1f} s per run"


def bench_repeats(work: Path, copies: int, repeat: int, postgres: bool) -> dict[str, list[BatchRun]]:
    """(a): the builds alone on one fleet, then ``copies`` exhibits of each on a new one, ``repeat`` times."""
    total = copies * len(BUILDS)
    print(f"\n== (a) {total} submissions of {len(BUILDS)} distinct builds vs the {len(BUILDS)} alone "
          "(1 worker, all queues, --concurrency 2, cold cache each run)")
    print(ROW_HEADER)
    alone_folder = exhibits_folder(work, "builds", BUILDS, 1)
    repeats_folder = exhibits_folder(work, "exhibits", BUILDS, copies)
    runs: dict[str, list[BatchRun]] = {"alone": [], "repeats": []}
    for index in range(1, repeat + 1):
        for label, folder in (("alone", alone_folder), ("repeats", repeats_folder)):
            runs[label].append(run_batch(work, folder, 2, postgres))
            print(runs[label][-1].row(f"{label} #{index}"))
    ratios = [many.seconds / few.seconds for few, many in zip(runs["alone"], runs["repeats"], strict=True)]
    print(f"ratio {total} / {len(BUILDS)} alone: {_ratios(ratios)} "
          f"(target <= {TARGET_REPEATS_RATIO}x: {_met(statistics.median(ratios) <= TARGET_REPEATS_RATIO)})")
    print("pool time by task, " + "; ".join(_pool_time(label, label_runs) for label, label_runs in runs.items()))
    return {f"(a) {label}": label_runs for label, label_runs in runs.items()}


def bench_scaling(work: Path, images: Sequence[str], tasks: int, repeat: int, postgres: bool
                  ) -> dict[str, list[BatchRun]]:
    """(b), and (c) on each of its fleets once its images are done."""
    print(f"\n== (b) {len(images)} distinct images through 1 vs 2 worker processes (cold cache each run)")
    print(ROW_HEADER + "; images/min")
    folder = exhibits_folder(work, "distinct", images, 1)
    runs: dict[int, list[BatchRun]] = {1: [], 2: []}
    for index in range(1, repeat + 1):
        for concurrency in (1, 2):
            run = run_batch(work, folder, concurrency, postgres, tasks)
            runs[concurrency].append(run)
            print(f"{run.row(f'{concurrency} proc #{index}')}; {len(images) / run.seconds * 60:.1f}")
    scaling = [one.seconds / two.seconds for one, two in zip(runs[1], runs[2], strict=True)]
    rates = [f"{len(images) / statistics.median(run.seconds for run in runs[n]) * 60:.1f}" for n in (1, 2)]
    print(f"images/min (median): 1 process {rates[0]}, 2 processes {rates[1]}; throughput 2 / 1: {_ratios(scaling)} "
          f"(target >= {TARGET_SCALING}x: {_met(statistics.median(scaling) >= TARGET_SCALING)})")
    print("pool time by task, " + "; ".join(_pool_time(f"{n} proc", runs[n]) for n in (1, 2)))
    print(f"\n== (c) per-task overhead of the queue: {tasks} fwtriage.analyze tasks with an empty batch, "
          "sent with apply_async and awaited, on each fleet of (b)")
    print(f"{'processes':>9} {'wall s':>8} {'tasks/s':>8} {'ms/task':>8}   (median of {repeat})")
    for concurrency in (1, 2):
        seconds = statistics.median(run.overhead_seconds for run in runs[concurrency])
        print(f"{concurrency:9} {seconds:8.2f} {tasks / seconds:8.0f} {seconds / tasks * 1000:8.2f}")
    return {f"(b) {n} proc": runs[n] for n in (1, 2)}


def print_memory(runs: dict[str, list[BatchRun]]) -> None:
    print("\n== (d) peak memory per worker, MB, during (a) and (b) (the largest over the repeats)")
    print(f"{'fleet':16} {'main':>6} {'each pool proc':>15} {'tree RSS':>9} {'tree PSS':>9}  heaviest program started")
    for label, label_runs in runs.items():
        memory = label_runs[0].memory
        for run in label_runs[1:]:
            memory = memory.merged(run.memory)
        pool = " ".join(f"{peak:.0f}" for peak in memory.pool_mb)
        tool = f"{memory.tool[0]} {memory.tool[1]:.0f}" if memory.tool else "none"
        print(f"{label:16} {memory.main_mb:6.0f} {pool:>15} {memory.tree_rss_mb:9.0f} {memory.tree_pss_mb:9.0f}  "
              f"{tool}")


def print_machine(postgres: bool) -> None:
    cores = os.cpu_count() or 1
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"machine: {cores} cores ({platform.machine()}), load average {load} at start; "
          f"broker Redis {REDIS_URL}/{BENCH_REDIS_DBS[0]}, database {'PostgreSQL' if postgres else 'SQLite'}")
    print(f"targets: (a) <= {TARGET_REPEATS_RATIO}x: the repeats of known builds add at most half the builds' own "
          f"time; (b) >= {TARGET_SCALING}x: a second worker process adds at least 70% throughput; "
          "(c), (d): figures, no target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 4 copies, 4 images, 100 tasks, once")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database per fleet")
    parser.add_argument("--repeat", type=int, help="runs of each part (default 3, or 1 with --quick)")
    args = parser.parse_args()
    missing = [name for name in DISTINCT if not (SAMPLES / name).exists()]
    if missing:
        parser.error(f"missing samples {', '.join(missing)}: run make samples")
    copies, images, tasks = (4, DISTINCT[:4], 100) if args.quick else (20, DISTINCT, 500)
    repeat = max(args.repeat or (1 if args.quick else 3), 1)
    broker_db, results_db = BENCH_REDIS_DBS  # before pipeline.tasks is imported (task_overhead): it reads them once
    os.environ["FWTRIAGE_BROKER_URL"] = f"{REDIS_URL}/{broker_db}"
    os.environ["FWTRIAGE_RESULT_BACKEND"] = f"{REDIS_URL}/{results_db}"
    print_machine(args.postgres)
    work = Path(tempfile.mkdtemp(prefix="fwtriage-bench-fleet-"))
    try:
        runs = bench_repeats(work, copies, repeat, args.postgres)
        runs |= bench_scaling(work, images, tasks, repeat, args.postgres)
    finally:
        remove_tree(work)
    print_memory(runs)
    print(f"load average at the end: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
