"""Build every sample into ``samples/out/`` and write ``samples/manifest.json``.

Run with ``python -m samples.build`` (``make samples``). Each family lives in
``samples/gen/<family>.py`` and returns its Sample records; the build is
deterministic and reuses ``samples/cache/`` between runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from samples.sample import BuildContext, Sample

FAMILIES = ("linux", "android", "featurephone", "hostile")
ROOT = Path(__file__).resolve().parent


def build(families: tuple[str, ...] = FAMILIES) -> list[Sample]:
    ctx = BuildContext(root=ROOT, out=ROOT / "out", cache=ROOT / "cache")
    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.cache.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    for family in families:
        module = importlib.import_module(f"samples.gen.{family}")
        built = module.build(ctx)
        print(f"{family}: {len(built)} samples", file=sys.stderr)
        samples.extend(built)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("families", nargs="*", default=list(FAMILIES), help="families to build")
    args = parser.parse_args()
    samples = build(tuple(args.families))
    if tuple(args.families) == FAMILIES:
        manifest = {"samples": [s.to_dict() for s in sorted(samples, key=lambda s: s.file)]}
        (ROOT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{len(samples)} samples in {ROOT / 'out'}", file=sys.stderr)


if __name__ == "__main__":
    main()
