"""Format identification: our format modules' magics first, libmagic for everything else.

Our own magics decide whether a file is a container we can open (they know
formats libmagic and binwalk do not, such as Spreadtrum PAC). libmagic names
the leaves (ELF, text, SQLite...) so a report can say what each file is, and
tells us when a file is a container format we have no reader for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import magic

from pipeline.unpack.format import Format
from pipeline.unpack.registry import all_formats

HEAD_SIZE = 64 * 1024

# libmagic MIME types of containers: seeing one with no reader of ours is an unsupported format.
_CONTAINER_MIMES = (
    "application/x-rar",
    "application/vnd.rar",
    "application/x-arj",
    "application/x-lzh-compressed",
    "application/x-ace-compressed",
    "application/x-stuffit",
    "application/vnd.ms-cab-compressed",
    "application/x-iso9660-image",
    "application/x-qemu-disk",
    "application/x-virtualbox-vdi",
)

_LEAF_LABELS = (
    ("application/x-executable", "elf"),
    ("application/x-sharedlib", "elf"),
    ("application/x-pie-executable", "elf"),
    ("application/x-object", "elf"),
    ("application/x-coredump", "elf"),
    ("application/vnd.sqlite3", "sqlite"),
    ("application/x-sqlite3", "sqlite"),
    ("application/x-dex", "dex"),
    ("application/x-java-applet", "java-class"),
    ("application/x-x509-ca-cert", "certificate"),
    ("application/x-empty", "empty"),
    ("inode/x-empty", "empty"),
    ("application/octet-stream", "data"),
)


@dataclass(frozen=True)
class Identification:
    """What a file is: the format that opens it (if any) and its label and description."""

    format: type[Format] | None
    label: str
    description: str
    mime: str

    @property
    def unsupported_container(self) -> bool:
        return self.format is None and self.mime in _CONTAINER_MIMES


@functools.cache
def _libmagic() -> tuple[magic.Magic, magic.Magic]:
    return magic.Magic(), magic.Magic(mime=True)


def _leaf_label(mime: str, description: str) -> str:
    if description.startswith("ELF"):
        return "elf"
    if description.startswith("Dalvik dex"):
        return "dex"
    for prefix, label in _LEAF_LABELS:
        if mime == prefix:
            return label
    major, _, minor = mime.partition("/")
    if major in ("text", "image", "audio", "video", "font"):
        return major
    return minor.removeprefix("x-") or "data"


def describe(head: bytes) -> tuple[str, str]:
    """libmagic's description and MIME type of a file starting with ``head``."""
    if not head:
        return "empty", "application/x-empty"
    text_magic, mime_magic = _libmagic()
    try:
        return text_magic.from_buffer(head), mime_magic.from_buffer(head)
    except magic.MagicException as exc:  # libmagic gives up on some hostile headers
        return f"unidentified ({exc})", "application/octet-stream"


def identify(head: bytes, size: int, name: str) -> Identification:
    """Identify a file from its first bytes, size and name (the name only breaks ties)."""
    description, mime = describe(head)
    for fmt in all_formats():
        if fmt.matches(head, size, name):
            return Identification(fmt, fmt.label(head, name), fmt.description or description, mime)
    return Identification(None, _leaf_label(mime, description), description, mime)
