"""Run every atheris harness for a time budget; exit non-zero if any of them crashed.

Usage: ``python -m fuzz.run [--seconds N] [TARGET ...]`` from the repository
root (atheris installed). Each target starts from its seed corpus (the
built seeds and, when ``samples/out`` exists, the samples) plus what earlier
runs kept in ``fuzz/corpus/<target>/``; a crashing input is saved in
``fuzz/crashes/<target>/`` and libFuzzer's log in ``fuzz/logs/<target>.log``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from fuzz import seeds
from fuzz.targets import TARGETS
from pipeline.unpack.carve import BINWALK_MIN_SIZE

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_LEN = 256 * 1024  # larger samples are cut to this: deep enough for headers and tables, fast to mutate
# the carver's inputs stay below binwalk's threshold: binwalk (not ours) costs ~0.1 s an input, our magic
# scan and every format's chunk_length then run thousands of times a second
TARGET_MAX_LEN = {"carve": BINWALK_MIN_SIZE - 1}
INPUT_TIMEOUT = 60  # seconds for one input: beyond the targets' own deadline, so a hang is a crash
RSS_LIMIT_MB = 3072


def write_seeds(target: str, directory: Path) -> int:
    """The target's seed corpus, one file per seed named by its hash; returns how many."""
    corpus = [seed.data for seed in TARGETS[target].seeds()] + seeds.sample_seeds(target)
    for data in corpus:
        (directory / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
    return len(corpus)


def fuzz(target: str, seconds: int) -> bool:
    """Fuzz one target for ``seconds``; True when it ran its budget without a crash."""
    corpus, crashes, logs = HERE / "corpus" / target, HERE / "crashes" / target, HERE / "logs"
    for directory in (corpus, crashes, logs):
        directory.mkdir(parents=True, exist_ok=True)
    before = set(crashes.iterdir())
    with tempfile.TemporaryDirectory(prefix=f"fuzz-seeds-{target}-") as seed_dir:
        count = write_seeds(target, Path(seed_dir))
        command = [sys.executable, "-m", f"fuzz.fuzz_{target}", str(corpus), seed_dir,
                   f"-max_total_time={seconds}", f"-artifact_prefix={crashes}/",
                   f"-max_len={TARGET_MAX_LEN.get(target, MAX_LEN)}", f"-timeout={INPUT_TIMEOUT}",
                   f"-rss_limit_mb={RSS_LIMIT_MB}", "-print_final_stats=1"]
        log = logs / f"{target}.log"
        with open(log, "wb") as output:
            result = subprocess.run(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, check=False)
    found = sorted(set(crashes.iterdir()) - before)
    executions = next((line.rsplit(":", 1)[1].strip() for line in log.read_text(errors="replace").splitlines()
                       if line.startswith("stat::number_of_executed_units")), "?")
    status = "ok" if result.returncode == 0 and not found else f"CRASH (exit {result.returncode})"
    print(f"{target:8} {status:20} {executions:>9} inputs in {seconds} s from {count} seeds; log {log}")
    for path in found:
        print(f"         saved {path}")
    return status == "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="time budget per target (default 60)")
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"targets to run (default: all of {', '.join(TARGETS)})")
    args = parser.parse_args(argv)
    if unknown := set(args.targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    results = [fuzz(target, args.seconds) for target in args.targets or TARGETS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
