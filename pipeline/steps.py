"""One submission's triage as separate steps that start from the database and the blob store: what workers run.

Why not ``scan_image``: a fleet splits one triage across processes and hosts (the unpacking on one worker,
batches of blobs analysed on many, the report on another), so each step must start from what the database
and the shared store hold, never from objects in another process's memory. The steps call the very functions
``fwtriage scan`` chains in one process (``extraction_of_image``, ``analyze_targets``, ``triage_report``), which is
why both give the same ``report_digest`` for an image.

Every step is idempotent, because a broker delivers a task again when its worker dies before acknowledging it:
the unpack step does nothing once the analysis has begun, an analysis batch finds its results in the cache,
and the report step does nothing once the report is written. Findings live in the analysis cache, keyed by
blob and analyzer, so a batch run twice stores each result once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.analyze.base import Target
from pipeline.analyze.registry import analyzers as registered_analyzers
from pipeline.analyze.runner import AnalysisIssue, analyze_targets, cache_keys, targets_of
from pipeline.config import Detection, Settings
from pipeline.db import Database, SubmissionRecord, SubmissionState
from pipeline.model import ExtractionTree
from pipeline.scan import ProgressRecorder, StageProgress, extraction_of_image, triage_report
from pipeline.store import BlobStore

CACHE_SETTLED = "settled-by-the-cache"  # the one "batch" of a submission whose every result was cached
# States in which a step's work is already done (or can no longer matter): a redelivered task stops there.
_PAST_UNPACKING = frozenset({SubmissionState.REPORTING, SubmissionState.DONE, SubmissionState.FAILED})


def _quiet(*_: object) -> None:
    """No one watches a worker's progress but the database."""


@dataclass(frozen=True)
class BatchPolicy:
    """How analysis is cut into tasks: at most ``files`` blobs and about ``bytes`` bytes each (a blob larger
    than ``bytes`` is a batch of its own), so thousands of small files do not become thousands of tasks and
    one huge partition does not hold a whole batch back."""

    files: int = 256
    bytes: int = 256 << 20


def plan_batches(targets: Sequence[Target], policy: BatchPolicy) -> list[list[Target]]:
    """Consecutive targets grouped under the policy's limits; every target in exactly one batch."""
    batches: list[list[Target]] = []
    current: list[Target] = []
    size = 0
    for target in targets:
        if current and (len(current) >= policy.files or size + target.size > policy.bytes):
            batches.append(current)
            current, size = [], 0
        current.append(target)
        size += target.size
    if current:
        batches.append(current)
    return batches


def target_message(target: Target) -> dict[str, Any]:
    """A target as a task argument (JSON): everything but its path, which each worker finds in its store."""
    return {"sha256": target.sha256, "size": target.size, "label": target.label,
            "description": target.description, "names": list(target.names), "container": target.container}


def target_of_message(message: dict[str, Any], store: BlobStore) -> Target:
    return Target(path=store.path(message["sha256"]), sha256=message["sha256"], size=message["size"],
                  label=message["label"], description=message["description"], names=tuple(message["names"]),
                  container=message["container"])


class TwinInProgress(Exception):
    """The same image is being triaged right now for another submission: waiting for it and then reusing its tree
    and its results costs far less than unpacking and analysing the same bytes twice at once."""


def unpack_step(database: Database, store: BlobStore, settings: Settings, submission_id: str,
                progress: StageProgress | None = None, wait_for_twin: bool = False) -> ExtractionTree | None:
    """Unpack a queued submission and save its tree; returns the tree whose blobs are to be analysed.

    A submission whose analysis had already begun (a redelivered task whose worker died after saving the tree)
    gets its saved tree back without unpacking again; one past the analysis gets None: nothing left to do.
    With ``wait_for_twin``, claims the image first and raises TwinInProgress while another submission of the
    identical image is being triaged (the caller tries again later, and then finds its tree and its results to
    reuse); two copies taken at the same instant cannot both claim it.
    """
    record = database.get(submission_id)
    if record.state in _PAST_UNPACKING:
        return None
    if record.state is SubmissionState.ANALYZING:
        tree = database.load_extraction(submission_id)
        if tree is not None:
            return tree
    if wait_for_twin and (twin := database.claim_image(record)):
        raise TwinInProgress(f"submission {twin} holds the same image")
    recorder = ProgressRecorder(database, submission_id, progress or _quiet)
    tree = extraction_of_image(record.submission(), store, settings, recorder, [], database)
    database.set_state(submission_id, SubmissionState.ANALYZING)
    database.set_progress(submission_id, 0, len(targets_of(tree, store)))
    return tree


@dataclass(frozen=True)
class BatchOutcome:
    """What one analysis batch did: analyzers run, results reused, failures recorded; ``last`` when it brought the
    submission's analysed files to their total, so the report is due."""

    files: int
    calls: int
    reused: int
    issues: int
    last: bool = False

    def to_dict(self) -> dict[str, int]:
        return {"files": self.files, "calls": self.calls, "reused": self.reused, "issues": self.issues}


