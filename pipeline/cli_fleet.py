"""The ``fwtriage`` commands of the distributed deployment: ``worker``, ``submit``, ``status``, ``report``,
``requeue``.

Why apart from ``cli.py``: these talk to a broker and a shared database instead of doing the work in-process,
and they import Celery (a third of a second) only when one of them runs. Exit codes are the CLI's: 0 done,
2 bad usage or unknown id, 1 internal failure (a broker that cannot be reached included).
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from pipeline.cli_inputs import case_options, requests_of
from pipeline.config import Settings
from pipeline.db import Database, SubmissionRecord, UnknownSubmission
from pipeline.ingest import ImageUnreadable, ingest
from pipeline.review import Reviews
from pipeline.scan import record_submission, write_report_files
from pipeline.store import LocalBlobStore
from pipeline.tables import utc_now

QUEUE_NAMES = ("unpack", "analyze", "report")


class FleetFailure(click.ClickException):
    """An internal failure (the broker unreachable, a report not written yet): exit status 1, one line."""

    exit_code = 1


def actor() -> str:
    """Who runs this command, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid:{os.getuid()}"


def _queues(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in QUEUE_NAMES]
    if not names or unknown:
        raise click.BadParameter(f"choose among {', '.join(QUEUE_NAMES)} (comma-separated), got {value!r}")
    return names


@click.command()
@click.option("--queues", default=",".join(QUEUE_NAMES), show_default=True,
              help="Queues this worker consumes, comma-separated.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: one per core).")
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def worker(queues: str, concurrency: int | None, loglevel: str) -> None:
    """Run a Celery worker on the broker of FWTRIAGE_BROKER_URL (Redis by default; RabbitMQ works too)."""
    names = _queues(queues)
    from pipeline.tasks import app

    argv = ["worker", "--queues", ",".join(names), "--loglevel", loglevel,
            "--hostname", f"fwtriage-{'-'.join(names)}-{os.getpid()}@%h"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    app.worker_main(argv)


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@case_options
def submit(target: Path, case: str | None, exhibit: str | None, examiner: str | None, device: str | None) -> None:
    """Ingest TARGET (an image, a folder or a manifest.csv) into the shared store and queue its triage;
    prints one submission id per image."""
    requests, _ = requests_of(target, case, exhibit, device, examiner)
    from pipeline.tasks import enqueue

    settings = Settings.from_env()
    store = LocalBlobStore(settings.store_dir)
    with Database.for_settings(settings) as database:
        for request in requests:
            try:
                submission = ingest(request.image, store, request.metadata)
            except ImageUnreadable as exc:
                raise click.UsageError(str(exc)) from exc
            record_submission(database, submission, actor=actor())
            try:
                enqueue(submission.id)
            except Exception as exc:  # recorded but not queued: say so on the submission, never lose it silently
                database.fail(submission.id, f"could not be queued: {type(exc).__name__}: {exc}")
                raise FleetFailure(f"{submission.filename}: could not be queued ({exc}); "
                                   f"submission {submission.id} marked failed") from exc
            click.echo(f"{submission.id}  {submission.filename}")


def _open(submission_id: str) -> tuple[Database, SubmissionRecord]:
    database = Database.for_settings(Settings.from_env())
    try:
        return database, database.get(submission_id)
    except UnknownSubmission:
        database.close()
        raise click.UsageError(f"no submission {submission_id}") from None


@click.command()
@click.argument("submission_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(submission_id: str, as_json: bool) -> None:
    """State and progress of a submission."""
    database, record = _open(submission_id)
    database.close()
    data = record.status()
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    output = Console(highlight=False)
    progress = data["progress"]
    output.print(f"{record.id}  {escape(record.filename)}: [bold]{record.state}[/]"
                 + (f" ({progress['done']}/{progress['total']})" if progress["total"] else ""))
    if record.verdict:
        output.print(f"verdict {record.verdict.upper()} {record.score}: {escape(record.summary or '')}")
    if record.failure:
        output.print(f"[red]failed[/]: {escape(record.failure)}")
    output.print(f"analyzers run {record.analyzer_calls}, results reused from the cache {record.cache_hits}")


@click.command("report")
@click.argument("submission_id")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for report.json and report.html.")
@click.option("--pdf", is_flag=True, help="Also write report.pdf.")
def report_command(submission_id: str, out_dir: Path, pdf: bool) -> None:
    """Write a finished submission's report (JSON as stored, HTML rendered from it); the read is audited."""
    database, record = _open(submission_id)
    with database:
        report = database.report(submission_id, actor=actor())
        if report is not None:
            report = report | {"review": Reviews(database).report_section(submission_id)}
    if report is None:
        why = f": {record.failure}" if record.failure else ""
        raise FleetFailure(f"submission {submission_id} has no report ({record.state}{why})")
    files = write_report_files(report, out_dir, pdf)
    click.echo(" ".join(str(path) for path in files))


@click.command()
@click.option("--idle", "idle_minutes", type=click.FloatRange(min=0), default=60, show_default=True,
              help="Requeue unfinished submissions unchanged for this many minutes.")
@click.option("--dry-run", is_flag=True, help="List them without queueing anything.")
def requeue(idle_minutes: float, dry_run: bool) -> None:
    """Queue again the unfinished submissions that have not moved for a while, each at the step it stopped in.

    After an outage longer than the tasks' retries (the database down for minutes, the broker's data lost), a
    task may have given up without even recording the failure: its submission stays unfinished forever. Every
    step is idempotent, so requeueing one that was merely slow costs cache lookups, not a second analysis.
    """
    from pipeline.tasks import resume

    now = utc_now()
    with Database.for_settings(Settings.from_env()) as database:
        idle = database.idle_submissions(timedelta(minutes=idle_minutes))
        for record in idle:
            waited = int((now - record.updated_at).total_seconds() // 60)
            line = f"{record.id}  {record.filename}: {record.state} for {waited} min"
            if dry_run:
                click.echo(line)
                continue
            try:
                step = resume(record)
            except Exception as exc:  # the broker unreachable: nothing was queued, say so and stop
                raise FleetFailure(f"{record.id}: could not be queued ({type(exc).__name__}: {exc})") from exc
            database.note_requeued(record.id, step, actor())
            click.echo(f"{line}, queued at {step}")
    if not idle:
        click.echo(f"no unfinished submission idle for {idle_minutes:g} min or more")


FLEET_COMMANDS = (worker, submit, status, report_command, requeue)
