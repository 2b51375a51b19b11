"""Correlation on hand-made findings: components, linking, behaviour rules, verdict and score."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analyze.runner import Analysis, AnalysisIssue
from pipeline.behaviour_rules import RuleError, load_rules, parse_rule
from pipeline.correlate import BASE_SCORE, SCORE_FACTORS, components_of, correlate
from pipeline.model import (
    Artifact,
    ArtifactKind,
    Category,
    Confidence,
    Endpoint,
    EndpointKind,
    Evidence,
    ExtractionIssue,
    ExtractionTree,
    Finding,
    IssueKind,
    Scope,
    Severity,
    VerdictLabel,
)

CORE = {
    "id": "test.core", "title": "Reads data and sends it", "confidence": "high", "attack": ["T1437"],
    "description": "d", "benign": "b", "examples": [{"sample": "s", "component": "c"}],
    "match": {"all": [{"data": ["imei"]}, {"channel": "any"}, {"endpoint": "remote"}, {"optional": {"data": "any"}}]},
}


def _artifact(id_: int, parent: int | None, lineage: tuple[str, ...], sha: str, fmt: str = "elf") -> Artifact:
    return Artifact(id=id_, parent=parent, lineage=lineage, sha256=sha, size=10, kind=ArtifactKind.FILE,
                    depth=len(lineage) - 1, format=fmt)


def _tree(*artifacts: Artifact, errors: tuple[ExtractionIssue, ...] = ()) -> ExtractionTree:
    root = Artifact(id=0, parent=None, lineage=("img",), sha256="root", size=100, kind=ArtifactKind.IMAGE,
                    depth=0, format="squashfs")
    return ExtractionTree(image_sha256="root", artifacts=[root, *artifacts], errors=list(errors))


def _finding(rule: str, *, data: tuple[str, ...] = (), channels: tuple[str, ...] = (), endpoint: str | None = None,
             scope: Scope = Scope.PUBLIC, tags: tuple[str, ...] = (), category: Category = Category.PROPERTY,
             severity: Severity = Severity.LOW, country: str | None = None) -> Finding:
    return Finding(rule=rule, analyzer="test", category=category, severity=severity, title=rule, data=data,
                   channels=channels, tags=tags, evidence=(Evidence("string", rule, 16),),
                   endpoint=Endpoint(endpoint, EndpointKind.DOMAIN, scope, endpoint, country) if endpoint else None)


IMEI = _finding("yara:imei", data=("imei",), category=Category.DATA_SOURCE)
HTTP = _finding("yara:http", channels=("http",), category=Category.CHANNEL)
REMOTE = _finding("ioc:domain", endpoint="c2.example.cn", country="CN", category=Category.ENDPOINT)
PRIVATE = _finding("ioc:domain", endpoint="router.lan", scope=Scope.LOCAL, category=Category.ENDPOINT)


def test_core_pattern_needs_all_three_in_one_component() -> None:
    rule = parse_rule(CORE, "t.yml")
    assert rule.evaluate([IMEI, HTTP, REMOTE]) == [IMEI, HTTP, REMOTE]
    assert rule.evaluate([IMEI, HTTP]) is None
    assert rule.evaluate([IMEI, HTTP, PRIVATE]) is None, "a local endpoint is not a destination abroad"
    assert rule.evaluate([HTTP, REMOTE]) is None


def test_not_and_any_and_globs() -> None:
    raw = dict(CORE, match={"all": [{"any": [{"tag": "family:*"}, {"rule": "yara:im*"}]},
                                     {"not": {"tag": "config:root"}}]})
    rule = parse_rule(raw, "t.yml")
    assert rule.evaluate([IMEI]) == [IMEI]
    rooted = _finding("configs:boot", tags=("config:root",))
    assert rule.evaluate([IMEI, rooted]) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"confidence": "certain"}, "confidence"),
    ({"match": {"all": [{"data": ["passwords"]}]}}, "unknown data"),
    ({"match": {"every": []}}, "unknown condition"),
    ({"match": {"all": []}}, "non-empty list"),
    ({"match": {"endpoint": {"kind": ["pigeon"]}}}, "endpoint kind"),
    ({"examples": []}, "at least one example"),
    ({"colour": "red"}, "unknown fields"),
])
def test_malformed_rules_are_refused_with_a_reason(change: dict, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule(dict(CORE, **change), "t.yml")


def test_duplicate_ids_across_files_are_refused(tmp_path: Path) -> None:
    import yaml

    for name in ("a.yml", "b.yml"):
        (tmp_path / name).write_text(yaml.safe_dump([CORE]))
    with pytest.raises(RuleError, match=r"also in a\.yml"):
        load_rules(tmp_path.glob("*.yml"))


def test_a_package_and_its_contents_are_one_component() -> None:
    apk = _artifact(1, 0, ("img", "/app/x.apk"), "apk", fmt="apk")
    dex = _artifact(2, 1, ("img", "/app/x.apk", "classes.dex"), "dex", fmt="dex")
    lone = _artifact(3, 0, ("img", "/bin/tool"), "tool")
    analysis = Analysis(findings={"apk": [HTTP], "dex": [IMEI, REMOTE], "tool": [IMEI]})
    components = {c.paths[0]: c for c in components_of(_tree(apk, dex, lone), analysis)}
    assert set(components["img › /app/x.apk"].findings) == {HTTP, IMEI, REMOTE}
    assert components["img › /app/x.apk"].origin[REMOTE] == "img › /app/x.apk › classes.dex"
    assert components["img › /bin/tool"].findings == [IMEI]


def test_boot_scripts_are_linked_to_the_program_they_start() -> None:
    script = _artifact(1, 0, ("img", "/etc/init.d/S99x"), "script", fmt="text")
    program = _artifact(2, 0, ("img", "/usr/sbin/x"), "program")
    boot = _finding("configs:boot-service", tags=("config:boot-service", "config:root", "runs:/usr/sbin/x"),
                    category=Category.PERSISTENCE)
    analysis = Analysis(findings={"script": [boot], "program": [IMEI, HTTP, REMOTE]})
    result = correlate(_tree(script, program), analysis, [parse_rule(CORE, "t.yml")])
    component = {c.paths[0]: c for c in components_of(_tree(script, program), analysis)}["img › /usr/sbin/x"]
    assert boot in component.findings
    (behaviour,) = result.behaviours
    assert behaviour.artifact_path == "img › /usr/sbin/x"
    assert (behaviour.data, behaviour.channels, behaviour.endpoints, behaviour.countries) == (
        ("imei",), ("http",), ("c2.example.cn",), ("CN",))
    persistence = next(f for f in SCORE_FACTORS if f.name == "persistence").weight
    privileged = next(f for f in SCORE_FACTORS if f.name == "privileged").weight
    assert result.verdict.score == BASE_SCORE[Confidence.HIGH] + persistence + privileged
    assert result.verdict.label is VerdictLabel.BACKDOOR
    assert result.verdict.summary.startswith("/usr/sbin/x: Reads data and sends it; reads imei")
    assert "c2.example.cn (CN)" in result.verdict.summary


def test_the_same_blob_at_two_paths_is_one_behaviour() -> None:
    first = _artifact(1, 0, ("img", "/bin/a"), "same")
    second = _artifact(2, 0, ("img", "/sbin/b"), "same")
    result = correlate(_tree(first, second), Analysis(findings={"same": [IMEI, HTTP, REMOTE]}),
                       [parse_rule(CORE, "t.yml")])
    (behaviour,) = result.behaviours
    assert (behaviour.artifact_path, behaviour.also_at) == ("img › /bin/a", ("img › /sbin/b",))
    assert result.endpoints == [{"value": "c2.example.cn", "kind": "domain", "scope": "public",
                                 "host": "c2.example.cn", "country": "CN", "encoded": False,
                                 "well_known": None, "artifacts": ["img › /bin/a", "img › /sbin/b"]}]


def test_nothing_found_is_clean_only_when_everything_was_covered() -> None:
    tool = _artifact(1, 0, ("img", "/bin/tool"), "tool")
    rules = [parse_rule(CORE, "t.yml")]
    assert correlate(_tree(tool), Analysis(findings={"tool": [HTTP]}, targets=2), rules).verdict.label \
        is VerdictLabel.CLEAN
    cut = ExtractionIssue("img › blob", "encrypted", IssueKind.UNDECODABLE)
    verdict = correlate(_tree(tool, errors=(cut,)), Analysis(), rules).verdict
    assert verdict.label is VerdictLabel.INCOMPLETE and "blob: encrypted" in verdict.summary
    failed = Analysis(issues=[AnalysisIssue("tool", "/bin/tool", "elf", "truncated")])
    assert correlate(_tree(tool), failed, rules).verdict.label is VerdictLabel.INCOMPLETE


def test_medium_behaviours_make_an_image_suspicious_not_a_backdoor() -> None:
    tool = _artifact(1, 0, ("img", "/bin/tool"), "tool")
    medium = parse_rule(dict(CORE, confidence="medium"), "t.yml")
    verdict = correlate(_tree(tool), Analysis(findings={"tool": [IMEI, HTTP, REMOTE]}), [medium]).verdict
    assert (verdict.label, verdict.score) == (VerdictLabel.SUSPICIOUS, BASE_SCORE[Confidence.MEDIUM])


def test_isolated_findings_lift_a_clean_score_a_little() -> None:
    tool = _artifact(1, 0, ("img", "/bin/tool"), "tool")
    odd = _finding("elf:packed", severity=Severity.MEDIUM, category=Category.OBFUSCATION)
    verdict = correlate(_tree(tool), Analysis(findings={"tool": [odd]}), [parse_rule(CORE, "t.yml")]).verdict
    assert (verdict.label, verdict.score) == (VerdictLabel.CLEAN, 3)


def test_a_finding_condition_needs_one_finding_with_every_feature() -> None:
    raw = dict(CORE, match={"finding": {"rule": "elf:raw-*", "severity": "medium"}})
    rule = parse_rule(raw, "t.yml")
    weak = _finding("elf:raw-syscalls", severity=Severity.LOW)
    strong = _finding("elf:raw-syscalls", severity=Severity.MEDIUM)
    other = _finding("yara:x", severity=Severity.MEDIUM)
    assert rule.evaluate([weak, other]) is None
    assert rule.evaluate([weak, strong]) == [strong]
    with pytest.raises(RuleError, match="finding takes"):
        parse_rule(dict(CORE, match={"finding": {"colour": "red"}}), "t.yml")


def test_well_known_endpoints_are_listed_but_are_no_destination() -> None:
    tool = _artifact(1, 0, ("img", "/bin/tool"), "tool")
    credit = _finding("ioc:domain", endpoint="www.dkuug.dk", category=Category.ENDPOINT)
    well_known = {"dkuug.dk": "glibc's C locale credits"}
    rules = [parse_rule(CORE, "t.yml")]
    result = correlate(_tree(tool), Analysis(findings={"tool": [IMEI, HTTP, credit]}), rules, well_known)
    assert result.behaviours == []
    assert result.endpoints[0]["well_known"] == "glibc's C locale credits"
    both = correlate(_tree(tool), Analysis(findings={"tool": [IMEI, HTTP, credit, REMOTE]}), rules, well_known)
    assert both.behaviours[0].endpoints == ("c2.example.cn",)
