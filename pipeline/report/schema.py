"""The JSON Schema of ``fwtriage.report/1``, shipped beside the code that writes the reports.

Why a schema file and not only tests: the labs' own scripts and reviewers'
tools read these reports; the schema is the contract they can validate
against. The tests check every sample's report against this same file; a
scan does not re-validate its own output (over a second for a report of
thousands of findings, for a property the builder's tests already prove).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(report: dict[str, Any]) -> list[str]:
    """Every violation, as ``location: message`` lines (empty when the report is valid)."""
    errors = sorted(_validator().iter_errors(report), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]
