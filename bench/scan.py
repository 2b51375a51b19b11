"""End to end: ``fwtriage scan`` against ``binwalk -Me`` then ``yara -r`` with the same rules, on the same image.

Prints, per image and per run (``--repeat N``, then the medians):

- ``fwtriage scan IMAGE --out DIR`` with a fresh ``FWTRIAGE_HOME`` (cold
  store and database): wall and CPU seconds, peak RSS, and what it did that
  the bare chain does not (from its report.json: artifacts, unique blobs
  analysed, findings, behaviours, endpoints, verdict);
- the bare chain: Debian's ``binwalk -Me`` (recursive extraction with its
  external extractors) into a temporary folder, then Debian's
  ``yara -r -N -p <cores>`` with the sources fwtriage compiles over what
  binwalk extracted; wall, CPU and peak RSS of each part, the files binwalk
  extracted, the files it scanned for signatures (its CSV log: binwalk
  recurses into what it carves, not into each file of an extracted file
  system) and the matches yara printed, beside the findings of fwtriage's
  own YARA analyzer;
- the ratio fwtriage / chain against the target (at most 1.5x) and the peak
  RSS of the fwtriage run against 500 MB.

Each command runs as a child process. Its peak RSS is what its whole process
tree held at once: the largest sampled sum of RSS over the child and the
tools it started (fwtriage runs unsquashfs under bubblewrap, binwalk runs its
extractors), or, if a sample missed the moment, ``wait4``'s largest single
process; the fwtriage process's own peak and the heaviest tool are printed
beside it (see bench/common.py for why ``wait4`` alone cannot tell them
apart). CPU seconds include every descendant. The image is read once before
the first run so neither side pays for a cold page cache.

Image: the >= 100 MB rootfs of real Debian armhf binaries (built once into
samples/cache/bench/, as for bench/unpack.py), or the images given.
Run: ``make bench`` (or ``.venv/bin/python bench/scan.py [--repeat N] [IMAGE ...]``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ChildRun, default_image, remove_tree, run_measured, yara_cli_argv  # noqa: E402

TARGET_RATIO = 1.5
TARGET_RSS_MB = 500
FWTRIAGE = Path(sys.executable).with_name("fwtriage")


@dataclass
class FwtriageRun:
    """One ``fwtriage scan``: the measured process and the report it wrote."""

    run: ChildRun
    report: dict[str, Any]

    def summary(self) -> str:
        extraction, analysis, verdict = self.report["extraction"], self.report["analysis"], self.report["verdict"]
        findings = self.report["findings"]
        yara = sum(1 for finding in findings if finding["analyzer"] == "yara")
        return (f"{extraction['artifacts']} artifacts ({extraction['unique_blobs']} unique blobs, "
                f"{len(extraction['errors'])} extraction errors), {analysis['files']} blobs analysed "
                f"({analysis['bytes'] / 1e6:.1f} MB), {len(findings)} findings ({yara} by YARA rules), "
                f"{len(self.report['behaviours'])} behaviours, {len(self.report['endpoints'])} endpoints, "
                f"verdict {verdict['label']} (score {verdict['score']}); report.json + report.html")


@dataclass
class ChainRun:
    """One bare chain: binwalk's extraction, then yara over what it extracted."""

    binwalk: ChildRun
    yara: ChildRun
    scanned_files: int
    extracted_files: int
    yara_matches: int

    @property
    def seconds(self) -> float:
        return self.binwalk.seconds + self.yara.seconds

    @property
    def cpu_seconds(self) -> float:
        return self.binwalk.cpu_seconds + self.yara.cpu_seconds

    @property
    def peak_rss_mb(self) -> float:
        """The two parts run one after the other: the chain needs the larger of their peaks."""
        return max(self.binwalk.peak_rss_mb, self.yara.peak_rss_mb)


def _tail(run: ChildRun) -> str:
    lines = run.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else "no message"


def run_fwtriage(image: Path, work: Path) -> FwtriageRun:
    """``fwtriage scan`` with its own empty home: nothing cached from an earlier run."""
    out = work / "report"
    env = {**os.environ, "FWTRIAGE_HOME": str(work / "home")}
    run = run_measured([str(FWTRIAGE), "scan", str(image), "--out", str(out)], env)
    report_path = out / "report.json"
    if not report_path.exists():  # exit 1 with a report means internal errors, which the summary shows
        raise RuntimeError(f"fwtriage scan exited with {run.exit_code} and wrote no report: {_tail(run)}")
    return FwtriageRun(run, json.loads(report_path.read_text(encoding="utf-8")))


