"""Android ``build.prop`` / ``default.prop``: platform facts and the debug settings that weaken a device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.analyze.configs.findings import NAME
from pipeline.analyze.configs.locations import Location
from pipeline.analyze.configs.syntax import Line
from pipeline.model import Category, Finding, Severity

PLATFORM_KEYS = (
    "ro.product.manufacturer", "ro.product.brand", "ro.product.model", "ro.product.device", "ro.product.name",
    "ro.product.vendor.manufacturer", "ro.product.vendor.model", "ro.build.version.release",
    "ro.build.version.sdk", "ro.build.version.security_patch", "ro.build.display.id", "ro.build.type",
    "ro.build.tags", "ro.build.fingerprint", "ro.vendor.build.fingerprint", "ro.board.platform",
    "ro.mediatek.platform", "ro.hardware", "ro.product.cpu.abi",
)


@dataclass(frozen=True)
class PropCheck:
    """A property value that weakens the device or tells how it was built."""

    rule: str
    keys: tuple[str, ...]
    matches: Callable[[str, str], bool]  # (key, value)
    category: Category
    severity: Severity
    title: str
    description: str


PROP_CHECKS = (
    PropCheck("configs:debuggable", ("ro.debuggable",), lambda k, v: v == "1", Category.PRIVILEGE, Severity.LOW,
              "Debuggable build (ro.debuggable=1)",
              "Every app can be debugged and adbd may restart as root ('adb root'); normal on eng/userdebug "
              "builds, unusual on a retail device."),
    PropCheck("configs:adb-root", ("ro.secure", "service.adb.root"),
              lambda k, v: v == ("0" if k == "ro.secure" else "1"), Category.PRIVILEGE, Severity.LOW,
              "adb shell runs as root",
              "ro.secure=0 or service.adb.root=1: adbd keeps root, so anyone with USB access gets a root shell."),
    PropCheck("configs:adb-no-auth", ("ro.adb.secure",), lambda k, v: v == "0", Category.PRIVILEGE, Severity.LOW,
              "adb accepts unauthorised hosts (ro.adb.secure=0)",
              "adbd does not ask the user to authorise the host's RSA key before giving a shell."),
    PropCheck("configs:adb-enabled", ("persist.sys.usb.config", "sys.usb.config", "persist.service.adb.enable"),
              lambda k, v: v == "1" or "adb" in v.split(","), Category.PROPERTY, Severity.INFO,
              "adb enabled by default",
              "The default USB configuration includes adb: the device offers a debug shell over USB."),
    PropCheck("configs:test-keys", ("ro.build.tags",), lambda k, v: "test-keys" in v, Category.PROPERTY,
              Severity.INFO, "Build signed with test keys",
              "The build is signed with the public AOSP test keys: anyone can sign updates and system apps for it."),
    PropCheck("configs:debug-build", ("ro.build.type",), lambda k, v: v in ("eng", "userdebug"), Category.PROPERTY,
              Severity.INFO, "Debug build type", "ro.build.type is eng or userdebug, not a retail 'user' build."),
)


def read_props(lines: list[Line]) -> dict[str, tuple[str, Line]]:
    """key → (value, line); the first definition of a read-only ``ro.`` key wins, the last of any other."""
    props: dict[str, tuple[str, Line]] = {}
    for line in lines:
        key, sep, value = line.text.strip().partition("=")
        key = key.strip()
        if not sep or not key or key.startswith("#") or " " in key:
            continue
        if key.startswith("ro.") and key in props:
            continue
        props[key] = (value.strip(), line)
    return props


def _platform_summary(known: dict[str, str]) -> str:
    """"Maker Model, Android N, chipset" from what the file states; "" when it names no device or build."""
    model = known.get("ro.product.model") or known.get("ro.product.vendor.model") or known.get("ro.product.device")
    maker = known.get("ro.product.manufacturer") or known.get("ro.product.vendor.manufacturer") or known.get(
        "ro.product.brand")
    release = known.get("ro.build.version.release")
    chipset = known.get("ro.mediatek.platform") or known.get("ro.board.platform") or known.get("ro.hardware")
    parts = (" ".join(p for p in (maker, model) if p), f"Android {release}" if release else "", chipset or "")
    summary = ", ".join(p for p in parts if p)
    fingerprint = known.get("ro.build.fingerprint") or known.get("ro.vendor.build.fingerprint") or ""
    return summary or fingerprint


def prop_findings(lines: list[Line], location: Location) -> list[Finding]:
    """Platform facts and debug settings stated by a build.prop or default.prop."""
    props = read_props(lines)
    findings: list[Finding] = []
    facts = [(key, *props[key]) for key in PLATFORM_KEYS if key in props and props[key][0]]
    summary = _platform_summary({key: value for key, value, _ in facts})
    if summary:
        findings.append(Finding(
            rule="configs:android-build", analyzer=NAME, category=Category.PROPERTY, severity=Severity.INFO,
            title=f"Android build: {summary}", tags=("config:build-prop",),
            evidence=tuple(line.evidence() for _, _, line in sorted(facts, key=lambda f: f[2].offset)),
            description="; ".join(f"{key}={value}" for key, value, _ in facts)))
    for check in PROP_CHECKS:
        hits = [(key, *props[key]) for key in check.keys if key in props and check.matches(key, props[key][0])]
        if hits:
            findings.append(Finding(
                rule=check.rule, analyzer=NAME, category=check.category, severity=check.severity, title=check.title,
                tags=tuple(sorted({"config:build-prop", *(f"prop:{key}={value}" for key, value, _ in hits)})),
                evidence=tuple(line.evidence() for _, _, line in hits), description=check.description))
    return findings
