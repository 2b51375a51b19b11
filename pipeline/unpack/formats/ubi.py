"""UBI, the volume layer of raw NAND flash, read with ubi_reader.

A UBI image is a run of physical erase blocks (PEBs), each starting with an
erase-count header (``UBI#``) and a volume-id header mapping it to a logical
block of a volume; the volume table names the volumes. Each volume becomes a
PARTITION child named after the volume, its logical blocks streamed in order
(unmapped ones as erased 0xFF, as the kernel shows them); a UBIFS volume is
then opened by the ``ubifs`` format.

ubi_reader prints its diagnostics on stdout and calls ``sys.exit`` on fatal
ones: ``quiet_ubireader`` silences it and turns an exit into a ValueError
carrying its last message, so a hostile image cannot end the worker.

References: linux/drivers/mtd/ubi/ubi-media.h; "UBI - Unsorted Block Images"
(http://www.linux-mtd.infradead.org/doc/ubi.html).

Known limitations:
- The PEB size is guessed from the spacing of ``UBI#`` headers; a dump whose
  blocks are interleaved with OOB data must be cleaned first.
- Headers' CRCs are checked by ubi_reader; blocks with a bad header are left
  out of their volume (the gap reads as 0xFF).
- Silencing uses the process-wide stdout while ubi_reader runs.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import BinaryIO

from ubireader.ubi import ubi
from ubireader.ubi_io import leb_virtual_file, ubi_file

from pipeline.model import ArtifactKind, IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.output import Output

MAGIC = b"UBI#"
EC_HEADER = struct.Struct(">4sB3xQIII32xI")  # magic, version, ec, vid_hdr_offset, data_offset, image_seq, crc
MIN_PEB = 4 * 1024
MAX_PEB = 4 * 1024 * 1024
VOLUME_TYPES = {1: "dynamic", 2: "static"}


class _Tail(io.TextIOBase):
    """Keeps the last line written: ubi_reader's final word before it gives up."""

    def __init__(self) -> None:
        self.last = ""

    def write(self, text: str) -> int:
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            self.last = lines[-1][-500:]
        return len(text)


@contextmanager
def quiet_ubireader() -> Iterator[None]:
    """Run ubi_reader code silently; its ``sys.exit`` becomes a ValueError with its message."""
    tail = _Tail()
    with redirect_stdout(tail), redirect_stderr(tail):
        try:
            yield
        except SystemExit:
            raise ValueError(f"ubi_reader gave up: {tail.last or 'no message'}") from None


def _header_valid(header: bytes) -> bool:
    """An erase-count header whose CRC (UBI's crc32, seed ~0, no final inversion) checks."""
    if len(header) < EC_HEADER.size or not header.startswith(MAGIC):
        return False
    crc = EC_HEADER.unpack_from(header)[-1]
    return crc == zlib.crc32(header[: EC_HEADER.size - 4]) ^ 0xFFFFFFFF


def _peb_size(handle: BinaryIO, offset: int, available: int) -> int | None:
    """Distance to the next valid erase-count header, if it is a plausible (power of two) PEB size."""
    size = MIN_PEB
    while size <= min(MAX_PEB, available - EC_HEADER.size):
        handle.seek(offset + size)
        if _header_valid(handle.read(EC_HEADER.size)):
            return size
        size *= 2
    return None


def pebs_length(handle: BinaryIO, offset: int, available: int) -> int | None:
    """Bytes of the run of PEBs with valid erase-count headers starting at ``offset``."""
    handle.seek(offset)
    if not _header_valid(handle.read(EC_HEADER.size)):
        return None
    peb = _peb_size(handle, offset, available)
    if peb is None:
        return None
    count = 1
    while (count + 1) * peb <= available:
        handle.seek(offset + count * peb)
        if not _header_valid(handle.read(EC_HEADER.size)):
            break
        count += 1
    return count * peb


class Ubi(Format):
    name = "ubi"
    description = "UBI flash volume image"
    magics = (Magic(0, MAGIC),)
    binwalk = (re.compile(r"^UBI erase count header"),)

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        return pebs_length(handle, offset, available)

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            peb = _peb_size(handle, 0, source.size) if _header_valid(handle.read(EC_HEADER.size)) else None
        if peb is None:
            raise ValueError("no valid UBI erase-count headers at a plausible block spacing")
        with quiet_ubireader():
            image = ubi(ubi_file(str(source.path), peb))
        for block in image.blocks.values():
            out.cover(block.file_offset, peb)
        several = len(image.images) > 1
        for number, ubi_image in enumerate(image.images):
            for name, volume in ubi_image.volumes.items():
                member = f"image{number}/{name}" if several else name
                attributes = {
                    "vol_id": volume.vol_id,
                    "image_seq": ubi_image.image_seq,
                    "vol_type": VOLUME_TYPES.get(volume.vol_rec.vol_type, str(volume.vol_rec.vol_type)),
                    "reserved_pebs": volume.vol_rec.reserved_pebs,
                }
                try:
                    with (
                        quiet_ubireader(),
                        out.member(
                            member, kind=ArtifactKind.PARTITION, compressed_size=source.size, attributes=attributes
                        ) as writer,
                    ):
                        for data in leb_virtual_file(image, volume.get_blocks(image.blocks)).reader():
                            writer.write(data)
                except ValueError as exc:
                    out.error(f"could not read volume: {exc}", IssueKind.FAILURE, member=member)
