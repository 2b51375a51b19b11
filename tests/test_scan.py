"""``scan_image``: every sample's report follows the contract, the result part is reproducible, and an image
that breaks a stage still gets an honest report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import pipeline.scan
from pipeline.config import Detection, Isolation, Limits, Settings
from pipeline.db import Database
from pipeline.ingest import CaseMetadata, ImageUnreadable
from pipeline.report.build import DIGESTED, report_digest
from pipeline.report.schema import schema_errors
from pipeline.scan import ScanRequest, scan_image
from pipeline.store import LocalBlobStore

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "out"
MANIFEST = json.loads((SAMPLES.parent / "manifest.json").read_text())["samples"]
ALL_SAMPLES = [s["file"] for s in MANIFEST]
HOSTILE_INCOMPLETE = [s["file"] for s in MANIFEST
                      if s["file"].startswith("hostile-") and s["expect"]["verdict"] == "incomplete"]


@pytest.mark.parametrize("sample", ALL_SAMPLES)
def test_every_sample_report_follows_the_schema_and_the_manifest(sample: str, sample_scans, manifest) -> None:
    outcome = sample_scans(sample)
    written = json.loads((outcome.out_dir / "report.json").read_text())
    assert schema_errors(written) == []
    assert written == outcome.report
    assert written["verdict"]["label"] == manifest[sample]["expect"]["verdict"]
    assert written["report_digest"] == report_digest(written)
    assert (outcome.out_dir / "report.html").stat().st_size > 0
    assert outcome.internal_errors == []


def test_the_report_records_the_case_and_the_custody_of_the_original(sample_scans) -> None:
    outcome = sample_scans("linux-rootfs-backdoor.squashfs")
    report = outcome.report
    data = (SAMPLES / "linux-rootfs-backdoor.squashfs").read_bytes()
    assert report["submission"]["md5"] == hashlib.md5(data).hexdigest()
    assert report["submission"]["sha1"] == hashlib.sha1(data).hexdigest()
    assert report["submission"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["submission"]["size"] == len(data)
    assert (report["submission"]["case"], report["submission"]["examiner"]) == ("CASE-TEST", "J. Doe")
    stored = report["custody"]["stored_copy"]
    assert stored["intact"] is True
    assert stored["sha256"] == report["submission"]["sha256"]
    assert report["extraction"]["tree"][0]["path"] == "linux-rootfs-backdoor.squashfs"


def _scan_in_fresh_home(sample: str, home: Path, out: Path, metadata: CaseMetadata) -> dict:
    settings = Settings(home=home, limits=Limits())
    outcome = scan_image(ScanRequest(SAMPLES / sample, metadata), out, store=LocalBlobStore(settings.store_dir),
                         settings=settings, detection=Detection())
    return outcome.report


@pytest.mark.parametrize("sample", ["flash-dump.bin", "android-ota-update.zip", "hostile-zip-bomb.zip"])
def test_two_scans_of_one_image_give_the_same_result_and_digest(sample: str, tmp_path: Path) -> None:
    first = _scan_in_fresh_home(sample, tmp_path / "a", tmp_path / "ra", CaseMetadata(case="A"))
    second = _scan_in_fresh_home(sample, tmp_path / "b", tmp_path / "rb", CaseMetadata(case="B", exhibit="2"))
    assert first["report_digest"] == second["report_digest"]
    for key in DIGESTED:
        assert first[key] == second[key], key
    assert first["report"]["id"] != second["report"]["id"]  # the record part is per submission
    assert first["findings"] == sorted(first["findings"], key=lambda f: (f["artifact"]["path"], f["rule"],
                                                                         (f["endpoint"] or {}).get("value", ""),
                                                                         f["title"]))


@pytest.mark.parametrize("sample", HOSTILE_INCOMPLETE)
def test_a_hostile_image_gives_an_incomplete_report_that_says_why(sample: str, sample_scans, manifest) -> None:
    report = sample_scans(sample).report
    assert report["verdict"]["label"] == "incomplete"
    reasons = report["extraction"]["errors"] + report["analysis"]["issues"]
    assert reasons, "an incomplete report must name what was not covered"
    assert all(len(r["error"]) > 10 for r in reasons)
    first = reasons[0]["error"]
    assert first in report["verdict"]["summary"]


def test_a_stage_that_breaks_still_yields_an_incomplete_report(tmp_path: Path, monkeypatch) -> None:
    def broken_unpacker(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected structure")

    monkeypatch.setattr(pipeline.scan, "unpack", broken_unpacker)  # in this process: no child to isolate it in
    settings = Settings(home=tmp_path / "home", limits=Limits(), isolation=Isolation(mode="in-process"))
    outcome = scan_image(ScanRequest(SAMPLES / "linux-rootfs-backdoor.squashfs"), tmp_path / "out",
                         store=LocalBlobStore(settings.store_dir), settings=settings, detection=Detection())
    assert outcome.internal_errors == ["internal error in the unpack stage: RuntimeError: unexpected structure"]
    assert outcome.report["verdict"]["label"] == "incomplete"
    assert "unexpected structure" in outcome.report["verdict"]["summary"]
    assert outcome.report["extraction"]["complete"] is False
    assert schema_errors(outcome.report) == []
    assert (tmp_path / "out" / "report.html").exists()


def test_an_unreadable_image_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", limits=Limits())
    with Database.for_settings(settings) as database:
        with pytest.raises(ImageUnreadable, match=r"missing\.bin"):
            scan_image(ScanRequest(tmp_path / "missing.bin"), tmp_path / "out",
                       store=LocalBlobStore(settings.store_dir), settings=settings, database=database,
                       detection=Detection())
        assert database.list_submissions() == []
    assert not (tmp_path / "out").exists()


def test_the_submission_is_recorded_through_its_states_to_done(tmp_path: Path, monkeypatch) -> None:
    settings = Settings(home=tmp_path / "home", limits=Limits())
    seen: list[str] = []
    with Database.for_settings(settings) as database:
        original_set_state = database.set_state

        def spy(submission_id: str, state: str) -> object:
            seen.append(str(state))
            return original_set_state(submission_id, state)

        monkeypatch.setattr(database, "set_state", spy)
        outcome = scan_image(ScanRequest(SAMPLES / "flash-dump.bin", CaseMetadata(case="OP-3", exhibit="S-4")),
                             tmp_path / "out", store=LocalBlobStore(settings.store_dir), settings=settings,
                             database=database, detection=Detection())
        record = database.get(outcome.submission.id)
    assert seen == ["unpacking", "analyzing", "reporting"]
    assert (record.state, record.verdict, record.score) == ("done", "backdoor", outcome.verdict["score"])
    assert (record.case, record.exhibit, record.sha256) == ("OP-3", "S-4", outcome.submission.sha256)
    assert record.report_digest == outcome.report["report_digest"]
    assert Path(record.report_dir) == (tmp_path / "out").absolute()
    assert record.progress_done == record.progress_total > 0


def test_a_report_that_cannot_be_written_fails_the_submission_with_its_reason(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", limits=Limits())
    (tmp_path / "out").write_text("a file where the report folder should be")
    with Database.for_settings(settings) as database:
        with pytest.raises(FileExistsError):
            scan_image(ScanRequest(SAMPLES / "rootfs.cramfs"), tmp_path / "out",
                       store=LocalBlobStore(settings.store_dir), settings=settings, database=database,
                       detection=Detection())
        [record] = database.list_submissions()
    assert record.state == "failed"
    assert record.failure.startswith("no report could be written: FileExistsError")
