"""The demo batch: a lab manifest for every bundled sample, and the check of a batch's verdicts against it.

``python -m samples.demo manifest OUT.csv`` writes the manifest ``fwtriage
scan`` reads (one exhibit per sample, the sample's family as its device);
``python -m samples.demo check SUMMARY.csv`` compares the verdicts of the
batch's summary.csv with the verdicts the samples were built to produce, and
exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEVICES = {"linux": "router / embedded Linux", "android": "Android handset", "featurephone": "feature phone",
           "hostile": "hostile test image", "control": "clean control image"}


def _samples() -> list[dict]:
    return json.loads((ROOT / "manifest.json").read_text())["samples"]


def write_manifest(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "case", "exhibit", "device", "examiner"])
        for number, sample in enumerate(_samples(), 1):
            writer.writerow([ROOT / "out" / sample["file"], "DEMO-2026-001", f"SEAL-{number:03d}",
                             DEVICES.get(sample["category"], sample["category"]), "demo examiner"])


def check_summary(summary: Path) -> int:
    expected = {s["file"]: s["expect"]["verdict"] for s in _samples()}
    with open(summary, newline="", encoding="utf-8") as handle:
        got = {row["filename"]: row["verdict"] for row in csv.DictReader(handle)}
    wrong = sorted(f"{name}: expected {verdict}, got {got.get(name, 'no report')}"
                   for name, verdict in expected.items() if got.get(name) != verdict)
    for line in wrong:
        print(f"MISMATCH {line}")
    print(f"{len(expected) - len(wrong)} of {len(expected)} verdicts match the samples' manifest")
    return 1 if wrong else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("manifest", "check"))
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    if args.action == "manifest":
        write_manifest(args.path)
    else:
        sys.exit(check_summary(args.path))


if __name__ == "__main__":
    main()
