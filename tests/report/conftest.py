"""The report tests' shared inputs: the showcase sample's scan and report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pipeline.scan import ScanOutcome
from tests.report.samples import SHOWCASE


@pytest.fixture(scope="session")
def showcase_scan(manifest: dict, sample_scans: Callable[[str], ScanOutcome]) -> ScanOutcome:
    return sample_scans(SHOWCASE)


@pytest.fixture
def sample_report(showcase_scan: ScanOutcome) -> dict[str, Any]:
    """The showcase report (a session object: copy before changing it)."""
    return showcase_scan.report
