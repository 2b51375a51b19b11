"""The vocabulary of fwtriage: plain dataclasses shared by every layer.

Nothing here does I/O or imports another part of the package, so the
extraction tree built by a worker can be serialised, cached, sent through a
queue and rebuilt anywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

LINEAGE_SEPARATOR = " › "


class ArtifactKind(StrEnum):
    """What an artifact is in its parent, which says how it was obtained."""

    IMAGE = "image"  # the submitted image itself, the root of the tree
    FILE = "file"  # a member of an archive or filesystem, or a decompressed stream
    CARVED = "carved"  # a chunk found at an offset by a signature scan
    PARTITION = "partition"  # a named region of a container (PAC entry, super.img partition...)
    SYMLINK = "symlink"  # recorded with its target, never followed


class IssueKind(StrEnum):
    """Why part of an image was not covered; each makes the tree incomplete."""

    LIMIT = "limit"  # a quota was hit: depth, bytes, files, ratio, time, carves
    FAILURE = "failure"  # an extractor could not parse what it claimed to recognise
    UNDECODABLE = "undecodable"  # encrypted, unknown compression, ALICE, high-entropy data
    UNSUPPORTED = "unsupported"  # a recognised format variant we have no reader for


class NoteKind(StrEnum):
    """Things worth a reviewer's eye that did not reduce coverage."""

    UNSAFE_NAME = "unsafe-name"  # a member name was sanitised (traversal, absolute, control chars)
    ESCAPING_LINK = "escaping-link"  # a symlink or hard link points outside its container
    SPECIAL_FILE = "special-file"  # device node, FIFO or socket: recorded, not extracted
    DUPLICATE = "duplicate"  # a recursion stopped because a container contains itself


@dataclass(frozen=True)
class Coverage:
    """How the bytes of one container were accounted for.

    ``bytes == unpacked + carved + padding + unknown + undecodable``. Padding
    (erased flash, zero fill) is reached but holds nothing; unknown is
    low-entropy data no reader claimed; undecodable is high-entropy data
    (encrypted or compressed in a way we cannot decode).
    """

    bytes: int = 0
    unpacked: int = 0
    carved: int = 0
    padding: int = 0
    unknown: int = 0
    undecodable: int = 0

    @property
    def reached(self) -> int:
        return self.unpacked + self.carved + self.padding

    @property
    def reached_ratio(self) -> float:
        return 1.0 if self.bytes == 0 else self.reached / self.bytes


@dataclass(frozen=True)
class ExtractionIssue:
    """Part of the image that was not covered, with the reason a reviewer reads."""

    path: str
    error: str
    kind: IssueKind
    extractor: str | None = None


@dataclass(frozen=True)
class ExtractionNote:
    """Something the extraction saw and handled safely, kept for the report."""

    path: str
    note: str
    kind: NoteKind


@dataclass
class Platform:
    """The device platform, as far as the image tells it."""

    os: str | None = None
    chipset: str | None = None
    how: str | None = None


@dataclass
class Artifact:
    """One node of the extraction tree: a file, a carved chunk, a partition or a symlink.

    The bytes live once in the content-addressed store under ``sha256``; the
    same blob found at several paths gives several artifacts with one sha256.
    """

    id: int
    parent: int | None
    lineage: tuple[str, ...]
    sha256: str
    size: int
    kind: ArtifactKind
    depth: int
    format: str = "data"
    description: str = ""
    offset: int | None = None
    extractor: str | None = None
    link_target: str | None = None
    coverage: Coverage | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.lineage[-1]

    @property
    def lineage_path(self) -> str:
        return LINEAGE_SEPARATOR.join(self.lineage)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lineage"] = list(self.lineage)
        data["path"] = self.lineage_path
        return data


@dataclass
class ExtractionTree:
    """Everything unpacking produced for one image, and what it could not cover."""

    image_sha256: str
    artifacts: list[Artifact] = field(default_factory=list)
    errors: list[ExtractionIssue] = field(default_factory=list)
    notes: list[ExtractionNote] = field(default_factory=list)
    platform: Platform = field(default_factory=Platform)
    coverage: Coverage = field(default_factory=Coverage)

    @property
    def complete(self) -> bool:
        return not self.errors

    @property
    def max_depth(self) -> int:
        return max((a.depth for a in self.artifacts), default=0)

    @property
    def root(self) -> Artifact:
        return self.artifacts[0]

    def children(self, artifact_id: int) -> list[Artifact]:
        return [a for a in self.artifacts if a.parent == artifact_id]

    def find(self, lineage_path: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.lineage_path == lineage_path), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_sha256": self.image_sha256,
            "complete": self.complete,
            "artifacts": len(self.artifacts),
            "unique_blobs": len({a.sha256 for a in self.artifacts}),
            "max_depth": self.max_depth,
            "coverage": asdict(self.coverage),
            "platform": asdict(self.platform),
            "errors": [asdict(e) for e in self.errors],
            "notes": [asdict(n) for n in self.notes],
            "tree": [a.to_dict() for a in self.artifacts],
        }
