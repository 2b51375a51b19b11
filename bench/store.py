"""What storing an extracted blob costs: the store's writer (hash while writing, zeros as holes) against plain
writes of the same bytes to a file, in this one process.

Prints, for bytes like data (a random MiB repeated) and for zeros (erased flash, empty partitions, the holes of a
sparse image): MB/s through ``LocalBlobStore.writer`` and commit, MB/s of a plain buffered write of the same
pieces, their ratio, and the disk each left allocated (``st_blocks``). Medians of ``--repeat`` runs, alternating.

Run: ``make bench`` (or ``.venv/bin/python bench/store.py [--mib N] [--repeat N]``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.store import CHUNK, LocalBlobStore  # noqa: E402


def through_the_store(folder: Path, piece: bytes, count: int) -> Path:
    store = LocalBlobStore(folder / "store")
    with store.writer() as writer:
        for _ in range(count):
            writer.write(piece)
        return store.path(store.commit(writer))


def plain_write(folder: Path, piece: bytes, count: int) -> Path:
    path = folder / "plain"
    with open(path, "wb") as handle:
        for _ in range(count):
            handle.write(piece)
        handle.flush()
    return path


def measured(write: Callable[[Path, bytes, int], Path], piece: bytes, count: int) -> tuple[float, int]:
    """Seconds to write ``count`` pieces and sync them to disk, and the bytes the file holds on disk."""
    with tempfile.TemporaryDirectory(prefix="fwtriage-bench-store-", dir=ROOT / "bench") as folder:
        start = time.perf_counter()
        path = write(Path(folder), piece, count)
        os.sync()
        seconds = time.perf_counter() - start
        return seconds, path.stat().st_blocks * 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB written per run (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating (default 3)")
    args = parser.parse_args()
    count = args.mib * (1 << 20) // CHUNK
    print(f"{args.mib} MiB in {CHUNK >> 10} KiB pieces, median of {args.repeat}")
    print(f"{'bytes':<6} {'store MB/s':>10} {'plain MB/s':>10} {'ratio':>6} {'store disk':>11} {'plain disk':>11}")
    for label, piece in (("data", os.urandom(CHUNK)), ("zeros", bytes(CHUNK))):
        runs: dict[str, list[tuple[float, int]]] = {"store": [], "plain": []}
        for _ in range(args.repeat):
            runs["store"].append(measured(through_the_store, piece, count))
            runs["plain"].append(measured(plain_write, piece, count))
        store_s, plain_s = (statistics.median(s for s, _ in runs[side]) for side in ("store", "plain"))
        store_disk, plain_disk = (runs[side][-1][1] for side in ("store", "plain"))
        print(f"{label:<6} {args.mib * 1.048576 / store_s:>10.0f} {args.mib * 1.048576 / plain_s:>10.0f} "
              f"{store_s / plain_s:>6.2f} {store_disk / 2**20:>8.0f} MiB {plain_disk / 2**20:>7.0f} MiB")


if __name__ == "__main__":
    main()
