"""The bundled samples by expected verdict (samples/manifest.json), to parametrise the report tests."""

from __future__ import annotations

import json

from tests.conftest import SAMPLES

MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())["samples"]
BY_VERDICT = {label: [s["file"] for s in MANIFEST if s["expect"]["verdict"] == label]
              for label in ("backdoor", "suspicious", "clean", "incomplete")}
# The backdoor whose report has it all: two behaviours, countries, decoded (base64) evidence, a boot script.
SHOWCASE = "flash-dump.bin"
assert SHOWCASE in BY_VERDICT["backdoor"]
