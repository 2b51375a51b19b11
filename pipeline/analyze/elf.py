"""ELF binaries: what they are, what they link against, whether they are packed, and the syscalls of static ones.

Detection use cases:

- Facts a reviewer and the behaviour rules need about every binary:
  architecture, word size, byte order, type, static or dynamic linkage,
  stripped or not, interpreter, needed libraries, entropy of the code and data
  sections (``elf:info``, tags ``elf:arch:<arch>``, ``elf:static`` /
  ``elf:dynamic``, ``elf:stripped``, ``elf:type:<type>``).
- Packers: a UPX header (``elf:packed-upx``) or executable bytes with the
  entropy of compressed data and no known packer (``elf:packed``).
- Network capability from the dynamic imports and needed libraries
  (``elf:network-imports``): sockets, name resolution, libcurl, TLS
  libraries, MQTT clients, with the channels they imply.
- Data-access imports that give context to what the YARA rules see in the
  strings: SQLite databases (``elf:sqlite-imports``) and serial-line set-up,
  the way to a modem's AT command port (``elf:serial-imports``).
- Static binaries, which import nothing, are searched for system calls whose
  number is a constant in the code (``elf:raw-syscalls``, see
  ``_elf_syscalls``): an implant that calls ``socket``/``sendto`` through
  ``svc 0`` has nothing else to betray it.

How: the ELF header, section and program header tables, the dynamic
section and the dynamic symbols are read directly (struct and numpy over a
few ``pread`` calls: a 100 MB library costs milliseconds); LIEF parses only
dynamic files whose section headers are gone (``sstrip``), where the dynamic
symbols must be found from the program headers. Entropy is measured over up
to 1 MiB of each section (16 chunks of 64 KiB spread over large ones). The
machine code of dynamically linked binaries is never disassembled.

Severities: the facts are ``info``; imports, UPX and the syscalls of static
binaries that go through wrapper-shaped code are ``low`` (sockets are normal
in firmware: update clients, NTP, busybox applets, a statically linked C
library); executable code with packed-data entropy and no known packer, and
network syscalls trapped inline in ordinary code of a stripped static binary
(a program that bypasses its C library) are ``medium``: unusual and usually
deliberate, but not proof.

Known limitations:

- Imports say what a program can call, not what it does; the channel is
  inferred from the function names (``connect``/``send`` without any datagram
  call is taken as TCP even when the socket is UDP, ``sendto`` as UDP), and a
  program that resolves functions at run time (``dlsym``) shows none.
- The YARA rules, not this analyzer, read the strings (modem device paths, AT
  commands, SMS databases, ``/proc`` identifiers); nothing here ties a string to
  the code that uses it.
- Packed binaries: the packed program's imports, strings and syscalls are not
  visible; nothing is unpacked.
- Syscall recovery: see ``_elf_syscalls`` (constant numbers only, short linear
  windows, ARM little-endian, AArch64 and MIPS only). A stripped static binary
  does not say which code is its C library: the shape of the code around a
  trap (a wrapper's entry and return, or neither) stands in for it, so an
  implant that calls libc's ``socket()`` or writes its own one-trap wrapper
  functions is rated ``low`` like any static program, and a C library that
  inlines network traps into larger functions would be rated ``medium``.
- Imports are the undefined function symbols of ``.dynsym``, including the
  ones with a PLT address as value (LIEF leaves those out); ``exports`` counts
  defined global or weak functions.
- A file whose ELF header is invalid or truncated gives only ``elf:unparseable``;
  section or program header tables that run past the end of the file are
  reported (``elf:truncated``) and what lies within the file is still analysed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

import lief
import numpy as np

from pipeline.analyze import _elf_syscalls as syscalls
from pipeline.analyze.base import Analyzer, Target
from pipeline.model import Category, Evidence, Finding, Severity

lief.logging.disable()

ANALYZER = "elf"

_TYPES = {1: "rel", 2: "exec", 3: "dyn", 4: "core"}
_TYPE_WORDS = {"rel": "relocatable object", "exec": "executable", "dyn": "shared object", "core": "core dump"}
_ARCHES = {
    2: "sparc", 3: "x86", 8: "mips", 10: "mips", 18: "sparc", 20: "ppc", 21: "ppc64", 40: "arm", 42: "sh",
    43: "sparc", 62: "x86_64", 83: "avr", 94: "xtensa", 164: "hexagon", 183: "aarch64", 243: "riscv",
    258: "loongarch",
}  # fmt: skip

PACKED_ENTROPY = 7.6  # bits per byte: dense Thumb-2 code reaches 7.35, compressed or encrypted data exceeds 7.9
_MIN_ENTROPY_BYTES = 4096  # regions smaller than this have no meaningful entropy
_EDGE = 4096  # bytes at each end of the file searched for UPX's header
_SECTION_EVIDENCE = 12
_SYSCALL_EVIDENCE = 40

# Socket calls by what they say about the socket type.
_STREAM_CALLS = frozenset({"connect", "send", "recv"})
_SERVER_CALLS = frozenset({"listen", "accept", "accept4"})
_DATAGRAM_CALLS = frozenset({"sendto", "recvfrom", "sendmmsg", "recvmmsg"})
_MESSAGE_CALLS = frozenset({"sendmsg", "recvmsg"})  # also the workhorses of netlink and Unix sockets
NETWORK_CALLS = syscalls.NETWORK_NAMES

_DNS_IMPORTS = frozenset({
    "getaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r", "gethostbyname2_r", "res_query",
    "res_search", "res_nquery", "res_nsearch", "res_querydomain", "__res_query", "__res_search",
})  # fmt: skip
_IMPORT_PREFIXES = (
    ("curl_", "http"), ("SSL_", "tls"), ("TLS_", "tls"), ("SSLv23_", "tls"), ("TLSv1", "tls"),
    ("mbedtls_ssl_", "tls"), ("wolfSSL_", "tls"), ("gnutls_", "tls"), ("br_ssl_", "tls"),
    ("mosquitto_", "mqtt"), ("MQTTClient_", "mqtt"), ("MQTTAsync_", "mqtt"),
)  # fmt: skip
_IMPORT_PATTERN = re.compile("|".join(re.escape(prefix) for prefix, _ in _IMPORT_PREFIXES))
_LIBRARY_PREFIXES = (
    ("libcurl", "http"), ("libssl", "tls"), ("libmbedtls", "tls"), ("libwolfssl", "tls"), ("libgnutls", "tls"),
    ("libmosquitto", "mqtt"), ("libpaho-mqtt", "mqtt"), ("libresolv", "dns"),
)  # fmt: skip
_SQLITE_IMPORTS = frozenset({"sqlite3_open", "sqlite3_open_v2", "sqlite3_open16"})
_SERIAL_IMPORTS = frozenset({"tcsetattr", "cfmakeraw", "cfsetspeed", "cfsetispeed", "cfsetospeed"})

AF_UNIX, AF_NETLINK = 1, 16
_LOCAL_DOMAINS = {AF_UNIX: "AF_UNIX", AF_NETLINK: "AF_NETLINK"}

_PARSER = lief.ELF.ParserConfig()
_PARSER.parse_relocations = False
_PARSER.parse_symtab_symbols = False
_PARSER.parse_symbol_versions = False
_PARSER.parse_notes = False
_PARSER.parse_overlay = False


# --- what the file is ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The ELF header fields we rely on, read with struct (LIEF accepts files with no valid header at all)."""

    bits: int
    little: bool
    type: int
    machine: int
    flags: int
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int

    @property
    def type_name(self) -> str:
        return _TYPES.get(self.type, f"type-{self.type}")

    @property
    def arch(self) -> str:
        name = _ARCHES.get(self.machine, f"machine-{self.machine}")
        return f"{name}64" if name in ("mips", "riscv") and self.bits == 64 else name

    @property
    def order(self) -> str:
        return "<" if self.little else ">"


