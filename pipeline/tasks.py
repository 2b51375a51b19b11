"""The Celery app: three queues (unpack, analyze, report) moving submission ids between workers.

The flow of one submission: ``unpack`` (one task) saves the extraction tree, then queues one ``analyze`` task per
batch of unique blobs (``pipeline.steps.plan_batches``: by count and bytes); the batch that brings the analysed
files to their total (counted in the database, atomically) queues ``report`` (correlate, build, store). The join is
the database's, not a Celery chord's: a chord counts its parts in the result backend, and a batch that finished
while Redis restarted was counted there as failed, so the report never came and the submission stayed analysing.
Each task is a thin wrapper over a step in ``pipeline/steps.py``; the steps are idempotent, which is what makes
the delivery settings below safe:

- ``acks_late`` + ``reject_on_worker_lost``: a task is acknowledged when it has finished, so a worker killed
  in the middle of one (SIGKILL, the OOM killer, a lost host) leaves it to be delivered again;
- ``worker_prefetch_multiplier = 1``: a worker reserves one task per process; tasks are long (seconds to
  minutes), so reserving more would leave idle workers next to busy ones holding a queue of work;
- transient errors (database or broker unreachable) are retried with exponential backoff (4, 8, 16, 32, 64 s:
  with the default 5 retries, an outage of two minutes is ridden out); any other error, or the last retry, marks
  the submission failed with its reason (``on_failure``): never a silent loss (when the database itself is what
  stays down, not even the failure can be recorded: ``fwtriage requeue`` then resumes the idle submission);
- soft and hard time limits per queue (``FWTRIAGE_*_SECONDS``); an analysis batch also stops starting new
  files near its soft limit, so those files are reported as not analysed instead of killed mid-way.

Workers load the analyzers before the pool forks, and open the database and the store lazily, once per pool
process (after the fork).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from typing import Any

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from celery import Celery, Task, group, signals
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.log import get_task_logger
from kombu import Queue

from pipeline.analyze.registry import analyzers as registered_analyzers
from pipeline.config import Detection, Fleet, Settings
from pipeline.db import Database, IllegalTransition, SubmissionRecord, SubmissionState, UnknownSubmission
from pipeline.steps import (
    BatchPolicy,
    TwinInProgress,
    analyze_step,
    batches_of,
    record_out_of_time,
    report_step,
    settled_by_the_cache,
    target_of_message,
    unpack_step,
)
from pipeline.store import LocalBlobStore

QUEUES = ("unpack", "analyze", "report")
TRANSIENT_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, redis.exceptions.ConnectionError,
                    redis.exceptions.TimeoutError, kombu.exceptions.OperationalError, ConnectionError)
HARD_LIMIT_GRACE_SECONDS = 60
ANALYZE_BUDGET_SHARE = 0.9  # of its soft time limit, what a batch spends starting analyzers
TWIN_POLL_SECONDS = 1.0

logger = get_task_logger(__name__)
fleet = Fleet.from_env()
TWIN_POLLS = int(fleet.unpack_seconds / TWIN_POLL_SECONDS)

app = Celery("fwtriage")
app.conf.update(
    broker_url=fleet.broker_url,
    result_backend=fleet.result_backend,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": fleet.visibility_timeout},
    result_backend_transport_options={"visibility_timeout": fleet.visibility_timeout},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    # queueing the next step (or a retry) rides out a broker restart of up to a minute instead of failing the task
    task_publish_retry_policy={"max_retries": 30, "interval_start": 0, "interval_step": 1, "interval_max": 2},
    worker_prefetch_multiplier=1,
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="unpack",
    task_routes={"fwtriage.unpack": {"queue": "unpack"}, "fwtriage.analyze": {"queue": "analyze"},
                 "fwtriage.report": {"queue": "report"}},
    result_expires=24 * 3600,
    worker_send_task_events=True,  # what Flower shows
    task_send_sent_event=True,
)


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    detection: Detection
    database: Database
    store: LocalBlobStore


@functools.cache
def context() -> WorkerContext:
    """This process's settings, database and store, opened on first use (so after the pool's fork)."""
    settings = Settings.from_env()
    return WorkerContext(settings, Detection.from_env(), Database.for_settings(settings),
                         LocalBlobStore(settings.store_dir))


@signals.worker_init.connect
def load_analyzers_before_forking(**_: object) -> None:
    """Compile the rules and read the reference data once, in the worker's main process, before its pool forks:
    each pool process then starts ready (instead of spending most of a second in its first task) and shares
    those pages with its siblings. The database is opened later, per process: connections must not cross a fork.
    """
    registered_analyzers()


class SubmissionTask(Task):
    """A task whose first argument is a submission id; when it fails for good, so does the submission."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 4
    retry_backoff_max = 120
    # No jitter: Celery's is "full" (each wait drawn anywhere from 0 to its backoff), which left 5 retries as short
    # as a few seconds in all, so a database restart of half a minute failed submissions at random. The herd that
    # jitter would spread is bounded anyway: retried tasks wait in the workers and run one per pool process.
    retry_jitter = False
    max_retries = fleet.retries

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        submission_id = args[0] if args else kwargs.get("submission_id")
        reason = f"{self.name} failed: {type(exc).__name__}: {exc}"
        logger.error("submission %s: %s", submission_id, reason)
        # A database of its own, closed at once: after a hard time limit this runs in the worker's main process,
        # whose pool forks again; a pool of connections kept there would be shared with the next children.
        # Already final (a duplicate delivery failed after the original succeeded) or never recorded: nothing to do.
        with Database.for_settings(Settings.from_env()) as database, \
                contextlib.suppress(IllegalTransition, UnknownSubmission):
            database.fail(submission_id, reason, actor=f"worker:{os.uname().nodename}")


