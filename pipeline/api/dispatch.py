"""How the service starts a recorded submission's triage: on the fleet, or in the service's own process.

Why two: a lab's deployment queues work to Celery workers (``fleet``), but ``fwtriage serve`` on one laptop must
work with no broker at all (``local``), as ``fwtriage scan`` does. Both run the same steps
(``pipeline/steps.py``), so a report does not depend on where it was made.

The local dispatcher runs one submission at a time in a background thread (the analysis is CPU-bound; the HTTP
side stays responsive), and when the service starts it takes back every submission a previous run left
unfinished, so a restart loses nothing. A failure marks the submission failed with its reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from pipeline.analyze.runner import targets_of
from pipeline.config import Detection, Settings
from pipeline.db import UNFINISHED, Database, IllegalTransition, UnknownSubmission
from pipeline.steps import analyze_step, report_step, unpack_step
from pipeline.store import BlobStore

logger = logging.getLogger(__name__)


class Dispatcher(Protocol):
    name: str

    def start(self) -> None: ...
    def dispatch(self, submission_id: str) -> None: ...
    def close(self) -> None: ...


class FleetDispatcher:
    """Queue to the Celery workers of FWTRIAGE_BROKER_URL (Celery is imported on first use)."""

    name = "fleet"

    def start(self) -> None:
        """Nothing to take back: the broker keeps what was queued, the workers what was started."""

    def dispatch(self, submission_id: str) -> None:
        from pipeline.tasks import enqueue

        enqueue(submission_id)

    def close(self) -> None:
        """The broker's connection pool closes with the process."""


class LocalDispatcher:
    """Triage in this process, one submission at a time, in the order received."""

    name = "local"

    def __init__(self, database: Database, store: BlobStore, settings: Settings, detection: Detection) -> None:
        self.database, self.store, self.settings, self.detection = database, store, settings, detection
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fwtriage-triage")
        self._closing = threading.Event()

    def start(self) -> None:
        """Take back the submissions a previous run of the service left unfinished, oldest first."""
        pending = [record for state in UNFINISHED
                   for record in self.database.list_submissions(limit=100_000, state=state)]
        for record in sorted(pending, key=lambda r: (r.received_at, r.id)):
            self.dispatch(record.id)

    def dispatch(self, submission_id: str) -> None:
        self._pool.submit(self._triage, submission_id)

    def close(self) -> None:
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _triage(self, submission_id: str) -> None:
        if self._closing.is_set():
            return  # taken back at the next start
        try:
            tree = unpack_step(self.database, self.store, self.settings, submission_id)
            if tree is not None:
                analyze_step(self.database, submission_id, targets_of(tree, self.store))
            report_step(self.database, self.store, submission_id, self.detection, self.settings)
        except Exception as exc:  # the submission records why; the thread lives on for the next one
            logger.exception("submission %s failed", submission_id)
            with contextlib.suppress(IllegalTransition, UnknownSubmission):  # already final, or never recorded
                self.database.fail(submission_id, f"triage failed: {type(exc).__name__}: {exc}", actor="fwtriage")
