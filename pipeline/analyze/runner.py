"""Runs every analyzer over every unique blob of an extraction tree.

Why here and not in the walker: unpacking and analysis are separate crafts
(``unpack/`` and ``analyze/`` never import each other), and the distributed
pipeline fans analysis out over batches of unique blobs. So the unit of work
is a ``Target`` — one sha256, whatever number of paths it appears at — and
the same busybox found in three places is analysed once.

Analyzers run on a thread pool: YARA, LIEF and capstone release the GIL in
their native code, so two cores give close to two-fold throughput on a real
rootfs. An analyzer that fails on one file is recorded as an ``AnalysisIssue``
and the rest goes on: one corrupt binary never costs the whole report.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pipeline.analyze.base import Analyzer, AnalyzerFailed, Target
from pipeline.analyze.registry import analyzers as registered_analyzers
from pipeline.model import Artifact, ArtifactKind, ExtractionTree, Finding
from pipeline.store import BlobStore

Progress = Callable[[int, int], None]  # (targets done, targets in all)


@dataclass(frozen=True)
class AnalysisIssue:
    """An analyzer could not analyse one blob; the report lists it under its limits."""

    sha256: str
    path: str
    analyzer: str
    error: str


@dataclass
class Analysis:
    """What the analyzers found in one tree: findings by blob sha256, and the failures."""

    findings: dict[str, list[Finding]] = field(default_factory=dict)
    issues: list[AnalysisIssue] = field(default_factory=list)
    targets: int = 0
    bytes: int = 0

    def findings_of(self, sha256: str) -> list[Finding]:
        return self.findings.get(sha256, [])


def targets_of(tree: ExtractionTree, store: BlobStore) -> list[Target]:
    """One Target per unique blob of the tree (symlinks have no bytes of their own), sorted by sha256."""
    names: dict[str, set[str]] = defaultdict(set)
    first: dict[str, Artifact] = {}
    parents = {a.parent for a in tree.artifacts if a.parent is not None}
    containers: set[str] = set()
    for artifact in tree.artifacts:
        if artifact.kind is ArtifactKind.SYMLINK:
            continue
        names[artifact.sha256].add(artifact.name)
        first.setdefault(artifact.sha256, artifact)
        if artifact.id in parents:
            containers.add(artifact.sha256)
    targets = []
    for sha256 in sorted(first):
        artifact = first[sha256]
        targets.append(Target(
            path=store.path(sha256), sha256=sha256, size=artifact.size, label=artifact.format,
            description=artifact.description, names=tuple(sorted(names[sha256])),
            container=sha256 in containers,
        ))
    return targets


def analyze_target(target: Target, analyzers: Iterable[Analyzer]) -> tuple[list[Finding], list[AnalysisIssue]]:
    """Every accepting analyzer on one target; findings sorted, failures recorded, never raised."""
    findings: list[Finding] = []
    issues: list[AnalysisIssue] = []
    for analyzer in analyzers:
        if not analyzer.accepts(target):
            continue
        try:
            findings.extend(analyzer.analyze(target))
        except AnalyzerFailed as exc:
            issues.append(AnalysisIssue(target.sha256, target.name, analyzer.name, str(exc)))
        except Exception as exc:  # a bug or a hostile file must not cost the other files their analysis
            issues.append(AnalysisIssue(target.sha256, target.name, analyzer.name,
                                        f"internal error: {type(exc).__name__}: {exc}"))
    findings.sort(key=Finding.sort_key)
    return findings, issues


def analyze_targets(targets: Sequence[Target], analyzers: Sequence[Analyzer] | None = None,
                    progress: Progress | None = None, workers: int | None = None) -> Analysis:
    """Analyse the given targets on a thread pool; the result does not depend on the scheduling."""
    chosen = tuple(analyzers) if analyzers is not None else registered_analyzers()
    analysis = Analysis(targets=len(targets), bytes=sum(t.size for t in targets))
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analyze") as pool:
        results = pool.map(lambda target: analyze_target(target, chosen), targets)
        for done, (target, (findings, issues)) in enumerate(zip(targets, results, strict=True), 1):
            if findings:
                analysis.findings[target.sha256] = findings
            analysis.issues.extend(issues)
            if progress:
                progress(done, len(targets))
    return analysis


def analyze_tree(tree: ExtractionTree, store: BlobStore, analyzers: Sequence[Analyzer] | None = None,
                 progress: Progress | None = None, workers: int | None = None) -> Analysis:
    """Analyse every unique blob of ``tree``."""
    return analyze_targets(targets_of(tree, store), analyzers, progress, workers)