def read_header(head: bytes) -> Header | str:
    """The header of an ELF file from its first 64 bytes, or why it is not one."""
    if head[:4] != b"\x7fELF":
        return "no ELF magic" if len(head) >= 4 else "file shorter than the ELF magic"
    if len(head) < 16:
        return f"truncated ELF header ({len(head)} bytes)"
    if head[4] not in (1, 2) or head[5] not in (1, 2):
        return f"invalid ELF class {head[4]} or data encoding {head[5]}"
    bits = 32 if head[4] == 1 else 64
    layout = ("<" if head[5] == 1 else ">") + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH")
    if len(head) < 16 + struct.calcsize(layout):
        return f"truncated ELF header ({len(head)} bytes)"
    (kind, machine, _, entry, phoff, shoff, flags, _, phentsize, phnum, shentsize, shnum, shstrndx) = (
        struct.unpack_from(layout, head, 16))  # fmt: skip
    return Header(bits, head[5] == 1, kind, machine, flags, entry, phoff, phentsize, phnum, shoff, shentsize, shnum,
                  shstrndx)  # fmt: skip


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    address: int
    offset: int
    size: int
    link: int = 0
    entropy: float | None = None  # None when not measured (no file bytes, too small)

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    address: int
    size: int  # bytes in the file


SHT_PROGBITS, SHT_SYMTAB, SHT_DYNAMIC, SHT_NOBITS, SHT_DYNSYM = 1, 2, 6, 8, 11
DT_NEEDED = 1
STT_FUNC, STT_GNU_IFUNC = 2, 10
STB_GLOBAL, STB_WEAK = 1, 2
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PF_X = 0x1
_MAX_TABLE = 4096  # section or program headers read; more is hostile
_MAX_NAMES = 1 << 20  # bytes of section name table read
_ENTROPY_CHUNKS, _ENTROPY_CHUNK = 16, 64 << 10  # entropy of a large section: 16 chunks of 64 KiB spread over it
_MAX_DYNAMIC = 16 << 20  # bytes of dynamic symbol and string tables read


