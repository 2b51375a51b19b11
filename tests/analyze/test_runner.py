"""The analysis runner under a time limit that strikes inside an analyzer (the fleet's soft time limit)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

from pipeline.analyze.base import Analyzer, Target
from pipeline.analyze.runner import analyze_target
from pipeline.model import Finding


class TimeUp(Exception):
    """What a time limit raises in the middle of the running code, as Celery's soft limit does."""


class Recording(Analyzer):
    """Accepts every file and records that it ran; ``raising`` is what its analysis raises."""

    version: ClassVar[str] = "1"

    def __init__(self, name: str, raising: type[Exception] | None = None) -> None:
        self.name, self.raising, self.ran = name, raising, 0  # type: ignore[misc]

    def accepts(self, target: Target) -> bool:
        return True

    def analyze(self, target: Target) -> list[Finding]:
        self.ran += 1
        if self.raising:
            raise self.raising("struck in the middle of the file")
        return []


def _target(tmp_path: Path) -> Target:
    blob = tmp_path / "blob"
    blob.write_bytes(b"\x7fELF some bytes")
    return Target(path=blob, sha256=hashlib.sha256(blob.read_bytes()).hexdigest(), size=15, label="elf")


def test_an_analyzer_stopped_by_the_time_limit_is_not_analysed_and_nothing_more_starts(tmp_path: Path) -> None:
    struck, next_one = Recording("struck", TimeUp), Recording("next")
    result = analyze_target(_target(tmp_path), [struck, next_one], interrupts=(TimeUp,))
    assert [(issue.analyzer, issue.error) for issue in result.issues] == [
        ("struck", "not analysed: the analysis time limit interrupted it"),
        ("next", "not analysed: the analysis time budget ran out before this file's turn")]
    assert (struck.ran, next_one.ran, result.calls) == (1, 0, 1)


def test_the_same_exception_from_an_analyzer_outside_a_time_limit_is_its_own_failure(tmp_path: Path) -> None:
    """Without the time limit's exception named, it is a bug of that analyzer; the others still run."""
    struck, next_one = Recording("struck", TimeUp), Recording("next")
    result = analyze_target(_target(tmp_path), [struck, next_one])
    assert [(issue.analyzer, issue.error) for issue in result.issues] == [
        ("struck", "internal error: TimeUp: struck in the middle of the file")]
    assert (struck.ran, next_one.ran) == (1, 1)
