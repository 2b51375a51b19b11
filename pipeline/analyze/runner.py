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

Analyzers read blobs straight from the store by path, so before the first
analyzer runs on a blob the runner re-hashes it: a blob rotted or altered on
disk since it was stored is reported as such (the verdict becomes incomplete),
never analysed as if it were the evidence. Cached results need no re-read.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.analyze.base import Analyzer, AnalyzerFailed, Target
from pipeline.analyze.registry import analyzers as registered_analyzers
from pipeline.model import Artifact, ArtifactKind, CacheKey, ExtractionTree, Finding
from pipeline.store import BlobStore, file_sha256

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
    computed: int = 0  # (blob, analyzer) pairs analysed now
    reused: int = 0  # (blob, analyzer) pairs served from the cache
    calls: int = 0  # analyzer runs made now, failed ones included (what the cache exists to save)

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


class ResultCache(Protocol):
    """Findings already computed, by key; the database implements it (the runner never touches one)."""

    def cached_findings(self, keys: Sequence[CacheKey]) -> dict[CacheKey, list[Finding]]: ...
    def remember_findings(self, results: Mapping[CacheKey, list[Finding]]) -> None: ...


def cache_key(target: Target, analyzer: Analyzer) -> CacheKey:
    config = analyzer.config_digest
    if analyzer.path_sensitive:
        names = hashlib.sha256("\0".join(target.names).encode()).hexdigest()
        config = f"{config}|names:{names}"
    return CacheKey(target.sha256, analyzer.name, analyzer.version, config)


def cache_keys(targets: Sequence[Target], analyzers: Sequence[Analyzer]) -> dict[tuple[str, str], CacheKey]:
    """The cache key of every (blob sha256, analyzer name) pair whose analyzer accepts the blob."""
    return {(t.sha256, a.name): cache_key(t, a) for t in targets for a in analyzers if a.accepts(t)}


@dataclass
class TargetResult:
    """One blob's findings (cached and new), its failures, the new findings by analyzer (for the cache), and
    how many analyzers actually ran."""

    findings: list[Finding]
    issues: list[AnalysisIssue]
    fresh: dict[str, list[Finding]]
    calls: int = 0


def out_of_time(target: Target, analyzer: Analyzer) -> AnalysisIssue:
    return AnalysisIssue(target.sha256, target.name, analyzer.name,
                         "not analysed: the analysis time budget ran out before this file's turn")


def blob_damage(target: Target) -> str | None:
    """Why the target's bytes in the store cannot be analysed as the evidence (gone, or no longer hashing to its
    sha256); None when they are intact."""
    try:
        actual = file_sha256(target.path)
    except OSError as exc:
        return f"blob unreadable in the store: {exc}"
    if actual != target.sha256:
        return f"blob corrupted on disk: it now hashes to {actual}, not to its name"
    return None


def analyze_target(target: Target, analyzers: Iterable[Analyzer],
                   cached: Mapping[str, list[Finding]] | None = None,
                   settled: Mapping[str, AnalysisIssue] | None = None,
                   deadline: float | None = None,
                   interrupts: tuple[type[BaseException], ...] = ()) -> TargetResult:
    """Every accepting analyzer on one target, but those whose findings are ``cached`` and those whose failure
    is already ``settled`` (both by analyzer name); findings sorted, failures recorded (never cached: a later
    version may do better), never raised. Past ``deadline`` (``time.monotonic()``) nothing more is started.
    The blob is verified before the first analyzer runs; a damaged one is recorded as an issue of each analyzer.

    ``interrupts`` are the exceptions a time limit raises inside whatever runs (a Celery task's soft limit): an
    analyzer they stop is recorded as not analysed, not as a bug of its own, and nothing more is started."""
    result = TargetResult([], [], {})
    damage: str | None = None
    verified = False
    for analyzer in analyzers:
        if not analyzer.accepts(target):
            continue
        if cached is not None and analyzer.name in cached:
            result.findings.extend(cached[analyzer.name])
            continue
        if settled is not None and analyzer.name in settled:
            result.issues.append(settled[analyzer.name])
            continue
        if deadline is not None and time.monotonic() > deadline:
            result.issues.append(out_of_time(target, analyzer))
            continue
        if not verified:
            damage, verified = blob_damage(target), True
        if damage is not None:
            result.issues.append(AnalysisIssue(target.sha256, target.name, analyzer.name, damage))
            continue
        result.calls += 1
        try:
            found = analyzer.analyze(target)
        except AnalyzerFailed as exc:
            result.issues.append(AnalysisIssue(target.sha256, target.name, analyzer.name, str(exc)))
            continue
        except interrupts:
            result.issues.append(AnalysisIssue(target.sha256, target.name, analyzer.name,
                                               "not analysed: the analysis time limit interrupted it"))
            deadline = 0.0  # the time is up: the other analyzers are not started
            continue
        except Exception as exc:  # a bug or a hostile file must not cost the other files their analysis
            result.issues.append(AnalysisIssue(target.sha256, target.name, analyzer.name,
                                               f"internal error: {type(exc).__name__}: {exc}"))
            continue
        result.fresh[analyzer.name] = found
        result.findings.extend(found)
    result.findings.sort(key=Finding.sort_key)
    return result


