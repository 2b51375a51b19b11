"""The JSON Schema of ``fwtriage.report/1``, shipped beside the code that writes the reports.

Why a schema file and not only tests: the labs' own scripts and reviewers'
tools read these reports; the schema is the contract they can validate
against, and every report fwtriage writes is checked against the same file.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


class ReportInvalid(ValueError):
    """A report does not follow its schema: a bug in fwtriage, never in the image."""


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(report: dict[str, Any]) -> list[str]:
    """Every violation, as ``location: message`` lines (empty when the report is valid)."""
    errors = sorted(_validator().iter_errors(report), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def validate_report(report: dict[str, Any]) -> None:
    """Raise ReportInvalid naming the first violations if ``report`` breaks the schema."""
    errors = schema_errors(report)
    if errors:
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ReportInvalid("report breaks fwtriage.report/1: " + "; ".join(errors[:3]) + more)
