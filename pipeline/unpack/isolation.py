"""One image's whole unpacking in a child process, so a pathological input kills a child, not the worker.

Why: external extractors already run confined (``safety.run_tool``), but the pure-Python readers (our format
modules and the libraries they call) run wherever the walker runs. A reader that allocates 20 GB, a C
extension that segfaults or a library caught in an endless loop would take the worker down with it, and the
submission with the worker. Here the walker runs in a child forked from multiprocessing's fork server (which
has the unpack modules imported once, so a child starts in milliseconds), bounded by rlimits (address space,
CPU time, core dumps off, the size of one written file) and ``no_new_privs``, and watched against a
wall-clock limit. The tree comes back as JSON over a pipe, after the child's progress messages (the files
written so far and the artifact just done), which the parent hands to its own progress callback.

However the child ends without a tree (killed by a signal, over a limit, out of memory), the parent returns
the image alone with an extraction issue saying what happened: the report is incomplete and says why, the
worker goes on. An exception the walker itself raises (a bug, not a hostile input: readers' exceptions are
recorded by the walker) is raised again in the parent as ``UnpackerRaised``, as it would have been in-process.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import multiprocessing
import os
import pkgutil
import resource
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection
from multiprocessing.context import set_spawning_popen
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from pipeline.config import Isolation, Limits, Settings
from pipeline.model import (
    Artifact,
    ArtifactKind,
    Coverage,
    ExtractionIssue,
    ExtractionTree,
    IssueKind,
)
from pipeline.store import BlobStore, StoreFull
from pipeline.unpack import formats as formats_package
from pipeline.unpack import registry
from pipeline.unpack.format import Format
from pipeline.unpack.safety import Budget
from pipeline.unpack.walker import unpack

# (files written so far, lineage path of the artifact just done)
UnpackProgress = Callable[[int, str], None]

_PR_SET_NO_NEW_PRIVS = 38
_EXIT_GRACE_SECONDS = 30.0  # after its last message, a child only has to exit
# Signals that say a reader crashed in native code rather than hit one of our limits.
_CRASHES = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE})


class UnpackerRaised(Exception):
    """The walker raised in the child; the message is the child's ``Type: message``."""


@dataclass(frozen=True)
class UnpackJob:
    """One stored image to unpack: where its bytes are, its name (the root of every lineage) and identity."""

    image: Path
    name: str
    sha256: str
    size: int


def tree_of_failure(job: UnpackJob, error: str, kind: IssueKind) -> ExtractionTree:
    """The tree of an image whose unpacking broke off: the image alone, none of its bytes reached, and why."""
    untouched = Coverage(bytes=job.size, unknown=job.size)
    root = Artifact(0, None, (job.name,), job.sha256, job.size, ArtifactKind.IMAGE, 0, coverage=untouched)
    return ExtractionTree(job.sha256, [root], [ExtractionIssue(job.name, error, kind)], coverage=untouched)


def _gib(size: int) -> str:
    return f"{size / (1 << 30):g} GiB"


# --- the child ------------------------------------------------------------------------------------


def _confine(isolation: Isolation, limits: Limits, image_size: int) -> None:
    """Bound this process before it reads a byte of the image.

    The address-space and CPU limits are hard: the external tools a reader starts inherit them as ceilings,
    which is why neither is set below what ``run_tool`` gives a tool. The file-size limit is soft only, since
    ``run_tool`` raises it for tools whose output is bounded per container; our own writes stay under the
    image's byte budget, so one file beyond that budget is a runaway.
    """
    memory = max(isolation.memory, limits.tool_memory)
    cpu = max(isolation.cpu_seconds, int(limits.extractor_seconds) + 2)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU first, SIGKILL if it is ignored
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    file_size = limits.total_bytes_for(image_size) + image_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def _send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(message, ensure_ascii=False).encode())


