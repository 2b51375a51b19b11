"""The fuzz targets: each runs one parser of ours on untrusted bytes and checks what must always hold.

Shared by the hypothesis tests (``tests/fuzz``) and the atheris harnesses
(``fuzz/fuzz_*.py``), so both fuzzers judge an input by the same property:

- the parser extracts, or fails with a documented error: ``ValueError``,
  ``OSError``, ``EOFError`` (what ``Format.extract`` and the carver are
  allowed to raise) or ``ExtractionAborted`` (a quota or a deadline);
  anything else is a crash, raised as is;
- it writes nothing outside its blob store and scratch directory, leaves no
  temporary behind and never alters its input;
- what it stored stays within the budget (bytes, files) and every member
  name is already sanitised;
- it finishes within its deadline.

A broken property raises ``PropertyViolation``. Each run gets a fresh
sandbox directory, removed afterwards.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fuzz import seeds
from pipeline.config import Limits, Settings
from pipeline.model import ExtractionIssue
from pipeline.store import LocalBlobStore
from pipeline.unpack import unpack
from pipeline.unpack.carve import find_chunks
from pipeline.unpack.format import Format, Source
from pipeline.unpack.formats.android_boot import AndroidBoot
from pipeline.unpack.formats.android_ota import AndroidOta
from pipeline.unpack.formats.android_sparse import AndroidSparse
from pipeline.unpack.formats.pac import Pac
from pipeline.unpack.formats.uimage import UImage
from pipeline.unpack.identify import HEAD_SIZE
from pipeline.unpack.output import Output
from pipeline.unpack.registry import all_formats
from pipeline.unpack.safety import Budget, ExtractionAborted, sanitise_member_name

DOCUMENTED = (ValueError, OSError, EOFError, ExtractionAborted)  # what extract may raise; the walker records it
CARVE_CAUGHT = (ValueError, OSError, EOFError, io.UnsupportedOperation)  # what find_chunks absorbs
OURS = frozenset({"pac", "android-sparse", "android-boot", "android-ota", "android-ota-data", "uimage", "carve"})
MIB = 1 << 20
LIMITS = Limits(max_depth=6, max_files=256, total_bytes_factor=4, total_bytes_floor=16 * MIB, max_ratio=200.0,
                ratio_floor=MIB, extractor_seconds=10.0, max_carves=64)
SLACK_SECONDS = 5.0  # beyond the deadline: one bounded piece of work after the last check, on a loaded machine


class PropertyViolation(AssertionError):
    """An input broke a property every parser must keep (not merely an invalid input)."""


@dataclass(frozen=True)
class Target:
    """One parser under fuzzing: ``run`` takes the raw fuzz input and answers how many members (or chunks) it
    gave; ``seeds`` are the starting points."""

    name: str
    run: Callable[[bytes], int]
    seeds: Callable[[], list[seeds.Seed]]


class Sandbox:
    """A private directory: ``input/`` (the evidence, checked unaltered), ``home/store`` and ``home/work``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inputs = root / "input"
        self.inputs.mkdir()
        self.settings = Settings(home=root / "home", limits=LIMITS)
        self.store = LocalBlobStore(self.settings.store_dir)
        self._digests: dict[Path, str] = {}

    def put(self, name: str, data: bytes) -> Path:
        path = self.inputs / name
        path.write_bytes(data)
        self._digests[path] = hashlib.sha256(data).hexdigest()
        return path

    def check_confined(self) -> None:
        """Only blobs and the untouched inputs may remain; nothing else, no temporaries."""
        blobs = self.store.blobs
        for path in self.root.rglob("*"):
            if path.is_dir():
                continue
            if path in self._digests:
                if hashlib.sha256(path.read_bytes()).hexdigest() != self._digests[path]:
                    raise PropertyViolation(f"the input {path.name} was altered")
            elif not path.is_relative_to(blobs):
                raise PropertyViolation(f"file written outside the blob store: {path.relative_to(self.root)}")


