"""One image's whole triage, in-process: ingest → unpack → analyze → correlate → report.

Why a report even when a stage breaks: a lab must never lose a submission.
The image is hashed and stored first; if the unpacker or an analyzer then
fails in a way nobody anticipated (a bug, a pathological input), the failure
becomes an issue of the extraction, the verdict becomes ``incomplete`` and
the report says why. Only an image that cannot be read at all is refused.
Celery tasks (distributed deployment) call the same stage functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline.analyze.ruleset import ruleset
from pipeline.analyze.runner import Analysis, AnalysisIssue, analyze_tree
from pipeline.config import Detection, Settings
from pipeline.ingest import CaseMetadata, ingest, verify_custody
from pipeline.model import Artifact, ArtifactKind, ExtractionIssue, ExtractionTree, IssueKind, Submission
from pipeline.report.build import build_report
from pipeline.report.html import render_html
from pipeline.report.pdf import write_pdf
from pipeline.report.schema import validate_report
from pipeline.store import BlobStore
from pipeline.triage import Triage, correlate_analysis
from pipeline.unpack import unpack


class Stage(StrEnum):
    INGEST = "ingest"
    UNPACK = "unpack"
    ANALYZE = "analyze"
    CORRELATE = "correlate"
    REPORT = "report"


# (stage, units done, units in all or None when unknown, what is being worked on)
StageProgress = Callable[[Stage, int, int | None, str], None]


def _quiet(stage: Stage, done: int, total: int | None, detail: str) -> None:
    """The progress callback when nobody watches."""


@dataclass(frozen=True)
class ScanRequest:
    """One image to triage and what the lab says about it."""

    image: Path
    metadata: CaseMetadata = field(default_factory=CaseMetadata)


@dataclass
class ScanOutcome:
    """A finished scan: the report written, where, and any internal failure a stage hit on the way."""

    submission: Submission
    report: dict[str, Any]
    out_dir: Path
    files: list[Path]
    internal_errors: list[str]

    @property
    def verdict(self) -> dict[str, Any]:
        return self.report["verdict"]


def _internal(stage: Stage, exc: Exception) -> str:
    return f"internal error in the {stage} stage: {type(exc).__name__}: {exc}"


def _tree_after_failure(submission: Submission, error: str) -> ExtractionTree:
    """The tree of an image the unpacker broke on: the image alone, and the reason it was not covered."""
    root = Artifact(0, None, (submission.filename,), submission.sha256, submission.size, ArtifactKind.IMAGE, 0)
    issue = ExtractionIssue(submission.filename, error, IssueKind.FAILURE)
    return ExtractionTree(submission.sha256, [root], [issue])


def _unpack(submission: Submission, store: BlobStore, settings: Settings, progress: StageProgress,
            failures: list[str]) -> ExtractionTree:
    def advance(artifact: Artifact, budget: Any) -> None:
        progress(Stage.UNPACK, budget.written_files, None, artifact.lineage_path)

    try:
        return unpack(store.path(submission.sha256), store=store, settings=settings, progress=advance,
                      name=submission.filename, stored_sha256=submission.sha256)
    except Exception as exc:  # the submission must still get its report
        failures.append(_internal(Stage.UNPACK, exc))
        return _tree_after_failure(submission, failures[-1])


def _analyze(tree: ExtractionTree, store: BlobStore, progress: StageProgress, failures: list[str]) -> Analysis:
    try:
        return analyze_tree(tree, store, progress=lambda done, total: progress(Stage.ANALYZE, done, total, ""))
    except Exception as exc:
        failures.append(_internal(Stage.ANALYZE, exc))
        return Analysis(issues=[AnalysisIssue(tree.image_sha256, tree.root.lineage_path, "all", failures[-1])])


def write_report_files(report: dict[str, Any], out_dir: Path, pdf: bool = False) -> list[Path]:
    """report.json, report.html and, when asked, report.pdf in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    files = [json_path, html_path]
    if pdf:
        files.append(write_pdf(report, out_dir / "report.pdf"))
    return files


def scan_image(request: ScanRequest, out_dir: Path, *, store: BlobStore, settings: Settings,
               detection: Detection | None = None, progress: StageProgress | None = None,
               pdf: bool = False, lab: str | None = None) -> ScanOutcome:
    """Triage one image and write its report; raises OSError only if the image cannot be read."""
    detection = detection or Detection.from_env()
    progress = progress or _quiet
    failures: list[str] = []
    progress(Stage.INGEST, 0, None, request.image.name)
    submission = ingest(request.image, store, request.metadata)
    tree = _unpack(submission, store, settings, progress, failures)
    analysis = _analyze(tree, store, progress, failures)
    progress(Stage.CORRELATE, 0, None, "")
    correlation = correlate_analysis(tree, analysis, detection)
    progress(Stage.REPORT, 0, None, "")
    report = build_report(submission, Triage(tree, analysis, correlation), verify_custody(store, submission),
                          ruleset(detection), lab=lab)
    validate_report(report)
    files = write_report_files(report, out_dir, pdf)
    return ScanOutcome(submission, report, out_dir, files, failures)
