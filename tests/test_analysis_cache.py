"""The analysis cache: the same bytes are never analysed twice with the same analyzer, version and configuration,
and a change of any of those recomputes exactly what it must."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.analyze.registry import analyzers
from pipeline.analyze.runner import analyze_targets, targets_of
from pipeline.config import Detection, Limits, Settings
from pipeline.db import Database
from pipeline.scan import ScanRequest, scan_image
from pipeline.store import LocalBlobStore

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "out"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How many times each shared analyzer instance analysed a blob."""
    counted: Counter = Counter()
    for analyzer in analyzers():
        def counting(target, analyzer=analyzer, original=analyzer.analyze):
            counted[analyzer.name] += 1
            return original(target)

        monkeypatch.setattr(analyzer, "analyze", counting)
    return counted


def test_a_second_submission_of_an_image_performs_no_analysis(tmp_path: Path, calls: Counter) -> None:
    settings = Settings(home=tmp_path / "home", limits=Limits())
    store = LocalBlobStore(settings.store_dir)
    with Database.for_settings(settings) as database:
        reports = []
        for run in ("first", "second"):
            request = ScanRequest(SAMPLES / "linux-rootfs-backdoor.squashfs")
            reports.append(scan_image(request, tmp_path / run, store=store, settings=settings, database=database,
                                      detection=Detection()).report)
            if run == "first":
                first_calls = sum(calls.values())
                calls.clear()
    assert first_calls > 100
    assert sum(calls.values()) == 0
    assert reports[0]["report_digest"] == reports[1]["report_digest"]
    assert reports[0]["findings"] == reports[1]["findings"]


def test_a_changed_version_or_configuration_recomputes_only_that_analyzer(
        tmp_path: Path, sample_trees, samples_store, calls: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = targets_of(sample_trees("linux-rootfs.jffs2"), samples_store)
    with Database(f"sqlite:///{tmp_path / 'cache.db'}") as cache:
        first = analyze_targets(targets, cache=cache)
        assert first.reused == 0 and first.computed == sum(calls.values()) > 0
        by_analyzer = dict(calls)
        calls.clear()
        elf = next(a for a in analyzers() if a.name == "elf")
        yara = next(a for a in analyzers() if a.name == "yara")
        monkeypatch.setattr(type(elf), "version", elf.version + ".next")
        monkeypatch.setattr(type(yara), "config_digest", property(lambda self: "another ruleset"))
        second = analyze_targets(targets, cache=cache)
    assert dict(calls) == {"elf": by_analyzer["elf"], "yara": by_analyzer["yara"]}
    assert second.reused == first.computed - by_analyzer["elf"] - by_analyzer["yara"]
    assert second.findings == first.findings


def test_a_path_sensitive_analyzer_is_recomputed_when_the_blob_lives_elsewhere(
        tmp_path: Path, sample_trees, samples_store, calls: Counter) -> None:
    targets = targets_of(sample_trees("linux-rootfs.jffs2"), samples_store)
    moved = [replace(t, names=tuple(f"moved-{name}" for name in t.names)) for t in targets]
    with Database(f"sqlite:///{tmp_path / 'cache.db'}") as cache:
        analyze_targets(targets, cache=cache)
        calls.clear()
        analyze_targets(moved, cache=cache)
    sensitive = {a.name for a in analyzers() if a.path_sensitive}
    assert calls and set(calls) <= sensitive
