"""Finds every format module under ``pipeline/unpack/formats/``: adding a format is adding a file."""

from __future__ import annotations

import functools

from pipeline.plugins import discover
from pipeline.unpack import formats as formats_package
from pipeline.unpack.format import Format


@functools.cache
def all_formats() -> tuple[type[Format], ...]:
    """Every concrete Format subclass, highest priority first, then by name (deterministic)."""
    found = discover(formats_package, Format)
    return tuple(sorted(found.values(), key=lambda f: (-f.priority, f.name)))


def format_named(name: str) -> type[Format]:
    for fmt in all_formats():
        if fmt.name == name:
            return fmt
    raise KeyError(name)
