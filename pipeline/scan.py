"""One image's whole triage, in-process: ingest → unpack → analyze → correlate → report.

Why a report even when a stage breaks: a lab must never lose a submission.
The image is hashed and stored first; if the unpacker or an analyzer then
fails in a way nobody anticipated (a bug, a pathological input), the failure
becomes an issue of the extraction, the verdict becomes ``incomplete`` and
the report says why. Only an image that cannot be read at all is refused. With a database, the
submission's row follows the stages (queued → unpacking → analyzing →
reporting → done, or failed with its reason when no report could be written).
Celery tasks (distributed deployment) call the same stage functions.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.analyze.ruleset import ruleset
from pipeline.analyze.runner import Analysis, AnalysisIssue, ResultCache, analyze_tree
from pipeline.config import Detection, Settings
from pipeline.db import Database, SubmissionRecord, SubmissionState
from pipeline.ingest import CaseMetadata, ingest, verify_custody
from pipeline.model import Artifact, ExtractionTree, IssueKind, Submission
from pipeline.report.build import build_report
from pipeline.report.html import render_html
from pipeline.report.method import isolation_in_force
from pipeline.store import BlobCorrupted, BlobStore, StoreFull
from pipeline.triage import Triage, correlate_analysis
from pipeline.unpack import unpack
from pipeline.unpack.isolation import UnpackerRaised, UnpackJob, tree_of_failure, unpack_in_child


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


def _internal(stage: Stage, error: str) -> str:
    return f"internal error in the {stage} stage: {error}"


def _described(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def unpack_guarded(submission: Submission, store: BlobStore, settings: Settings, progress: StageProgress,
                   failures: list[str]) -> ExtractionTree:
    """Unpack the stored image under the configured isolation (``settings.isolation``); an unexpected
    exception becomes the tree's failure (and one of ``failures``).

    In a child process (the default), what a hostile image does to the readers (memory, crash, endless loop)
    comes back as the tree's own extraction issue; only the walker's own exceptions are internal errors.
    Raises BlobCorrupted when the stored original no longer hashes to the submission's sha256, and StoreFull:
    the submission fails with these (no report is made from altered or missing bytes).
    """
    try:  # the hashes the report states are the exhibit's: a tree made from altered bytes would lie
        store.verify(submission.sha256)
    except BlobCorrupted as exc:
        raise BlobCorrupted(f"the stored original cannot be unpacked: {exc}; restore it from the exhibit and "
                            "submit it again") from None
    job = UnpackJob(store.path(submission.sha256), submission.filename, submission.sha256, submission.size)

    def advance(artifact: Artifact, budget: Any) -> None:
        progress(Stage.UNPACK, budget.written_files, None, artifact.lineage_path)

    progress(Stage.UNPACK, 0, None, submission.filename)
    try:
        if settings.isolation.in_process:
            return unpack(job.image, store=store, settings=settings, progress=advance, name=job.name,
                          stored_sha256=job.sha256)
        return unpack_in_child(job, store, settings,
                               lambda done, detail: progress(Stage.UNPACK, done, None, detail))
    except UnpackerRaised as exc:
        failures.append(_internal(Stage.UNPACK, str(exc)))
    except StoreFull:
        raise  # no report can be trusted from a store that lost bytes: the submission fails with the reason
    except Exception as exc:  # the submission must still get its report
        failures.append(_internal(Stage.UNPACK, _described(exc)))
    return tree_of_failure(job, failures[-1], IssueKind.FAILURE)


def _analyze(tree: ExtractionTree, store: BlobStore, progress: StageProgress, failures: list[str],
             cache: ResultCache | None) -> Analysis:
    progress(Stage.ANALYZE, 0, None, "")
    try:
        return analyze_tree(tree, store, progress=lambda done, total: progress(Stage.ANALYZE, done, total, ""),
                            cache=cache)
    except Exception as exc:
        failures.append(_internal(Stage.ANALYZE, _described(exc)))
        return Analysis(issues=[AnalysisIssue(tree.image_sha256, tree.root.lineage_path, "all", failures[-1])])


# The submission's state while each stage runs; correlation is part of the analysis as far as a lab is concerned.
_STATE_OF_STAGE = {Stage.UNPACK: SubmissionState.UNPACKING, Stage.ANALYZE: SubmissionState.ANALYZING,
                   Stage.CORRELATE: SubmissionState.ANALYZING, Stage.REPORT: SubmissionState.REPORTING}
PROGRESS_WRITE_SECONDS = 1.0


class ProgressRecorder:
    """Passes progress on, and keeps the submission's row in step: its state at each stage, its counters at
    most once a second (a row update per analysed file would cost more than some analyses)."""

    def __init__(self, database: Database, submission_id: str, progress: StageProgress) -> None:
        self.database, self.submission_id, self.progress = database, submission_id, progress
        self.state: SubmissionState | None = None
        self.written_at = 0.0

    def __call__(self, stage: Stage, done: int, total: int | None, detail: str) -> None:
        self.progress(stage, done, total, detail)
        state = _STATE_OF_STAGE.get(stage)
        if state is None:
            return
        if state is not self.state:
            self.database.set_state(self.submission_id, state)
            self.state = state
        now = time.monotonic()
        if now - self.written_at >= PROGRESS_WRITE_SECONDS or done == total:
            self.database.set_progress(self.submission_id, done, max(total or 0, done))
            self.written_at = now


def record_submission(database: Database, submission: Submission, actor: str = "fwtriage",
                      lab_id: int | None = None) -> SubmissionRecord:
    fields = submission.to_dict()
    return database.create_submission(submission_id=fields.pop("id"),
                                      received_at=datetime.fromisoformat(fields.pop("received_at")), actor=actor,
                                      lab_id=lab_id, **fields)


def write_report_files(report: dict[str, Any], out_dir: Path, pdf: bool = False) -> list[Path]:
    """report.json, report.html and, when asked, report.pdf in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "report.json", out_dir / "report.html"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    files = [json_path, html_path]
    if pdf:
        from pipeline.report.pdf import write_pdf  # WeasyPrint takes most of a second to import: only for --pdf

        files.append(write_pdf(report, out_dir / "report.pdf"))
    return files


