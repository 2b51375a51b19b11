"""The ``fwtriage`` commands as a user runs them: exit codes, one-line errors, what is printed and written."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import pipeline.scan
from pipeline.cli import main


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


def test_scan_of_one_image_prints_the_verdict_and_writes_the_reports(tmp_path: Path) -> None:
    image = SAMPLES_OUT / "linux-rootfs.jffs2"
    result = _fwtriage("scan", str(image), "--out", str(tmp_path / "out"), "--case", "OP-5", "--exhibit", "S-9",
                       "--examiner", "E. X.", "--device", "mini phone", "--pdf", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("BACKDOOR") and "/usr/bin/beacon" in first and "198.51.100.23" in first
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"]["label"] == "backdoor"
    assert (report["submission"]["case"], report["submission"]["exhibit"], report["submission"]["device"],
            report["submission"]["examiner"]) == ("OP-5", "S-9", "mini phone", "E. X.")
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "S-9" in (tmp_path / "out" / "report.html").read_text()


def test_scan_of_a_manifest_writes_every_report_an_index_and_a_summary(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,case,exhibit,device,examiner\n"
                        f"{SAMPLES_OUT / 'linux-rootfs-clean.squashfs'},OP-1,S-1,router,\n"
                        f"{SAMPLES_OUT / 'featurephone-sc6531e.pac'},OP-1,S-2,mini phone,\n"
                        f"{SAMPLES_OUT / 'hostile-empty.bin'},OP-1,S-3,,\n")
    result = _fwtriage("scan", str(manifest), "--out", str(tmp_path / "out"), "--examiner", "E. X.",
                       home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.split()[:1] in (["backdoor"], ["incomplete"],
                                                                                 ["clean"])]
    assert [line.split()[0] for line in table] == ["backdoor", "incomplete", "clean"]
    assert f"index: {tmp_path / 'out' / 'index.html'}" in result.stdout
    for folder, exhibit in (("S-1", "S-1"), ("S-2", "S-2"), ("S-3", "S-3")):
        report = json.loads((tmp_path / "out" / folder / "report.json").read_text())
        assert report["submission"]["exhibit"] == exhibit and report["submission"]["examiner"] == "E. X."
    with open(tmp_path / "out" / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["exhibit"] for row in rows] == ["S-2", "S-3", "S-1"]


def test_scan_of_a_folder_triages_every_image_in_it(tmp_path: Path) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    for name in ("linux-rootfs.jffs2", "rootfs.cramfs"):
        shutil.copy(SAMPLES_OUT / name, folder / name)
    result = _fwtriage("scan", str(folder), "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "linux-rootfs.jffs2" / "report.html").exists()
    assert (tmp_path / "out" / "rootfs.cramfs" / "report.json").exists()
    assert (tmp_path / "out" / "index.html").exists()


def test_scan_of_a_hostile_image_exits_0_with_an_incomplete_report(tmp_path: Path) -> None:
    result = _fwtriage("scan", str(SAMPLES_OUT / "hostile-truncated.squashfs"), "--out", str(tmp_path / "out"),
                       home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("INCOMPLETE")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verdict"]["label"] == "incomplete"
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["nope.bin"], "does not exist"),
    (["manifest.csv"], "manifest.csv line 2: .*missing.bin does not exist"),
    (["image.bin", "--unknown-option"], "No such option"),
])
def test_scan_usage_errors_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "manifest.csv").write_text("path\nmissing.bin\n")
    (tmp_path / "image.bin").write_bytes(b"x")
    result = _fwtriage("scan", *[str(tmp_path / a) if not a.startswith("-") else a for a in args],
                       "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert result.returncode == 2
    assert re.search(message, result.stderr)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_internal_failure_exits_1_with_one_line_and_still_writes_the_report(tmp_path: Path, monkeypatch,
                                                                              capsys) -> None:
    def broken_unpacker(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected structure")

    monkeypatch.setattr(pipeline.scan, "unpack", broken_unpacker)  # in this process: no child to isolate it in
    monkeypatch.setenv("FWTRIAGE_ISOLATION", "in-process")
    monkeypatch.setenv("FWTRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "argv", ["fwtriage", "scan", str(SAMPLES_OUT / "rootfs.cramfs"), "--out",
                                      str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "internal error in the unpack stage: RuntimeError: unexpected structure" in err
    assert "Traceback" not in err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["verdict"]["label"] == "incomplete"


def test_names_from_the_image_are_printed_literally_never_as_markup(tmp_path: Path) -> None:
    image = tmp_path / "dump[bold].tar"
    with tarfile.open(image, "w") as archive:
        member = tarfile.TarInfo("[/]evil[red]/x.sh")
        payload = b"#!/bin/sh\necho [/]\n"
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    for command in (["unpack", str(image)], ["scan", str(image)]):
        result = _fwtriage(*command, "--out", str(tmp_path / command[0]), home=tmp_path / "home")
        assert result.returncode == 0, result.stderr
        assert "dump[bold].tar" in result.stdout
    assert "[/]evil[red]" in _fwtriage("unpack", str(image), "--out", str(tmp_path / "again"),
                                       home=tmp_path / "home").stdout