def run_chain(image: Path, work: Path, yara: str, cores: int) -> ChainRun:
    """``binwalk -Me`` into ``work/binwalk``, then ``yara -r -N`` over that folder."""
    extracted, log = work / "binwalk", work / "binwalk.csv"
    extracted.mkdir()
    binwalk = run_measured(["binwalk", "-Me", "-q", "--run-as=root", "--csv", f"--log={log}", "-C", str(extracted),
                            str(image)])
    if binwalk.exit_code != 0:
        raise RuntimeError(f"binwalk exited with {binwalk.exit_code}: {_tail(binwalk)}")
    files = sum(1 for p in extracted.rglob("*") if p.is_file() and not p.is_symlink())
    scan = run_measured(yara_cli_argv(yara, cores, extracted))
    if scan.exit_code != 0:
        raise RuntimeError(f"yara exited with {scan.exit_code}: {_tail(scan)}")
    return ChainRun(binwalk, scan, _scanned_files(log), files, len(scan.stdout.splitlines()))


def _scanned_files(log: Path) -> int:
    """Files binwalk scanned: its CSV log opens each with a ``FILE,MD5SUM,TIMESTAMP`` header row."""
    with log.open(newline="") as rows:
        return sum(1 for row in csv.reader(rows) if row == ["FILE", "MD5SUM", "TIMESTAMP"])


def _read_once(image: Path) -> None:
    """Bring the image into the page cache, so the first side timed does not pay a cold read the second does not."""
    with image.open("rb") as stream:
        while stream.read(1 << 20):
            pass


def _row(run_label: str, tool: str, seconds: float, cpu_seconds: float, rss_mb: float, found: str) -> str:
    return f"{run_label:>4} {tool:16} {seconds:8.2f} {cpu_seconds:8.2f} {rss_mb:7.0f}  {found}"


def _against_targets(ratio: float, rss_mb: float) -> str:
    def met(ok: bool) -> str:
        return "met" if ok else "MISSED"

    return (f"ratio fwtriage / bare chain {ratio:.2f}x (target <= {TARGET_RATIO}x: {met(ratio <= TARGET_RATIO)}); "
            f"fwtriage peak RSS {rss_mb:.0f} MB (target < {TARGET_RSS_MB} MB: {met(rss_mb < TARGET_RSS_MB)})")


def print_run(label: str, ours: FwtriageRun, chain: ChainRun) -> None:
    print(_row(label, "fwtriage scan", ours.run.seconds, ours.run.cpu_seconds, ours.run.peak_rss_mb,
               ours.summary() + ("" if ours.run.exit_code == 0 else f"; exit {ours.run.exit_code}: "
                                 f"{_tail(ours.run)}")))
    print(f"{'':4} {'':16} memory: {ours.run.memory_note()}")
    print(_row(label, "binwalk -Me", chain.binwalk.seconds, chain.binwalk.cpu_seconds, chain.binwalk.peak_rss_mb,
               f"{chain.extracted_files} files extracted, {chain.scanned_files} scanned for signatures"))
    print(_row(label, "yara -r -N", chain.yara.seconds, chain.yara.cpu_seconds, chain.yara.peak_rss_mb,
               f"{chain.yara_matches} matches"))
    print(_row(label, "bare chain", chain.seconds, chain.cpu_seconds, chain.peak_rss_mb, "binwalk, then yara"))
    print(f"{'':4} {_against_targets(ours.run.seconds / chain.seconds, ours.run.peak_rss_mb)}")


def print_medians(runs: list[tuple[FwtriageRun, ChainRun]]) -> None:
    ours = statistics.median(o.run.seconds for o, _ in runs)
    chain = statistics.median(c.seconds for _, c in runs)
    ratio = statistics.median(o.run.seconds / c.seconds for o, c in runs)
    rss = statistics.median(o.run.peak_rss_mb for o, _ in runs)
    print(f"median of {len(runs)}: fwtriage {ours:.2f} s, bare chain {chain:.2f} s "
          f"(binwalk {statistics.median(c.binwalk.seconds for _, c in runs):.2f} s + "
          f"yara {statistics.median(c.yara.seconds for _, c in runs):.2f} s); {_against_targets(ratio, rss)}")


def bench_image(image: Path, repeat: int, yara: str, cores: int) -> None:
    print(f"== {image.name}: {image.stat().st_size / 1e6:.1f} MB, {cores} cores")
    print(f"{'run':>4} {'tool':16} {'s':>8} {'cpu s':>8} {'RSS MB':>7}  found")
    _read_once(image)
    runs = []
    for index in range(1, repeat + 1):
        work = Path(tempfile.mkdtemp(prefix="fwtriage-bench-scan-"))
        try:
            runs.append((run_fwtriage(image, work), run_chain(image, work, yara, cores)))
        finally:
            remove_tree(work)
        print_run(str(index), *runs[-1])
    if repeat > 1:
        print_medians(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="runs of both sides per image (default 1)")
    args = parser.parse_args()
    yara = shutil.which("yara")
    if yara is None or shutil.which("binwalk") is None or not FWTRIAGE.exists():
        parser.error(f"needs binwalk and yara (Debian packages) and {FWTRIAGE}: run make setup")
    cores = os.cpu_count() or 1
    for image in args.images or [default_image()]:
        bench_image(image, max(args.repeat, 1), yara, cores)


if __name__ == "__main__":
    main()