def _child(conn: Connection, job: UnpackJob, store: BlobStore, settings: Settings,
           formats: tuple[type[Format], ...]) -> None:
    """The child's whole life: confine, unpack, send the tree (or what went wrong), exit."""
    try:
        _confine(settings.isolation, settings.limits, job.size)
        for fmt in formats:
            registry.register(fmt)

        def advance(artifact: Artifact, budget: Budget) -> None:
            _send(conn, {"progress": [budget.written_files, artifact.lineage_path]})

        tree = unpack(job.image, store=store, settings=settings, progress=advance, name=job.name,
                      stored_sha256=job.sha256)
        _send(conn, {"tree": tree.to_dict()})
    except MemoryError:
        _send(conn, {"memory": True})
    except StoreFull as exc:
        _send(conn, {"store_full": exc.strerror})
    except Exception as exc:  # the parent raises it again: the walker itself broke
        _send(conn, {"raised": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


# --- the parent -----------------------------------------------------------------------------------


def _preload() -> list[str]:
    """What the fork server imports once for all children: the unpacking and every format module."""
    names = [f"{formats_package.__name__}.{m.name}" for m in pkgutil.iter_modules(formats_package.__path__)]
    return [__name__, *names]


class _Launch(popen_forkserver.Popen):
    """A child forked from the fork server, without the parent's main module.

    Two departures from ``Process.start``, each for a reason. It refuses to run in a daemonic process, which a
    Celery prefork worker is, because such a process would not reap its children at exit; ``_watch`` always
    waits for or kills this child. And a child would import the parent's main script again (the ``fwtriage``
    command imports the whole pipeline, a second or two per image; Python 3.11's fork server never preloads
    it), although it needs nothing but this module and what it imports.
    """

    def _launch(self, process_obj: BaseProcess) -> None:
        prep_data = spawn.get_preparation_data(process_obj.name)
        for key in ("init_main_from_path", "init_main_from_name"):
            prep_data.pop(key, None)
        prep_data["authkey"] = bytes(process_obj.authkey)  # the parent's may be billiard's, which refuses pickling
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)  # held until the child is closed: the child's sign that its parent lives
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


def _start(conn: Connection, job: UnpackJob, store: BlobStore, settings: Settings) -> _Launch:
    """Fork the child from the fork server (started on first use, with the unpack modules preloaded)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_preload())
    process = context.Process(target=_child, args=(conn, job, store, settings, registry.registered()),
                              name=f"unpack-{job.sha256[:12]}")
    # A key of its own, of the standard library's type: in a Celery worker the current process is billiard's, whose
    # authentication key refuses to be pickled by a multiprocessing launcher. The child never uses it.
    process.authkey = secrets.token_bytes(32)
    return _Launch(process)


@dataclass
class _Outcome:
    """What the parent learnt from the child's messages."""

    tree: ExtractionTree | None = None
    raised: str | None = None
    store_full: str | None = None
    out_of_memory: bool = False
    last_done: str | None = None
    timed_out: bool = False


def _receive(message: dict[str, Any], outcome: _Outcome, progress: UnpackProgress) -> None:
    if "progress" in message:
        done, detail = message["progress"]
        outcome.last_done = detail
        progress(done, detail)
    elif "tree" in message:
        outcome.tree = ExtractionTree.from_dict(message["tree"])
    elif "raised" in message:
        outcome.raised = message["raised"]
    elif "store_full" in message:
        outcome.store_full = message["store_full"]
    elif "memory" in message:
        outcome.out_of_memory = True


def _watch(reader: Connection, child: _Launch, wall_seconds: float, progress: UnpackProgress) -> _Outcome:
    """Read the child's messages until it closes its end or its time is up; the child has exited on return."""
    outcome = _Outcome()
    deadline = time.monotonic() + wall_seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                break
            if not reader.poll(remaining):
                continue
            try:
                data = reader.recv_bytes()
            except EOFError:
                break
            _receive(json.loads(data), outcome, progress)
        if outcome.timed_out or child.wait(_EXIT_GRACE_SECONDS) is None:
            child.kill()
    finally:
        if child.poll() is None:  # the parent itself was interrupted (a task's time limit, ^C)
            child.kill()
        child.wait()
        child.close()
    return outcome


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} ({signal.strsignal(number)})"
    except ValueError:
        return f"signal {number}"


def _reason(outcome: _Outcome, returncode: int, isolation: Isolation, limits: Limits) -> tuple[str, IssueKind]:
    """Why the child gave no tree, in a reviewer's words, and whether it was a limit or a failure."""
    memory = _gib(max(isolation.memory, limits.tool_memory))
    if outcome.timed_out:
        why, kind = (f"unpacking stopped: it did not finish within the wall-clock limit of "
                     f"{isolation.wall_seconds:g} s (a reader that never returns)", IssueKind.LIMIT)
    elif outcome.out_of_memory:
        why, kind = f"unpacking stopped: it ran out of memory (limit {memory})", IssueKind.LIMIT
    elif returncode == -signal.SIGXCPU:
        why, kind = (f"unpacking stopped: the CPU time limit of {isolation.cpu_seconds} s was reached",
                     IssueKind.LIMIT)
    elif returncode < 0 and -returncode in _CRASHES:
        why, kind = (f"a reader crashed the unpacking process: {_signal_name(-returncode)}; memory limit "
                     f"{memory}", IssueKind.FAILURE)
    elif returncode < 0:
        why, kind = (f"the unpacking process was killed by {_signal_name(-returncode)} (the system's "
                     "out-of-memory killer or an operator)", IssueKind.FAILURE)
    else:
        why, kind = f"the unpacking process exited with status {returncode} without a result", IssueKind.FAILURE
    if outcome.last_done:
        why += f"; the last artifact finished was {outcome.last_done}"
    return why, kind


def unpack_in_child(job: UnpackJob, store: BlobStore, settings: Settings, progress: UnpackProgress) -> ExtractionTree:
    """Unpack ``job`` in a confined child process; never raises for anything the image does to the child.

    Raises ``UnpackerRaised`` when the walker itself raised (as ``unpack`` would have in-process), and OSError
    when no child can be started at all.
    """
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="isolated-", dir=settings.work_dir))
    # the child's scratch lives under a folder of its own, removed here however the child ended
    child_settings = replace(settings, home=scratch)
    reader, writer = multiprocessing.Pipe(duplex=False)
    try:
        child = _start(writer, job, store, child_settings)
        writer.close()  # the child holds the only write end now: its exit is the reader's end of file
        outcome = _watch(reader, child, settings.isolation.wall_seconds, progress)
    finally:
        writer.close()
        reader.close()
        shutil.rmtree(scratch, ignore_errors=True)
    if outcome.tree is not None:
        return outcome.tree
    if outcome.raised is not None:
        raise UnpackerRaised(outcome.raised)
    if outcome.store_full is not None:
        raise StoreFull(errno.ENOSPC, outcome.store_full)
    return tree_of_failure(job, *_reason(outcome, child.returncode, settings.isolation, settings.limits))
