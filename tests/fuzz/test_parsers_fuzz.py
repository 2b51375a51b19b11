"""Property fuzzing of every parser of ours with hypothesis, bounded to run in the default suite.

Inputs start from valid structures (``fuzz.seeds``) and are mutated the way a
hostile image lies: bit flips, truncation, splices of random bytes, and size,
count and offset fields set to 0, -1, huge or just past the end; plain random
bytes and random bytes behind a valid header complete the set. The property
checked on every input is ``fuzz.targets``': extract or fail with a documented
error, never write outside the store, stay within the budget and the deadline.
"""

from __future__ import annotations

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import seeds
from fuzz.seeds import Seed
from fuzz.targets import TARGETS, Target

# examples per target: the walker and the carver cost more per input than a single parser
EXAMPLES = {"pac": 400, "sparse": 400, "boot": 400, "ota": 400, "uimage": 400, "carve": 400, "walker": 250}
SEEDS = {name: target.seeds() for name, target in TARGETS.items()}


def _suspicious(width: int, length: int) -> st.SearchStrategy[int]:
    """Values hostile headers use: 0, 1, -1, the sign bit, around the input's length, or anything."""
    top = (1 << 8 * width) - 1
    return st.sampled_from([0, 1, top, top >> 1, (top >> 1) + 1, length, length + 1, 2 * length, top - length]) \
        | st.integers(0, top)


@st.composite
def mutants(draw: st.DrawFn, pool: list[Seed]) -> bytes:
    seed = draw(st.sampled_from(pool))
    data = bytearray(seed.data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(("field", "field", "flip", "truncate", "splice")))
        if how == "field" and seed.fields:
            target = draw(st.sampled_from(seed.fields))
            target.write(data, draw(_suspicious(target.width, len(data))))
        elif how == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif how == "splice":
            at = draw(st.integers(0, len(data)))
            data[at : at + draw(st.integers(0, 64))] = draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def _behind_header(pool: list[Seed]) -> st.SearchStrategy[bytes]:
    """A valid seed's first bytes (its magic and some header) followed by random bytes."""
    return st.tuples(st.sampled_from(pool), st.integers(4, 2200), st.binary(max_size=2048)).map(
        lambda t: t[0].data[: t[1]] + t[2])


_NUMBERS = st.sampled_from([0, 1, 2, 3, 4, 5, 1 << 31, (1 << 32) - 1, 1 << 32, 10**20]) | st.integers(0, 300)


@st.composite
def _range_set(draw: st.DrawFn) -> str:
    numbers = draw(st.lists(_NUMBERS, max_size=8))
    count = draw(st.sampled_from([len(numbers), len(numbers) + 1, 0]) | _NUMBERS)
    return ",".join(map(str, [count, *numbers]))


@st.composite
def transfer_lists(draw: st.DrawFn) -> bytes:
    """Transfer lists from the grammar, with bad versions, unknown commands and absurd range sets."""
    version = draw(st.sampled_from(["1", "2", "3", "4", "0", "5", "", "x", str(1 << 40)]))
    commands = st.sampled_from(["new", "zero", "erase", "stash", "free", "move", "bsdiff", "compute_hash_tree",
                                "wipe", ""])
    lines = [version, *draw(st.lists(st.sampled_from(["0", "6", "x"]), max_size=3))]
    lines += [f"{draw(commands)} {draw(_range_set())}" for _ in range(draw(st.integers(0, 6)))]
    new_data = draw(st.none() | st.binary(max_size=3 * seeds.OTA_BLOCK))
    if new_data is None:
        return seeds.ota_input("\n".join(lines).encode(), None)
    if draw(st.booleans()):
        return seeds.ota_input("\n".join(lines).encode(), brotli.compress(new_data, quality=0), seeds.OTA_BROTLI)
    return seeds.ota_input("\n".join(lines).encode(), new_data)


def inputs(name: str) -> st.SearchStrategy[bytes]:
    pool = SEEDS[name]
    generated = [mutants(pool), _behind_header(pool), st.binary(max_size=4096)]
    if name == "ota":
        generated.append(transfer_lists())
    return st.one_of(generated)


def _fuzz(target: Target) -> None:
    @settings(max_examples=EXAMPLES[target.name], deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=inputs(target.name))
    def property_holds(data: bytes) -> None:
        target.run(data)  # raises on a crash or a broken property

    property_holds()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_open_as_designed(name: str) -> None:
    """The fuzzers start deep only if the valid seeds give members (the others start from a failure path)."""
    assert [TARGETS[name].run(seed.data) > 0 for seed in SEEDS[name]] == [seed.valid for seed in SEEDS[name]]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_extracts_or_records_an_error_on_hostile_input(name: str) -> None:
    _fuzz(TARGETS[name])
