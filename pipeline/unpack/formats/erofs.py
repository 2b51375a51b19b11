"""EROFS, the read-only filesystem of recent Android system/vendor/product images.

There is no Python reader: Debian's erofs-utils extracts it
(``fsck.erofs --extract``), sandboxed by ``run_tool`` in the container's
private work directory, and the directory it writes is handed to the Output
(symlinks recorded verbatim, never followed).

References: linux/Documentation/filesystems/erofs.rst; erofs-utils'
include/erofs_fs.h (the superblock, magic 0xE0F5E1E2 at offset 1024).

Known limitations:
- The tool runs as an unprivileged user in the sandbox, so it skips device
  nodes and FIFOs without a word: they are neither created nor noted.
- Only the compressors erofs-utils was built with (lz4, lz4hc in Debian 12)
  are readable; LZMA/DEFLATE/zstd images fail.
- binwalk has no EROFS signature: an EROFS image inside a raw dump at an
  offset is not carved.
- The tool's total output is bounded per file (RLIMIT_FSIZE) and by its time
  limit, not by the image's byte budget, until it is ingested.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from pipeline.model import IssueKind
from pipeline.unpack.format import Format, Magic, Source
from pipeline.unpack.output import Output, ingest_directory
from pipeline.unpack.safety import ToolFailed, run_tool

SUPERBLOCK_OFFSET = 1024
MAGIC = 0xE0F5E1E2
SUPERBLOCK = struct.Struct("<IIIBBHQQII")  # magic, checksum, feature_compat, blkszbits, extslots, root_nid,
#                                            inos, build_time, build_time_nsec, blocks
TOOL = "fsck.erofs"


def image_length(superblock: bytes) -> int | None:
    """blocks × block size of a plausible EROFS superblock, or None."""
    if len(superblock) < SUPERBLOCK.size:
        return None
    magic, _, _, blkszbits, _, _, _, _, _, blocks = SUPERBLOCK.unpack_from(superblock)
    if magic != MAGIC or not 9 <= blkszbits <= 16 or not blocks:
        return None
    return blocks << blkszbits


class Erofs(Format):
    name = "erofs"
    description = "EROFS filesystem"
    magics = (Magic(SUPERBLOCK_OFFSET, MAGIC.to_bytes(4, "little")),)
    rooted = True

    @classmethod
    def chunk_length(cls, handle: BinaryIO, offset: int, available: int) -> int | None:
        handle.seek(offset + SUPERBLOCK_OFFSET)
        length = image_length(handle.read(SUPERBLOCK.size))
        return length if length is not None and length <= available else None

    def extract(self, source: Source, out: Output) -> None:
        with source.open() as handle:
            handle.seek(SUPERBLOCK_OFFSET)
            length = image_length(handle.read(SUPERBLOCK.size))
        if length is None:
            raise ValueError("invalid EROFS superblock")
        limits = source.limits
        target = source.work_dir / "root"
        try:
            result = run_tool(
                [TOOL, f"--extract={target}", "--no-preserve", str(source.path)],
                work_dir=source.work_dir,
                timeout=limits.extractor_seconds,
                memory=limits.tool_memory,
                max_file_size=max(int(source.size * limits.max_ratio), limits.ratio_floor),
            )
        except ToolFailed as exc:
            out.error(f"{TOOL}: {exc}", IssueKind.FAILURE)
        else:
            if result.returncode != 0:
                # the scratch path is random: dropped so the same image always gives the same message
                stderr = result.stderr.decode("utf-8", "replace").replace(str(target), "")
                message = stderr.strip().splitlines()
                out.error(f"{TOOL} exited with {result.returncode}: {' / '.join(message[-3:])}", IssueKind.FAILURE)
        out.cover(0, min(length, source.size))
        if target.is_dir():
            ingest_directory(out, target)
