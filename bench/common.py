"""What the benches share: the bench image, our ruleset as ``yara`` CLI arguments, and measured child processes.

Peak memory of a child, honestly: on Linux the ``ru_maxrss`` that ``wait4``
returns is the largest peak RSS among the child *and every descendant it
reaped* (the kernel folds reaped children's peaks into it), not the child
alone and never a sum. A run that starts external extractors (unsquashfs
under bubblewrap, binwalk's helpers) therefore reports whichever process was
the heaviest. ``run_measured`` adds what ``wait4`` cannot tell: a sampler
reads ``/proc`` every few tens of milliseconds and keeps the child's own
peak (``VmHWM``, exact up to the last sample before it exits), the peak of
the heaviest program it started, and the largest sum of RSS over the tree
at one instant, which is what the machine must hold. A fork that has not
called exec yet (still its parent's command line) is left out of that sum:
its pages are its parent's, shared copy-on-write, and would count twice; so
would a worker forked without exec, which none of the benched tools uses.
(PSS would split shared pages exactly, but ``smaps_rollup`` walks the page
tables under the process's memory lock: 10 ms per read for 400 MB, too
heavy to sample.) Sampled values are lower bounds: a peak shorter than the
interval can be missed."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.analyze.ruleset import EXTERNALS, ruleset
from pipeline.config import Detection

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SECONDS = 0.05


def default_image() -> Path:
    """The >= 100 MB squashfs of real Debian armhf binaries, as the sample generator builds it in samples/cache/."""
    from samples.gen.linux import build_large_rootfs
    from samples.sample import BuildContext

    ctx = BuildContext(root=ROOT / "samples", out=ROOT / "samples" / "out", cache=ROOT / "samples" / "cache")
    return build_large_rootfs(ctx)


def yara_cli_argv(cli: str, cores: int, folder: Path) -> list[str]:
    """``yara -r -N`` over ``folder`` with the sources fwtriage compiles, its externals declared empty.

    ``-N`` keeps the CLI from following symlinks (out of the tree, into the
    host), as our analyzer never does; ``-w`` silences rule warnings.
    """
    externals = [arg for name in EXTERNALS for arg in ("-d", f"{name}=-")]
    return [cli, "-r", "-N", "-w", "-p", str(cores), *externals, *ruleset(Detection.from_env()).cli_sources(),
            str(folder)]


def remove_tree(path: Path) -> None:
    """Remove an output folder, first detaching what binwalk mounted in it (as root it mounts ext images)."""
    with open("/proc/mounts") as mounts:
        mounted = [line.split()[1] for line in mounts if line.split()[1].startswith(str(path))]
    for point in sorted(mounted, reverse=True):
        subprocess.run(["umount", "-l", point], check=True)
    subprocess.run(["rm", "-rf", str(path)], check=True)  # binwalk leaves read-only folders


@dataclass
class ChildRun:
    """One measured child process: wall and CPU time, exit status, output, and its memory seen three ways."""

    seconds: float
    exit_code: int
    stdout: bytes
    stderr: bytes
    cpu_seconds: float  # user + system of the child and the descendants it reaped (wait4)
    largest_process_mb: float  # wait4 ru_maxrss: the largest peak RSS of one process in the tree (exact)
    own_peak_mb: float  # the child process alone (sampled VmHWM)
    tree_peak_mb: float  # the largest sum of RSS over the tree at one sample
    heaviest_tool: tuple[str, float] | None  # (name, sampled VmHWM) of the heaviest program the child started

    @property
    def peak_rss_mb(self) -> float:
        """What the run needed at once, at the least: the tree's sum, or one process if a sample missed it."""
        return max(self.tree_peak_mb, self.largest_process_mb)

    def memory_note(self) -> str:
        tool = f"; heaviest tool {self.heaviest_tool[0]} {self.heaviest_tool[1]:.0f} MB" if self.heaviest_tool else ""
        return (f"own {self.own_peak_mb:.0f} MB, whole tree at once {self.tree_peak_mb:.0f} MB, "
                f"largest single process {self.largest_process_mb:.0f} MB{tool}")


@dataclass
class _TreeSampler:
    """Polls the memory of a process and of its descendants until told to stop."""

    root: int
    own_peak_mb: float = 0.0
    tree_peak_mb: float = 0.0
    tool_peaks: dict[tuple[int, str], float] = field(default_factory=dict)  # (pid, name) → peak, per exec
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def stop(self) -> None:
        self._stop.set()

    def sample(self) -> None:
        total = 0.0
        for pid, parent in _tree(self.root):
            status = _status(pid)
            if status is None or (pid != self.root and not _runs_own_program(pid, parent)):
                continue
            name, rss, peak = status
            total += rss
            if pid == self.root:
                self.own_peak_mb = max(self.own_peak_mb, peak)
            else:
                self.tool_peaks[pid, name] = max(peak, self.tool_peaks.get((pid, name), 0.0))
        self.tree_peak_mb = max(self.tree_peak_mb, total)

    def heaviest_tool(self) -> tuple[str, float] | None:
        if not self.tool_peaks:
            return None
        (_, name), peak = max(self.tool_peaks.items(), key=lambda entry: entry[1])
        return name, peak


def _tree(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of ``root`` and its living descendants, through each thread's ``children`` list."""
    found, pending = [], [(root, 0)]
    while pending:
        pid, parent = pending.pop()
        found.append((pid, parent))
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending.extend((int(child), pid) for child in children.read().split())
        except OSError:  # exited between two reads
            continue
    return found


def _status(pid: int) -> tuple[str, float, float] | None:
    """(command name, RSS MB, peak RSS MB) of a living process, None once it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return None
    if "VmHWM" not in fields:  # zombie: memory already released
        return None
    return fields["Name"].strip(), _megabytes(fields["VmRSS"]), _megabytes(fields["VmHWM"])


def _megabytes(kilobytes: str) -> float:
    """``/proc`` sizes read "1234 kB"."""
    return int(kilobytes.split()[0]) / 1024


def _runs_own_program(pid: int, parent: int) -> bool:
    """False for a fork that has not called exec yet: it still shows its parent's memory and command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as own, open(f"/proc/{parent}/cmdline", "rb") as parents:
            return own.read() != parents.read()
    except OSError:
        return False


def run_measured(argv: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run ``argv`` to its end, measuring wall time, CPU time and memory (see the module docstring)."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, env=env)
        sampler = _TreeSampler(proc.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        assert proc.stdout is not None
        with proc.stdout:
            stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        sampler.stop()
        thread.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read()
    return ChildRun(seconds, proc.returncode, stdout, errors, usage.ru_utime + usage.ru_stime,
                    usage.ru_maxrss / 1024, sampler.own_peak_mb, sampler.tree_peak_mb, sampler.heaviest_tool())
