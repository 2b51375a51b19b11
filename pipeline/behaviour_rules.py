"""Declarative exfiltration patterns: ``rules/behaviours/*.yml`` loaded, checked and evaluated.

Why data and not Python: the patterns are the lab's knowledge, reviewed and
extended by analysts who read YAML, and each carries the examples it must
match, so a test proves every rule against the samples (the spirit of capa's
rule format and quark's source-to-sink rules, made for firmware).

A rule names what one component must show::

    id: exfil.personal-data-to-remote
    title: Reads personal data and sends it to a hard-coded remote endpoint
    confidence: high                        # high | medium | low
    attack: [T1426, T1437]                  # MITRE ATT&CK ids
    description: ...                        # what the pattern means
    benign: ...                             # the innocent explanation to weigh
    match:
      all:
        - data: [imei, imsi, sms]           # a finding reads one of these ("any": any data kind)
        - channel: any                      # a finding can send (or a list of channels)
        - endpoint: remote                  # a hard-coded endpoint: remote | any | {kind: [...], scope: remote}
    examples: [{sample: linux-rootfs-backdoor.squashfs, component: /usr/sbin/syncd}]
    counterexamples: [{sample: router-netupdate.squashfs, component: /usr/bin/netupdate}]

Conditions: ``all`` / ``any`` (lists) and ``not`` (one condition) combine the
leaves ``data``, ``channel``, ``endpoint``, ``tag`` and ``rule`` (glob
patterns, e.g. ``tag: "yara:featurephone.*"``), ``category`` and ``severity``;
``finding`` (a mapping of leaves) needs one finding that satisfies all of
them at once, e.g. ``finding: {rule: "elf:raw-syscalls", severity: medium}``.
A leaf is
satisfied by the findings of the component that carry the feature; those
findings become the behaviour's evidence. ``optional`` (one condition) always
holds and only gathers evidence: ``optional: {data: any}`` puts every data
kind the component reads into the behaviour, not just the ones it needed.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.model import CHANNELS, DATA_KINDS, Category, Confidence, EndpointKind, Finding, Scope, Severity

LEAVES = ("data", "channel", "endpoint", "tag", "rule", "category", "severity")
RULE_FIELDS = {"id", "title", "confidence", "attack", "description", "benign", "match", "examples",
               "counterexamples"}
REQUIRED_FIELDS = ("id", "title", "confidence", "attack", "description", "benign", "match", "examples")


class RuleError(ValueError):
    """A behaviour rule file is malformed; the message names the file and the fault."""


@dataclass(frozen=True)
class Example:
    """A sample (by file name in samples/manifest.json) and the component path the rule must (not) match."""

    sample: str
    component: str


@dataclass(frozen=True)
class BehaviourRule:
    id: str
    title: str
    confidence: Confidence
    attack: tuple[str, ...]
    description: str
    benign: str
    condition: Any  # the parsed ``match`` tree, validated
    examples: tuple[Example, ...]
    counterexamples: tuple[Example, ...]
    source: str

    def evaluate(self, findings: Sequence[Finding]) -> list[Finding] | None:
        """The findings that satisfy the rule in one component (each once), or None if it does not match."""
        found = _evaluate(self.condition, findings)
        return None if found is None else list(dict.fromkeys(found))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _endpoint_test(spec: Any) -> tuple[set[str] | None, bool]:
    """(kinds allowed or None for any, remote only?) from ``remote`` | ``any`` | {kind, scope}."""
    if spec == "remote":
        return None, True
    if spec == "any":
        return None, False
    kinds = {str(k) for k in _as_list(spec.get("kind", []))} or None
    return kinds, spec.get("scope", "any") == "remote"


def _leaf_matches(key: str, spec: Any, finding: Finding) -> bool:
    if key == "data":
        return bool(finding.data) and (spec == "any" or bool(set(finding.data) & set(_as_list(spec))))
    if key == "channel":
        return bool(finding.channels) and (spec == "any" or bool(set(finding.channels) & set(_as_list(spec))))
    if key == "endpoint":
        if finding.endpoint is None:
            return False
        kinds, remote_only = _endpoint_test(spec)
        return (kinds is None or str(finding.endpoint.kind) in kinds) and (
            not remote_only or finding.endpoint.scope.remote)
    if key == "tag":
        return any(fnmatch.fnmatchcase(tag, pattern) for pattern in _as_list(spec) for tag in finding.tags)
    if key == "rule":
        return any(fnmatch.fnmatchcase(finding.rule, pattern) for pattern in _as_list(spec))
    if key == "severity":
        return str(finding.severity) in {str(s) for s in _as_list(spec)}
    return str(finding.category) in {str(c) for c in _as_list(spec)}  # category


def _evaluate(condition: dict[str, Any], findings: Sequence[Finding]) -> list[Finding] | None:
    (key, spec), = condition.items()
    if key == "all":
        evidence: list[Finding] = []
        for part in spec:
            found = _evaluate(part, findings)
            if found is None:
                return None
            evidence.extend(found)
        return evidence
    if key == "any":
        evidence = []
        matched = False
        for part in spec:
            found = _evaluate(part, findings)
            if found is not None:
                matched = True
                evidence.extend(found)
        return evidence if matched else None
    if key == "not":
        return None if _evaluate(spec, findings) is not None else []
    if key == "optional":
        return _evaluate(spec, findings) or []
    if key == "finding":
        hits = [f for f in findings if all(_leaf_matches(k, v, f) for k, v in spec.items())]
        return hits or None
    hits = [f for f in findings if _leaf_matches(key, spec, f)]
    return hits or None


def _check_leaf(key: str, spec: Any, where: str) -> None:
    allowed = {"data": DATA_KINDS, "channel": CHANNELS, "category": tuple(c.value for c in Category),
               "severity": tuple(s.value for s in Severity)}
    if key in allowed:
        if spec == "any" and key in ("data", "channel"):
            return
        unknown = [v for v in _as_list(spec) if v not in allowed[key]]
        if unknown:
            raise RuleError(f"{where}: unknown {key} {unknown}; allowed: {', '.join(allowed[key])}")
    elif key == "endpoint":
        if spec in ("remote", "any"):
            return
        if not isinstance(spec, dict) or set(spec) - {"kind", "scope"}:
            raise RuleError(f"{where}: endpoint is 'remote', 'any' or {{kind: [...], scope: remote|any}}")
        kinds = {k.value for k in EndpointKind}
        if any(k not in kinds for k in _as_list(spec.get("kind", []))):
            raise RuleError(f"{where}: endpoint kind must be among {', '.join(sorted(kinds))}")
        if spec.get("scope", "any") not in ("remote", "any", *(s.value for s in Scope)):
            raise RuleError(f"{where}: endpoint scope {spec.get('scope')!r} is unknown")
    elif not isinstance(spec, str | list) or not all(isinstance(v, str) for v in _as_list(spec)):
        raise RuleError(f"{where}: {key} takes a string or a list of strings")


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict) or len(condition) != 1:
        raise RuleError(f"{where}: a condition is a mapping with exactly one key, got {condition!r}")
    (key, spec), = condition.items()
    if key in ("all", "any"):
        if not isinstance(spec, list) or not spec:
            raise RuleError(f"{where}: {key} takes a non-empty list of conditions")
        for part in spec:
            _check_condition(part, where)
    elif key in ("not", "optional"):
        _check_condition(spec, where)
    elif key == "finding":
        if not isinstance(spec, dict) or not spec or set(spec) - set(LEAVES):
            raise RuleError(f"{where}: finding takes a mapping of {', '.join(LEAVES)}")
        for leaf, value in spec.items():
            _check_leaf(leaf, value, where)
    elif key in LEAVES:
        _check_leaf(key, spec, where)
    else:
        raise RuleError(f"{where}: unknown condition {key!r}; "
                        f"use all, any, not, optional, finding or {', '.join(LEAVES)}")


def _examples(raw: Any, where: str) -> tuple[Example, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(e, dict) and set(e) == {"sample", "component"}
                                            for e in raw):
        raise RuleError(f"{where}: examples are a list of {{sample: FILE, component: PATH}}")
    return tuple(Example(str(e["sample"]), str(e["component"])) for e in raw)


def parse_rule(raw: Any, source: str) -> BehaviourRule:
    """One rule from its YAML mapping, validated; raises RuleError naming what is wrong."""
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: a rule is a mapping")
    where = f"{source}: rule {raw.get('id', '?')}"
    missing = [f for f in REQUIRED_FIELDS if f not in raw]
    if missing:
        raise RuleError(f"{where}: missing {', '.join(missing)}")
    unknown = set(raw) - RULE_FIELDS
    if unknown:
        raise RuleError(f"{where}: unknown fields {sorted(unknown)}")
    if raw["confidence"] not in {c.value for c in Confidence}:
        raise RuleError(f"{where}: confidence must be high, medium or low")
    _check_condition(raw["match"], where)
    examples = _examples(raw["examples"], where)
    if not examples:
        raise RuleError(f"{where}: a rule needs at least one example it must match")
    return BehaviourRule(
        id=str(raw["id"]), title=str(raw["title"]), confidence=Confidence(raw["confidence"]),
        attack=tuple(str(a) for a in _as_list(raw["attack"])), description=" ".join(str(raw["description"]).split()),
        benign=" ".join(str(raw["benign"]).split()), condition=raw["match"], examples=examples,
        counterexamples=_examples(raw.get("counterexamples"), where), source=source,
    )


def load_rules(paths: Iterable[Path]) -> tuple[BehaviourRule, ...]:
    """Every rule of the given YAML files (each a list of rules), sorted by id; ids must be unique."""
    rules: dict[str, BehaviourRule] = {}
    for path in sorted(paths):
        try:
            documents = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RuleError(f"{path.name}: not valid YAML: {exc}") from exc
        for raw in _as_list(documents or []):
            rule = parse_rule(raw, path.name)
            if rule.id in rules:
                raise RuleError(f"{path.name}: rule id {rule.id} is also in {rules[rule.id].source}")
            rules[rule.id] = rule
    return tuple(rules[i] for i in sorted(rules))


@functools.cache
def behaviour_rules(directory: Path) -> tuple[BehaviourRule, ...]:
    """The behaviour rules of ``directory`` (``*.yml``), loaded once per process."""
    return load_rules(directory.glob("*.yml"))
