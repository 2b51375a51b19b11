"""Analysis speed over an extracted rootfs, and YARA against the ``yara`` command-line tool.

Prints, in one run on the same tree:

- the whole analysis (every analyzer, the thread pool of ``analyze_tree``):
  files/s, MB/s and MB/s per core, and the time per analyzer (each alone);
- YARA alone, our ``yara`` analyzer (``match(filepath=)`` with per-file
  externals) against ``yara -r -N`` (Debian's CLI) with the same compiled
  sources over the same files (hard links to the analysed blobs in one
  folder), both with as many threads as cores; the ratio is ours / CLI;
- reuse: the one-off set-up that the registry's shared instances do once
  per process (rules compiled; suffix list, GeoIP and phone data loaded),
  timed cold, against the analyzer's cost per file.

Tree: the >= 100 MB rootfs of real Debian armhf binaries (built once into
samples/cache/bench/, as for bench/unpack.py), or the images given.
Run: ``make bench`` (or ``.venv/bin/python bench/analyze.py [IMAGE ...]``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import default_image, yara_cli_argv  # noqa: E402
from pipeline.analyze.base import Analyzer, Target  # noqa: E402
from pipeline.analyze.enrich import Enrichment  # noqa: E402
from pipeline.analyze.registry import analyzer_classes  # noqa: E402
from pipeline.analyze.ruleset import ruleset  # noqa: E402
from pipeline.analyze.runner import analyze_targets, targets_of  # noqa: E402
from pipeline.config import Detection, Settings  # noqa: E402
from pipeline.store import LocalBlobStore  # noqa: E402
from pipeline.unpack import unpack  # noqa: E402

T = TypeVar("T")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(function: Callable[..., T], *args: Any) -> tuple[float, T]:
    """Wall seconds and result of one call."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def bench_whole(targets: list[Target], cores: int) -> None:
    megabytes = sum(t.size for t in targets) / 1e6
    seconds, analysis = _timed(analyze_targets, targets)
    findings = sum(len(f) for f in analysis.findings.values())
    print(f"whole analysis   {len(targets):6d} files {megabytes:8.1f} MB {seconds:7.2f} s "
          f"{len(targets) / seconds:8.0f} files/s {megabytes / seconds:7.1f} MB/s "
          f"({megabytes / seconds / cores:.1f} MB/s per core, {cores} cores); {findings} findings, "
          f"{len(analysis.issues)} issues; peak RSS {_peak_rss_mb():.0f} MB")


def bench_each(targets: list[Target]) -> dict[str, Analyzer]:
    """Each analyzer alone on one thread: files it took, MB/s, cost per file."""
    instances = {}
    print(f"\n{'analyzer':10} {'files':>6} {'MB':>8} {'s (1 thread)':>13} {'MB/s':>7} {'ms/file':>8}")
    for cls in analyzer_classes():
        instances[cls.name] = instance = cls()
        taken = [t for t in targets if instance.accepts(t)]
        seconds, _ = _timed(analyze_targets, taken, [instance], None, 1)
        megabytes = sum(t.size for t in taken) / 1e6
        print(f"{cls.name:10} {len(taken):6d} {megabytes:8.1f} {seconds:13.2f} "
              f"{megabytes / max(seconds, 1e-9):7.1f} {seconds / max(len(taken), 1) * 1e3:8.2f}")
    return instances


def bench_reuse(targets: list[Target], instances: dict[str, Analyzer]) -> None:
    """What loading once per process saves: each heavy set-up, timed cold, against its analyzer's cost per file."""
    detection = Detection.from_env()
    loads = {
        "yara": ("compiling the ruleset", lambda: ruleset.__wrapped__(detection)),
        "iocs": ("loading the suffix list, GeoIP and phone data",
                 lambda: _warm(Enrichment(detection.geoip_db))),
    }
    print("\nreuse (set-up done once per process, by the registry's shared instances):")
    for name, (what, load) in loads.items():
        setup, _ = _timed(load)
        taken = [t for t in targets if instances[name].accepts(t)][:200]
        seconds, _ = _timed(analyze_targets, taken, [instances[name]], None, 1)
        per_file = seconds / max(len(taken), 1)
        print(f"  {name}: {what} takes {setup:.2f} s; a file takes {per_file * 1e3:.2f} ms: doing it per file "
              f"would make {name} {(setup + per_file) / per_file:.0f}x slower")


def _warm(enrichment: Enrichment) -> Enrichment:
    """Force the lazy loads: one lookup of each kind."""
    enrichment.country_of_ip("8.8.8.8")
    enrichment.country_of_domain("example.cn")
    enrichment.country_of_phone("+8613800138000")
    return enrichment


def bench_yara(targets: list[Target], yara_analyzer: Analyzer, cores: int) -> None:
    """Our YARA scan against the CLI with the same sources over the same files."""
    cli = shutil.which("yara")
    if cli is None:
        print("\nyara CLI not found (apt-get install yara): YARA comparison skipped")
        return
    taken = [t for t in targets if yara_analyzer.accepts(t)]
    megabytes = sum(t.size for t in taken) / 1e6
    with tempfile.TemporaryDirectory(prefix="fwtriage-bench-") as folder:
        for target in taken:
            os.link(target.path, Path(folder) / target.sha256)
        ours, _ = _timed(analyze_targets, taken, [yara_analyzer], None, cores)
        start = time.perf_counter()
        completed = subprocess.run(yara_cli_argv(cli, cores, Path(folder)), capture_output=True, check=False)
        theirs = time.perf_counter() - start
    hits = len(completed.stdout.splitlines())
    status = "" if completed.returncode == 0 else f" (exit {completed.returncode}: {completed.stderr[:200]!r})"
    print(f"\nYARA over {len(taken)} files, {megabytes:.1f} MB, {cores} threads each:")
    print(f"  fwtriage yara analyzer {ours:6.2f} s {megabytes / ours:7.1f} MB/s")
    print(f"  yara CLI (-r -N)       {theirs:6.2f} s {megabytes / theirs:7.1f} MB/s, {hits} matches{status}")
    print(f"  ratio fwtriage / CLI: {ours / theirs:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    for image in args.images or [default_image()]:
        with tempfile.TemporaryDirectory(prefix="fwtriage-bench-") as home:
            settings = Settings(home=Path(home))
            store = LocalBlobStore(settings.store_dir)
            tree = unpack(image, store=store, settings=settings)
            targets = targets_of(tree, store)
            print(f"== {image.name}: {len(tree.artifacts)} artifacts, {len(targets)} unique blobs")
            bench_whole(targets, cores)
            instances = bench_each(targets)
            bench_reuse(targets, instances)
            bench_yara(targets, instances["yara"], cores)


if __name__ == "__main__":
    main()
