"""Finds every format module under ``pipeline/unpack/formats/``: adding a format is adding a file.

``register`` adds a format defined elsewhere (a test's hostile reader) until ``unregister``; the isolated
unpacker hands ``registered()`` to its child process, so both isolation modes see the same formats.
"""

from __future__ import annotations

import functools

from pipeline.plugins import discover
from pipeline.unpack import formats as formats_package
from pipeline.unpack.format import Format

_registered: list[type[Format]] = []


@functools.cache
def all_formats() -> tuple[type[Format], ...]:
    """Every concrete Format subclass, highest priority first, then by name (deterministic)."""
    found = discover(formats_package, Format)
    return tuple(sorted([*found.values(), *_registered], key=lambda f: (-f.priority, f.name)))


def format_named(name: str) -> type[Format]:
    for fmt in all_formats():
        if fmt.name == name:
            return fmt
    raise KeyError(name)


def registered() -> tuple[type[Format], ...]:
    """The formats added with ``register``, in the order they were added."""
    return tuple(_registered)


def register(fmt: type[Format]) -> None:
    if fmt not in _registered:
        _registered.append(fmt)
        all_formats.cache_clear()


def unregister(fmt: type[Format]) -> None:
    if fmt in _registered:
        _registered.remove(fmt)
        all_formats.cache_clear()
