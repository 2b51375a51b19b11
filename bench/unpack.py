"""Unpacking speed and memory, against ``binwalk -Me`` on the same images in the same run.

Prints, per image: wall time, MB/s of image, files/s, peak RSS of the
process, files found, and the ratio of our time to binwalk's. Images: the
largest bundled sample and a >= 100 MB rootfs of real Debian armhf binaries
(built once into samples/cache/bench/). Each side runs in its own child
process; its peak RSS is ``wait4``'s, the largest of that process and of the
tools it ran (unsquashfs, binwalk's extractors): see bench/common.py.

Run: ``make bench`` (or ``.venv/bin/python bench/unpack.py [IMAGE ...]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import default_image, remove_tree, run_measured  # noqa: E402

OUT = ROOT / "bench" / "out"

OUR_RUN = """
import json, sys
from pathlib import Path
from pipeline.config import Settings
from pipeline.store import LocalBlobStore
from pipeline.unpack import unpack
settings = Settings.from_env()
tree = unpack(Path(sys.argv[1]), store=LocalBlobStore(settings.store_dir), settings=settings)
files = sum(1 for a in tree.artifacts if a.kind.value != "symlink")
print(json.dumps({"files": files, "artifacts": len(tree.artifacts), "errors": len(tree.errors),
                  "reached": tree.coverage.reached_ratio}))
"""


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    files: int
    detail: str = ""


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS (MB) and stdout of a child process."""
    run = run_measured(argv, env)
    if run.exit_code != 0:
        raise RuntimeError(f"{argv[0]} exited with {run.exit_code}")
    return run.seconds, run.largest_process_mb, run.stdout


def run_ours(image: Path) -> Run:
    home = OUT / "fwtriage-home"
    remove_tree(home)
    env = {**os.environ, "FWTRIAGE_HOME": str(home)}
    seconds, rss, stdout = _timed([sys.executable, "-c", OUR_RUN, str(image)], env)
    result = json.loads(stdout)
    remove_tree(home)
    return Run(seconds, rss, result["files"],
               f"{result['artifacts']} artifacts, {result['errors']} errors, {result['reached']:.1%} reached")


def run_binwalk(image: Path) -> Run:
    target = OUT / "binwalk"
    remove_tree(target)
    target.mkdir(parents=True)
    seconds, rss, _ = _timed(["binwalk", "-Me", "-q", "--run-as=root", "-C", str(target), str(image)])
    files = sum(1 for p in target.rglob("*") if p.is_file() and not p.is_symlink())
    remove_tree(target)
    return Run(seconds, rss, files)


def default_images() -> list[Path]:
    samples = [p for p in (ROOT / "samples" / "out").iterdir() if p.is_file()]
    largest = max(samples, key=lambda p: p.stat().st_size)
    return [largest, default_image()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    images = args.images or default_images()
    header = f"{'image':34} {'MB':>7} {'tool':9} {'s':>7} {'MB/s':>7} {'files':>6} {'files/s':>8} {'RSS MB':>7}"
    print(header)
    print("-" * len(header))
    for image in images:
        size_mb = image.stat().st_size / 1e6
        ours, theirs = run_ours(image), run_binwalk(image)
        for tool, run in (("fwtriage", ours), ("binwalk", theirs)):
            print(f"{image.name[:34]:34} {size_mb:7.1f} {tool:9} {run.seconds:7.2f} {size_mb / run.seconds:7.1f} "
                  f"{run.files:6d} {run.files / run.seconds:8.0f} {run.peak_rss_mb:7.0f}")
        print(f"{'':34} {'':7} ratio fwtriage/binwalk time: {ours.seconds / theirs.seconds:.2f}x; "
              f"files {ours.files} vs {theirs.files}; {ours.detail}")


if __name__ == "__main__":
    main()
