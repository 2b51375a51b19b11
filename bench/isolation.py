"""What confining the unpack costs: ``unpack_guarded`` in a child process (the default) against in the calling
process (``FWTRIAGE_ISOLATION=in-process``), on the same images, in this one process.

Prints, per image: its size, the median wall time of each mode over ``--repeat`` runs (alternating, a fresh
store each run), their ratio and difference, and the re-hash of the stored original that now precedes every
unpack (part of both times, shown apart). Then, once: the fork server's start, which a worker pays on its first
image only, and the worker's own peak RSS in each mode on the largest image, each mode in a fresh child process
(``bench/common.run_measured``): confined, the readers' memory is the child's, not the worker's.

Images: every bundled sample and the >= 100 MB rootfs of real Debian armhf binaries (built once into
samples/cache/bench/), or the images given.
Run: ``make bench`` (or ``.venv/bin/python bench/isolation.py [--repeat N] [IMAGE ...]``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import default_image, run_measured  # noqa: E402
from pipeline.config import Isolation, Settings  # noqa: E402
from pipeline.ingest import CaseMetadata, ingest  # noqa: E402
from pipeline.scan import unpack_guarded  # noqa: E402
from pipeline.store import LocalBlobStore  # noqa: E402

MODES = ("in-process", "subprocess")
MEMORY_RUN = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.isolation import unpack_once
unpack_once(Path(sys.argv[1]), sys.argv[2])
"""


def _quiet(*_: object) -> None:
    """Nobody watches the bench's progress."""


def unpack_once(image: Path, mode: str) -> tuple[float, float, int]:
    """Ingest ``image`` into a fresh home, then time the re-hash of the original and the guarded unpack in
    ``mode``; returns (unpack seconds, re-hash seconds, artifacts)."""
    home = Path(tempfile.mkdtemp(prefix="fwtriage-bench-isolation-"))
    try:
        settings = dataclasses.replace(Settings(home=home), isolation=Isolation(mode=mode))
        store = LocalBlobStore(settings.store_dir)
        submission = ingest(image, store, CaseMetadata())
        start = time.perf_counter()
        store.verify(submission.sha256)
        rehash = time.perf_counter() - start
        failures: list[str] = []
        start = time.perf_counter()
        tree = unpack_guarded(submission, store, settings, _quiet, failures)
        seconds = time.perf_counter() - start
        if failures:
            raise RuntimeError(f"{image.name}: {failures}")
        return seconds, rehash, len(tree.artifacts)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _images(given: list[Path]) -> list[Path]:
    if given:
        return given
    samples = sorted(p for p in (ROOT / "samples" / "out").iterdir() if p.is_file() and p.suffix != ".json")
    return [*samples, default_image()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    images = _images(args.images)

    start = time.perf_counter()
    unpack_once(images[0], "subprocess")  # starts the fork server: once per worker process
    first = time.perf_counter() - start
    print(f"first confined unpack (fork server start included): {first:.2f} s")
    print(f"{'image':<36} {'MB':>7} {'artifacts':>9} {'in-process s':>12} {'confined s':>10} {'ratio':>6} "
          f"{'+s':>6} {'re-hash s':>9}")
    totals = dict.fromkeys(MODES, 0.0)
    for image in images:
        runs: dict[str, list[float]] = {mode: [] for mode in MODES}
        rehashes, artifacts = [], 0
        for _ in range(args.repeat):
            for mode in MODES:
                seconds, rehash, artifacts = unpack_once(image, mode)
                runs[mode].append(seconds)
                rehashes.append(rehash)
        medians = {mode: statistics.median(times) for mode, times in runs.items()}
        for mode in MODES:
            totals[mode] += medians[mode]
        size = image.stat().st_size / 1e6
        print(f"{image.name[:36]:<36} {size:7.1f} {artifacts:9d} {medians['in-process']:12.3f} "
              f"{medians['subprocess']:10.3f} {medians['subprocess'] / medians['in-process']:6.2f} "
              f"{medians['subprocess'] - medians['in-process']:+6.2f} {statistics.median(rehashes):9.3f}")
    print(f"all images: in-process {totals['in-process']:.2f} s, confined {totals['subprocess']:.2f} s, "
          f"ratio {totals['subprocess'] / totals['in-process']:.2f}")

    largest = max(images, key=lambda p: p.stat().st_size)
    script = MEMORY_RUN.format(root=str(ROOT))
    for mode in MODES:
        run = run_measured([sys.executable, "-c", script, str(largest), mode])
        if run.exit_code:
            raise SystemExit(run.stderr.decode(errors="replace"))
        print(f"{largest.name}, {mode}: the worker's own peak RSS {run.own_peak_mb:.0f} MB "
              f"({run.memory_note()})")


if __name__ == "__main__":
    main()
