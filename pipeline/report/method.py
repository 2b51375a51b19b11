"""What a report states about its method: the tools and versions used, and what each analyzer cannot do.

Why in the report: a forensic report must name the method precisely enough
for another examiner to repeat it (ISO/IEC 17025 §7.8.2), and the limits of
each check belong beside the results, not in the source code only. The
analyzers' "Known limitations" are read from their module docstrings, so the
report and the code can never disagree.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import platform
from typing import Any

from pipeline import __version__
from pipeline.analyze.registry import analyzer_classes
from pipeline.config import Isolation, Limits
from pipeline.unpack.safety import bubblewrap_available

_LIMITS_HEADING = "Known limitations"
# Libraries whose version changes what is found; the distribution name as pip knows it.
_LIBRARIES = {"yara": "yara-python", "lief": "lief", "binwalk": "binwalk", "capstone": "capstone",
              "androguard": "androguard", "geoip2fast": "geoip2fast", "phonenumbers": "phonenumbers",
              "tldextract": "tldextract"}


def _version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_versions(ruleset_digest: str) -> dict[str, object]:
    """The ``tools`` block of the report: fwtriage, the libraries that decide findings, the ruleset and analyzers."""
    tools: dict[str, object] = {"fwtriage": __version__, "python": platform.python_version()}
    tools.update({name: _version_of(distribution) for name, distribution in _LIBRARIES.items()})
    tools["ruleset_digest"] = ruleset_digest
    tools["analyzers"] = {cls.name: cls.version for cls in analyzer_classes()}
    return tools


def isolation_in_force(isolation: Isolation, limits: Limits) -> dict[str, Any]:
    """The report's ``isolation`` block: how the image's readers and external extractors were confined.

    A hostile image is an attack on the lab's machine as much as evidence; a report says what stood between
    them, so a reader of it knows whether a crash or a runaway reader could have touched the worker.
    """
    bounds: dict[str, Any] = {"tool_memory": limits.tool_memory, "extractor_seconds": limits.extractor_seconds}
    if not isolation.in_process:
        bounds.update(reader_memory=max(isolation.memory, limits.tool_memory),
                      reader_cpu_seconds=isolation.cpu_seconds, reader_wall_seconds=isolation.wall_seconds)
    return {"readers": isolation.mode, "extractors": "bubblewrap" if bubblewrap_available() else "rlimits only",
            "limits": bounds}


def known_limitations(docstring: str | None) -> str:
    """The "Known limitations" section of a module docstring: its heading line's rest and the lines under it,
    up to the first unindented paragraph after a blank line (the next section)."""
    lines = inspect.cleandoc(docstring or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(_LIMITS_HEADING)), None)
    if start is None:
        return ""
    kept = [lines[start][len(_LIMITS_HEADING):].lstrip(": ")]
    after_blank = False
    for line in lines[start + 1:]:
        if after_blank and line and not line[0].isspace() and not line.startswith("-"):
            break
        after_blank = not line.strip()
        kept.append(line)
    return inspect.cleandoc("\n".join(kept))


@functools.cache
def analyzer_methods() -> tuple[dict[str, str], ...]:
    """Each analyzer's name, version, one-line purpose and known limitations, for the report's Method section."""
    methods = []
    for cls in analyzer_classes():
        doc = inspect.getmodule(cls).__doc__ if inspect.getmodule(cls) else None
        methods.append({"name": cls.name, "version": cls.version,
                        "purpose": inspect.cleandoc(doc or "").split("\n", 1)[0],
                        "limitations": known_limitations(doc)})
    return tuple(methods)
