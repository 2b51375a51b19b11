"""String extraction: ASCII and UTF-16LE runs with exact offsets, chunk boundaries, pieces, pre-filters."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.analyze import strings
from pipeline.analyze.strings import ASCII, UTF16LE, ExtractedString, iter_buffer_strings, iter_strings


def wide(text: str) -> bytes:
    return text.encode("utf-16-le")


def reference(buffer: bytes, min_length: int) -> list[tuple[int, str, str]]:
    """The same strings found with plain regexes, the slow obvious way."""
    found = [(m.start(), m.group().decode(), ASCII) for m in re.finditer(rb"[\x20-\x7e]{%d,}" % min_length, buffer)]
    for parity in (0, 1):
        units = buffer[parity:]
        pattern = re.compile(rb"(?:[\x20-\x7e]\x00){%d,}" % min_length)
        position = 0
        while (match := pattern.search(units, position)) is not None:
            if match.start() % 2:
                position = match.start() + 1
                continue
            found.append((parity + match.start(), match.group()[::2].decode(), UTF16LE))
            position = match.end()
    return sorted(found)


def test_ascii_and_utf16_strings_with_offsets() -> None:
    buffer = b"\x00\x01hello world\x00\xff" + wide("Settings") + b"\x00\x00ab\x00cdefgh\x7f"
    assert list(iter_buffer_strings(buffer)) == [
        ExtractedString(2, "hello world", ASCII),
        ExtractedString(36, "cdefgh", ASCII),
        ExtractedString(15, "Settings", UTF16LE),
    ]


def test_offset_of_counts_bytes_per_character() -> None:
    ascii_string, wide_string = ExtractedString(10, "abcdef", ASCII), ExtractedString(10, "abcdef", UTF16LE)
    assert (ascii_string.offset_of(3), wide_string.offset_of(3)) == (13, 16)
    assert (ascii_string.width, wide_string.width) == (1, 2)


def test_min_length_is_configurable() -> None:
    buffer = b"\x00abc\x00abcdef\x00"
    assert [s.text for s in iter_buffer_strings(buffer, min_length=3)] == ["abc", "abcdef"]
    assert [s.text for s in iter_buffer_strings(buffer, min_length=7)] == []


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"abcdef")
    assert list(iter_strings(empty)) == []
    assert list(iter_strings(tiny)) == [ExtractedString(0, "abcdef", ASCII)]


def test_a_file_left_half_read_is_closed_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"first string\x00second string\x00")
    strings_of_file = iter_strings(path)
    assert next(strings_of_file).text == "first string"
    strings_of_file.close()  # unmaps while numpy views may have existed: must not raise BufferError


def test_file_and_buffer_give_the_same_strings(tmp_path: Path) -> None:
    buffer = random.Random(3).randbytes(50_000) + b"http://example.com/x\x00"
    path = tmp_path / "blob"
    path.write_bytes(buffer)
    assert list(iter_strings(path)) == list(iter_buffer_strings(buffer))


@pytest.mark.parametrize("seed", range(40))
def test_chunk_boundaries_lose_and_duplicate_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random mixes of printable runs, UTF-16LE runs, NULs and noise, scanned in small chunks."""
    rng = random.Random(seed)
    parts = []
    while sum(map(len, parts)) < rng.randrange(100, 6000):
        roll = rng.random()
        if roll < 0.3:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))))
        elif roll < 0.6:
            parts.append(bytes(rng.randrange(0x20, 0x7F) for _ in range(rng.randrange(1, 40))))
        elif roll < 0.85:
            parts.append(wide("".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(1, 30)))))
        else:
            parts.append(b"\x00" * rng.randrange(1, 5))
    buffer = b"".join(parts)
    min_length = rng.choice([1, 4, 6, 8])
    expected = reference(buffer, min_length)
    longest = max((len(text) * (2 if encoding == UTF16LE else 1) for _, text, encoding in expected), default=0)
    for chunk in (longest + 1, longest + 7, 997, 1 << 20):
        monkeypatch.setattr(strings, "CHUNK", chunk)
        got = [(s.offset, s.text, s.encoding) for s in iter_buffer_strings(buffer, min_length, max_length=1 << 20)]
        assert sorted(got) == expected, chunk
        assert len(got) == len(set(got))


def test_long_runs_are_cut_into_overlapping_pieces() -> None:
    buffer = b"\x00" + b"a" * 10_000 + b"\x01"
    pieces = list(iter_buffer_strings(buffer, max_length=4096))
    assert [(p.offset, len(p.text), p.complete) for p in pieces] == [
        (1, 4096, False), (1 + 4096 - 256, 4096, False), (1 + 2 * (4096 - 256), 10_000 - 2 * (4096 - 256), True),
    ]


def test_a_run_longer_than_a_chunk_is_split_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strings, "CHUNK", 64)
    buffer = b"x" * 150
    assert [(s.offset, len(s.text)) for s in iter_buffer_strings(buffer, max_length=1000)] == [
        (0, 64), (64, 64), (128, 22),
    ]


def test_alphabet_must_contain_and_span_filter() -> None:
    buffer = b"\x00key=aGVsbG8gd29ybGQh\x00plain text here\x00a.b.c.d.e\x00"
    base64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    assert [s.text for s in iter_buffer_strings(buffer, 8, alphabet=base64)] == ["key=aGVsbG8gd29ybGQh"]
    assert [s.text for s in iter_buffer_strings(buffer, must_contain=b".=")] == ["key=aGVsbG8gd29ybGQh", "a.b.c.d.e"]

    def long_ones(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return (ends - starts) > 12

    assert [s.text for s in iter_buffer_strings(buffer, span_filter=long_ones)] == [
        "key=aGVsbG8gd29ybGQh", "plain text here",
    ]


def test_must_contain_finds_utf16_strings_too() -> None:
    buffer = b"\x00\x00" + wide("no dots here") + b"\x00\x00" + wide("www.example.com") + b"\x00\x00"
    assert [(s.text, s.encoding) for s in iter_buffer_strings(buffer, must_contain=b".")] == [
        ("www.example.com", UTF16LE),
    ]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        list(iter_buffer_strings(b"abcdef", min_length=0))
    with pytest.raises(ValueError):
        list(iter_buffer_strings(b"abcdef", encodings=("utf-32",)))
    with pytest.raises(ValueError):
        list(iter_buffer_strings(b"abcdef", alphabet=b"\x00\x01"))
    with pytest.raises(ValueError):
        list(iter_buffer_strings(b"abcdef", alphabet=b"abc", must_contain=b"."))
