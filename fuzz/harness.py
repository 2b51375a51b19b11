"""The atheris entry point shared by the ``fuzz_*.py`` harnesses: one target, coverage-guided by libFuzzer.

Our parsers (``pipeline``) are instrumented for coverage as they are
imported; the target's property (``fuzz.targets``) decides what a crash is:
an undocumented exception or a ``PropertyViolation`` stops libFuzzer, which
saves the input under ``-artifact_prefix``.
"""

from __future__ import annotations

import sys


def main(name: str) -> None:
    import atheris  # not a dependency of fwtriage: installed for fuzzing only (``make fuzz``)

    with atheris.instrument_imports(include=["pipeline"]):
        from fuzz.targets import TARGETS

    atheris.Setup(sys.argv, TARGETS[name].run)
    atheris.Fuzz()
