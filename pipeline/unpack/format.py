"""The interface every format module implements.

A format is one small declarative unit: the magic bytes it starts from, the
binwalk signature descriptions that point to it inside a raw dump, how long a
chunk of it is when found at an offset, and ``extract``, which hands every
member to an ``Output``. Adding a format means adding one module under
``pipeline/unpack/formats/``; the registry finds it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar

from pipeline.config import Limits
from pipeline.unpack.output import Output


@dataclass(frozen=True)
class Magic:
    """Bytes expected at an offset of the file (or chunk) start."""

    offset: int
    value: bytes

    def found_in(self, head: bytes) -> bool:
        return head[self.offset : self.offset + len(self.value)] == self.value


@dataclass(frozen=True)
class Source:
    """A container to extract: its bytes in the store, read-only, and its name."""

    path: Path
    size: int
    name: str
    work_dir: Path  # a private scratch directory for external tools, removed afterwards
    siblings: Mapping[str, Path] = field(default_factory=dict)  # other members of the same container
    limits: Limits = field(default_factory=Limits)  # for formats that must bound an external tool

    def sibling(self, name: str) -> Path | None:
        """The stored bytes of a member next to this one (an OTA's data next to its transfer list)."""
        return self.siblings.get(name)

    def open(self) -> BinaryIO:
        return open(self.path, "rb")


class Format(ABC):
    """Base class of format modules; subclasses set the class attributes and ``extract``.

    - ``name``: short identifier used in the tree (``squashfs``, ``pac``...).
    - ``magics``: any of them at the start identifies the format.
    - ``rooted``: members are filesystem paths (shown with a leading ``/``).
    - ``binwalk``: regular expressions matched against binwalk signature
      descriptions, so a chunk of this format can be carved from a raw dump.
    - ``carve_magics``: magics searched at any offset by our own scan, for
      formats binwalk does not know.
    - ``priority``: when several formats match, the highest wins.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    magics: ClassVar[tuple[Magic, ...]] = ()
    rooted: ClassVar[bool] = False
    binwalk: ClassVar[tuple[re.Pattern[str], ...]] = ()
    carve_magics: ClassVar[tuple[bytes, ...]] = ()
    priority: ClassVar[int] = 0

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        """True when the file starting with ``head`` is of this format (``head`` is its first 64 KiB)."""
        return any(magic.found_in(head) for magic in cls.magics)

    @classmethod
    def label(cls, head: bytes, name: str) -> str:
        """The format label shown in the tree; a zip may say it is an ``apk``."""
        return cls.name

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        """Length of a valid chunk of this format at ``offset``, or None if it is not one.

        Used for carving; ``available`` is the number of bytes from ``offset``
        to the end of the container. Formats that cannot tell return None and
        are not carved.
        """
        return None

    @abstractmethod
    def extract(self, source: Source, out: Output) -> None:
        """Hand every member of ``source`` to ``out``; raise ValueError/OSError if it is not valid."""
