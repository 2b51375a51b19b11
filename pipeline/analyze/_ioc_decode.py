"""Strings hidden with simple encodings: base64 tokens, single-byte XOR/ADD-encoded URLs, PEM armour (for ``iocs``).

Only what decodes to printable text is returned; whether that text names an
endpoint is ``_ioc_extract``'s business.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import mmap
import re
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
BASE64_WORD_RE = re.compile(r"[A-Za-z0-9+/]{16,4096}={0,2}", re.ASCII)
MIN_BASE64 = 16
MAX_DECODED = 2048  # characters of an XOR/ADD-decoded string read after its scheme
MAX_SINGLE_BYTE_HITS = 10_000  # XOR/ADD candidates decoded per file (a hostile file of encoded needles)
SINGLE_BYTE_NEEDLES = (b"http://", b"https://")
PRINTABLE_RUN_RE = re.compile(rb"[\x20-\x7e]*")
PEM_BEGIN = b"-----BEGIN "
PEM_END = b"-----END "
MAX_PEM_BLOCK = 64 << 10  # certificates and keys are a few KiB; a BEGIN without its END hides nothing


def base64_shaped(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Runs of the base64 alphabet that can hold a padded token: a length that is a multiple of 4, or an ``=``.

    Three quarters of the runs in code (symbol names, identifiers) fail this, before any string is made.
    """
    equals = np.flatnonzero(data == ord("="))
    return ((ends - starts) % 4 == 0) | (np.searchsorted(equals, ends) > np.searchsorted(equals, starts))


def decode_base64_text(token: str) -> str | None:
    """The text a padded base64 token decodes to, if it is all printable (a NUL terminator allowed)."""
    if len(token) % 4 or len(token) < MIN_BASE64:
        return None
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    raw = raw.rstrip(b"\x00")
    if len(raw) < 4 or not all(0x20 <= byte < 0x7F or byte in (9, 10, 13) for byte in raw):
        return None
    return raw.decode("ascii")


def base64_words(text: str) -> list[tuple[int, str]]:
    """(index, word) of the base64 words of a run of the base64 alphabet (``url=aHR0...`` holds two)."""
    if "=" in text:
        return [(match.start(), match.group()) for match in BASE64_WORD_RE.finditer(text)]
    # the common case: the run is one word, and most runs fail this length test
    return [(0, text)] if len(text) % 4 == 0 and len(text) >= MIN_BASE64 else []


class SingleByteHit(NamedTuple):
    """A string found encoded with a one-byte key: where, how, and what it decodes to."""

    offset: int
    method: str  # "xor" or "add"
    key: int
    encoded: bytes
    decoded: str


def single_byte_encoded(buffer: bytes | bytearray | memoryview | mmap.mmap,
                        chunk: int = 8 << 20) -> Iterator[SingleByteHit]:
    """Strings starting with an XOR- or ADD-encoded ``http(s)://``, for every key 1..255 in one pass.

    ``c[i] ^ c[i+1]`` (XOR) and ``c[i+1] - c[i]`` (ADD) do not depend on the key, so the encoded
    needles of all keys are one byte-difference pattern each, found with vector comparisons over the
    difference array of the file (computed by chunks overlapping by a needle's length): the first
    byte of the pattern selects ~1/256 of the positions, the next bytes filter those.
    """
    size = len(buffer)
    longest = max(len(needle) for needle in SINGLE_BYTE_NEEDLES)
    seen: set[tuple[int, int]] = set()  # (offset, key): XOR 0x80 is ADD 0x80, decoded once
    for start in range(0, max(size - 1, 0), chunk):
        end = min(size, start + chunk + longest)
        data = np.frombuffer(buffer, dtype=np.uint8, count=end - start, offset=start)
        for method, difference in (("xor", data[:-1] ^ data[1:]), ("add", data[1:] - data[:-1])):
            for needle in SINGLE_BYTE_NEEDLES:
                for position in _pattern_positions(difference, _difference(needle, method)):
                    offset = start + position
                    key = _key(buffer[offset], needle[0], method)
                    if key and (offset, key) not in seen:  # key 0: the plain text itself
                        seen.add((offset, key))
                        hit = _decode_single_byte(buffer, offset, method, key)
                        if hit is not None:
                            yield hit
                        if len(seen) >= MAX_SINGLE_BYTE_HITS:
                            return


def _pattern_positions(haystack: np.ndarray, pattern: bytes) -> list[int]:
    """Every position of ``pattern`` in a uint8 array: one full comparison, then filtering of the survivors."""
    room = len(haystack) - len(pattern) + 1
    if room <= 0:
        return []
    positions = np.flatnonzero(haystack[:room] == pattern[0])
    for index in range(1, len(pattern)):
        positions = positions[haystack[positions + index] == pattern[index]]
    return positions.tolist()


def _difference(needle: bytes, method: str) -> bytes:
    if method == "xor":
        return bytes(a ^ b for a, b in itertools.pairwise(needle))
    return bytes((b - a) & 0xFF for a, b in itertools.pairwise(needle))


def _key(encoded: int, plain: int, method: str) -> int:
    return encoded ^ plain if method == "xor" else (encoded - plain) & 0xFF


def _decode_single_byte(buffer: bytes | bytearray | memoryview | mmap.mmap, offset: int, method: str,
                        key: int) -> SingleByteHit | None:
    encoded = bytes(buffer[offset:offset + MAX_DECODED])
    table = bytes((byte ^ key) if method == "xor" else ((byte - key) & 0xFF) for byte in range(256))
    decoded = encoded.translate(table)
    match = PRINTABLE_RUN_RE.match(decoded)
    end = match.end() if match else 0
    if end < 12:  # "http://a.bc" at least
        return None
    return SingleByteHit(offset, method, key, encoded[:end], decoded[:end].decode("ascii"))


def pem_blocks(buffer: bytes | mmap.mmap) -> list[tuple[int, int]]:
    """(start, end) of every PEM armoured block: its base64 is a certificate or a key, not a hidden string.

    A block needs its ``-----END`` within ``MAX_PEM_BLOCK`` bytes, so a stray ``-----BEGIN`` cannot hide
    the rest of a file from the base64 decoder.
    """
    blocks: list[tuple[int, int]] = []
    begin = buffer.find(PEM_BEGIN)
    while begin >= 0:
        end = buffer.find(PEM_END, begin, begin + MAX_PEM_BLOCK)
        if end >= 0:
            blocks.append((begin, end))
            begin = buffer.find(PEM_BEGIN, end)
        else:
            begin = buffer.find(PEM_BEGIN, begin + len(PEM_BEGIN))
    return blocks


def inside(offset: int, blocks: list[tuple[int, int]]) -> bool:
    """Is a file offset within one of the (sorted) PEM blocks?"""
    index = bisect.bisect_right(blocks, (offset, 1 << 62)) - 1
    return index >= 0 and blocks[index][0] <= offset < blocks[index][1]
