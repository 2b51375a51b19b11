"""Spreadtrum's LZMA variant, as used in the DRPS payloads of SC65xx feature-phone firmware.

The streams carry the classic 13-byte ``.lzma`` header (properties byte,
dictionary size, 64-bit uncompressed size) and the classic range coder and
probability model, with one change: a literal that follows a match is coded
as a plain literal, without the "matched literal" context (the byte at the
last match distance). A standard decoder (xz, Python's ``lzma``) therefore
loses sync at the first such literal, so the variant needs its own decoder.
The difference is documented by the public SC6531 firmware helper of the
``spreadtrum_flash`` project (its ``LZMA_SPRD_HACK`` switch); this module is
our own implementation of the published LZMA algorithm with that switch.

``SprdLzmaDecoder`` follows the decompressor-object protocol of
``_stream.pump`` (``decompress(data, max_length)``, ``eof``, ``needs_input``,
``unused_data``), so a payload is decoded in bounded steps and streamed into
the store. The matching encoder, which the samples and tests need (the
vendor's packer is not public), lives in ``samples/gen/_sprd_lzma_encoder.py``
and shares this module's probability model.

Known limitations: pure Python, roughly 0.3–1 MB/s of output; dictionaries
above ``MAX_DICTIONARY`` are refused (feature-phone flash is 4–16 MiB).
"""

from __future__ import annotations

import struct

HEADER_SIZE = 13
MAX_DICTIONARY = 64 << 20
UNKNOWN_SIZE = (1 << 64) - 1

# Probability array layout of the reference decoder (LZMA SDK): one flat table.
_POS_BITS_MAX = 4
_IS_MATCH = 0
_IS_REP = _IS_MATCH + (12 << _POS_BITS_MAX)
_IS_REP_G0 = _IS_REP + 12
_IS_REP_G1 = _IS_REP_G0 + 12
_IS_REP_G2 = _IS_REP_G1 + 12
_IS_REP0_LONG = _IS_REP_G2 + 12
_POS_SLOT = _IS_REP0_LONG + (12 << _POS_BITS_MAX)
_SPEC_POS = _POS_SLOT + (4 << 6)
_ALIGN = _SPEC_POS + 128 - 14
_LEN_CODER = _ALIGN + 16
_LEN_PROBS = 2 + (16 << 3) + (16 << 3) + 256
_REP_LEN_CODER = _LEN_CODER + _LEN_PROBS
_LITERAL = _REP_LEN_CODER + _LEN_PROBS
_LEN_LOW, _LEN_MID, _LEN_HIGH = 2, 2 + (16 << 3), 2 + (16 << 3) + (16 << 3)

_TOP = 1 << 24
_BIT_MODEL_TOTAL = 1 << 11
_MOVE_BITS = 5
_MARGIN = 64  # input bytes one symbol can consume at most (51 bits, one byte each), rounded up
_LIT_STATES = 7
_MATCH_MIN = 2


def _literal_state(state: int) -> int:
    return 0 if state < 4 else state - 3 if state < 10 else state - 6


