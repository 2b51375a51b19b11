"""The table of docs/security.md, generated from the tests that prove each line.

Why generated: a security document that lists outcomes nobody checks drifts into fiction. Each hostile case or
fault is a test whose docstring has a paragraph starting ``Outcome:`` (one sentence, over several lines if need
be); this script collects them, with the docstring's first paragraph as the case and the test's node id as the proof,
and writes them between the markers of docs/security.md. ``tests/test_security_doc.py`` fails when the document
and the tests disagree.

Run: ``.venv/bin/python scripts/security_table.py`` (rewrites the table) or ``--check`` (exit 1 when stale).
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
BEGIN, END = "<!-- cases:begin (scripts/security_table.py) -->", "<!-- cases:end -->"
OUTCOME = "Outcome:"


@dataclass(frozen=True)
class Case:
    area: str
    case: str
    outcome: str
    test: str


def _cases_of(path: Path) -> list[Case]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    area = (ast.get_docstring(tree) or path.stem).splitlines()[0].split(":")[0].rstrip(".")
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.name.startswith("test_"):
            continue
        doc = ast.get_docstring(node) or ""
        outcomes = [" ".join(paragraph.split())[len(OUTCOME):].strip() for paragraph in doc.split("\n\n")
                    if paragraph.strip().startswith(OUTCOME)]
        if outcomes:
            first = " ".join(doc.split("\n\n")[0].split())
            case = first if not first.startswith(OUTCOME) else node.name.removeprefix("test_").replace("_", " ")
            found.append(Case(area, case, " ".join(outcomes), f"{path.relative_to(ROOT)}::{node.name}"))
    return found


def cases(root: Path = ROOT) -> list[Case]:
    """Every test with an ``Outcome:`` line, file by file in path order."""
    return [case for path in sorted((root / "tests").rglob("test_*.py")) for case in _cases_of(path)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(found: list[Case]) -> str:
    lines = ["| Area | Case | Tested outcome | Test |", "|---|---|---|---|"]
    lines += [f"| {_cell(c.area)} | {_cell(c.case)} | {_cell(c.outcome)} | `{c.test}` |" for c in found]
    return "\n".join(lines)


def with_table(document: str, found: list[Case]) -> str:
    """``document`` with the text between the markers replaced by the table."""
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{DOC.name} lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n{table(found)}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/security.md is not up to date")
    args = parser.parse_args()
    current = DOC.read_text(encoding="utf-8")
    wanted = with_table(current, cases())
    if args.check:
        if wanted != current:
            print(f"{DOC.relative_to(ROOT)} is stale: run scripts/security_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted, encoding="utf-8")
    print(f"{DOC.relative_to(ROOT)}: {len(cases())} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