def _read_table(handle: BinaryIO, offset: int, count: int, entsize: int, layout: str, size: int) -> list[tuple]:
    """Entries of a header table, as far as they are inside the file and plausible."""
    width = struct.calcsize(layout)
    if not count or entsize < width or offset >= size:
        return []
    count = min(count, _MAX_TABLE, (size - offset) // entsize)
    raw = os.pread(handle.fileno(), count * entsize, offset)
    return [struct.unpack_from(layout, raw, i * entsize) for i in range(len(raw) // entsize)]


def _segments(handle: BinaryIO, header: Header, size: int) -> list[Segment]:
    if header.bits == 32:
        rows = _read_table(handle, header.phoff, header.phnum, header.phentsize, header.order + "IIIIIIII", size)
        return [Segment(kind, flags, offset, address, filesz) for kind, offset, address, _, filesz, _, flags, _ in rows]
    rows = _read_table(handle, header.phoff, header.phnum, header.phentsize, header.order + "IIQQQQQQ", size)
    return [Segment(kind, flags, offset, address, filesz) for kind, flags, offset, address, _, filesz, _, _ in rows]


def _sections(handle: BinaryIO, header: Header, size: int) -> list[Section]:
    layout = header.order + ("IIIIIIIIII" if header.bits == 32 else "IIQQQQIIQQ")
    rows = _read_table(handle, header.shoff, header.shnum, header.shentsize, layout, size)
    names = b""
    if header.shstrndx < len(rows):
        _, _, _, _, offset, length, *_ = rows[header.shstrndx]
        if offset < size:
            names = os.pread(handle.fileno(), min(length, _MAX_NAMES, size - offset), offset)
    sections = []
    for name, kind, flags, address, offset, length, link, *_ in rows:
        sections.append(Section(_string(names, name), kind, flags, address, offset, length, link))
    return sections


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset : end if end >= 0 else len(table)].decode("utf-8", "backslashreplace")


def _sampled_entropy(handle: BinaryIO, offset: int, length: int) -> float:
    """Entropy of a byte range, read whole up to 1 MiB, else from 16 chunks of 64 KiB spread over it."""
    if length <= _ENTROPY_CHUNKS * _ENTROPY_CHUNK:
        return _entropy(os.pread(handle.fileno(), length, offset))
    step = (length - _ENTROPY_CHUNK) // (_ENTROPY_CHUNKS - 1)
    return _entropy(b"".join(os.pread(handle.fileno(), _ENTROPY_CHUNK, offset + i * step)
                             for i in range(_ENTROPY_CHUNKS)))  # fmt: skip


def _measured(handle: BinaryIO, section: Section, size: int) -> Section:
    """The section with its entropy, when it has enough bytes in the file to mean something."""
    if section.size < _MIN_ENTROPY_BYTES or section.offset + section.size > size:
        return section
    return dataclasses.replace(section, entropy=_sampled_entropy(handle, section.offset, section.size))


@dataclass(frozen=True)
class Linkage:
    """What a dynamic binary takes from others and gives them."""

    libraries: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    exports: int = 0


def _table(handle: BinaryIO, sections: Sequence[Section], index: int, size: int) -> bytes:
    if not 0 <= index < len(sections) or sections[index].offset >= size:
        return b""
    table = sections[index]
    return os.pread(handle.fileno(), min(table.size, _MAX_DYNAMIC, size - table.offset), table.offset)


def _linkage(handle: BinaryIO, header: Header, sections: Sequence[Section], size: int) -> Linkage | None:
    """Needed libraries and dynamic symbols from the section headers (.dynamic, .dynsym and their string
    tables), without LIEF's cost of parsing everything; None when the file has no such sections."""
    dynsym = next((s for s in sections if s.type == SHT_DYNSYM and s.offset < size), None)
    dynamic = next((s for s in sections if s.type == SHT_DYNAMIC and s.offset < size), None)
    if dynsym is None or dynamic is None:
        return None
    o = header.order
    entry = np.dtype([("tag", o + "i4"), ("value", o + "u4")] if header.bits == 32 else
                     [("tag", o + "i8"), ("value", o + "u8")])  # fmt: skip
    raw = os.pread(handle.fileno(), min(dynamic.size, _MAX_DYNAMIC, size - dynamic.offset), dynamic.offset)
    entries = np.frombuffer(raw, dtype=entry, count=len(raw) // entry.itemsize)
    names = _table(handle, sections, dynamic.link, size)
    libraries = sorted({_string(names, int(v)) for v in entries["value"][entries["tag"] == DT_NEEDED]} - {""})
    symbol = np.dtype(
        [("name", o + "u4"), ("value", o + "u4"), ("size", o + "u4"), ("info", "u1"), ("other", "u1"),
         ("shndx", o + "u2")] if header.bits == 32 else
        [("name", o + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", o + "u2"), ("value", o + "u8"),
         ("size", o + "u8")]
    )  # fmt: skip
    raw = os.pread(handle.fileno(), min(dynsym.size, _MAX_DYNAMIC, size - dynsym.offset), dynsym.offset)
    symbols = np.frombuffer(raw, dtype=symbol, count=len(raw) // symbol.itemsize)
    kind, binding = symbols["info"] & 0xF, symbols["info"] >> 4
    functions = (kind == STT_FUNC) | (kind == STT_GNU_IFUNC)
    undefined = symbols["shndx"] == 0
    strings = _table(handle, sections, dynsym.link, size)
    wanted = undefined & functions & (symbols["name"] != 0)
    imports = sorted({_string(strings, int(n)) for n in symbols["name"][wanted]} - {""})
    exports = int(np.count_nonzero(~undefined & functions & ((binding == STB_GLOBAL) | (binding == STB_WEAK))))
    return Linkage(tuple(libraries), tuple(imports), exports)


def _lief_linkage(path: Path) -> Linkage | None:
    """The same from LIEF, for dynamic files without usable section headers (sstrip'd); None if LIEF fails."""
    binary = lief.ELF.parse(str(path), _PARSER)
    if binary is None:
        return None
    return Linkage(
        libraries=tuple(sorted({_text(name) for name in binary.libraries})),
        imports=tuple(sorted({_text(f.name).split("@")[0] for f in binary.imported_functions if f.name})),
        exports=len(binary.exported_functions),
    )


def _text(value: str | bytes) -> str:
    """LIEF hands names that are not UTF-8 back as bytes."""
    return value if isinstance(value, str) else value.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Facts:
    header: Header
    interpreter: str | None
    libraries: tuple[str, ...]
    imports: tuple[str, ...]
    exports: int
    stripped: bool
    sections: tuple[Section, ...]  # allocated sections with bytes in the file
    code: tuple[tuple[int, int, int], ...]  # (file offset, address, size) of executable bytes within the file
    truncated: tuple[str, ...]  # header tables that run past the end of the file
    dynamic_unparsed: bool = False  # a dynamic section LIEF could not read

    @property
    def static(self) -> bool:
        return not (self.interpreter or self.libraries or self.imports or self.dynamic_unparsed)

    @property
    def code_bytes(self) -> int:
        return sum(size for _, _, size in self.code)


def _facts(path: Path, header: Header, size: int) -> Facts:
    """Header tables read here; imports, exports and needed libraries only for dynamic files."""
    with path.open("rb") as handle:
        segments = _segments(handle, header, size)
        all_sections = _sections(handle, header, size)
        sections = tuple(
            _measured(handle, s, size) if s.type == SHT_PROGBITS else s for s in all_sections
            if s.type != SHT_NOBITS and s.size and s.flags & (SHF_ALLOC | SHF_EXECINSTR) and s.offset < size
        )  # fmt: skip
        interpreter = None
        for segment in segments:
            if segment.type == PT_INTERP and segment.offset < size:
                raw = os.pread(handle.fileno(), min(segment.size, 4096), segment.offset)
                interpreter = raw.split(b"\0")[0].decode("utf-8", "backslashreplace") or None
                break
        dynamic = interpreter is not None or any(s.type == PT_DYNAMIC for s in segments)
        linkage = _linkage(handle, header, all_sections, size) if dynamic else Linkage()
    if linkage is None:
        linkage = _lief_linkage(path)
    return Facts(
        header=header, interpreter=interpreter, libraries=linkage.libraries if linkage else (),
        imports=linkage.imports if linkage else (), exports=linkage.exports if linkage else 0,
        stripped=not any(s.type == SHT_SYMTAB for s in all_sections), sections=sections,
        code=_code_ranges(sections, segments, size), truncated=_truncation(header, size),
        dynamic_unparsed=linkage is None,
    )  # fmt: skip


def _code_ranges(sections: Sequence[Section], segments: Sequence[Segment],
                 size: int) -> tuple[tuple[int, int, int], ...]:
    """Executable bytes present in the file: the executable sections, else the executable segments."""
    ranges = {(s.offset, s.address, s.size) for s in sections if s.executable}
    if not ranges:
        ranges = {(s.offset, s.address, s.size) for s in segments if s.type == PT_LOAD and s.flags & PF_X}
    clipped = ((offset, address, min(length, size - offset)) for offset, address, length in ranges if offset < size)
    return tuple(sorted(r for r in clipped if r[2] > 0))


def _truncation(header: Header, size: int) -> tuple[str, ...]:
    problems = []
    if header.phnum and header.phoff + header.phnum * header.phentsize > size:
        problems.append(f"program header table ({header.phnum} entries at {header.phoff:#x}) runs past end of file")
    if header.shnum and header.shoff + header.shnum * header.shentsize > size:
        problems.append(f"section header table ({header.shnum} entries at {header.shoff:#x}) runs past end of file")
    return tuple(problems)


# --- findings --------------------------------------------------------------------------------------


def _finding(rule: str, category: Category, severity: Severity, title: str, **fields: object) -> Finding:
    return Finding(rule=rule, analyzer=ANALYZER, category=category, severity=severity, title=title, **fields)


def _unparseable(reason: str) -> Finding:
    return _finding(
        "elf:unparseable", Category.PROPERTY, Severity.INFO, f"ELF file could not be parsed: {reason}",
        tags=("elf:unparseable",),
        description="The file is labelled ELF but its header is invalid or truncated; nothing in it was analysed.",
    )  # fmt: skip


def _info(facts: Facts) -> Finding:
    header = facts.header
    linkage = "static" if facts.static else "dynamic"
    kind = _TYPE_WORDS.get(header.type_name, header.type_name)
    if header.type_name == "dyn" and facts.interpreter:
        kind = "PIE executable"
    words = [
        f"ELF {header.bits}-bit {'LSB' if header.little else 'MSB'} {header.arch} {kind}",
        "statically linked" if facts.static else "dynamically linked",
    ]
    if facts.stripped:
        words.append("stripped")
    tags = [f"elf:arch:{header.arch}", f"elf:{linkage}", f"elf:type:{header.type_name}"]
    if facts.stripped:
        tags.append("elf:stripped")
    if facts.truncated:
        tags.append("elf:truncated")
    evidence = [Evidence("property", f"entry={header.entry:#x}")]
    if facts.interpreter:
        evidence.append(Evidence("property", f"interpreter={facts.interpreter}"))
    evidence += [Evidence("library", name) for name in facts.libraries]
    measured = [s for s in facts.sections if s.entropy is not None]
    measured.sort(key=lambda s: (not s.executable, -s.size, s.offset))
    evidence += [
        Evidence("section", f"{s.name} size={s.size} entropy={s.entropy:.2f}{' exec' if s.executable else ''}",
                 offset=s.offset)
        for s in measured[:_SECTION_EVIDENCE]
    ]  # fmt: skip
    description = (
        f"{len(facts.imports)} imported functions, {facts.exports} exported functions, "
        f"{len(facts.libraries)} needed libraries, {len(facts.sections)} allocated sections, "
        f"{facts.code_bytes} bytes of executable code."
    )
    if facts.truncated:
        description += " Truncated: " + "; ".join(facts.truncated) + "."
    if facts.dynamic_unparsed:
        description += " The dynamic section could not be parsed: imports and needed libraries are unknown."
    return _finding(
        "elf:info", Category.PROPERTY, Severity.INFO, ", ".join(words), tags=tuple(sorted(tags)),
        evidence=tuple(evidence), description=description,
    )  # fmt: skip


def _entropy(data: bytes) -> float:
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())


def _packing(path: Path, facts: Facts, size: int) -> Finding | None:
    """UPX's header at either end of the file, or executable bytes with the entropy of compressed data."""
    with path.open("rb") as handle:
        head = handle.read(_EDGE)
        handle.seek(max(0, size - _EDGE))
        tail = handle.read(_EDGE)
        marker = head.find(b"UPX!")
        marker_offset = marker if marker >= 0 else None
        if marker_offset is None and tail.find(b"UPX!") >= 0:
            marker_offset = max(0, size - _EDGE) + tail.find(b"UPX!")
        dense = []
        for s in facts.sections:
            if s.executable and s.entropy is not None and s.entropy > PACKED_ENTROPY:
                dense.append((s.name, s.offset, s.size, s.entropy))
        if not any(s.executable for s in facts.sections):  # no section headers: measure executable segments
            for offset, _, length in facts.code:
                if length >= _MIN_ENTROPY_BYTES:
                    entropy = _sampled_entropy(handle, offset, length)
                    if entropy > PACKED_ENTROPY:
                        dense.append(("segment", offset, length, entropy))
    evidence = [Evidence("section", f"{name} size={length} entropy={e:.2f}", offset=offset)
                for name, offset, length, e in dense]  # fmt: skip
    if marker_offset is not None:
        return _finding(
            "elf:packed-upx", Category.OBFUSCATION, Severity.LOW, "Packed with UPX",
            tags=("elf:packed", "packer:upx"),
            evidence=(Evidence("string", "UPX!", offset=marker_offset), *evidence),
            description=("The file carries UPX's header: the program is compressed on disk and unpacks itself in "
                         "memory, so its real imports, strings and syscalls are not visible here. Vendors use UPX "
                         "to save flash; malware uses it to hide."),
        )  # fmt: skip
    if dense:
        return _finding(
            "elf:packed", Category.OBFUSCATION, Severity.MEDIUM, "Executable code with the entropy of packed data",
            tags=("elf:packed",), evidence=tuple(evidence),
            description=(f"Executable bytes with more than {PACKED_ENTROPY} bits of entropy per byte and no known "
                         "packer header: compressed or encrypted code that unpacks itself at run time."),
        )  # fmt: skip
    return None


def socket_channels(calls: Iterable[str], stream: bool = False, datagram: bool = False,
                    messages_are_datagrams: bool = False) -> set[str]:
    """The transport channels a set of socket calls implies.

    ``stream``/``datagram`` say a socket of that type was seen created (from
    recovered ``socket()`` arguments); otherwise the calls decide: datagram
    calls mean UDP, ``listen``/``accept`` mean TCP, and ``connect``/``send``/
    ``recv`` mean TCP only when nothing suggests datagrams (a connected UDP
    socket uses them too).
    """
    names = set(calls)
    channels = set()
    if stream or names & _SERVER_CALLS:
        channels.add("tcp")
    if datagram:
        channels.add("udp")
    if stream or datagram:
        return channels
    dgram = bool(names & _DATAGRAM_CALLS) or (
        messages_are_datagrams and bool(names & _MESSAGE_CALLS) and "connect" not in names
    )
    if dgram:
        channels.add("udp")
    elif names & _STREAM_CALLS:
        channels.add("tcp")
    return channels


def _network_imports(facts: Facts) -> Finding | None:
    imports = set(facts.imports)
    socket_imports = imports & NETWORK_CALLS
    kinds: dict[str, set[str]] = {}
    for name in imports:
        if name in _DNS_IMPORTS:
            kinds.setdefault("dns", set()).add(f"import:{name}")
        match = _IMPORT_PATTERN.match(name)
        if match:
            kind = next(k for prefix, k in _IMPORT_PREFIXES if match.group(0) == prefix)
            kinds.setdefault(kind, set()).add(f"import:{name}")
    for library in facts.libraries:
        for prefix, kind in _LIBRARY_PREFIXES:
            if library.startswith(prefix):
                kinds.setdefault(kind, set()).add(f"lib:{library}")
    if not socket_imports and not kinds:
        return None
    channels = socket_channels(socket_imports)
    if "dns" in kinds:
        channels.add("dns")
    if "http" in kinds:
        channels.add("http")
    if "tls" in kinds:
        channels.add("https")
    if "mqtt" in kinds:
        channels.add("mqtt")
    tags = {f"import:{name}" for name in socket_imports}.union(*kinds.values())
    names = sorted(t.split(":", 1)[1] for t in tags)
    evidence = [Evidence("library" if t.startswith("lib:") else "import", t.split(":", 1)[1]) for t in sorted(tags)]
    return _finding(
        "elf:network-imports", Category.CHANNEL if channels else Category.PROPERTY, Severity.LOW,
        f"Links network functions: {', '.join(names[:8])}{'...' if len(names) > 8 else ''}",
        channels=tuple(sorted(channels)), tags=tuple(sorted(tags)), evidence=tuple(evidence),
        description=("Channels inferred from imported function names and needed libraries"
                     f" ({', '.join(sorted(channels)) or 'none certain'}): what the program can call, not proof "
                     "that it does. connect/send/recv without datagram calls are taken as TCP, sendto/recvfrom as "
                     "UDP, TLS libraries as HTTPS."),
    )  # fmt: skip


def _data_imports(facts: Facts) -> list[Finding]:
    imports = set(facts.imports)
    findings = []
    sqlite = sorted(imports & _SQLITE_IMPORTS)
    libraries = [name for name in facts.libraries if name.startswith("libsqlite3")]
    if sqlite or libraries:
        tags = {f"import:{name}" for name in sqlite} | {f"lib:{name}" for name in libraries}
        if sqlite:
            tags.add("import:sqlite3_open")
        findings.append(_finding(
            "elf:sqlite-imports", Category.DATA_SOURCE, Severity.INFO, "Opens SQLite databases",
            tags=tuple(sorted(tags)),
            evidence=tuple([Evidence("import", n) for n in sqlite] + [Evidence("library", n) for n in libraries]),
            description=("Links SQLite: on phones the SMS, contacts and call-log stores are SQLite databases. "
                         "Which database it opens is for the strings to tell."),
        ))  # fmt: skip
    serial = sorted(imports & _SERIAL_IMPORTS)
    if serial:
        findings.append(_finding(
            "elf:serial-imports", Category.DATA_SOURCE, Severity.INFO, "Configures a serial line",
            tags=tuple(f"import:{n}" for n in serial), evidence=tuple(Evidence("import", n) for n in serial),
            description=("Sets terminal attributes (baud rate, raw mode): the usual way to talk to a modem's AT "
                         "command port, or to a console."),
        ))  # fmt: skip
    return findings


# --- syscalls of static binaries -------------------------------------------------------------------


def _read_code(path: Path, facts: Facts) -> tuple[list[syscalls.CodeRegion], bool]:
    regions, budget, capped = [], syscalls.MAX_CODE_BYTES, False
    with path.open("rb") as handle:
        for offset, address, length in facts.code:
            if budget <= 0:
                capped = True
                break
            take = min(length, budget)
            capped = capped or take < length
            regions.append(syscalls.CodeRegion(offset, address, os.pread(handle.fileno(), take, offset)))
            budget -= take
    return regions, capped


def _syscall_text(call: syscalls.Syscall) -> tuple[str, str]:
    name = call.name or f"#{call.number}"
    value = f"{name} ({call.number}{' via socketcall' if call.via_socketcall else ''})"
    registers = ", ".join(f"{reg}={val}" for reg, val in call.registers)
    if call.site == "stub":
        where = f"call at {call.address:#x} into a syscall stub (trap at {call.stub:#x})"
    elif call.site == "wrapper":
        where = f"call at {call.address:#x} into a {name} wrapper (trap at {call.stub:#x})"
    else:
        where = f"{'inline ' if call.inline else ''}trap at {call.address:#x}"
    return value, f"{call.isa} {where}: {registers or 'arguments not constant'}"


def _raw_syscalls(path: Path, facts: Facts) -> Finding | None:
    header = facts.header
    abi = syscalls.abi_for(header.machine, header.bits, header.little, header.flags)
    if abi is None or not facts.code:
        return None
    regions, capped = _read_code(path, facts)
    recovery = syscalls.recover(abi, regions)
    if not recovery.syscalls:
        return None
    names = {c.name for c in recovery.syscalls if c.name}
    network = names & NETWORK_CALLS
    stream = datagram = False
    sockets = [c for c in recovery.syscalls if c.name == "socket"]
    local = [c for c in sockets if c.args[0] in _LOCAL_DOMAINS]
    for call in sockets:
        if call.args[0] in _LOCAL_DOMAINS or call.args[1] is None:
            continue
        stream = stream or call.args[1] & 0xF == recovery.sock_stream
        datagram = datagram or call.args[1] & 0xF == recovery.sock_dgram
    local_only = bool(sockets) and len(local) == len(sockets)
    channels = set() if local_only else socket_channels(network, stream, datagram, messages_are_datagrams=True)
    tags = {"elf:raw-syscalls"} | {f"syscall:{n}" for n in names}
    if any(c.via_socketcall for c in recovery.syscalls):
        tags.add("syscall:socketcall")
    is_network = bool(network) and not local_only
    inline = sorted({c.name for c in recovery.syscalls if c.inline and c.name in network and c.args[0] not in
                     _LOCAL_DOMAINS})  # fmt: skip
    if is_network and inline and facts.stripped:
        severity = Severity.MEDIUM
    elif is_network:
        severity = Severity.LOW
    else:
        severity = Severity.INFO
    ordered = sorted(recovery.syscalls, key=lambda c: (c.name not in NETWORK_CALLS, not c.inline, c.offset))
    evidence = []
    for call in ordered[:_SYSCALL_EVIDENCE]:
        value, excerpt = _syscall_text(call)
        evidence.append(Evidence("syscall", value, offset=call.offset, excerpt=excerpt))
    if severity is Severity.MEDIUM:
        title = f"Network syscalls trapped inline, not through a wrapper: {', '.join(inline)}"
    elif is_network:
        title = f"Network syscalls in the static code: {', '.join(sorted(network))}"
    else:
        title = f"{len(names)} distinct syscalls in the static code"
    return _finding(
        "elf:raw-syscalls", Category.CHANNEL if channels else Category.PROPERTY, severity, title,
        channels=tuple(sorted(channels)), tags=tuple(sorted(tags)), evidence=tuple(evidence),
        description=_syscall_description(facts, recovery, network, local, capped, inline),
    )  # fmt: skip


def _syscall_description(facts: Facts, recovery: syscalls.SyscallRecovery, network: set[str],
                         local: Sequence[syscalls.Syscall], capped: bool, inline: Sequence[str]) -> str:
    parts = [
        f"{recovery.abi}: {recovery.traps} trap instructions, {len(recovery.syscalls)} syscall sites with a "
        f"constant number ({recovery.stubs} stubs or wrappers resolved at their call sites), "
        f"{recovery.unresolved} traps whose number is not a constant, in {facts.code_bytes} bytes of code.",
    ]
    if network:
        if local and len(local) == sum(1 for c in recovery.syscalls if c.name == "socket"):
            domains = sorted({_LOCAL_DOMAINS[c.args[0]] for c in local if c.args[0] in _LOCAL_DOMAINS})
            parts.append(f"Every socket created has a local domain ({', '.join(domains)}): no network channel.")
        elif inline and facts.stripped:
            parts.append(f"Network syscalls ({', '.join(inline)}) are issued by traps inlined in ordinary code, "
                         "not from a syscall wrapper, in a stripped static binary: a program that bypasses its C "
                         "library to reach the network, which is unusual and usually deliberate.")
        else:
            parts.append("The network syscalls come from wrapper-shaped functions or syscall stubs, as a statically "
                         "linked C library issues them: expected in static programs (toolboxes, daemons).")
    parts.append("Without symbols, a program's own traps and its C library's cannot be told apart with certainty.")
    if recovery.truncated or capped:
        parts.append("Only part of the code was searched (a size or site cap was reached).")
    return " ".join(parts)


# --- the analyzer ----------------------------------------------------------------------------------


class ElfAnalyzer(Analyzer):
    """Static checks on ELF binaries (LIEF) and syscall recovery for static ones (capstone)."""

    name: ClassVar[str] = ANALYZER
    version: ClassVar[str] = "1"

    def accepts(self, target: Target) -> bool:
        return target.label == "elf"

    def analyze(self, target: Target) -> list[Finding]:
        with target.path.open("rb") as handle:
            head = handle.read(64)
        header = read_header(head)
        if isinstance(header, str):
            return [_unparseable(header)]
        facts = _facts(target.path, header, target.size)
        findings = [_info(facts), *_data_imports(facts)]
        for finding in (_packing(target.path, facts, target.size), _network_imports(facts)):
            if finding is not None:
                findings.append(finding)
        if facts.static and header.type_name in ("exec", "dyn"):
            raw = _raw_syscalls(target.path, facts)
            if raw is not None:
                findings.append(raw)
        return sorted(findings, key=Finding.sort_key)

