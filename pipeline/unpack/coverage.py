"""Coverage accounting: where each byte of a container went.

An extractor marks the ranges it reached; carving marks the chunks it
found; every other byte is classified block by block as padding (erased
flash or zero fill), unknown (low-entropy data no reader claimed) or
undecodable (high entropy: encrypted, or compressed in a way we cannot
decode). ``effective`` folds children into their parent so the image-level
figure says how much of the image was really reached, all the way down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import BinaryIO

import numpy as np

from pipeline.model import Coverage

BLOCK = 4096
READ = 1 << 20
HIGH_ENTROPY = 7.2  # bits per byte; compressed or encrypted data sits above, code and text below

Ranges = Sequence[tuple[int, int]]


def merge(ranges: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Sorted, non-overlapping (start, end) intervals clipped to [0, size)."""
    spans = sorted((max(0, off), min(size, off + length)) for off, length in ranges if length > 0)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _gaps(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    gaps, pos = [], 0
    for start, end in spans:
        if start > pos:
            gaps.append((pos, start))
        pos = max(pos, end)
    if pos < size:
        gaps.append((pos, size))
    return gaps


def _block_entropy(blocks: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits/byte) of each row of a (n, BLOCK) uint8 array."""
    rows = blocks.shape[0]
    keys = (np.arange(rows, dtype=np.int64)[:, None] * 256 + blocks).ravel()
    counts = np.bincount(keys, minlength=rows * 256).reshape(rows, 256)
    probabilities = counts / blocks.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, -probabilities * np.log2(probabilities), 0.0)
    return terms.sum(axis=1)


def classify(handle: BinaryIO, start: int, end: int) -> tuple[int, int, int]:
    """(padding, unknown, undecodable) byte counts of ``[start, end)`` of a file."""
    padding = unknown = undecodable = 0
    handle.seek(start)
    pos = start
    while pos < end:
        data = handle.read(min(READ, end - pos))
        if not data:
            unknown += end - pos
            break
        pos += len(data)
        usable = len(data) - len(data) % BLOCK
        if usable:
            blocks = np.frombuffer(data, dtype=np.uint8, count=usable).reshape(-1, BLOCK)
            flat = (blocks == blocks[:, :1]).all(axis=1) & np.isin(blocks[:, 0], (0x00, 0xFF))
            entropy = _block_entropy(blocks[~flat]) if (~flat).any() else np.zeros(0)
            padding += int(flat.sum()) * BLOCK
            high = int((entropy >= HIGH_ENTROPY).sum())
            undecodable += high * BLOCK
            unknown += (len(entropy) - high) * BLOCK
        tail = data[usable:]
        if tail.strip(b"\x00") == b"" or tail.strip(b"\xff") == b"":
            padding += len(tail)
        else:
            unknown += len(tail)
    return padding, unknown, undecodable


def container_coverage(
    handle: BinaryIO, size: int, *, unpacked: Ranges = (), carved: Ranges = (), undecodable: Ranges = ()
) -> Coverage:
    """Account for every byte of a container given what the extractor and the carver reached."""
    unpacked_spans = merge(unpacked, size)
    carved_spans = merge(carved, size)
    undecodable_spans = merge(undecodable, size)
    unpacked_bytes = sum(e - s for s, e in unpacked_spans)
    known = merge([(s, e - s) for s, e in (*unpacked_spans, *carved_spans, *undecodable_spans)], size)
    carved_bytes = sum(e - s for s, e in carved_spans)  # carving only runs where no extractor did
    marked_undecodable = sum(e - s for s, e in known) - unpacked_bytes - carved_bytes
    padding = unknown = high = 0
    for start, end in _gaps(known, size):
        p, u, h = classify(handle, start, end)
        padding, unknown, high = padding + p, unknown + u, high + h
    return Coverage(
        bytes=size,
        unpacked=unpacked_bytes,
        carved=carved_bytes,
        padding=padding,
        unknown=unknown,
        undecodable=high + max(marked_undecodable, 0),
    )


def effective(own: Coverage, children: Sequence[Coverage]) -> Coverage:
    """Fold children's coverage into their parent's, in the parent's bytes.

    The bytes a container handed to its children are only as reached as the
    children themselves: if half of a zip's payload is an encrypted blob, half
    of the zip's bytes were not reached. Children's unreached share is split
    into unknown and undecodable as it is in the children.
    """
    total_children = sum(c.bytes for c in children)
    if total_children == 0:
        return own
    reached = sum(c.reached for c in children) / total_children
    lost_unknown = sum(c.unknown for c in children)
    lost_undecodable = sum(c.undecodable for c in children)
    lost_total = lost_unknown + lost_undecodable
    handed = own.unpacked + own.carved
    lost = round(handed * (1 - reached))
    undecodable_share = round(lost * lost_undecodable / lost_total) if lost_total else 0
    unpacked = round(own.unpacked * reached)
    carved = handed - lost - unpacked
    return Coverage(
        bytes=own.bytes,
        unpacked=unpacked,
        carved=max(carved, 0),
        padding=own.padding,
        unknown=own.unknown + lost - undecodable_share,
        undecodable=own.undecodable + undecodable_share,
    )