def analyze_step(database: Database, submission_id: str, targets: Sequence[Target],
                 seconds: float | None = None, interrupts: tuple[type[BaseException], ...] = ()) -> BatchOutcome:
    """Analyse one batch of a submission's blobs into the shared cache, recording failures and counters.

    ``seconds`` is the batch's time budget (None or 0: none, as for Celery's time limits): analyzers not started
    by then are recorded as not analysed (the report says so) rather than left for a hard time limit to kill the
    worker in the middle of a file; one that the time limit's exception (``interrupts``) stops is recorded so too.
    """
    if database.get(submission_id).state is SubmissionState.FAILED:
        return BatchOutcome(len(targets), 0, 0, 0)  # nobody will read these results: spare the workers
    deadline = time.monotonic() + seconds if seconds else None
    analysis = analyze_targets(targets, cache=database, workers=1, deadline=deadline, interrupts=interrupts)
    database.record_analysis_issues(submission_id, [(i.sha256, i.path, i.analyzer, i.error)
                                                    for i in analysis.issues])
    counted = database.count_analysis(submission_id, analysis.calls, analysis.reused, len(targets),
                                      batch=_batch_digest(targets))
    return BatchOutcome(len(targets), analysis.calls, analysis.reused, len(analysis.issues), _analysed(counted))


def _batch_digest(targets: Sequence[Target]) -> str:
    """What names a batch in the database, so that one delivered again counts its files once."""
    return hashlib.sha256("".join(target.sha256 for target in targets).encode()).hexdigest()


def _analysed(record: SubmissionRecord) -> bool:
    """Whether every file of the submission's tree has been through an analysis batch (the unpack step set the
    total; each batch adds its files once, atomically, so exactly one batch sees the count reach it first)."""
    return record.progress_done >= record.progress_total


def record_out_of_time(database: Database, submission_id: str, targets: Sequence[Target], why: str) -> BatchOutcome:
    """A batch stopped by its time limit outside any analyzer: every (blob, analyzer) pair not cached by then is
    recorded as not analysed, so the report says so instead of the submission failing."""
    keys = cache_keys(targets, registered_analyzers())
    cached = database.cached_findings(list(keys.values()))
    names = {target.sha256: target.name for target in targets}
    issues = [(sha256, names[sha256], analyzer, f"not analysed: {why}")
              for (sha256, analyzer), key in keys.items() if key not in cached]
    database.record_analysis_issues(submission_id, issues)
    counted = database.count_analysis(submission_id, 0, 0, len(targets), batch=_batch_digest(targets))
    return BatchOutcome(len(targets), 0, 0, len(issues), _analysed(counted))


def settled_by_the_cache(database: Database, store: BlobStore, submission_id: str, tree: ExtractionTree) -> bool:
    """Whether every (blob, analyzer) of the tree already has its findings in the cache, counting them as the
    submission's cache hits when so: a re-submitted build then goes straight to its report, without a round of
    analysis tasks that would only look the cache up again."""
    targets = targets_of(tree, store)
    keys = list(cache_keys(targets, registered_analyzers()).values())
    if len(database.cached_findings(keys)) < len(keys):
        return False
    database.count_analysis(submission_id, 0, len(keys), len(targets), batch=CACHE_SETTLED)
    return True


def report_step(database: Database, store: BlobStore, submission_id: str, detection: Detection,
                settings: Settings) -> dict[str, Any] | None:
    """Correlate a submission whose batches are analysed, build its report and finish it.

    The findings come from the cache and the failures from the batches' records; anything neither holds (a
    batch lost with its worker and never redelivered) is analysed here, so no finding is ever missing. Returns
    the report, or None for a submission that failed meanwhile.
    """
    record = database.get(submission_id)
    if record.state is SubmissionState.DONE:
        return database.report(submission_id)
    if record.state is SubmissionState.FAILED:
        return None
    tree = database.load_extraction(submission_id)
    if tree is None:
        raise LookupError(f"submission {submission_id} reached the report step without an extraction tree")
    database.set_state(submission_id, SubmissionState.REPORTING)
    settled = [AnalysisIssue(sha256, path, analyzer, error)
               for sha256, path, analyzer, error in database.analysis_issues(submission_id)]
    analysis = analyze_targets(targets_of(tree, store), cache=database, settled=settled)
    if analysis.calls:
        database.count_analysis(submission_id, analysis.calls)
    report = triage_report(record.submission(), tree, analysis, store, detection, _quiet,
                           database.lab_name(record.lab_id), settings)
    database.finish(submission_id, report)
    return report


def batches_of(tree: ExtractionTree, store: BlobStore, policy: BatchPolicy) -> Iterator[list[dict[str, Any]]]:
    """The analysis batches of an unpacked tree, as task arguments."""
    for batch in plan_batches(targets_of(tree, store), policy):
        yield [target_message(target) for target in batch]
