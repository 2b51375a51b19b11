"""What keeps a hostile image from hurting the worker that opens it.

- Member names are sanitised before they become part of a lineage path: no
  absolute paths, no ``..``, no backslash tricks, no control characters.
  Extracted bytes only ever land in the content-addressed store, under their
  hash, so a name can never choose where a file is written.
- A ``Budget`` bounds one image's extraction (bytes, files, time); running
  out raises ``ExtractionAborted``, which the walker records.
- External tools run through ``run_tool``: rlimits on CPU, memory and file
  size, a wall-clock timeout, their own process group, and under bubblewrap
  (no network, read-only system, only their work directory writable) when
  ``bwrap`` works on this machine, as an unprivileged user.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import signal
import subprocess
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.model import IssueKind

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True)
MAX_COMPONENT = 255
MAX_NAME = 4096


class ExtractionAborted(Exception):
    """An extractor must stop: a quota ran out or its time is up."""

    def __init__(self, kind: IssueKind, reason: str, *, image_wide: bool = False) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.image_wide = image_wide


class MemberTooLarge(Exception):
    """One member expands beyond the allowed ratio: a decompression bomb."""


@dataclass(frozen=True)
class SanitisedName:
    """A member name made safe, and whether that changed what the archive said."""

    path: str
    changed: bool


def sanitise_member_name(raw: str | bytes, *, rooted: bool) -> SanitisedName:
    """Turn an archive or filesystem member name into a safe relative path.

    Splits on ``/`` and ``\\`` (a Windows-made archive may use either), drops
    empty, ``.`` and ``..`` parts (and parts that only look like them: fullwidth
    or leader dots, dots under combining marks), turns look-alikes of a slash
    into ``_``, removes control characters and NUL, and caps lengths.
    ``rooted`` names (filesystem paths) are shown with a leading ``/``; it is
    cosmetic: nothing is ever written under these names.
    """
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become '?'
    parts: list[str] = []
    for part in text.replace("\\", "/").split("/"):
        ascii_only = part.isascii()
        cleaned = "".join(ch if ascii_only else _unconfused(ch) for ch in part
                          if unicodedata.category(ch)[0] != "C").strip()
        if cleaned in ("", ".", "..") or (not ascii_only and _skeleton(cleaned) in (".", "..")):
            continue
        parts.append(cleaned.encode()[:MAX_COMPONENT].decode("utf-8", "ignore"))
    joined = "/".join(parts)
    capped = len(joined) > MAX_NAME
    joined = joined[:MAX_NAME].rstrip("/") or "_unnamed"
    naive = [part for part in text.split("/") if part not in ("", ".")]
    lossy = isinstance(raw, bytes) and text.encode() != raw
    changed = lossy or capped or parts != naive or (not rooted and text.startswith("/"))
    return SanitisedName(path="/" + joined if rooted else joined, changed=changed)


# Characters a reader takes for a path separator although no system splits on them.
_SEPARATOR_LOOKALIKES = frozenset("\u2044\u2215\u2216\u2571\u2572\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c")


def _unconfused(ch: str) -> str:
    """``_`` for a look-alike of ``/`` or ``\\`` (U+2215 DIVISION SLASH...): ``..∕..∕etc`` must not read as a path."""
    if ch in _SEPARATOR_LOOKALIKES or (not ch.isascii() and "/" in unicodedata.normalize("NFKC", ch)):
        return "_"
    return ch


def _skeleton(part: str) -> str:
    """What a component looks like: combining marks dropped, compatibility forms folded (``．．`` is ``..``)."""
    bare = "".join(ch for ch in part if unicodedata.category(ch) not in ("Mn", "Me"))
    return unicodedata.normalize("NFKC", bare)


@dataclass
class Budget:
    """Quotas shared by every extractor of one image."""

    max_bytes: int
    max_files: int
    extractor_seconds: float
    written_bytes: int = 0
    written_files: int = 0
    deadline: float = field(default=float("inf"))
    exhausted: str | None = None

    def start_extractor(self) -> None:
        self.deadline = time.monotonic() + self.extractor_seconds

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ExtractionAborted(
                IssueKind.LIMIT, f"extractor time limit of {self.extractor_seconds:g} s reached"
            )

    def add_file(self) -> None:
        if self.written_files >= self.max_files:
            self._exhaust(f"file count limit of {self.max_files} reached")
        self.written_files += 1

    def add_bytes(self, count: int) -> None:
        self.written_bytes += count
        if self.written_bytes > self.max_bytes:
            self._exhaust(f"total extracted bytes limit of {self.max_bytes} reached")

    @property
    def remaining_bytes(self) -> int:
        return max(self.max_bytes - self.written_bytes, 0)

    def _exhaust(self, reason: str) -> None:
        self.exhausted = reason
        raise ExtractionAborted(IssueKind.LIMIT, reason, image_wide=True)


class ToolFailed(Exception):
    """An external tool exited badly, timed out or was killed by a limit."""


@functools.cache
def bubblewrap_available() -> bool:
    """True when ``bwrap`` exists and can build a sandbox on this machine."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False
    probe = subprocess.run(
        [bwrap, *_bwrap_args(Path("/tmp")), "true"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return probe.returncode == 0


def _bwrap_args(work_dir: Path) -> list[str]:
    return [
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--bind", str(work_dir), str(work_dir),
        "--setenv", "TMPDIR", str(work_dir),
        "--unshare-all",
        "--unshare-user", "--uid", "65534", "--gid", "65534",  # an unprivileged nobody: no chown, no mknod
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--chdir", str(work_dir),
    ]  # fmt: skip


def _limit_child(cpu_seconds: int, memory: int, file_size: int) -> None:
    """In the tool's process, before it runs: its rlimits (never above those it inherits: the unpacking child is
    confined too) and death with its parent, so a tool outlives no unpacking child that was killed."""
    for which, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_AS, memory),
                         (resource.RLIMIT_FSIZE, file_size), (resource.RLIMIT_CORE, 0)):
        _, hard = resource.getrlimit(which)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (capped, capped))
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_tool(
    command: Sequence[str],
    *,
    work_dir: Path,
    timeout: float,
    memory: int,
    max_file_size: int,
) -> subprocess.CompletedProcess[bytes]:
    """Run an external extractor confined to ``work_dir``, bounded in time, memory and output."""
    argv = list(command)
    if bubblewrap_available():
        argv = [shutil.which("bwrap") or "bwrap", *_bwrap_args(work_dir), *argv]
    seconds = max(int(timeout), 1)
    limit = functools.partial(_limit_child, seconds + 1, memory, max(max_file_size, 1))
    with subprocess.Popen(
        argv,
        cwd=work_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit,  # rlimits must be set in the child, before exec
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ToolFailed(f"{Path(argv[0]).name} killed after {timeout:g} s") from None
    result = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    if proc.returncode < 0:
        raise ToolFailed(f"{Path(command[0]).name} killed by signal {-proc.returncode}")
    return result
