"""Finds every format module under ``pipeline/unpack/formats/``: adding a format is adding a file."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

from pipeline.unpack import formats as formats_package
from pipeline.unpack.format import Format


@functools.cache
def all_formats() -> tuple[type[Format], ...]:
    """Every concrete Format subclass, highest priority first, then by name (deterministic)."""
    found: dict[str, type[Format]] = {}
    for module_info in pkgutil.iter_modules(formats_package.__path__):
        if module_info.name.startswith("_"):  # shared helpers, not formats
            continue
        module = importlib.import_module(f"{formats_package.__name__}.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Format) and obj.__module__ == module.__name__ and not inspect.isabstract(obj):
                if obj.name in found:
                    raise RuntimeError(f"two formats are named {obj.name!r}")
                found[obj.name] = obj
    return tuple(sorted(found.values(), key=lambda f: (-f.priority, f.name)))


def format_named(name: str) -> type[Format]:
    for fmt in all_formats():
        if fmt.name == name:
            return fmt
    raise KeyError(name)