def unpack_config(settings: Settings) -> str:
    """Digest of what decides an image's extraction tree besides its bytes: fwtriage's version and the limits."""
    decided_by = {"fwtriage": __version__, "limits": asdict(settings.limits)}
    return hashlib.sha256(json.dumps(decided_by, sort_keys=True).encode()).hexdigest()


def extraction_of_image(submission: Submission, store: BlobStore, settings: Settings, progress: StageProgress,
                        failures: list[str], database: Database | None = None) -> ExtractionTree:
    """The submission's extraction tree, saved in ``database`` when given.

    Once per blob, for whole images too: when the database holds a tree of the same bytes unpacked under the
    same configuration, and its blobs are all still in the store, that tree is reused (renamed after this
    submission's file) instead of unpacking again; 300 phones flashed with one build are unpacked once.
    """
    config = unpack_config(settings)
    if database is not None and (earlier := database.reusable_extraction(submission.sha256, config)):
        saved = database.load_extraction(earlier)
        if saved is not None and all(store.exists(sha256) for sha256 in saved.paths_by_sha256()):
            tree = saved.renamed(submission.filename)
            progress(Stage.UNPACK, len(tree.artifacts), len(tree.artifacts), "extraction reused")
            database.save_extraction(submission.id, tree, config)
            return tree
    tree = unpack_guarded(submission, store, settings, progress, failures)
    if database is not None:
        database.save_extraction(submission.id, tree, config)
    return tree


def triage_report(submission: Submission, tree: ExtractionTree, analysis: Analysis, store: BlobStore,
                  detection: Detection, progress: StageProgress, lab: str | None,
                  settings: Settings) -> dict[str, Any]:
    """Correlate an analysed tree and build its report (the stored original re-hashed for the custody part).

    The isolation the report states is that of ``settings``: a fleet's report step runs on a worker of the same
    deployment as the one that unpacked.
    """
    progress(Stage.CORRELATE, 0, None, "")
    correlation = correlate_analysis(tree, analysis, detection)
    progress(Stage.REPORT, 0, None, "")
    return build_report(submission, Triage(tree, analysis, correlation), verify_custody(store, submission),
                        ruleset(detection), lab=lab, isolation=isolation_in_force(settings.isolation, settings.limits))


def _triage_and_report(submission: Submission, out_dir: Path, store: BlobStore, settings: Settings,
                       detection: Detection, progress: StageProgress, pdf: bool, lab: str | None,
                       database: Database | None = None) -> ScanOutcome:
    failures: list[str] = []
    tree = extraction_of_image(submission, store, settings, progress, failures, database)
    analysis = _analyze(tree, store, progress, failures, database)
    report = triage_report(submission, tree, analysis, store, detection, progress, lab, settings)
    files = write_report_files(report, out_dir, pdf)
    return ScanOutcome(submission, report, out_dir, files, failures)


def scan_image(request: ScanRequest, out_dir: Path, *, store: BlobStore, settings: Settings,
               database: Database | None = None, detection: Detection | None = None,
               progress: StageProgress | None = None, pdf: bool = False, lab: str | None = None) -> ScanOutcome:
    """Triage one image and write its report, recording the submission in ``database`` when given.

    Raises ImageUnreadable (nothing recorded, nothing written) if the image cannot be read. Any other
    exception means the report could not be written: the submission is marked failed with the reason.
    """
    detection = detection or Detection.from_env()
    progress = progress or _quiet
    progress(Stage.INGEST, 0, None, request.image.name)
    submission = ingest(request.image, store, request.metadata)
    if database is None:
        return _triage_and_report(submission, out_dir, store, settings, detection, progress, pdf, lab)
    record_submission(database, submission)
    try:
        outcome = _triage_and_report(submission, out_dir, store, settings, detection,
                                     ProgressRecorder(database, submission.id, progress), pdf, lab, database)
    except Exception as exc:
        database.fail(submission.id, f"no report could be written: {type(exc).__name__}: {exc}")
        raise
    database.finish(submission.id, outcome.report, out_dir.absolute())
    return outcome