def _limits(seconds: float) -> dict[str, float]:
    return {"soft_time_limit": seconds, "time_limit": seconds + HARD_LIMIT_GRACE_SECONDS}


@app.task(base=SubmissionTask, bind=True, name="fwtriage.unpack", **_limits(fleet.unpack_seconds))
def unpack(self: Task, submission_id: str) -> int:
    """Unpack, then hand the blobs to the analyze queue in batches; the report follows the last batch (or comes
    at once when every result is already cached: a known build).

    Copies of one image submitted together (a seizure of phones flashed with one build) wait for the first one,
    polling every TWIN_POLL_SECONDS, for at most the unpack time limit; then go on by themselves whatever happens.
    """
    ctx = context()
    try:
        tree = unpack_step(ctx.database, ctx.store, ctx.settings, submission_id,
                           wait_for_twin=self.request.retries < TWIN_POLLS)
    except TwinInProgress as exc:
        raise self.retry(exc=exc, countdown=TWIN_POLL_SECONDS, max_retries=TWIN_POLLS + fleet.retries) from exc
    if tree is None:
        return 0
    if settled_by_the_cache(ctx.database, ctx.store, submission_id, tree):
        report.delay(submission_id)
        return 0
    batches = list(batches_of(tree, ctx.store, BatchPolicy(fleet.batch_files, fleet.batch_bytes)))
    group(analyze.si(submission_id, batch) for batch in batches).apply_async()
    return len(batches)


@app.task(base=SubmissionTask, name="fwtriage.analyze", **_limits(fleet.analyze_seconds))
def analyze(submission_id: str, batch: list[dict[str, Any]]) -> dict[str, int]:
    """Analyse one batch of blobs into the shared cache; the last batch of a submission queues its report.

    A batch delivered again after the last one (its worker died before acknowledging) queues the report again:
    the report step of a finished submission does nothing.
    """
    ctx = context()
    targets = [target_of_message(message, ctx.store) for message in batch]
    try:
        outcome = analyze_step(ctx.database, submission_id, targets, fleet.analyze_seconds * ANALYZE_BUDGET_SHARE,
                               interrupts=(SoftTimeLimitExceeded,))
    except Exception as exc:
        if not _soft_time_limit(exc):
            raise
        outcome = record_out_of_time(ctx.database, submission_id, targets,
                                     f"the analysis batch reached its time limit ({fleet.analyze_seconds:g} s)")
    if outcome.last:
        report.delay(submission_id)
    return outcome.to_dict()


def _soft_time_limit(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the soft time limit, raised directly or inside a database call that wrapped it."""
    while exc is not None:
        if isinstance(exc, SoftTimeLimitExceeded):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
    return False


@app.task(base=SubmissionTask, name="fwtriage.report", **_limits(fleet.report_seconds))
def report(submission_id: str) -> str | None:
    """Correlate and store the report; returns its digest."""
    ctx = context()
    built = report_step(ctx.database, ctx.store, submission_id, ctx.detection, ctx.settings)
    return built["report_digest"] if built else None


def enqueue(submission_id: str) -> None:
    """Start a recorded submission's triage on the fleet."""
    unpack.apply_async((submission_id,), queue="unpack")


def resume(record: SubmissionRecord) -> str:
    """Queue an unfinished submission again at the step it stopped in, and name that step.

    A submission whose files are all analysed (or that was reporting) needs only its report; any other starts
    again from ``unpack``, which returns a saved tree instead of unpacking twice and queues the batches again:
    batches that ran find their results in the cache and count once. Safe on one that was merely slow, since
    every step is idempotent.
    """
    if record.state is SubmissionState.REPORTING or (
            record.state is SubmissionState.ANALYZING and record.progress_done >= record.progress_total):
        report.delay(record.id)
        return "report"
    enqueue(record.id)
    return "unpack"