# a sandbox is made and removed per input: on a tmpfs that costs microseconds, on a disk milliseconds
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@contextmanager
def sandbox() -> Iterator[Sandbox]:
    with tempfile.TemporaryDirectory(prefix="fwtriage-fuzz-", dir=SCRATCH) as root:
        yield Sandbox(Path(root))


def _check_deadline(started: float, what: str) -> None:
    elapsed = time.monotonic() - started
    if elapsed > LIMITS.extractor_seconds + SLACK_SECONDS:
        raise PropertyViolation(f"{what} ran {elapsed:.1f} s, past its {LIMITS.extractor_seconds:g} s deadline")


def _check_output(out: Output, budget: Budget, store: LocalBlobStore, rooted: bool) -> None:
    stored = sum(child.size for child in out.children)
    if stored > budget.max_bytes or len(out.children) > budget.max_files:
        raise PropertyViolation(f"{len(out.children)} members, {stored} bytes: beyond the budget")
    for child in out.children:
        if sanitise_member_name(child.name, rooted=rooted).changed:
            raise PropertyViolation(f"member name {child.name!r} was not sanitised")
        if store.path(child.sha256).stat().st_size != child.size:
            raise PropertyViolation(f"member {child.name!r} is not stored with its size")


def _check_identification(fmt: type[Format], path: Path, size: int, name: str) -> None:
    """``matches`` runs outside any error handling (identification), ``chunk_length`` inside the carver's."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_SIZE)
        if not isinstance(fmt.matches(head, size, name), bool):
            raise PropertyViolation(f"{fmt.name}.matches did not answer a bool")
        try:
            length = fmt.chunk_length(handle, 0, size)
        except CARVE_CAUGHT:
            return
    if length is not None and not isinstance(length, int):
        raise PropertyViolation(f"{fmt.name}.chunk_length gave {length!r}")


def run_format(fmt: type[Format], data: bytes, name: str, siblings: dict[str, bytes] | None = None) -> Output:
    """Extract ``data`` (a member called ``name``) with one format, as the walker would, and check it."""
    with sandbox() as box:
        path = box.put(name, data)
        sibling_paths = {n: box.put(n, d) for n, d in (siblings or {}).items()}
        _check_identification(fmt, path, len(data), name)
        budget = Budget(max_bytes=LIMITS.total_bytes_floor, max_files=LIMITS.max_files,
                        extractor_seconds=LIMITS.extractor_seconds)
        out = Output(box.store, budget, container_size=len(data), rooted=fmt.rooted,
                     max_ratio=LIMITS.max_ratio, ratio_floor=LIMITS.ratio_floor)
        work_dir = box.settings.work_dir / fmt.name
        work_dir.mkdir(parents=True)
        source = Source(path, len(data), name, work_dir, sibling_paths, LIMITS)
        started = time.monotonic()
        budget.start_extractor()
        try:
            fmt().extract(source, out)
        except DOCUMENTED:
            pass  # an invalid input, recorded by the walker as this container's failure
        finally:
            _check_deadline(started, fmt.name)
            scratch = sum(path.stat().st_size for path in work_dir.rglob("*") if path.is_file())
            shutil.rmtree(work_dir)
        if scratch > budget.remaining_bytes:
            raise PropertyViolation(f"{scratch} bytes of scratch files, beyond what the quota had left")
        _check_output(out, budget, box.store, fmt.rooted)
        box.check_confined()
    return out


def fuzz_pac(data: bytes) -> int:
    return len(run_format(Pac, data, "firmware.pac").children)


def fuzz_sparse(data: bytes) -> int:
    return len(run_format(AndroidSparse, data, "system.img").children)


def fuzz_boot(data: bytes) -> int:
    return len(run_format(AndroidBoot, data, "boot.img").children)


def fuzz_uimage(data: bytes) -> int:
    return len(run_format(UImage, seeds.with_crc(data), "uImage").children)


def fuzz_ota(data: bytes) -> int:
    """The transfer list, and after a NUL the new data (raw or brotli, see ``seeds.ota_input``)."""
    transfer_list, found, rest = data.partition(b"\0")
    siblings = {}
    if found:
        mode, new_data = rest[:1], rest[1:]
        siblings["system.new.dat.br" if mode == seeds.OTA_BROTLI else "system.new.dat"] = new_data
    return len(run_format(AndroidOta, transfer_list, "system.transfer.list", siblings).children)


def fuzz_carve(data: bytes) -> int:
    """Carving a blob: confirmed chunks are sorted, disjoint, inside it, and at most ``max_carves``."""
    with sandbox() as box:
        path = box.put("dump.bin", data)
        started = time.monotonic()
        result = find_chunks(path, len(data), all_formats(), LIMITS.max_carves)
        _check_deadline(started, "carve")
        end = 0
        for chunk in result.chunks:
            if chunk.offset < end or chunk.length <= 0 or chunk.offset + chunk.length > len(data):
                raise PropertyViolation(f"chunk {chunk} overlaps, is empty or lies outside the blob")
            end = chunk.offset + chunk.length
        if len(result.chunks) > LIMITS.max_carves:
            raise PropertyViolation(f"{len(result.chunks)} chunks carved, beyond the limit")
        box.check_confined()
    return len(result.chunks)


def unexpected_failure(issue: ExtractionIssue) -> str | None:
    """The exception type a parser of ours let escape to the walker's catch-all, if it is not documented."""
    marker = " could not parse it: "
    if issue.extractor not in OURS or marker not in issue.error:
        return None
    type_name = issue.error.split(marker, 1)[1].split(":", 1)[0]
    raised = getattr(builtins, type_name, None) or getattr(io, type_name, None)
    documented = isinstance(raised, type) and issubclass(raised, DOCUMENTED)
    return None if documented else type_name