class Properties:
    """The ``lc``/``lp``/``pb`` triple, dictionary size and uncompressed size of a stream header."""

    def __init__(self, lc: int, lp: int, pb: int, dictionary: int, size: int) -> None:
        self.lc, self.lp, self.pb = lc, lp, pb
        self.dictionary = dictionary
        self.size = size

    @classmethod
    def parse(cls, header: bytes) -> Properties:
        if len(header) < HEADER_SIZE:
            raise EOFError("LZMA header is truncated")
        props, dictionary, size = struct.unpack_from("<BIQ", header)
        if props >= 9 * 5 * 5:
            raise ValueError(f"invalid LZMA properties byte {props:#x}")
        lc, rest = props % 9, props // 9
        return cls(lc, rest % 5, rest // 5, max(dictionary, 1), size)

    def pack(self) -> bytes:
        return struct.pack("<BIQ", (self.pb * 5 + self.lp) * 9 + self.lc, self.dictionary, self.size)

    @property
    def probabilities(self) -> int:
        return _LITERAL + (0x300 << (self.lc + self.lp))


class _RangeDecoder:
    def __init__(self) -> None:
        self.buf = b""
        self.pos = 0
        self.range = 0xFFFFFFFF
        self.code = 0

    def start(self) -> None:
        if self.buf[self.pos] != 0:
            raise ValueError("LZMA stream does not start with a zero byte")
        self.code = int.from_bytes(self.buf[self.pos + 1 : self.pos + 5], "big")
        self.pos += 5

    def bit(self, probs: list[int], index: int) -> int:
        if self.range < _TOP:
            self.range <<= 8
            self.code = (self.code << 8) | self.buf[self.pos]
            self.pos += 1
        prob = probs[index]
        bound = (self.range >> 11) * prob
        if self.code < bound:
            self.range = bound
            probs[index] = prob + ((_BIT_MODEL_TOTAL - prob) >> _MOVE_BITS)
            return 0
        self.range -= bound
        self.code -= bound
        probs[index] = prob - (prob >> _MOVE_BITS)
        return 1

    def tree(self, probs: list[int], base: int, bits: int) -> int:
        symbol = 1
        for _ in range(bits):
            symbol = (symbol << 1) | self.bit(probs, base + symbol)
        return symbol - (1 << bits)

    def reverse(self, probs: list[int], base: int, bits: int) -> int:
        symbol, value = 1, 0
        for i in range(bits):
            bit = self.bit(probs, base + symbol)
            symbol = (symbol << 1) | bit
            value |= bit << i
        return value

    def direct(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            if self.range < _TOP:
                self.range <<= 8
                self.code = (self.code << 8) | self.buf[self.pos]
                self.pos += 1
            self.range >>= 1
            bit = 1 if self.code >= self.range else 0
            self.code -= self.range & -bit
            value = (value << 1) | bit
        return value


class SprdLzmaDecoder:
    """Incremental decoder of one stream (header included), fed ``input_size`` bytes in pieces.

    ``sprd=False`` decodes standard LZMA (used by the tests to check the
    shared model against xz).
    """

    def __init__(self, input_size: int, *, sprd: bool = True) -> None:
        self._sprd = sprd
        self._input_size = input_size
        self._received = 0
        self._rc = _RangeDecoder()
        self._props: Properties | None = None
        self._probs: list[int] = []
        self._window = bytearray()
        self._pending = b""
        self._total = 0
        self._state = 0
        self._reps = [1, 1, 1, 1]
        self.eof = False

    @property
    def needs_input(self) -> bool:
        if self.eof or self._pending or self._received >= self._input_size:
            return False
        return len(self._rc.buf) - self._rc.pos < _MARGIN

    @property
    def unused_data(self) -> bytes:
        return self._rc.buf[self._rc.pos :] if self.eof else b""

    @property
    def size(self) -> int | None:
        """The uncompressed size announced by the header, once it has been read."""
        return None if self._props is None else self._props.size

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        rc = self._rc
        rc.buf = rc.buf[rc.pos :] + data
        rc.pos = 0
        self._received += len(data)
        limit = max_length if max_length > 0 else 1 << 62
        if self._pending:
            out, self._pending = self._pending[:limit], self._pending[limit:]
            return out
        try:
            if self._props is None and not self._start():
                return b""
            produced = self._run(limit)
        except IndexError:
            raise EOFError("compressed stream is truncated") from None
        out, self._pending = produced[:limit], produced[limit:]
        return out

    def _start(self) -> bool:
        rc = self._rc
        if len(rc.buf) < HEADER_SIZE + 5 and self._received < self._input_size:
            return False
        props = Properties.parse(rc.buf[:HEADER_SIZE])
        if props.dictionary > MAX_DICTIONARY:
            raise ValueError(f"LZMA dictionary of {props.dictionary} bytes is beyond {MAX_DICTIONARY}")
        rc.pos = HEADER_SIZE
        rc.start()
        self._props = props
        self._probs = [_BIT_MODEL_TOTAL >> 1] * props.probabilities
        if props.size == 0:
            self.eof = True
        return True

    def _run(self, limit: int) -> bytes:
        """Decode whole symbols until ``limit`` bytes are out, the input runs low, or the stream ends."""
        props, rc, probs, window = self._props, self._rc, self._probs, self._window
        assert props is not None
        start = len(window)
        state, reps, total = self._state, self._reps, self._total
        pb_mask, lp_mask, lc = (1 << props.pb) - 1, (1 << props.lp) - 1, props.lc
        everything = self._received >= self._input_size
        while not self.eof and len(window) - start < limit:
            if not everything and len(rc.buf) - rc.pos < _MARGIN:
                break
            pos_state = total & pb_mask
            if not rc.bit(probs, _IS_MATCH + (state << _POS_BITS_MAX) + pos_state):
                previous = window[-1] if window else 0
                base = _LITERAL + 0x300 * (((total & lp_mask) << lc) + (previous >> (8 - lc)))
                if state >= _LIT_STATES and not self._sprd:
                    symbol = self._matched_literal(base, window[-reps[0]])
                else:
                    symbol = rc.tree(probs, base, 8)
                window.append(symbol)
                total += 1
                state = _literal_state(state)
            else:
                length, state = self._match(state, pos_state, reps)
                if reps[0] == 0:  # end-of-stream marker
                    self.eof = True
                    break
                if reps[0] > total or reps[0] > len(window):
                    raise ValueError(f"LZMA match distance {reps[0]} is beyond the decoded data")
                length = min(length, props.size - total)
                source = len(window) - reps[0]
                if reps[0] >= length:
                    window += window[source : source + length]
                else:
                    pattern = window[source:]
                    window += (pattern * (length // len(pattern) + 1))[:length]
                total += length
            if total >= props.size:
                self.eof = True
        self._state, self._total = state, total
        produced = bytes(window[start:])
        keep = min(props.dictionary, max(props.size, 1))
        if len(window) > 2 * keep + _MARGIN:
            del window[: len(window) - keep]
        return produced

    def _matched_literal(self, base: int, match_byte: int) -> int:
        rc, probs = self._rc, self._probs
        symbol, offs = 1, 0x100
        while symbol < 0x100:
            match_byte <<= 1
            bit = match_byte & offs
            if rc.bit(probs, base + offs + bit + symbol):
                symbol = (symbol << 1) | 1
                offs &= bit
            else:
                symbol <<= 1
                offs &= ~bit
        return symbol & 0xFF

    def _match(self, state: int, pos_state: int, reps: list[int]) -> tuple[int, int]:
        """Decode a match or repeat match; updates ``reps`` in place, returns (length, new state)."""
        rc, probs = self._rc, self._probs
        if not rc.bit(probs, _IS_REP + state):
            reps[3], reps[2], reps[1] = reps[2], reps[1], reps[0]
            length = self._length(_LEN_CODER, pos_state)
            state = _LIT_STATES if state < _LIT_STATES else 10
            reps[0] = (self._distance(min(length, 3)) + 1) & 0xFFFFFFFF
            return length + _MATCH_MIN, state
        if not rc.bit(probs, _IS_REP_G0 + state):
            if not rc.bit(probs, _IS_REP0_LONG + (state << _POS_BITS_MAX) + pos_state):
                return 1, 9 if state < _LIT_STATES else 11
        else:
            if not rc.bit(probs, _IS_REP_G1 + state):
                distance = reps[1]
            else:
                if not rc.bit(probs, _IS_REP_G2 + state):
                    distance = reps[2]
                else:
                    distance = reps[3]
                    reps[3] = reps[2]
                reps[2] = reps[1]
            reps[1] = reps[0]
            reps[0] = distance
        length = self._length(_REP_LEN_CODER, pos_state)
        return length + _MATCH_MIN, 8 if state < _LIT_STATES else 11

    def _length(self, base: int, pos_state: int) -> int:
        rc, probs = self._rc, self._probs
        if not rc.bit(probs, base):
            return rc.tree(probs, base + _LEN_LOW + (pos_state << 3), 3)
        if not rc.bit(probs, base + 1):
            return 8 + rc.tree(probs, base + _LEN_MID + (pos_state << 3), 3)
        return 16 + rc.tree(probs, base + _LEN_HIGH, 8)

    def _distance(self, length_state: int) -> int:
        rc, probs = self._rc, self._probs
        slot = rc.tree(probs, _POS_SLOT + (length_state << 6), 6)
        if slot < 4:
            return slot
        bits = (slot >> 1) - 1
        distance = (2 | (slot & 1)) << bits
        if slot < 14:
            return distance + rc.reverse(probs, _SPEC_POS + distance - slot - 1, bits)
        distance += rc.direct(bits - 4) << 4
        return distance + rc.reverse(probs, _ALIGN, 4)
