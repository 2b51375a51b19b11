"""What ``fwtriage scan`` and ``fwtriage submit`` both take: a target and the case data a lab states about it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.ingest import CaseMetadata
from pipeline.inputs import InputError, scan_requests
from pipeline.scan import ScanRequest


def case_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--case, --exhibit, --examiner and --device: the defaults for every image of a batch."""
    for option in reversed((
        click.option("--case", help="Case reference (default for every image of a batch)."),
        click.option("--exhibit", help="Exhibit or seal number."),
        click.option("--examiner", help="Examiner in charge."),
        click.option("--device", help="Device the image was dumped from."),
    )):
        command = option(command)
    return command


def requests_of(target: Path, case: str | None, exhibit: str | None, device: str | None,
                examiner: str | None) -> tuple[list[ScanRequest], bool]:
    """The images of TARGET (an image, a folder or a manifest.csv) and whether it is a batch; a bad target is a
    usage error (exit status 2) naming what is wrong."""
    try:
        return scan_requests(target, CaseMetadata(case, exhibit, device, examiner))
    except InputError as exc:
        raise click.UsageError(str(exc)) from exc
