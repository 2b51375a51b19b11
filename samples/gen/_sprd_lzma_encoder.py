"""Encoder for Spreadtrum's LZMA variant: greedy matches, no repeat matches.

The vendor's packer is not public, and the feature-phone samples and tests
need streams in the variant that ``pipeline.unpack.formats._sprd_lzma``
decodes. With ``sprd=False`` it writes standard LZMA, which lets the tests
check both sides against xz.
"""

from __future__ import annotations

from pipeline.unpack.formats._sprd_lzma import (
    _ALIGN,
    _BIT_MODEL_TOTAL,
    _IS_MATCH,
    _IS_REP,
    _LEN_CODER,
    _LEN_HIGH,
    _LEN_LOW,
    _LEN_MID,
    _LIT_STATES,
    _LITERAL,
    _MATCH_MIN,
    _MOVE_BITS,
    _POS_BITS_MAX,
    _POS_SLOT,
    _SPEC_POS,
    _TOP,
    Properties,
    _literal_state,
)


class _RangeEncoder:
    def __init__(self) -> None:
        self.low = 0
        self.range = 0xFFFFFFFF
        self.cache = 0
        self.cache_size = 1
        self.out = bytearray()

    def _shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            byte = self.cache
            while True:
                self.out.append((byte + carry) & 0xFF)
                byte = 0xFF
                self.cache_size -= 1
                if not self.cache_size:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def bit(self, probs: list[int], index: int, bit: int) -> None:
        prob = probs[index]
        bound = (self.range >> 11) * prob
        if bit:
            self.low += bound
            self.range -= bound
            probs[index] = prob - (prob >> _MOVE_BITS)
        else:
            self.range = bound
            probs[index] = prob + ((_BIT_MODEL_TOTAL - prob) >> _MOVE_BITS)
        while self.range < _TOP:
            self.range <<= 8
            self._shift_low()

    def tree(self, probs: list[int], base: int, bits: int, value: int) -> None:
        symbol = 1
        for i in reversed(range(bits)):
            bit = (value >> i) & 1
            self.bit(probs, base + symbol, bit)
            symbol = (symbol << 1) | bit

    def reverse(self, probs: list[int], base: int, bits: int, value: int) -> None:
        symbol = 1
        for _ in range(bits):
            bit = value & 1
            value >>= 1
            self.bit(probs, base + symbol, bit)
            symbol = (symbol << 1) | bit

    def direct(self, bits: int, value: int) -> None:
        for i in reversed(range(bits)):
            self.range >>= 1
            if (value >> i) & 1:
                self.low += self.range
            while self.range < _TOP:
                self.range <<= 8
                self._shift_low()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        return bytes(self.out)


def _find_match(data: bytes, pos: int, chains: dict[bytes, list[int]], window: int) -> tuple[int, int]:
    """Longest earlier occurrence (distance, length) of the bytes at ``pos``, over a few candidates."""
    key = data[pos : pos + 3]
    best_len, best_dist = 0, 0
    limit = min(273, len(data) - pos)
    for candidate in reversed(chains.get(key, [])[-16:]):
        distance = pos - candidate
        if distance > window:
            break
        length = 3
        while length < limit and data[candidate + length] == data[pos + length]:
            length += 1
        if length > best_len:
            best_len, best_dist = length, distance
            if length == limit:
                break
    return best_dist, best_len


def compress(data: bytes, *, sprd: bool = True, dictionary: int = 1 << 16) -> bytes:
    """Encode ``data`` as one stream (header included) of the variant, or of standard LZMA."""
    props = Properties(3, 0, 2, dictionary, len(data))
    probs = [_BIT_MODEL_TOTAL >> 1] * props.probabilities
    rc = _RangeEncoder()
    chains: dict[bytes, list[int]] = {}
    state, rep0, pos = 0, 1, 0
    pb_mask, lc_shift = (1 << props.pb) - 1, 8 - props.lc
    while pos < len(data):
        pos_state = pos & pb_mask
        distance, length = _find_match(data, pos, chains, dictionary) if pos + 3 <= len(data) else (0, 0)
        step = length if length >= 3 else 1
        for i in range(pos, min(pos + step, len(data) - 2)):
            chains.setdefault(data[i : i + 3], []).append(i)
        if length < 3:
            rc.bit(probs, _IS_MATCH + (state << _POS_BITS_MAX) + pos_state, 0)
            previous = data[pos - 1] if pos else 0
            base = _LITERAL + 0x300 * (previous >> lc_shift)  # lp is 0: no position bits
            if state >= _LIT_STATES and not sprd:
                _encode_matched_literal(rc, probs, base, data[pos], data[pos - rep0])
            else:
                rc.tree(probs, base, 8, data[pos])
            state = _literal_state(state)
            pos += 1
            continue
        rc.bit(probs, _IS_MATCH + (state << _POS_BITS_MAX) + pos_state, 1)
        rc.bit(probs, _IS_REP + state, 0)
        _encode_length(rc, probs, length - _MATCH_MIN, pos_state)
        _encode_distance(rc, probs, distance - 1, min(length - _MATCH_MIN, 3))
        state = _LIT_STATES if state < _LIT_STATES else 10
        rep0 = distance
        pos += length
    return props.pack() + rc.finish()


def _encode_matched_literal(rc: _RangeEncoder, probs: list[int], base: int, byte: int,
                            match_byte: int) -> None:
    symbol, offs = byte | 0x100, 0x100
    while symbol < 0x10000:
        match_byte <<= 1
        rc.bit(probs, base + offs + (match_byte & offs) + (symbol >> 8), (symbol >> 7) & 1)
        symbol <<= 1
        offs &= ~(match_byte ^ symbol)


def _encode_length(rc: _RangeEncoder, probs: list[int], length: int, pos_state: int) -> None:
    if length < 8:
        rc.bit(probs, _LEN_CODER, 0)
        rc.tree(probs, _LEN_CODER + _LEN_LOW + (pos_state << 3), 3, length)
    elif length < 16:
        rc.bit(probs, _LEN_CODER, 1)
        rc.bit(probs, _LEN_CODER + 1, 0)
        rc.tree(probs, _LEN_CODER + _LEN_MID + (pos_state << 3), 3, length - 8)
    else:
        rc.bit(probs, _LEN_CODER, 1)
        rc.bit(probs, _LEN_CODER + 1, 1)
        rc.tree(probs, _LEN_CODER + _LEN_HIGH, 8, length - 16)


def _encode_distance(rc: _RangeEncoder, probs: list[int], distance: int, length_state: int) -> None:
    if distance < 4:
        rc.tree(probs, _POS_SLOT + (length_state << 6), 6, distance)
        return
    top = distance.bit_length() - 1
    slot = 2 * top + ((distance >> (top - 1)) & 1)
    rc.tree(probs, _POS_SLOT + (length_state << 6), 6, slot)
    bits = (slot >> 1) - 1
    base = (2 | (slot & 1)) << bits
    reduced = distance - base
    if slot < 14:
        rc.reverse(probs, _SPEC_POS + base - slot - 1, bits, reduced)
    else:
        rc.direct(bits - 4, reduced >> 4)
        rc.reverse(probs, _ALIGN, 4, reduced & 15)
