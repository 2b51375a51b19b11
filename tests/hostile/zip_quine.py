"""A zip archive whose only member is the archive itself, byte for byte (a "quine zip").

An unpacker that follows members blindly unzips it forever. Building one
takes two puzzles:

- A DEFLATE stream that decompresses to the whole file around it (local
  header P, the stream itself, central directory and end record S). The
  stream is a program of two instructions: ``lit(n)``, a stored block whose
  n bytes are output as they are, and ``rep(n)``, fixed-Huffman blocks that
  copy the last n bytes of output. Lines 1 to 12 below are R. Cox's
  self-reproducing sequence ("Zip Files All The Way Down", 2010), in bytes:
  every instruction starts and ends on a byte boundary, so a ``rep`` must
  cost an exact number of bits; ``_copies`` finds a split of the copy into
  pieces and blocks that does.
- The member's CRC-32 is stored inside the data it covers (four times). CRC-32
  is affine over GF(2) for a fixed length, so the value that is its own
  checksum is the solution of a 32 × 32 linear system (``_crc_fixed_point``).

The result is a valid archive for ``zipfile`` (CRC checked on read) and for
any unzip: the test asserts it before trusting it as hostile input.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from functools import cache, partial

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")
VERSION, DEFLATED = 20, 8
LIT_HEADER = 5  # a stored block's header on a byte boundary: type byte, LEN, NLEN
BLOCK_BITS = 3 + 7  # a fixed-Huffman block's header and its end-of-block code

# DEFLATE length symbols 257..285 and distance codes 0..29: (base, extra bits)
LENGTHS = [(3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0), (10, 0), (11, 1), (13, 1), (15, 1), (17, 1),
           (19, 2), (23, 2), (27, 2), (31, 2), (35, 3), (43, 3), (51, 3), (59, 3), (67, 4), (83, 4), (99, 4),
           (115, 4), (131, 5), (163, 5), (195, 5), (227, 5), (258, 0)]
DISTANCES = [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (7, 1), (9, 2), (13, 2), (17, 3), (25, 3), (33, 4), (49, 4),
             (65, 5), (97, 5), (129, 6), (193, 6), (257, 7), (385, 7), (513, 8), (769, 8), (1025, 9), (1537, 9),
             (2049, 10), (3073, 10), (4097, 11), (6145, 11), (8193, 12), (12289, 12), (16385, 13), (24577, 13)]


class _Bits:
    """DEFLATE's bit order: fields least significant bit first, Huffman codes most significant bit first."""

    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def field(self, value: int, width: int) -> None:
        self.value |= value << self.count
        self.count += width

    def code(self, code: int, width: int) -> None:
        self.field(int(f"{code:0{width}b}"[::-1], 2), width)

    def symbol(self, symbol: int) -> None:
        """A literal/length symbol in the fixed Huffman code (RFC 1951 3.2.6); only 256..287 are used here."""
        if symbol < 280:
            self.code(symbol - 256, 7)
        else:
            self.code(0xC0 + symbol - 280, 8)

    def to_bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def _code(table: list[tuple[int, int]], value: int) -> tuple[int, int, int]:
    """Index, extra bits' width and value of ``value`` in a DEFLATE base table."""
    index = max(i for i, (base, _) in enumerate(table) if base <= value)
    base, extra = table[index]
    return index, extra, value - base


def _copy_bits(length: int, distance: int) -> int:
    symbol, extra, _ = _code(LENGTHS, length)
    return (7 if symbol + 257 < 280 else 8) + extra + 5 + _code(DISTANCES, distance)[1]


@cache
def _copies(total: int, bits: int) -> tuple[int, list[int]] | None:
    """Blocks and copy lengths that repeat the last ``total`` bytes in exactly ``bits`` bits, or None.

    Every piece copies from ``total`` bytes back; empty blocks pad by ten bits.
    """
    reach: dict[int, dict[int, list[int]]] = {0: {0: []}}  # bytes copied -> payload bits -> pieces
    for done in range(total):
        for cost, pieces in list(reach.get(done, {}).items()):
            for length in range(3, min(258, total - done) + 1):
                spent = cost + _copy_bits(length, total)
                if spent <= bits:
                    reach.setdefault(done + length, {}).setdefault(spent, [*pieces, length])
    for payload, pieces in sorted(reach.get(total, {}).items()):
        blocks, padding = divmod(bits - payload, BLOCK_BITS)
        if padding == 0 and blocks >= 1:
            return blocks, pieces
    return None


def _exact(total: int, size: int, final: bool) -> tuple[int, list[int]] | None:
    """A plan filling ``size`` bytes; the final block may leave up to seven padding bits in its last byte."""
    slack = range(8) if final else range(1)
    return next((plan for pad in slack if (plan := _copies(total, 8 * size - pad))), None)


