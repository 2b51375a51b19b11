"""Findings → behaviours per component → the image's verdict and score.

Why per component: AT commands, socket imports and URLs are each normal in
firmware (a modem stack, an update client). What betrays a backdoor is their
co-occurrence in one component — the same binary reads the IMEI *and* holds
a hard-coded endpoint *and* can send. A component is one file, except that
an application package (APK, JAR) and everything unpacked from it (its DEX
files, its manifest) form one component. Facts about a component found
elsewhere are linked to it: a boot script that starts ``/usr/sbin/syncd``
(a ``runs:/usr/sbin/syncd`` tag from the configs analyzer) adds its
persistence finding to the component whose path is ``/usr/sbin/syncd``.

The behaviour rules (rules/behaviours/*.yml, see pipeline/behaviour_rules.py)
decide which co-occurrences are behaviours; this module applies them, then
labels the image and scores it with the table below.

Known limitations: a component is a file, so a backdoor split over two
programs talking through a local socket or a file is seen as two halves, each
weaker than the whole; a raw dump whose bytes were not unpacked has no
components in those bytes.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.analyze.runner import Analysis
from pipeline.behaviour_rules import BehaviourRule
from pipeline.model import (
    CHANNELS,
    DATA_KINDS,
    LINEAGE_SEPARATOR,
    Artifact,
    ArtifactKind,
    Behaviour,
    Category,
    Confidence,
    ExtractionTree,
    Finding,
    Severity,
    Verdict,
    VerdictLabel,
)

WellKnown = Mapping[str, str]  # host or phone number → why open-source code embeds it

# Formats whose unpacked contents belong to the package itself: one component.
COMPONENT_FORMATS = frozenset({"apk", "jar"})
EVIDENCE_PER_FINDING = 5


@dataclass(frozen=True)
class ScoreFactor:
    """One line of the scoring table: a weight, how many times it may count, and why."""

    name: str
    weight: int
    cap: int
    reason: str


# The scoring model. The label comes from the behaviours' confidence (see ``verdict_label``); the
# 0-100 score orders the review queue within a label, so each weight says why it raises the risk.
BASE_SCORE = {
    Confidence.HIGH: 70,  # a high-confidence exfiltration pattern: a reviewer must look first
    Confidence.MEDIUM: 45,  # a pattern with an innocent reading as likely as the bad one
    Confidence.LOW: 20,  # worth a look when the queue allows
}
SCORE_FACTORS = (
    ScoreFactor("known-family", 15, 1, "an indicator of a publicly documented backdoor family: the risk is "
                                       "established, not inferred"),
    ScoreFactor("more-data", 4, 3, "each kind of personal data read beyond the first: more is taken from the owner"),
    ScoreFactor("encoded-endpoint", 5, 1, "an endpoint hidden by encoding: concealment from a casual look"),
    ScoreFactor("persistence", 5, 1, "the component is started at boot, respawned or scheduled: it runs "
                                     "without the user"),
    ScoreFactor("privileged", 5, 1, "runs as root or with the system uid: nothing on the device is out of reach"),
    ScoreFactor("more-components", 5, 2, "each further component with a behaviour: a design, not a slip"),
)
# Without any behaviour, isolated findings of medium or high severity still lift the score a little,
# so that among clean and incomplete images the ones with something odd come first in the queue.
ISOLATED_FINDING_WEIGHT = 3
ISOLATED_FINDING_CAP = 15


@dataclass
class Component:
    """One file (or one package with its contents) whose findings are read together."""

    sha256: str
    paths: list[str]  # every lineage path where these bytes appear, sorted
    names: set[str]  # the in-image paths (last lineage part) of those occurrences
    findings: list[Finding] = field(default_factory=list)
    origin: dict[Finding, str] = field(default_factory=dict)  # finding → lineage path it was found at


@dataclass
class Correlation:
    behaviours: list[Behaviour]
    endpoints: list[dict[str, Any]]
    verdict: Verdict


@functools.cache
def well_known_endpoints(path: Path) -> WellKnown:
    """The well-known endpoints list (rules/well-known-endpoints.yml): host → reason; empty if absent."""
    if not path.exists():
        return {}
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return {str(e["host"]).lower(): str(e["why"]) for e in entries}


def well_known_reason(host: str, well_known: WellKnown) -> str | None:
    """Why ``host`` (or a parent domain of it) is on the well-known list, or None."""
    labels = host.lower().split(".")
    for start in range(len(labels)):
        reason = well_known.get(".".join(labels[start:]))
        if reason:
            return reason
    return None


def _component_roots(tree: ExtractionTree) -> dict[int, Artifact]:
    """Artifact id → the artifact heading its component (the nearest package ancestor, else itself)."""
    by_id = {a.id: a for a in tree.artifacts}
    roots: dict[int, Artifact] = {}
    for artifact in tree.artifacts:
        root, node = artifact, artifact
        while node.parent is not None:
            node = by_id[node.parent]
            if node.format in COMPONENT_FORMATS:
                root = node
                break
        roots[artifact.id] = root
    return roots


def _link_config_facts(components: dict[str, Component], analysis: Analysis, paths: dict[str, list[str]]) -> None:
    """Give each component the configuration findings that name it (``runs:<path>``)."""
    by_name: dict[str, list[Component]] = defaultdict(list)
    for component in components.values():
        for name in component.names:
            by_name["/" + name.removeprefix("./").lstrip("/")].append(component)  # archive members: no "/"
    for sha256, findings in analysis.findings.items():
        for finding in findings:
            for tag in finding.tags:
                if not tag.startswith("runs:"):
                    continue
                for component in by_name.get(tag.removeprefix("runs:"), []):
                    if finding not in component.origin:
                        component.findings.append(finding)
                        component.origin[finding] = paths[sha256][0]


def components_of(tree: ExtractionTree, analysis: Analysis) -> list[Component]:
    """Every component with its findings, sorted by first path (deterministic)."""
    paths = tree.paths_by_sha256()
    roots = _component_roots(tree)
    components: dict[str, Component] = {}
    members: dict[str, set[str]] = defaultdict(set)
    for artifact in tree.artifacts:
        if artifact.kind is ArtifactKind.SYMLINK:
            continue
        root = roots[artifact.id]
        component = components.setdefault(root.sha256, Component(root.sha256, paths[root.sha256], set()))
        if root is artifact:
            component.names.add(artifact.name)
        members[root.sha256].add(artifact.sha256)
    for sha256, component in components.items():
        for member in sorted(members[sha256]):
            for finding in analysis.findings_of(member):
                if finding not in component.origin:
                    component.findings.append(finding)
                    component.origin[finding] = paths[member][0]
    _link_config_facts(components, analysis, paths)
    return sorted(components.values(), key=lambda c: c.paths[0])


def _ordered(values: set[str], order: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(values, key=lambda v: (order.index(v) if v in order else len(order), v)))


def _evidence(hits: Sequence[Finding], component: Component) -> tuple[dict[str, Any], ...]:
    entries = []
    for finding in dict.fromkeys(hits):  # unique, in rule order
        for item in finding.evidence[:EVIDENCE_PER_FINDING]:
            entry = {"rule": finding.rule, "path": component.origin[finding], **item.to_dict()}
            entries.append(entry)
    return tuple(entries)


def _behaviour(rule: BehaviourRule, component: Component, hits: Sequence[Finding]) -> Behaviour:
    endpoints = [f.endpoint for f in hits if f.endpoint is not None and f.endpoint.scope.remote]
    return Behaviour(
        id=f"{rule.id}@{component.sha256[:12]}",
        rule=rule.id,
        title=rule.title,
        confidence=rule.confidence,
        data=_ordered({d for f in hits for d in f.data}, DATA_KINDS),
        channels=_ordered({c for f in hits for c in f.channels}, CHANNELS),
        endpoints=tuple(sorted({e.host for e in endpoints})),
        countries=tuple(sorted({e.country for e in endpoints if e.country})),
        artifact_path=component.paths[0],
        artifact_sha256=component.sha256,
        evidence=_evidence(hits, component),
        attack=rule.attack,
        description=rule.description,
        benign=rule.benign,
        also_at=tuple(component.paths[1:]),
    )


def _not_a_destination(finding: Finding, well_known: WellKnown) -> bool:
    """An endpoint that no behaviour may name: a well-known credit, or one of a long list of names
    (a table of domains such as a copy of the Public Suffix List, tagged ``ioc:list``)."""
    return finding.endpoint is not None and (
        "ioc:list" in finding.tags or well_known_reason(finding.endpoint.host, well_known) is not None)


def find_behaviours(components: Sequence[Component], rules: Sequence[BehaviourRule],
                    well_known: WellKnown | None = None) -> list[Behaviour]:
    """Every (rule, component) match: most confident first, then the most data and endpoints (the one
    the summary names), then by path and rule (deterministic).

    Well-known endpoints (open-source credits, namespaces) and names from long lists are not a
    component's destination and take no part in the match.
    """
    behaviours = []
    for component in components:
        findings = [f for f in component.findings if not _not_a_destination(f, well_known or {})]
        if not findings:
            continue
        for rule in rules:
            hits = rule.evaluate(findings)
            if hits is not None:
                behaviours.append(_behaviour(rule, component, hits))
    rank = list(Confidence)
    return sorted(behaviours, key=lambda b: (rank.index(b.confidence), -len(b.data), -len(b.endpoints),
                                             b.artifact_path, b.rule))


def endpoint_table(tree: ExtractionTree, analysis: Analysis, well_known: WellKnown | None = None
                   ) -> list[dict[str, Any]]:
    """Every endpoint found in the image, with its country, every path that holds it, and why it is
    well known when it is."""
    paths = tree.paths_by_sha256()
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for sha256, findings in analysis.findings.items():
        for finding in findings:
            endpoint = finding.endpoint
            if endpoint is None:
                continue
            row = table.setdefault((endpoint.value, str(endpoint.kind)), {
                "value": endpoint.value, "kind": str(endpoint.kind), "scope": str(endpoint.scope),
                "host": endpoint.host, "country": endpoint.country, "encoded": False,
                "well_known": well_known_reason(endpoint.host, well_known or {}), "artifacts": set()})
            row["artifacts"].update(paths.get(sha256, []))
            row["encoded"] = row["encoded"] or any(t.startswith("encoded:") for t in finding.tags)
    rows = [dict(row, artifacts=sorted(row["artifacts"])) for row in table.values()]
    return sorted(rows, key=lambda r: (r["kind"], r["value"]))


def _factor_counts(behaviours: Sequence[Behaviour], components: Sequence[Component]) -> dict[str, int]:
    """How many times each scoring factor applies to the image."""
    flagged = {b.artifact_sha256 for b in behaviours}
    findings = [f for c in components if c.sha256 in flagged for f in c.findings]
    tags = {t for f in findings for t in f.tags}
    data = {d for b in behaviours for d in b.data if d != "device_info"}
    return {
        "known-family": int(any(f.category is Category.FAMILY for f in findings)),
        "more-data": max(len(data) - 1, 0),
        "encoded-endpoint": int(any(t.startswith("encoded:") for t in tags)),
        "persistence": int(any(f.category is Category.PERSISTENCE for f in findings)),
        "privileged": int(bool(tags & {"android:system-uid", "android:priv-app"}) or any(
            f.category is Category.PERSISTENCE and "config:root" in f.tags for f in findings)),
        "more-components": max(len(flagged) - 1, 0),
    }


def score(behaviours: Sequence[Behaviour], components: Sequence[Component]) -> int:
    """0-100 by the table above: the base of the most confident behaviour plus the factors that apply."""
    if not behaviours:
        isolated = {f.rule for c in components for f in c.findings if f.severity in (Severity.HIGH, Severity.MEDIUM)}
        return min(ISOLATED_FINDING_WEIGHT * len(isolated), ISOLATED_FINDING_CAP)
    base = max(BASE_SCORE[b.confidence] for b in behaviours)
    counts = _factor_counts(behaviours, components)
    bonus = sum(factor.weight * min(counts[factor.name], factor.cap) for factor in SCORE_FACTORS)
    return min(base + bonus, 100)


def verdict_label(behaviours: Sequence[Behaviour], covered: bool) -> VerdictLabel:
    """backdoor on any high-confidence behaviour; suspicious on any other; else clean only if all was covered."""
    if any(b.confidence is Confidence.HIGH for b in behaviours):
        return VerdictLabel.BACKDOOR
    if behaviours:
        return VerdictLabel.SUSPICIOUS
    return VerdictLabel.CLEAN if covered else VerdictLabel.INCOMPLETE


def _short(path: str) -> str:
    """The last part of a lineage path: the full path is in the report, the summary is one sentence."""
    return path.rsplit(LINEAGE_SEPARATOR, 1)[-1]


def _list(values: Sequence[str]) -> str:
    values = [v.replace("_", " ") for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _endpoint_names(behaviour: Behaviour, table: Sequence[dict[str, Any]]) -> list[str]:
    country = {row["value"]: row["country"] for row in table}
    return [f"{e} ({country[e]})" if country.get(e) else e for e in behaviour.endpoints]


def summary(label: VerdictLabel, behaviours: Sequence[Behaviour], tree: ExtractionTree, analysis: Analysis,
            table: Sequence[dict[str, Any]]) -> str:
    """The one sentence a reviewer reads first."""
    if behaviours:
        top = behaviours[0]
        name = _short(top.artifact_path)
        sentence = f"{name}: {top.title.rstrip('.')}"
        if top.data:
            sentence += f"; reads {_list(top.data)}"
        if top.channels:
            sentence += f", sends over {_list([c.upper() for c in top.channels])}"
        if top.endpoints:
            sentence += f" to {_list(_endpoint_names(top, table))}"
        others = len(behaviours) - 1
        return sentence + (f" (+{others} more behaviour{'s' * (others > 1)})." if others else ".")
    reached = f"{tree.coverage.reached_ratio:.0%}" if tree.coverage.bytes else "none"
    if label is VerdictLabel.CLEAN:
        unpacked = ("every byte of the image unpacked" if tree.coverage.reached_ratio >= 0.995 else
                    f"{reached} of the image's bytes unpacked into known formats, the rest analysed as raw data")
        return f"No exfiltration behaviour found in {analysis.targets} files; {unpacked}."
    reasons = [f"{_short(e.path)}: {e.error}" for e in tree.errors] + [
        f"{_short(i.path)}: {i.analyzer} failed: {i.error}" for i in analysis.issues]
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return (f"No exfiltration behaviour found, but the analysis is incomplete ({reached} of the image's bytes "
            f"reached): {reasons[0]}{more}.")


def correlate(tree: ExtractionTree, analysis: Analysis, rules: Sequence[BehaviourRule],
              well_known: WellKnown | None = None) -> Correlation:
    """The behaviours, the endpoint table and the verdict of one image."""
    components = components_of(tree, analysis)
    behaviours = find_behaviours(components, rules, well_known)
    table = endpoint_table(tree, analysis, well_known)
    covered = tree.complete and not analysis.issues
    label = verdict_label(behaviours, covered)
    verdict = Verdict(label, score(behaviours, components), summary(label, behaviours, tree, analysis, table))
    return Correlation(behaviours, table, verdict)
