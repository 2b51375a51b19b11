"""A small, bounded reader of flattened device trees (DTB/FDT), for the FIT format.

Only what a FIT needs: the header, the node paths, and where each property's
value lies in the file (values are read on demand, never all at once, since
a FIT's ``data`` properties hold whole kernels). Every offset is checked
against the blob and the container; node count, depth and name lengths are
capped so a hostile tree cannot make the reader loop or allocate without
bound.

Reference: the Devicetree Specification, chapter 5 "Flattened Devicetree
(DTB) Format" (header, structure block tokens, strings block).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

MAGIC = 0xD00DFEED
HEADER = struct.Struct(">10I")
BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9
MAX_NODES = 4096
MAX_DEPTH = 32
MAX_NAME = 256
MAX_STRINGS = 1 << 20
MAX_VALUE = 4096  # longest property value read into memory (strings, numbers)


@dataclass(frozen=True)
class FdtHeader:
    total_size: int
    struct_offset: int
    struct_size: int
    strings_offset: int
    strings_size: int


@dataclass(frozen=True)
class Property:
    offset: int  # absolute offset of the value in the container
    length: int


@dataclass
class Node:
    path: str
    name: str
    depth: int
    properties: dict[str, Property] = field(default_factory=dict)


def parse_header(raw: bytes, available: int) -> FdtHeader:
    """The header of a blob of at most ``available`` bytes, or ValueError."""
    if len(raw) < HEADER.size:
        raise ValueError("device tree header is truncated")
    magic, total, off_struct, off_strings, _rsv, version, _last, _cpu, strings_size, struct_size = \
        HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ValueError("no device tree magic")
    if version < 16 or total < HEADER.size or total > available:
        raise ValueError(f"device tree version {version}, size {total} (of {available}) is not readable")
    if version < 17:
        struct_size = total - off_struct
    for offset, length in ((off_struct, struct_size), (off_strings, strings_size)):
        if offset < HEADER.size or offset + length > total:
            raise ValueError("device tree block lies outside the blob")
    return FdtHeader(total, off_struct, struct_size, off_strings, strings_size)


def _read(handle: BinaryIO, count: int) -> bytes:
    data = handle.read(count)
    if len(data) < count:
        raise ValueError("device tree structure block is truncated")
    return data


def _node_name(handle: BinaryIO) -> str:
    """A NUL-terminated node name, then padding to the next 4-byte boundary."""
    start = handle.tell()
    raw = b""
    while b"\0" not in raw:
        raw += _read(handle, 4)
        if len(raw) > MAX_NAME:
            raise ValueError("device tree node name is too long")
    handle.seek(start + -(-(raw.index(b"\0") + 1) // 4) * 4)
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def iter_nodes(handle: BinaryIO, base: int, header: FdtHeader, strings: bytes = b"") -> Iterator[Node]:
    """Each node as soon as its properties are read (before its children), in file order.

    Raises ValueError on a malformed or truncated structure block. Property
    names are resolved from ``strings`` when given.
    """
    end = base + header.struct_offset + header.struct_size
    handle.seek(base + header.struct_offset)
    stack: list[Node] = []
    pending: Node | None = None
    nodes = 0
    while handle.tell() + 4 <= end:
        (token,) = struct.unpack(">I", _read(handle, 4))
        if token == PROP:
            length, name_offset = struct.unpack(">II", _read(handle, 8))
            value_offset = handle.tell()
            if not stack or value_offset + length > end:
                raise ValueError("device tree property outside a node or past the structure block")
            name = strings[name_offset:].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")
            stack[-1].properties[name] = Property(value_offset, length)
            handle.seek(value_offset + -(-length // 4) * 4)
            continue
        if pending is not None:
            yield pending
            pending = None
        if token == BEGIN_NODE:
            nodes += 1
            if nodes > MAX_NODES or len(stack) >= MAX_DEPTH:
                raise ValueError("device tree has too many nodes or is nested too deep")
            name = _node_name(handle)
            parent = stack[-1].path.rstrip("/") if stack else ""
            pending = Node(f"{parent}/{name}" if stack else "/", name, len(stack))
            stack.append(pending)
        elif token == END_NODE:
            if not stack:
                raise ValueError("unbalanced device tree END_NODE")
            stack.pop()
        elif token == END:
            return
        elif token != NOP:
            raise ValueError(f"unknown device tree token {token:#x}")
    if pending is not None:
        yield pending
    raise ValueError("device tree structure block has no END token")


def read_strings(handle: BinaryIO, base: int, header: FdtHeader) -> bytes:
    handle.seek(base + header.strings_offset)
    return handle.read(min(header.strings_size, MAX_STRINGS))


def read_value(handle: BinaryIO, prop: Property) -> bytes:
    """A small property value; longer values (payloads) are never read this way."""
    handle.seek(prop.offset)
    return handle.read(min(prop.length, MAX_VALUE))


def as_text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def as_int(value: bytes) -> int | None:
    """A one- or two-cell integer property (``<u32>`` or ``<u64>``)."""
    if len(value) in (4, 8):
        return int.from_bytes(value, "big")
    return None
