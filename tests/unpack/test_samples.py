"""Every bundled sample unpacks as its manifest says: files found, chains, errors, notes, platform.

The expectations come from ``samples/manifest.json``, written by the
generator next to the images, so a regression in any format shows up here as
a whole-sample difference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.model import ExtractionTree

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
FILES = [s["file"] for s in json.loads((SAMPLES / "manifest.json").read_text())["samples"]]


def _ancestor_formats(tree: ExtractionTree, artifact_id: int) -> list[str]:
    chain, parent = [], tree.artifacts[artifact_id].parent
    while parent is not None:
        chain.append(tree.artifacts[parent].format)
        parent = tree.artifacts[parent].parent
    return chain[::-1]


@pytest.mark.parametrize("file", FILES)
def test_sample_unpacks_as_its_manifest_says(file: str, manifest: dict, sample_trees) -> None:
    sample = manifest[file]
    tree = sample_trees(file)
    for wanted in sample["contains"]:
        found = [a for a in tree.artifacts if a.lineage_path.endswith(wanted["path_endswith"])]
        assert found, f"{wanted['path_endswith']} not found in {file}"
        if wanted["formats"] is not None:
            chains = [_ancestor_formats(tree, a.id) for a in found]
            assert wanted["formats"] in chains, f"{wanted['path_endswith']}: chains {chains}"
    formats = {a.format for a in tree.artifacts}
    assert set(sample["formats"]) <= formats, f"missing formats {set(sample['formats']) - formats}"
    errors = [e.error for e in tree.errors]
    assert tree.complete is sample["extraction_complete"], errors
    for pattern in sample["errors"]:
        assert any(re.search(pattern, e) for e in errors), f"no error matches {pattern!r}: {errors}"
    notes = [n.note for n in tree.notes]
    for pattern in sample["notes"]:
        assert any(re.search(pattern, n) for n in notes), f"no note matches {pattern!r}: {notes}"
    for field, value in sample["platform"].items():
        assert getattr(tree.platform, field) == value


ESCAPE_NAMES = ("fwtriage-escape", "fwtriage-absolute", "fwtriage-middle", "fwtriage-backslash",
                "fwtriage-through-link")


@pytest.mark.parametrize("file", [f for f in FILES if f.startswith("hostile-")])
def test_hostile_sample_writes_nothing_outside_the_work_directory(file: str, sample_trees) -> None:
    sample_trees(file)
    places = [Path("/"), Path("/tmp"), Path("/etc"), Path.cwd(), SAMPLES, SAMPLES.parent, Path.home()]
    for place in places:
        for name in ESCAPE_NAMES:
            assert not (place / name).exists(), place / name


def test_zip_bomb_disk_use_is_bounded(manifest: dict, tmp_path: Path) -> None:
    from pipeline.config import Limits, Settings
    from pipeline.store import LocalBlobStore
    from pipeline.unpack import unpack

    settings = Settings(home=tmp_path / "home", limits=Limits())
    tree = unpack(SAMPLES / "out" / "hostile-zip-bomb.zip", store=LocalBlobStore(settings.store_dir),
                  settings=settings)
    assert any("decompression bomb stopped" in e.error for e in tree.errors)
    used = sum(p.stat().st_size for p in (tmp_path / "home").rglob("*") if p.is_file())
    assert used < 4 << 20  # the image itself (1 MB) and nothing of the bomb's expansion
