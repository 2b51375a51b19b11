"""Discovery of the units that are added by adding a file: formats and analyzers.

One module per unit in a package; modules whose name starts with ``_`` are
shared helpers. Discovery is deterministic and refuses two units of one name.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import Any, TypeVar

Unit = TypeVar("Unit", bound=type)


def discover(package: ModuleType, base: Unit, skip: frozenset[str] = frozenset()) -> dict[str, Unit]:
    """Every concrete subclass of ``base`` defined in a module of ``package``, by its ``name``."""
    found: dict[str, Any] = {}
    for module_info in pkgutil.iter_modules(package.__path__):
        if module_info.name.startswith("_") or module_info.name in skip:
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, base) and obj.__module__ == module.__name__ and not inspect.isabstract(obj):
                if obj.name in found:
                    raise RuntimeError(f"two {base.__name__.lower()}s are named {obj.name!r}")
                found[obj.name] = obj
    return found