def fuzz_walker(data: bytes) -> int:
    """A whole image through the walker: never raises, every failure recorded, budget and sandbox kept."""
    with sandbox() as box:
        path = box.put("image.bin", data)
        started = time.monotonic()
        tree = unpack(path, store=box.store, settings=box.settings)
        elapsed = time.monotonic() - started
        extractors = {a.extractor for a in tree.artifacts} | {"root"}
        if elapsed > LIMITS.extractor_seconds * len(extractors) + SLACK_SECONDS:
            raise PropertyViolation(f"the walk took {elapsed:.1f} s")
        for issue in tree.errors:
            if not isinstance(issue, ExtractionIssue):
                raise PropertyViolation(f"error {issue!r} is not an ExtractionIssue")
            if escaped := unexpected_failure(issue):
                raise PropertyViolation(f"{issue.extractor} let {escaped} escape: {issue.error}")
        stored = sum({a.sha256: a.size for a in tree.artifacts[1:]}.values())
        if stored > LIMITS.total_bytes_for(len(data)) or len(tree.artifacts) > LIMITS.max_files + 1:
            raise PropertyViolation(f"{len(tree.artifacts)} artifacts, {stored} bytes: beyond the budget")
        box.check_confined()
    return len(tree.artifacts) - 1


TARGETS = {target.name: target for target in (
    Target("pac", fuzz_pac, seeds.pac_seeds),
    Target("sparse", fuzz_sparse, lambda: [seeds.sparse_seed()]),
    Target("boot", fuzz_boot, seeds.boot_seeds),
    Target("ota", fuzz_ota, seeds.ota_seeds),
    Target("uimage", fuzz_uimage, seeds.uimage_seeds),
    Target("carve", fuzz_carve, lambda: [seeds.Seed(seeds.flash_dump())]),
    Target("walker", fuzz_walker, seeds.walker_seeds),
)}
