"""Finds every analyzer module under ``pipeline/analyze/``: adding an analyzer is adding a file.

Instances are created once per process (they hold compiled rules and
databases) and shared by every file and thread.
"""

from __future__ import annotations

import functools

import pipeline.analyze as analyze_package
from pipeline.analyze.base import Analyzer
from pipeline.plugins import discover

_NOT_ANALYZERS = frozenset({"base", "registry", "runner"})


@functools.cache
def analyzer_classes() -> tuple[type[Analyzer], ...]:
    """Every concrete Analyzer subclass, sorted by name (deterministic)."""
    found = discover(analyze_package, Analyzer, _NOT_ANALYZERS)
    return tuple(sorted(found.values(), key=lambda cls: cls.name))


@functools.cache
def analyzers() -> tuple[Analyzer, ...]:
    """One shared instance of every analyzer."""
    return tuple(cls() for cls in analyzer_classes())


def analyzer_versions() -> dict[str, str]:
    return {cls.name: cls.version for cls in analyzer_classes()}
