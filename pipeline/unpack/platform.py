"""Platform facts that ordinary files state about the device: Android's build.prop.

Format modules report the platform of the containers they read (a PAC
header, a MAUI ROM info block, a scatter file); this module reads the one
leaf that names an Android device's OS version and chipset. Small and
bounded: only files named ``build.prop`` or ``default.prop`` under 256 KiB.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.model import Platform

PROP_FILES = ("build.prop", "default.prop", "prop.default")
MAX_PROP_SIZE = 256 * 1024
CHIPSET_KEYS = ("ro.mediatek.platform", "ro.board.platform", "ro.hardware.chipname", "ro.soc.model")


def is_prop_file(name: str, size: int) -> bool:
    return PurePosixPath(name).name in PROP_FILES and 0 < size <= MAX_PROP_SIZE


def parse_props(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            props[key.strip()] = value.strip()
    return props


def platform_from_props(path: Path, lineage_path: str) -> Platform | None:
    """The Android version and chipset a build.prop states, or None if it states neither."""
    props = parse_props(path.read_bytes()[:MAX_PROP_SIZE].decode("utf-8", "replace"))
    release = props.get("ro.build.version.release")
    chipset = next((props[k] for k in CHIPSET_KEYS if props.get(k)), None)
    if not release and not chipset:
        return None
    return Platform(
        os=f"Android {release}" if release else None,
        chipset=chipset.upper() if chipset else None,
        how=f"{lineage_path}: " + ", ".join(
            k for k in ("ro.build.version.release", *CHIPSET_KEYS) if props.get(k)
        ),
    )
