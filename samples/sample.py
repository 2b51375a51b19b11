"""What the generator says about each sample: what it contains and what a correct triage finds.

``samples/manifest.json`` is written from these records; the tests of every
stage (unpacking now, detection and reports later) read their expectations
from it, so the samples and their expected results cannot drift apart.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EPOCH = 1700000000  # fixed timestamp for every generated file: the generator is deterministic


@dataclass(frozen=True)
class Contains:
    """A file the unpacker must find.

    ``path_endswith``: the end of its lineage path (e.g. ``/usr/sbin/syncd``).
    ``formats``: when given, the format labels of its ancestors from the image
    root down to its parent, exactly as in the tree (e.g. ``["zip", "gzip",
    "tar", "uimage", "squashfs"]``).
    """

    path_endswith: str
    formats: list[str] | None = None


@dataclass(frozen=True)
class Expect:
    """What a correct triage of the sample concludes (for the detection and report stages)."""

    verdict: str  # backdoor | suspicious | clean | incomplete
    culprits: list[str] = field(default_factory=list)  # lineage path endings of the guilty files
    endpoints: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)  # imei, imsi, sms, contacts, call_log, location...
    channels: list[str] = field(default_factory=list)  # http, https, tcp, udp, sms, dns, mqtt...


@dataclass(frozen=True)
class Sample:
    file: str  # relative to samples/out
    category: str  # linux | android | featurephone | control | hostile
    description: str
    expect: Expect
    contains: list[Contains] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)  # format labels that must appear in the tree
    extraction_complete: bool = True
    errors: list[str] = field(default_factory=list)  # regexes; each must match one extraction error
    notes: list[str] = field(default_factory=list)  # regexes; each must match one extraction note
    platform: dict[str, str] = field(default_factory=dict)  # expected platform fields (chipset, os)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BuildContext:
    """Where the generator writes, and the one way it runs tools (deterministic environment)."""

    root: Path  # samples/
    out: Path  # samples/out: generated images
    cache: Path  # samples/cache: downloaded packages, compiled programs, staging trees

    def run(self, *command: str | Path, cwd: Path | None = None, **kwargs: Any) -> subprocess.CompletedProcess:
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run([str(c) for c in command], cwd=cwd, env=env, check=True,
                              capture_output=True, **kwargs)

    def fix_mtimes(self, tree: Path) -> None:
        """Give every file of a staging tree the same timestamp, so images are reproducible."""
        for path in sorted(tree.rglob("*"), reverse=True):
            os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
        os.utime(tree, (EPOCH, EPOCH))
