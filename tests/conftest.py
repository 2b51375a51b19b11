"""Shared fixtures: an isolated fwtriage home per test, and a one-call unpack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import Detection, Limits, Settings
from pipeline.ingest import CaseMetadata
from pipeline.model import ExtractionTree
from pipeline.scan import ScanOutcome, ScanRequest, scan_image
from pipeline.store import LocalBlobStore
from pipeline.triage import Triage, triage_tree
from pipeline.unpack import unpack

Unpacker = Callable[..., ExtractionTree]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", limits=Limits())


@pytest.fixture
def store(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(settings.store_dir)


@pytest.fixture
def run_unpack(settings: Settings, store: LocalBlobStore) -> Unpacker:
    """Unpack a path with the test's settings; ``limits=`` overrides the quotas."""

    def run(image: Path, limits: Limits | None = None) -> ExtractionTree:
        used = settings if limits is None else Settings(home=settings.home, limits=limits)
        return unpack(image, store=store, settings=used)

    return run


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="session")
def manifest() -> dict:
    """The samples' manifest; the samples are built first if they are missing (``make samples``)."""
    manifest_path = SAMPLES / "manifest.json"
    samples = json.loads(manifest_path.read_text())["samples"] if manifest_path.exists() else []
    if not samples or not all((SAMPLES / "out" / s["file"]).exists() for s in samples):
        subprocess.run([sys.executable, "-m", "samples.build"], cwd=SAMPLES.parent, check=True)
        samples = json.loads(manifest_path.read_text())["samples"]
    return {s["file"]: s for s in samples}


@pytest.fixture(scope="session")
def samples_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One fwtriage home shared by every sample of the session."""
    return Settings(home=tmp_path_factory.mktemp("samples-home"), limits=Limits())


@pytest.fixture(scope="session")
def samples_store(samples_settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(samples_settings.store_dir)


@pytest.fixture(scope="session")
def sample_trees(samples_settings: Settings, samples_store: LocalBlobStore) -> Callable[[str], ExtractionTree]:
    """Unpack a bundled sample once per test session (all samples share one store)."""
    trees: dict[str, ExtractionTree] = {}

    def tree_of(file: str) -> ExtractionTree:
        if file not in trees:
            trees[file] = unpack(SAMPLES / "out" / file, store=samples_store, settings=samples_settings)
        return trees[file]

    return tree_of


@pytest.fixture(scope="session")
def sample_triages(sample_trees: Callable[[str], ExtractionTree], samples_store: LocalBlobStore
                   ) -> Callable[[str], Triage]:
    """Analyse and correlate a bundled sample once per test session."""
    results: dict[str, Triage] = {}

    def triage_of(file: str) -> Triage:
        if file not in results:
            results[file] = triage_tree(sample_trees(file), samples_store, Detection())
        return results[file]

    return triage_of


@pytest.fixture(scope="session")
def sample_scans(samples_settings: Settings, samples_store: LocalBlobStore, tmp_path_factory: pytest.TempPathFactory
                 ) -> Callable[[str], ScanOutcome]:
    """``fwtriage scan`` of a bundled sample, once per test session: its report files under a session folder."""
    reports = tmp_path_factory.mktemp("reports")
    outcomes: dict[str, ScanOutcome] = {}

    def scan_of(file: str) -> ScanOutcome:
        if file not in outcomes:
            request = ScanRequest(SAMPLES / "out" / file, CaseMetadata(case="CASE-TEST", exhibit=f"SEAL-{file}",
                                                                      device="test device", examiner="J. Doe"))
            outcomes[file] = scan_image(request, reports / file, store=samples_store, settings=samples_settings,
                                        detection=Detection())
        return outcomes[file]

    return scan_of
