"""The report of one submission, as the ``fwtriage.report/1`` contract (ARCHITECTURE.md) says.

Why a canonical part: a lab must be able to show that the same image,
analysed again with the same tools and rules, gives the same result. So the
report has two parts. The *result* — tools, verdict, platform, extraction,
analysis, behaviours, endpoints, findings — holds no timestamp and no
random id, every list in it is sorted, and ``report_digest`` is the sha256 of
its canonical JSON (sorted keys, no whitespace). The *record* — report id,
submission metadata, times, chain of custody, review — says who, when and
what was received; it is kept out of the digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from pipeline.analyze.ruleset import Ruleset
from pipeline.ingest import Custody, utc_now
from pipeline.model import ExtractionTree, Finding, Submission
from pipeline.report.method import analyzer_methods, tool_versions
from pipeline.triage import Triage

SCHEMA_ID = "fwtriage.report/1"
DIGESTED = ("schema", "image_sha256", "tools", "verdict", "platform", "extraction", "analysis", "behaviours",
            "endpoints", "findings")
# What a static triage never does; the Limits section states it in every report.
STATIC_ONLY = (
    "Static analysis only: no program of the image was run, emulated or observed on a device.",
    "No endpoint was contacted or resolved; countries come from offline data (GeoIP, numbering plans, ccTLDs) "
    "and say where an address is registered, not who operates it.",
    "Behaviours are patterns of co-occurring capabilities in one component (file or application), not traced "
    "data flows; a confidence says how strongly the evidence supports the pattern, never what its author intended.",
    "The results apply only to the item examined, identified by the hashes above.",
)


def _evidence(item: dict[str, Any]) -> dict[str, Any]:
    """One evidence entry with an explicit offset (null when the evidence is not a byte range)."""
    return {"offset": None, **item}


def _finding_entry(finding: Finding, paths: Sequence[str], sha256: str) -> dict[str, Any]:
    entry = finding.to_dict()
    entry["artifact"] = {"path": paths[0], "sha256": sha256}
    entry["also_at"] = list(paths[1:])
    entry["evidence"] = [_evidence(e) for e in entry["evidence"]]
    return entry


def findings_of(result: Triage) -> list[dict[str, Any]]:
    """Every finding, once per blob, at the blob's first path; sorted by path then rule (deterministic)."""
    paths = result.tree.paths_by_sha256()
    entries = [_finding_entry(finding, paths[sha256], sha256)
               for sha256, findings in result.analysis.findings.items() for finding in findings]
    return sorted(entries, key=lambda e: (e["artifact"]["path"], e["rule"],
                                          (e["endpoint"] or {}).get("value", ""), e["title"]))


def _tree_entries(tree: ExtractionTree) -> list[dict[str, Any]]:
    """The extraction tree, flat (``parent`` links), with what a reviewer needs to find each node again."""
    return [{"id": a.id, "parent": a.parent, "path": a.lineage_path, "name": a.name, "sha256": a.sha256,
             "size": a.size, "kind": str(a.kind), "format": a.format, "description": a.description,
             "offset": a.offset, "extractor": a.extractor, "link_target": a.link_target, "depth": a.depth}
            for a in tree.artifacts]


def extraction_of(tree: ExtractionTree) -> dict[str, Any]:
    coverage = asdict(tree.coverage)
    coverage["reached_ratio"] = round(tree.coverage.reached_ratio, 6)
    return {
        "complete": tree.complete,
        "artifacts": len(tree.artifacts),
        "unique_blobs": len({a.sha256 for a in tree.artifacts}),
        "max_depth": tree.max_depth,
        "coverage": coverage,
        "errors": [{**asdict(e), "kind": str(e.kind)} for e in tree.errors],
        "notes": [{**asdict(n), "kind": str(n.kind)} for n in tree.notes],
        "tree": _tree_entries(tree),
    }


def analysis_of(result: Triage) -> dict[str, Any]:
    issues = sorted((asdict(i) for i in result.analysis.issues), key=lambda i: (i["path"], i["analyzer"]))
    return {"files": result.analysis.targets, "bytes": result.analysis.bytes, "issues": issues}


def limits_of(rules: Ruleset) -> dict[str, Any]:
    """What this method could not do, in general and for this run (beyond the extraction's own errors)."""
    return {
        "skipped_rules": [{"path": str(s.path), "namespace": s.namespace, "reason": s.reason} for s in rules.skipped],
        "statements": list(STATIC_ONLY),
        "analyzers": list(analyzer_methods()),
    }


def report_digest(report: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the report's result part (see the module docstring)."""
    canonical = {key: report[key] for key in DIGESTED}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def build_report(submission: Submission, result: Triage, custody: Custody, rules: Ruleset,
                 lab: str | None = None, review: dict[str, Any] | None = None,
                 isolation: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole report of one submission; ``report_digest`` filled last, over the result part.

    ``isolation`` (``method.isolation_in_force``) says how the image was kept from the worker; it describes the
    machine, not the image, so like the record it stays out of the digest.
    """
    tree = result.tree
    report: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "report": {"id": f"FWT-{submission.id}", "built_at": utc_now(), "lab": lab},
        "submission": submission.to_dict(),
        "custody": {"received_at": submission.received_at, "stored_copy": custody.to_dict()},
        "image_sha256": submission.sha256,
        "tools": tool_versions(rules.digest),
        "verdict": result.correlation.verdict.to_dict(),
        "platform": asdict(tree.platform),
        "extraction": extraction_of(tree),
        "analysis": analysis_of(result),
        "behaviours": [b.to_dict() for b in result.correlation.behaviours],
        "endpoints": result.correlation.endpoints,
        "findings": findings_of(result),
        "limits": limits_of(rules),
        "isolation": isolation,
        "review": review,
    }
    for behaviour in report["behaviours"]:
        behaviour["evidence"] = [_evidence(e) for e in behaviour["evidence"]]
    report["report_digest"] = report_digest(report)
    return report
