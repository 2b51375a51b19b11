"""Finds every analyzer module under ``pipeline/analyze/``: adding an analyzer is adding a file.

Instances are created once per process (they hold compiled rules and
databases) and shared by every file and thread.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

import pipeline.analyze as analyze_package
from pipeline.analyze.base import Analyzer

_NOT_ANALYZERS = frozenset({"base", "registry", "runner"})


@functools.cache
def analyzer_classes() -> tuple[type[Analyzer], ...]:
    """Every concrete Analyzer subclass, sorted by name (deterministic)."""
    found: dict[str, type[Analyzer]] = {}
    for module_info in pkgutil.iter_modules(analyze_package.__path__):
        if module_info.name.startswith("_") or module_info.name in _NOT_ANALYZERS:
            continue
        module = importlib.import_module(f"{analyze_package.__name__}.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Analyzer) and obj.__module__ == module.__name__ and not inspect.isabstract(obj):
                if obj.name in found:
                    raise RuntimeError(f"two analyzers are named {obj.name!r}")
                found[obj.name] = obj
    return tuple(sorted(found.values(), key=lambda cls: cls.name))


@functools.cache
def analyzers() -> tuple[Analyzer, ...]:
    """One shared instance of every analyzer."""
    return tuple(cls() for cls in analyzer_classes())


def analyzer_versions() -> dict[str, str]:
    return {cls.name: cls.version for cls in analyzer_classes()}
