"""The ``fwtriage unpack`` command as a user runs it: exit codes, output, extraction.json."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path


def _fwtriage(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FWTRIAGE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True,
                          env=env, check=False, timeout=120)


def test_unpack_prints_the_tree_and_writes_extraction_json(tmp_path: Path) -> None:
    image = tmp_path / "fw.gz"
    image.write_bytes(gzip.compress(b"#!/bin/sh\n", mtime=0))
    result = _fwtriage("unpack", str(image), "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "fw.gz" in result.stdout and "fw" in result.stdout and "complete" in result.stdout
    extraction = json.loads((tmp_path / "out" / "extraction.json").read_text())
    assert extraction["complete"] is True
    assert [a["path"] for a in extraction["tree"]] == ["fw.gz", "fw.gz › fw"]
    assert extraction["coverage"]["bytes"] == image.stat().st_size


def test_hostile_image_completes_with_exit_0_and_its_reason(tmp_path: Path) -> None:
    image = tmp_path / "empty.bin"
    image.write_bytes(b"")
    result = _fwtriage("unpack", "--no-tree", str(image), "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert result.returncode == 0
    assert "the image is empty" in result.stdout and "incomplete" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_image_is_a_usage_error(tmp_path: Path) -> None:
    result = _fwtriage("unpack", str(tmp_path / "nope.bin"), "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


SAMPLES_OUT = Path(__file__).resolve().parent.parent / "samples" / "out"


def test_detect_prints_verdicts_and_writes_the_detection_json(tmp_path: Path, manifest: dict) -> None:
    images = [SAMPLES_OUT / "linux-rootfs.jffs2", SAMPLES_OUT / "linux-rootfs-clean.squashfs"]
    result = _fwtriage("detect", *map(str, images), "--json", str(tmp_path / "out"), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("BACKDOOR") and "/usr/bin/beacon" in lines[0] and "198.51.100.23" in lines[0]
    assert any(line.startswith("CLEAN") and "linux-rootfs-clean.squashfs" in line for line in lines)
    written = json.loads((tmp_path / "out" / "linux-rootfs.jffs2.detection.json").read_text())
    assert written["verdict"]["label"] == "backdoor"
    assert {e for b in written["behaviours"] for e in b["endpoints"]} == {"198.51.100.23"}


def test_detect_on_a_missing_image_is_a_usage_error(tmp_path: Path) -> None:
    result = _fwtriage("detect", str(tmp_path / "nope.bin"), home=tmp_path / "home")
    assert result.returncode == 2 and "Traceback" not in result.stderr
