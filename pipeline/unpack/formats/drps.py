"""DRPS: the container of compressed images in Spreadtrum/Unisoc feature-phone firmware.

SC6530/SC6531/SC6531E (MOCOR RTOS) firmware keeps its big parts compressed
in a DRPS container, usually at the start of the ``PS`` image of a PAC or
somewhere in a raw flash dump. Layout (little endian), as described by the
public ``spreadtrum_flash`` project's firmware helper (``fphelper``)::

    0   "DRPS"            4   0
    8   table offset      12  entry count
    payloads ...
    table: per entry 20 bytes
        "COLB", tag, payload offset, payload size, decompressed size

Offsets are relative to the DRPS start. The tag is a 32-bit word whose
bytes read backwards give ``IMAG`` (the kernel image, ``kern``), ``user``
(the user/application image) or ``rSso`` (resources, ``rsrc``). A payload is
one stream of Spreadtrum's LZMA variant (see ``_sprd_lzma``), or a ``CAPN``
block: a 16-byte header (``"CAPN"``, a word of unknown meaning, data size,
chunk count), the chunk streams, then one offset per chunk.

Each entry becomes a child named after its tag (``kern``, ``user``,
``rsrc``; repeats get a number), decompressed.
Known limitations: the CAPN header's second word is not interpreted; a
payload that does not decode is recorded as an error for that entry and
left uncovered (the coverage shows it as undecodable).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats._sprd_lzma import HEADER_SIZE, Properties, SprdLzmaDecoder
from pipeline.unpack.formats._stream import Writer, pump
from pipeline.unpack.output import Output

MAGIC = b"DRPS\x00\x00\x00\x00"
HEADER = struct.Struct("<4sIII")
ENTRY = struct.Struct("<4s4sIII")
CAPN = struct.Struct("<4sIII")
MAX_ENTRIES = 256
MAX_CHUNKS = 1 << 16
MAX_UNPACKED = 1 << 28  # the helper refuses larger images too: no feature phone has that much flash
TAG_NAMES = {"IMAG": "kern", "user": "user", "rSso": "rsrc"}


def tag_text(tag: bytes) -> str:
    """The entry tag as the firmware's own tools print it (the word's bytes from high to low)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in reversed(tag))


def read_table(handle: BinaryIO, offset: int, available: int) -> tuple[int, list[tuple]] | None:
    """(table offset, raw entries) of a DRPS container at ``offset``, or None when the header is not one."""
    handle.seek(offset)
    header = handle.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    magic, zero, table, count = HEADER.unpack(header)
    if magic != b"DRPS" or zero or table % 4 or table < HEADER.size or not 0 < count <= MAX_ENTRIES:
        return None
    if table + count * ENTRY.size > available:
        return None
    handle.seek(offset + table)
    raw = handle.read(count * ENTRY.size)
    return table, [ENTRY.unpack_from(raw, i * ENTRY.size) for i in range(count)]


class Drps(Format):
    name = "drps"
    description = "Spreadtrum DRPS container (feature-phone firmware images, LZMA variant)"
    magics = (Magic(0, MAGIC),)
    carve_magics = (MAGIC,)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        found = read_table(handle, offset, available)
        if found is None:
            return None
        table, entries = found
        if any(entry[0] != b"COLB" for entry in entries):
            return None
        return table + len(entries) * ENTRY.size

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            found = read_table(handle, 0, source.size)
            if found is None:
                raise ValueError("not a DRPS container, or its entry table lies beyond the end of the file")
            table, entries = found
            out.cover(0, HEADER.size)
            out.cover(table, len(entries) * ENTRY.size)
            out.set_platform(os="MOCOR", how="Spreadtrum DRPS container (MOCOR feature-phone firmware)")
            seen: dict[str, int] = {}
            for index, entry in enumerate(entries):
                label = TAG_NAMES.get(tag_text(entry[1]), tag_text(entry[1]))
                name = label if label not in seen else f"{label}{seen[label]}"
                seen[label] = seen.get(label, 0) + 1
                self._entry(index, name, entry, table, handle, out)

    @staticmethod
    def _entry(index: int, name: str, entry: tuple, table: int, handle: BinaryIO, out: Output) -> None:
        """Decompress one entry into a child; only a payload that decodes is marked as covered."""
        colb, tag, offset, size, unpacked = entry
        problem = _entry_problem(colb, offset, size, unpacked, table)
        if problem:
            out.error(f"DRPS entry {index} ({tag_text(tag)}): {problem}", IssueKind.FAILURE,
                      member=out.safe_name(name))
            return
        attributes = {"tag": tag_text(tag), "payload_offset": offset, "payload_size": size,
                      "declared_size": unpacked}
        before = len(out.children)
        with out.member(name, offset=offset, compressed_size=size, attributes=attributes) as writer:
            _decode_payload(handle, offset, size, writer)
            if writer.size != unpacked:
                raise ValueError(f"decoded {writer.size} bytes, the DRPS table says {unpacked}")
        if len(out.children) > before:
            out.cover(offset, size)


def _entry_problem(colb: bytes, offset: int, size: int, unpacked: int, table: int) -> str | None:
    if colb != b"COLB":
        return "no COLB magic"
    if offset < HEADER.size or size < HEADER_SIZE or offset + size > table:
        return f"payload of {size} bytes at {offset:#x} lies outside the container's data area"
    if unpacked > MAX_UNPACKED:
        return f"declared size {unpacked} is beyond {MAX_UNPACKED} bytes"
    return None


def _decode_payload(handle: BinaryIO, offset: int, size: int, writer: Writer) -> None:
    handle.seek(offset)
    header = handle.read(CAPN.size)
    if header[:4] != b"CAPN":
        _decode_stream(handle, offset, size, writer)
        return
    _, _, data_size, count = CAPN.unpack(header)
    if not CAPN.size <= data_size <= size or not 0 < count <= MAX_CHUNKS or size - data_size != count * 4:
        raise ValueError("CAPN block header does not match its payload size")
    handle.seek(offset + data_size)
    starts = list(struct.unpack(f"<{count}I", handle.read(count * 4)))
    ends = [*starts[1:], data_size]
    for start, end in zip(starts, ends, strict=True):
        if not CAPN.size <= start < end <= data_size:
            raise ValueError(f"CAPN chunk {start:#x}..{end:#x} lies outside the block")
        _decode_stream(handle, offset + start, end - start, writer)


def _decode_stream(handle: BinaryIO, offset: int, size: int, writer: Writer) -> None:
    handle.seek(offset)
    announced = Properties.parse(handle.read(HEADER_SIZE)).size
    if announced > MAX_UNPACKED:
        raise ValueError(f"LZMA stream announces {announced} bytes, beyond {MAX_UNPACKED}")
    handle.seek(offset)
    pump(handle, SprdLzmaDecoder(size), writer, size)
