"""What leaving blank runs out of the signature scan saves when carving, against binwalk scanning every byte, in
this one process.

Blobs (built in a temporary folder): the bundled 8 MiB flash dump as it is; a 64 MiB NOR dump (the flash dump,
then erased flash, 0xFF); a 256 MiB raw partition (the ext4 sample, then zeros, as a sparse image expands); a
16 MiB blob of random bytes (nothing blank: the cost of looking for blanks). Prints, per blob: its size, the
share of it scanned, binwalk's scan of every byte and of the regions with data (median of ``--repeat``), their
ratio, whether both found the same signatures, and the time of the whole carving (``find_chunks``) as it runs.

Run: ``make bench`` (or ``.venv/bin/python bench/carve.py [--repeat N]``).
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

from pipeline.unpack.carve import binwalk_hits, find_chunks, regions_with_data  # noqa: E402
from pipeline.unpack.registry import all_formats  # noqa: E402

MIB = 1 << 20
SAMPLES = ROOT / "samples" / "out"


def blobs(folder: Path) -> dict[str, Path]:
    flash, ext = (SAMPLES / "flash-dump.bin").read_bytes(), (SAMPLES / "rootfs.ext4").read_bytes()
    contents = {
        "flash-dump.bin (as bundled)": flash,
        "NOR dump, mostly erased": flash + b"\xff" * (64 * MIB - len(flash)),
        "raw partition, mostly zeros": ext + bytes(256 * MIB - len(ext)),
        "random bytes": os.urandom(16 * MIB),
    }
    paths = {}
    for number, (label, data) in enumerate(contents.items()):
        paths[label] = folder / f"blob-{number}.bin"
        paths[label].write_bytes(data)
    return paths


def median_seconds(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each scan (default 3)")
    args = parser.parse_args()
    print(f"{'blob':<30} {'MiB':>5} {'scanned':>8} {'every byte':>10} {'with data':>10} {'ratio':>6} "
          f"{'same':>5} {'carving':>8}")
    with tempfile.TemporaryDirectory(prefix="fwtriage-bench-carve-") as folder:
        for label, path in blobs(Path(folder)).items():
            size = path.stat().st_size
            regions = regions_with_data(path)
            full_s, full = median_seconds(lambda p=path: sorted(binwalk_hits(p)), args.repeat)
            data_s, found = median_seconds(lambda p=path, r=regions: sorted(binwalk_hits(p, r)), args.repeat)
            carve_s, _ = median_seconds(lambda p=path, n=size: find_chunks(p, n, all_formats(), 256), 1)
            scanned = sum(length for _, length in regions) / size
            print(f"{label:<30} {size / MIB:>5.0f} {scanned:>8.1%} {full_s:>9.2f}s {data_s:>9.2f}s "
                  f"{full_s / data_s:>6.1f} {'yes' if found == full else 'NO':>5} {carve_s:>7.2f}s")


if __name__ == "__main__":
    main()