def analyze_targets(targets: Sequence[Target], analyzers: Sequence[Analyzer] | None = None,
                    progress: Progress | None = None, workers: int | None = None,
                    cache: ResultCache | None = None, settled: Sequence[AnalysisIssue] = (),
                    deadline: float | None = None, interrupts: tuple[type[BaseException], ...] = ()) -> Analysis:
    """Analyse the given targets on a thread pool; the result does not depend on the scheduling.

    With a ``cache``, findings already computed for a (blob, analyzer, version, configuration) are reused
    and the new ones remembered, so the same busybox in 300 images is analysed once. ``settled`` failures
    (recorded by an earlier pass over the same targets) are reported again instead of being retried; past
    ``deadline`` the remaining (blob, analyzer) pairs are recorded as not analysed, as is an analyzer stopped by
    one of the ``interrupts`` (see ``analyze_target``).
    """
    chosen = tuple(analyzers) if analyzers is not None else registered_analyzers()
    analysis = Analysis(targets=len(targets), bytes=sum(t.size for t in targets))
    keys = cache_keys(targets, chosen) if cache else {}
    hits = cache.cached_findings(list(keys.values())) if cache else {}
    cached = {t.sha256: {a.name: hits[keys[t.sha256, a.name]] for a in chosen if keys.get((t.sha256, a.name)) in hits}
              for t in targets}
    analysis.reused = len(hits)
    failed: dict[str, dict[str, AnalysisIssue]] = defaultdict(dict)
    for issue in settled:
        failed[issue.sha256][issue.analyzer] = issue
    fresh: dict[CacheKey, list[Finding]] = {}
    workers = workers or os.cpu_count() or 1

    def run(target: Target) -> TargetResult:
        return analyze_target(target, chosen, cached[target.sha256], failed.get(target.sha256), deadline, interrupts)

    # One worker runs in the calling thread: a signal-driven time limit (a Celery task's) then interrupts the
    # analyzer itself, which records it, instead of a thread that is only waiting for the pool.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analyze") as pool:
        results = map(run, targets) if workers == 1 else pool.map(run, targets)
        for done, (target, result) in enumerate(zip(targets, results, strict=True), 1):
            if result.findings:
                analysis.findings[target.sha256] = result.findings
            analysis.issues.extend(result.issues)
            fresh.update({keys[target.sha256, name]: found for name, found in result.fresh.items() if keys})
            analysis.computed += len(result.fresh)
            analysis.calls += result.calls
            if progress:
                progress(done, len(targets))
    if cache and fresh:
        cache.remember_findings(fresh)
    return analysis


def analyze_tree(tree: ExtractionTree, store: BlobStore, analyzers: Sequence[Analyzer] | None = None,
                 progress: Progress | None = None, workers: int | None = None,
                 cache: ResultCache | None = None) -> Analysis:
    """Analyse every unique blob of ``tree``."""
    return analyze_targets(targets_of(tree, store), analyzers, progress, workers, cache)
