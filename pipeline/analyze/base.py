"""The contract every analyzer keeps, so the runner, the cache and the tests treat them alike.

An analyzer is a versioned, pure function of a file: it takes a ``Target``
(a blob in the store and what identification said about it) and returns
``Finding``s. It never touches the database or the network and never writes
files, which is what makes its results cacheable under
(sha256, analyzer name, analyzer version, ruleset digest). Bump ``version``
whenever a change could alter the findings of some file: that invalidates
exactly the cached results it must.

An analyzer is instantiated once per process and reused for every file, so
expensive set-up (compiled YARA rules, the Public Suffix List, a GeoIP
database) happens once; instances must be safe to call from several threads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.model import Finding


@dataclass(frozen=True)
class Target:
    """One unique blob to analyse.

    ``names`` are the in-image paths where the blob appears (the last part of
    each lineage, e.g. ``/etc/init.d/S99syncd``), sorted; ``container`` says
    whether the unpacker opened it (its contents are analysed as their own
    targets, so content scanners skip containers).
    """

    path: Path
    sha256: str
    size: int
    label: str
    description: str = ""
    names: tuple[str, ...] = ()
    container: bool = False

    @property
    def name(self) -> str:
        """The first in-image path, or the sha256 when the blob has no name."""
        return self.names[0] if self.names else self.sha256


class AnalyzerFailed(Exception):
    """An analyzer could not analyse a file it accepted; the runner records it as an analysis issue."""


class Analyzer(ABC):
    """Base of every analyzer; subclasses set ``name`` and ``version`` and implement the two methods.

    ``path_sensitive`` says the findings depend on ``Target.names`` (a config
    file is read as a crontab because of where it lives), so a cache must key
    them by names too. ``config_digest`` is folded into the cache key when
    results depend on configuration (the ruleset, a GeoIP database).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    path_sensitive: ClassVar[bool] = False

    @property
    def config_digest(self) -> str:
        return ""

    @abstractmethod
    def accepts(self, target: Target) -> bool:
        """Cheap test on the target's label, size and names; no I/O."""

    @abstractmethod
    def analyze(self, target: Target) -> list[Finding]:
        """The findings for one file; raise ``AnalyzerFailed`` with a readable reason when it cannot."""
