"""Carving: find chunks of known formats at offsets inside an unidentified blob.

Raw flash dumps hold a bootloader, a kernel, a filesystem or two at offsets
and no table saying where. binwalk's signature scan (its Python API) proposes
offsets with a description; our own magic scan adds the formats binwalk does
not know. A candidate becomes a chunk only when its format module confirms it
and computes its length, so a magic number inside a binary is not a chunk.
binwalk reads only the regions with data: long runs of erased flash or zeros
are left out (``regions_with_data``), since its scan costs the same on them.

Known limitations: formats whose module cannot compute a chunk length are
not carved; a signature flood stops at ``max_carves`` and is recorded.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.unpack.format import Format

BINWALK_MIN_SIZE = 64 * 1024  # below this, binwalk's fixed start-up cost dwarfs any find
SCAN_READ = 1 << 20
BLANK_BLOCK = 64 * 1024  # blank runs are found in aligned blocks of this size, and kept as a margin around data
BLANK_SKIPPED = 1 << 20  # a shorter blank run is scanned: a binwalk call costs ~0.1 s, a MiB of scan ~0.2 s
_BLANKS = (bytes(BLANK_BLOCK), b"\xff" * BLANK_BLOCK)  # zeros (padding, holes) and erased flash


@dataclass(frozen=True)
class Chunk:
    offset: int
    length: int
    format: type[Format]


@dataclass(frozen=True)
class CarveResult:
    chunks: list[Chunk]
    candidates: int
    flooded: bool


@functools.cache
def _binwalk():  # the module has no type information
    """binwalk is imported lazily: it is slow to import and only needed for carving."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import binwalk

    return binwalk


def regions_with_data(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of the parts of a blob that a signature scan must read: all of it but the runs of at least
    BLANK_SKIPPED of zeros or of 0xFF between them (erased flash, padding, the holes of a sparse image).

    Why: binwalk scans ~5 MB/s whatever the bytes, so a dump that is mostly erased flash, or an image built to
    expand into a gigabyte of blanks, would spend minutes on bytes where no header can be. A header's magic is
    never blank; each region keeps BLANK_BLOCK of the blank run on either side, so a structure that starts with
    zeros before its magic (ext's boot block, a header padded in front) or is read past its magic is scanned whole.
    """
    regions: list[tuple[int, int]] = []
    start, blank_from, offset = 0, None, 0
    with open(path, "rb") as handle:
        while block := handle.read(BLANK_BLOCK):
            if block in _BLANKS:  # a full block compared by memcmp: ~1 µs
                blank_from = offset if blank_from is None else blank_from
            else:
                if blank_from is not None and offset - blank_from >= BLANK_SKIPPED + 2 * BLANK_BLOCK:
                    if blank_from > start:
                        regions.append((start, blank_from + BLANK_BLOCK - start))
                    start = offset - BLANK_BLOCK
                blank_from = None
            offset += len(block)
    if blank_from is None or offset - blank_from < BLANK_SKIPPED + BLANK_BLOCK:
        regions.append((start, offset - start))
    elif blank_from > start:
        regions.append((start, blank_from + BLANK_BLOCK - start))
    return regions


def binwalk_hits(path: Path, regions: Sequence[tuple[int, int]] | None = None) -> list[tuple[int, str]]:
    """(offset, description) of every valid binwalk signature in a file, or in its ``regions`` only."""
    binwalk = _binwalk()
    hits: list[tuple[int, str]] = []
    for offset, length in regions if regions is not None else [(0, 0)]:  # binwalk's length 0: to the end
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            modules = binwalk.scan(str(path), signature=True, quiet=True, offset=offset, length=length)
        hits.extend((r.offset, r.description) for m in modules for r in m.results if r.valid)
    return hits


def magic_hits(path: Path, magics: Sequence[bytes]) -> list[int]:
    """Offsets of our own carve magics, scanning the file in overlapping windows."""
    if not magics:
        return []
    overlap = max(len(m) for m in magics) - 1
    pattern = re.compile(b"|".join(re.escape(m) for m in magics))
    offsets: list[int] = []
    with open(path, "rb") as handle:
        base, previous = 0, b""
        while block := handle.read(SCAN_READ):
            window = previous + block
            start = base - len(previous)
            offsets.extend(start + m.start() for m in pattern.finditer(window) if m.start() + len(m.group())
                           > len(previous))
            previous = window[-overlap:] if overlap else b""
            base += len(block)
    return sorted(set(offsets))


def _candidates(path: Path, size: int, formats: Sequence[type[Format]]) -> list[tuple[int, type[Format]]]:
    found: list[tuple[int, type[Format]]] = []
    if size >= BINWALK_MIN_SIZE:
        walkable = [f for f in formats if f.binwalk]
        for offset, description in binwalk_hits(path, regions_with_data(path)):
            found.extend((offset, f) for f in walkable if any(p.search(description) for p in f.binwalk))
    own = [f for f in formats if f.carve_magics]
    magics = [m for f in own for m in f.carve_magics]
    longest = max((len(m) for m in magics), default=0)
    with open(path, "rb") as handle:
        for offset in magic_hits(path, magics):
            handle.seek(offset)
            head = handle.read(longest)
            found.extend((offset, f) for f in own if any(head.startswith(m) for m in f.carve_magics))
    return sorted(set(found), key=lambda item: (item[0], -item[1].priority, item[1].name))


def find_chunks(path: Path, size: int, formats: Sequence[type[Format]], max_carves: int) -> CarveResult:
    """Confirmed, non-overlapping chunks in a blob, in offset order."""
    candidates = _candidates(path, size, formats)
    chunks: list[Chunk] = []
    end_of_last = 0
    attempts = 0
    flooded = False
    with open(path, "rb") as handle:
        for offset, fmt in candidates:
            if offset < end_of_last:
                continue
            attempts += 1
            if len(chunks) >= max_carves or attempts > max_carves * 8:
                flooded = True
                break
            try:
                length = fmt.chunk_length(handle, offset, size - offset)
            except (ValueError, OSError, EOFError, io.UnsupportedOperation):
                length = None
            if length and length > 0:
                length = min(length, size - offset)
                chunks.append(Chunk(offset, length, fmt))
                end_of_last = offset + length
    return CarveResult(chunks, len(candidates), flooded)
