"""Format identification: our format modules' magics first, libmagic for everything else.

Our own magics decide whether a file is a container we can open (they know
formats libmagic and binwalk do not, such as Spreadtrum PAC). libmagic names
the leaves (ELF, text, SQLite...) so a report can say what each file is, and
tells us when a file is a container format we have no reader for.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import magic

from pipeline.unpack.format import Format
from pipeline.unpack.registry import all_formats

HEAD_SIZE = 64 * 1024
MAGIC_HEAD = 16 * 1024  # enough for libmagic's tests; its cost grows with the buffer

# libmagic descriptions of containers: seeing one with no reader of ours is an unsupported format.
_CONTAINER_DESCRIPTIONS = re.compile(
    r"^(RAR archive|ARJ archive|LHa|LHarc|ACE archive|StuffIt|Microsoft Cabinet|ISO 9660|QEMU QCOW|"
    r"VirtualBox Disk Image|VMware|InstallShield|UPX compressed|Microsoft Windows Installer)"
)

# Leaf labels from libmagic's description (one libmagic call per file: it costs ~1 ms each).
_LEAF_LABELS = (
    (re.compile(r"^ELF "), "elf"),
    (re.compile(r"^Dalvik dex"), "dex"),
    (re.compile(r"^SQLite"), "sqlite"),
    (re.compile(r"^compiled Java class"), "java-class"),
    (re.compile(r"^(PEM|OpenSSH|PGP|DER Encoded)"), "certificate"),
    (re.compile(r"^Android binary XML"), "android-xml"),
    (re.compile(r"^GNU message catalog"), "message-catalog"),
    (re.compile(r"\b(image data|bitmap|icon resource|SVG)"), "image"),
    (re.compile(r"\b(Audio|audio|MPEG|Ogg|RIFF)"), "media"),
    (re.compile(r"\b(font|Font)\b"), "font"),
    (re.compile(r"\b(text|script|source|XML|JSON|HTML|document)\b"), "text"),
    (re.compile(r"^empty$"), "empty"),
)


@dataclass(frozen=True)
class Identification:
    """What a file is: the format that opens it (if any) and its label and description."""

    format: type[Format] | None
    label: str
    description: str

    @property
    def unsupported_container(self) -> bool:
        return self.format is None and bool(_CONTAINER_DESCRIPTIONS.match(self.description))


_local = threading.local()


def _libmagic() -> magic.Magic:
    """One libmagic handle per thread: handles are not thread-safe, calls release the GIL."""
    handle = getattr(_local, "magic", None)
    if handle is None:
        handle = _local.magic = magic.Magic()
    return handle


def _leaf_label(description: str) -> str:
    for pattern, label in _LEAF_LABELS:
        if pattern.search(description):
            return label
    return "data"


_ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core file"}
_ELF_MACHINES = {3: "Intel 80386", 8: "MIPS", 20: "PowerPC", 40: "ARM", 62: "x86-64", 183: "ARM aarch64",
                 243: "RISC-V"}


def describe_elf(head: bytes) -> str | None:
    """A libmagic-style description of an ELF header, without libmagic's millisecond per file.

    ELF files are a large share of any rootfs; the ELF analyzer reads the
    details (linkage, interpreter, symbols) later with a real parser.
    """
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    order = "little" if head[5] == 1 else "big"
    kind = int.from_bytes(head[16:18], order)
    machine = int.from_bytes(head[18:20], order)
    return (f"ELF {32 * head[4]}-bit {'LSB' if order == 'little' else 'MSB'} "
            f"{_ELF_TYPES.get(kind, f'type {kind}')}, {_ELF_MACHINES.get(machine, f'machine {machine}')}")


def describe(head: bytes) -> str:
    """libmagic's description of a file starting with ``head`` (our own for ELF headers)."""
    if not head:
        return "empty"
    elf = describe_elf(head)
    if elf:
        return elf
    try:
        return _libmagic().from_buffer(head[:MAGIC_HEAD])
    except magic.MagicException as exc:  # libmagic gives up on some hostile headers
        return f"unidentified ({exc})"


def identify(head: bytes, size: int, name: str) -> Identification:
    """Identify a file from its first bytes, size and name (the name only breaks ties)."""
    for fmt in all_formats():
        if fmt.matches(head, size, name):
            return Identification(fmt, fmt.label(head, name), fmt.description or describe(head))
    description = describe(head)
    return Identification(None, _leaf_label(description), description)
