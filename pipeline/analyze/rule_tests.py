"""The examples every rule of ours must match and must not match, kept as data beside the rules.

``rules/tests/<file stem>.yml`` maps a rule id to ``positive`` and
``negative`` lists of examples; an example is a string (its UTF-8 bytes) or a
mapping with one of ``text``, ``hex`` (spaces allowed) or ``utf16`` (UTF-16LE,
as Android binary XML and Windows-born resources store strings) and,
optionally, the ``filepath`` and ``filetype`` the scanned file would have.
Each example is matched against the whole compiled ruleset, exactly as a
scanned file is, and only the rule under test is looked at. A rule passes
when it has at least one example of each kind, all of them behave, and its
metadata keeps the convention (``ruleset.convention_problems``). The pytest
suite and ``fwtriage rules test`` both run this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.analyze.ruleset import Ruleset, convention_problems, path_externals

KINDS = ("positive", "negative")


@dataclass(frozen=True)
class Example:
    rule_id: str
    positive: bool  # True: the rule must match
    data: bytes
    filepath: str = ""
    filetype: str = ""

    @property
    def label(self) -> str:
        shown = self.data[:40].decode("latin-1").encode("unicode_escape").decode()
        return shown + ("…" if len(self.data) > 40 else "")


@dataclass(frozen=True)
class RuleTestReport:
    """The outcome for one rule: which examples misbehaved and what else is wrong with it."""

    rule_id: str
    title: str = ""
    positives: int = 0
    negatives: int = 0
    failures: tuple[Example, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.problems


def _example(rule_id: str, positive: bool, item: object) -> Example:
    if isinstance(item, str):
        return Example(rule_id, positive, item.encode())
    if not isinstance(item, dict):
        raise ValueError(f"{rule_id}: an example is a string or a mapping, not {type(item).__name__}")
    given = [key for key in ("text", "hex", "utf16") if key in item]
    if len(given) != 1:
        raise ValueError(f"{rule_id}: an example needs exactly one of text, hex, utf16")
    value = str(item[given[0]])
    data = {"text": lambda v: v.encode(), "hex": lambda v: bytes.fromhex(v),
            "utf16": lambda v: v.encode("utf-16-le")}[given[0]](value)
    return Example(rule_id, positive, data, str(item.get("filepath", "")), str(item.get("filetype", "")))


def load_examples(tests_dir: Path) -> dict[str, list[Example]]:
    """Every example of every ``*.yml`` in ``tests_dir``, by rule id; a malformed file raises ValueError."""
    examples: dict[str, list[Example]] = {}
    for path in sorted(tests_dir.glob("*.yml")) if tests_dir.is_dir() else []:
        document = yaml.safe_load(path.read_text()) or {}
        if not isinstance(document, dict):
            raise ValueError(f"{path.name}: expected a mapping of rule id to examples")
        for rule_id, cases in document.items():
            if not isinstance(cases, dict) or set(cases) - set(KINDS):
                raise ValueError(f"{path.name}: {rule_id}: expected 'positive' and 'negative' lists")
            found = examples.setdefault(str(rule_id), [])
            for kind in KINDS:
                found += [_example(str(rule_id), kind == "positive", item) for item in cases.get(kind) or []]
    return examples


def _matches(ruleset: Ruleset, example: Example) -> set[tuple[str, str]]:
    externals = path_externals(example.filepath, example.filetype)
    return {(m.namespace, m.rule) for m in ruleset.rules.match(data=example.data, externals=externals)}


def run_rule_tests(ruleset: Ruleset, tests_dir: Path) -> list[RuleTestReport]:
    """One report per rule of ours (and per example set naming no rule of ours), sorted by rule id."""
    examples = load_examples(tests_dir)
    reports = []
    for meta in sorted(ruleset.metadata.values(), key=lambda m: m.id):
        own = examples.pop(meta.id, [])
        key = (meta.namespace, meta.identifier)
        failures = tuple(e for e in own if (key in _matches(ruleset, e)) != e.positive)
        positives = sum(e.positive for e in own)
        problems = convention_problems(meta)
        problems += [f"no {kind} example" for kind, n in (("positive", positives), ("negative", len(own) - positives))
                     if n == 0]
        reports.append(RuleTestReport(meta.id, meta.title, positives, len(own) - positives, failures, tuple(problems)))
    reports += [RuleTestReport(rule_id, problems=("examples for a rule that does not exist",))
                for rule_id in sorted(examples)]
    ids = [r.rule_id for r in reports]
    duplicates = {i for i in ids if ids.count(i) > 1}
    return [RuleTestReport(r.rule_id, r.title, r.positives, r.negatives, r.failures,
                           r.problems + (("id used by more than one rule",) if r.rule_id in duplicates else ()))
            for r in reports]
