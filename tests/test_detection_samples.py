"""Detection on the bundled samples: every planted backdoor found whole, every clean control clean.

The expectations come from samples/manifest.json (written by the generator
next to each planted behaviour), so a sample and what it must yield are
defined in one place. Whole results are compared: a missing endpoint, an
extra one, or a wrong verdict fails.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.behaviour_rules import Example, behaviour_rules
from pipeline.config import Detection
from pipeline.correlate import components_of
from pipeline.model import Behaviour
from pipeline.triage import Triage
from tests.conftest import SAMPLES

MANIFEST = __import__("json").loads((SAMPLES / "manifest.json").read_text())["samples"]
RULES = behaviour_rules(Detection().behaviours_dir)


def _at(behaviour: Behaviour, path_end: str) -> bool:
    return any(p.endswith(path_end) for p in (behaviour.artifact_path, *behaviour.also_at))


@pytest.mark.parametrize("sample", MANIFEST, ids=[s["file"] for s in MANIFEST])
def test_verdict_matches_the_manifest(sample: dict, sample_triages: Callable[[str], Triage]) -> None:
    result = sample_triages(sample["file"])
    expect = sample["expect"]
    verdict = result.correlation.verdict
    assert str(verdict.label) == expect["verdict"], verdict.summary
    behaviours = result.correlation.behaviours
    if expect["verdict"] != "backdoor":
        assert behaviours == [], [b.to_dict() for b in behaviours]
        return
    for culprit in expect["culprits"]:
        assert any(_at(b, culprit) for b in behaviours), f"no behaviour at {culprit}"
    assert {b.artifact_sha256 for b in behaviours} == {
        b.artifact_sha256 for b in behaviours if any(_at(b, c) for c in expect["culprits"])}, "behaviour elsewhere"
    assert sorted({e for b in behaviours for e in b.endpoints}) == sorted(expect["endpoints"])
    assert sorted({c for b in behaviours for c in b.countries}) == sorted(expect["countries"])
    assert set(expect["data"]) <= {d for b in behaviours for d in b.data}
    assert set(expect["channels"]) <= {c for b in behaviours for c in b.channels}
    assert verdict.score >= 70
    assert verdict.summary.count("›") <= 1 and any(e in verdict.summary for e in expect["endpoints"])


def test_backdoors_score_above_every_clean_control(sample_triages: Callable[[str], Triage]) -> None:
    scores = {s["file"]: sample_triages(s["file"]).correlation.verdict.score for s in MANIFEST}
    backdoors = [scores[s["file"]] for s in MANIFEST if s["expect"]["verdict"] == "backdoor"]
    others = [scores[s["file"]] for s in MANIFEST if s["expect"]["verdict"] != "backdoor"]
    assert min(backdoors) > max(others)


EXAMPLES = [(rule.id, example, True) for rule in RULES for example in rule.examples] + [
    (rule.id, example, False) for rule in RULES for example in rule.counterexamples]


@pytest.mark.parametrize(("rule_id", "example", "must_match"), EXAMPLES,
                         ids=[f"{r}-{'match' if m else 'nomatch'}-{e.sample}:{e.component}" for r, e, m in EXAMPLES])
def test_behaviour_rule_examples(rule_id: str, example: Example, must_match: bool,
                                 sample_triages: Callable[[str], Triage]) -> None:
    result = sample_triages(example.sample)
    rule = next(r for r in RULES if r.id == rule_id)
    components = [c for c in components_of(result.tree, result.analysis)
                  if any(p.endswith(example.component) for p in c.paths)]
    assert components, f"{example.component} is not a component of {example.sample}"
    matched = [c for c in components if rule.evaluate(c.findings) is not None]
    assert bool(matched) is must_match