def rep(total: int, size: int, final: bool = False) -> bytes:
    """Fixed-Huffman blocks of exactly ``size`` bytes that copy the last ``total`` bytes of output."""
    plan = _exact(total, size, final)
    if plan is None:
        raise ValueError(f"no {size}-byte repeat of {total} bytes")
    blocks, pieces = plan
    bits = _Bits()
    for index in range(blocks):
        last = index == blocks - 1
        bits.field(1 if (final and last) else 0, 1)
        bits.field(1, 2)  # fixed Huffman codes
        for length in (pieces if last else []):
            symbol, extra, value = _code(LENGTHS, length)
            bits.symbol(257 + symbol)
            bits.field(value, extra)
            code, extra, value = _code(DISTANCES, total)
            bits.code(code, 5)
            bits.field(value, extra)
        bits.symbol(256)
    encoded = bits.to_bytes()
    assert len(encoded) == size
    return encoded


def lit(length: int) -> bytes:
    """The header of a stored block of ``length`` bytes (not final), starting on a byte boundary."""
    return struct.pack("<BHH", 0, length, length ^ 0xFFFF)


def _deflate_quine(prefix: bytes, suffix: bytes, width: int) -> bytes:
    """A DEFLATE stream that decompresses to ``prefix + stream + suffix``; ``width`` scales its repeats."""
    rep_a = rep(len(prefix) + LIT_HEADER, 10 * width - 5)  # copies line 1's output
    rep_b = rep(10 * width + 10, 5 * width)  # lines 6, 8 and 10
    rep_s = _final_repeat(len(suffix))
    lit_b = lit(10 * width + 10)
    empties = lit(0) * (width + 1)
    lit_s = lit(len(rep_s) + len(suffix))
    lit_a3 = lit(len(rep_a))
    lit_h = lit(LIT_HEADER)
    lit_a5 = lit(len(rep_a) + 3 * LIT_HEADER)
    lit_p = lit(len(prefix) + LIT_HEADER)
    return b"".join([
        lit_p, prefix, lit_p,  # 1: prints P and its own header
        rep_a,  # 2: prints them again
        lit_a3, rep_a,  # 3
        lit_h, lit_a3,  # 4
        lit_a5, rep_a, lit_h, lit_a3, lit_a5,  # 5
        rep_b,  # 6
        lit_b, rep_b, lit_b, rep_b, lit_b,  # 7
        rep_b,  # 8
        lit_b, rep_b, empties, lit_s,  # 9
        rep_b,  # 10
        empties, lit_s, rep_s, suffix,  # 11
        rep_s,  # 12: the final block, repeating itself and S
    ])


def _final_repeat(suffix: int) -> bytes:
    """The last block repeats itself and the suffix: its own size is part of what it copies."""
    size = next(size for size in range(1, 64) if _exact(size + suffix, size, final=True))
    return rep(size + suffix, size, final=True)


def _archive(name: bytes, width: int, crc: int, *, stamp: tuple[int, int]) -> bytes:
    def headers(stream_size: int) -> tuple[bytes, bytes]:
        local_size = LOCAL.size + len(name)
        central_size = CENTRAL.size + len(name)
        total = local_size + stream_size + central_size + END.size
        local = LOCAL.pack(b"PK\x03\x04", VERSION, 0, DEFLATED, *stamp, crc, stream_size, total, len(name), 0) + name
        central = CENTRAL.pack(b"PK\x01\x02", VERSION, VERSION, 0, DEFLATED, *stamp, crc, stream_size, total,
                               len(name), 0, 0, 0, 0, 0, 0) + name
        end = END.pack(b"PK\x05\x06", 0, 0, 1, 1, len(central), local_size + stream_size, 0)
        return local, central + end

    # the headers' sizes do not depend on the stream's, so a first pass measures it
    probe = _deflate_quine(*headers(0), width)
    local, tail = headers(len(probe))
    return local + _deflate_quine(local, tail, width) + tail


def _crc_fixed_point(build: Callable[[int], bytes]) -> int | None:
    """The value c with crc32(build(c)) == c, or None when the system is singular."""
    base = zlib.crc32(build(0))
    # column j: how setting bit j of the stored value flips the checksum
    columns = [zlib.crc32(build(1 << j)) ^ base for j in range(32)]
    # solve (I + M) c = base over GF(2): row i of the augmented matrix as an int, bit 32 = right-hand side
    rows = []
    for i in range(32):
        row = sum(((columns[j] >> i) & 1 ^ (i == j)) << j for j in range(32))
        rows.append(row | ((base >> i) & 1) << 32)
    for col in range(32):
        pivot = next((r for r in range(col, 32) if rows[r] >> col & 1), None)
        if pivot is None:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(32):
            if r != col and rows[r] >> col & 1:
                rows[r] ^= rows[col]
    return sum((rows[i] >> 32 & 1) << i for i in range(32))


def zip_quine(name: str = "quine.zip") -> bytes:
    """A zip whose one member, ``name``, is the zip itself (checked CRC, deflate)."""
    encoded = name.encode()
    for width in range(1, 8):
        for half_seconds in range(30):  # another time of day (00:00:00 to 00:00:58) when the system is singular
            stamp = (half_seconds, 0x5A6E)  # MS-DOS time and date: 2025-03-14
            try:
                crc = _crc_fixed_point(partial(_archive, encoded, width, stamp=stamp))
            except ValueError:  # no repeat of the exact size this width needs: try a wider one
                break
            if crc is not None:
                data = _archive(encoded, width, crc, stamp=stamp)
                assert zlib.crc32(data) == crc
                return data
    raise ValueError(f"no quine for the name {name!r}")
