"""MediaTek scatter file (``MT6580_Android_scatter.txt``): the flash layout of an SP Flash Tool release.

A scatter file names the chipset and lists each partition with the image
file SP Flash Tool writes to it. The images are its siblings in the release
folder or archive and are unpacked on their own, so the scatter file gives
no children: it names the platform (chipset, and Android when the file name
or the partitions say so) and records the partition → file table it lists
in the container's ``partitions`` attribute.

Two layouts are read line by line (never with a YAML loader: the file is
hostile): the YAML-like one (``- general: MTK_PLATFORM_CFG``, ``platform:``,
``- partition_index:`` blocks with ``partition_name``/``file_name``) and the
older one (``NAME 0xADDRESS`` followed by ``{ }``), whose chipset comes only
from the file name.

Known limitations: the XML scatter files of recent chipsets are not read;
files listed but absent from the release are not reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pipeline.unpack.format import Format, Source
from pipeline.unpack.output import Output

MAX_SIZE = 1 << 20
MAX_PARTITIONS = 256  # entries of the partition table kept in the container's attributes
CHIPSET = re.compile(r"(?<![A-Z0-9])MT\d{4}[A-Z]?(?![A-Z0-9])", re.IGNORECASE)
KEY_VALUE = re.compile(r"^\s*(?:-\s*)?([A-Za-z_]+)\s*:\s*(.*?)\s*$")
OLD_ENTRY = re.compile(r"^\s*([A-Za-z0-9_]+)\s+0x[0-9A-Fa-f]+\s*$")
ANDROID_PARTITIONS = {"android", "system", "super", "boot", "bootimg", "recovery", "userdata", "vendor"}


@dataclass
class Scatter:
    platform: str | None = None
    partitions: list[tuple[str, str]] = field(default_factory=list)  # (partition, file or "")


def parse_scatter(text: str) -> Scatter:
    scatter = Scatter()
    entry: dict[str, str] | None = None
    for line in text.splitlines():
        if old := OLD_ENTRY.match(line):
            scatter.partitions.append((old.group(1), ""))
            continue
        found = KEY_VALUE.match(line)
        if not found:
            continue
        key, value = found.group(1).lower(), found.group(2)
        if key == "platform" and scatter.platform is None:
            scatter.platform = value
        elif key == "partition_index":
            entry = {}
            scatter.partitions.append(("", ""))
        elif entry is not None and key in ("partition_name", "file_name"):
            entry[key] = value
            name, file = entry.get("partition_name", ""), entry.get("file_name", "")
            scatter.partitions[-1] = (name, "" if file.upper() == "NONE" else file)
    return scatter


class MtkScatter(Format):
    name = "mtk-scatter"
    description = "MediaTek scatter file (SP Flash Tool layout)"

    @classmethod
    def matches(cls, head: bytes, size: int, name: str) -> bool:
        base = PurePosixPath(name).name.lower()
        if "scatter" not in base or not base.endswith(".txt") or size > MAX_SIZE:
            return False
        return b"partition_index" in head or b"MTK_PLATFORM_CFG" in head or \
            any(OLD_ENTRY.match(line) for line in head.decode("latin-1").splitlines()[:64])

    def extract(self, source: Source, out: Output) -> None:
        if source.size > MAX_SIZE:
            raise ValueError(f"a {source.size}-byte scatter file is beyond the {MAX_SIZE}-byte limit")
        scatter = parse_scatter(source.path.read_text("utf-8", "replace"))
        if not scatter.partitions:
            raise ValueError("scatter file lists no partitions")
        out.cover(0, source.size)
        base = PurePosixPath(source.name).name
        chipset_match = CHIPSET.search(scatter.platform or "") or CHIPSET.search(base)
        names = {name.lower() for name, _ in scatter.partitions}
        android = "android" in base.lower() or bool(names & ANDROID_PARTITIONS)
        out.attributes["partitions"] = [
            {"name": name, "file": file} for name, file in scatter.partitions[:MAX_PARTITIONS]
        ]
        out.set_platform(chipset=chipset_match.group(0).upper() if chipset_match else None,
                         os="Android" if android else None,
                         how=f"MediaTek scatter file {base} ({len(scatter.partitions)} partitions)")
