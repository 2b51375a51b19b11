"""docs/security.md against the tests it cites: its table is exactly the tests' ``Outcome:`` paragraphs."""

from __future__ import annotations

from scripts.security_table import DOC, cases, with_table


def test_the_security_table_lists_every_tested_outcome() -> None:
    document = DOC.read_text(encoding="utf-8")
    assert with_table(document, cases()) == document, "docs/security.md is stale: run scripts/security_table.py"


def test_every_case_names_a_test_and_an_outcome() -> None:
    found = cases()
    assert len(found) >= 10
    for case in found:
        assert case.outcome and case.case and "::test_" in case.test, case
    assert len({case.test for case in found}) == len(found)
