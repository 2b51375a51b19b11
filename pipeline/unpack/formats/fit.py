"""U-Boot FIT image: a flattened device tree whose ``/images`` nodes carry kernels, ramdisks, DTBs.

Each ``/images/<node>`` with a payload becomes a PARTITION child named after
the node. The payload is the node's ``data`` property, or external data
after the tree (``data-offset`` from the 4-byte aligned end of the tree, or
``data-position`` from its start, with ``data-size``). It is emitted as
stored; its ``compression`` property goes into the attributes and names the
suffix; the gzip/lzma/... readers take it from there. A plain DTB (no
``/images`` node) is not a FIT and stays a leaf.

References: U-Boot ``doc/usage/fit/source_file_format.rst`` (the FIT
layout, external data); the Devicetree Specification for the DTB encoding.

Known limitations: hash and signature subnodes are not verified; the
``/images`` node must start within the first 64 KiB to be recognised;
configurations are not recorded.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from pipeline.model import ArtifactKind, IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.formats import _fdt
from pipeline.unpack.formats.uimage import compressed_name
from pipeline.unpack.output import Output

TEXT_PROPERTIES = ("description", "type", "arch", "os", "compression")
NUMBER_PROPERTIES = ("load", "entry")


@dataclass(frozen=True)
class FitImage:
    name: str
    offset: int
    size: int
    attributes: dict[str, Any]


def _has_images(head: bytes) -> bool:
    """True when the root's ``images`` node starts within ``head`` (a FIT, not a plain DTB)."""
    try:
        header = _fdt.parse_header(head, 1 << 62)
        return any(node.path == "/images" for node in _fdt.iter_nodes(io.BytesIO(head), 0, header))
    except ValueError:
        return False


def _payload(node: _fdt.Node, handle: BinaryIO, base: int, header: _fdt.FdtHeader) -> tuple[int, int] | None:
    """(absolute offset, size) of an image node's data, embedded or external; None if it has none."""
    props = node.properties
    if "data" in props:
        return props["data"].offset, props["data"].length
    size = _fdt.as_int(_fdt.read_value(handle, props["data-size"])) if "data-size" in props else None
    if size is None:
        return None
    if "data-position" in props:
        position = _fdt.as_int(_fdt.read_value(handle, props["data-position"]))
    elif "data-offset" in props:
        relative = _fdt.as_int(_fdt.read_value(handle, props["data-offset"]))
        position = None if relative is None else -(-header.total_size // 4) * 4 + relative
    else:
        return None
    return None if position is None else (base + position, size)


def read_images(handle: BinaryIO, base: int, available: int) -> tuple[_fdt.FdtHeader, list[FitImage]]:
    """The tree's header and its ``/images/*`` payloads (ValueError if it is not a FIT)."""
    handle.seek(base)
    header = _fdt.parse_header(handle.read(_fdt.HEADER.size), available)
    strings = _fdt.read_strings(handle, base, header)
    nodes = list(_fdt.iter_nodes(handle, base, header, strings))
    if not any(n.path == "/images" for n in nodes):
        raise ValueError("device tree has no /images node: a plain DTB, not a FIT")
    images = []
    for node in nodes:
        if node.depth != 2 or not node.path.startswith("/images/"):
            continue
        found = _payload(node, handle, base, header)
        if found is None:
            continue
        attributes: dict[str, Any] = {}
        for key in TEXT_PROPERTIES:
            if key in node.properties:
                attributes[key] = _fdt.as_text(_fdt.read_value(handle, node.properties[key]))
        for key in NUMBER_PROPERTIES:
            if key in node.properties:
                attributes[key] = _fdt.as_int(_fdt.read_value(handle, node.properties[key]))
        images.append(FitImage(node.name, found[0], found[1], attributes))
    return header, images


class Fit(Format):
    name = "fit"
    description = "U-Boot FIT image (flattened device tree with /images)"
    magics = (Magic(0, b"\xd0\x0d\xfe\xed"),)
    binwalk = (re.compile(r"^Flattened device tree"),)

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        return super().matches(head, size, name) and _has_images(head)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        try:
            header, images = read_images(handle, offset, available)
        except ValueError:
            return None
        end = max([header.total_size, *(i.offset - offset + i.size for i in images)])
        return end if end <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            header, images = read_images(handle, 0, source.size)
            out.cover(0, header.total_size)
            for image in images:
                if image.offset + image.size > source.size:
                    out.error(f"image data ends at {image.offset + image.size}, past the end of the "
                              f"{source.size}-byte file", IssueKind.FAILURE, member=image.name)
                    continue
                name = compressed_name(image.name, image.attributes.get("compression"))
                out.add_range(name, handle, image.offset, image.size, kind=ArtifactKind.PARTITION,
                              attributes=image.attributes)
        if any(i.attributes.get("os") == "linux" and i.attributes.get("type") == "kernel" for i in images):
            out.set_platform(os="Linux", how="FIT image kernel node (os = linux)")
