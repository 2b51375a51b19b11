"""Boot and scheduling configuration: which programs the firmware starts by itself, how, and as whom.

Detection use cases
    A backdoor needs to run without anyone launching it, so it is started at
    boot (an Android ``service`` in an init ``.rc`` file, an ``/etc/init.d``
    script, an inittab line, a systemd unit), respawned when it dies, or
    scheduled by cron. This analyzer reads those files and emits one
    PERSISTENCE finding per program started, naming it in a ``runs:<path>``
    tag, so correlation can link "started at boot as root, respawned" to the
    component that is that program. It also reads Android ``build.prop`` and
    ``default.prop`` for platform facts and for debug settings that weaken
    the device (``ro.debuggable=1``, ``ro.secure=0``, ``ro.adb.secure=0``,
    adb enabled by default), and flags two strong signs on their own: a
    network shell started without a login (``telnetd -l /bin/sh``, ``nc -e``)
    and an Android service run in an unconfined SELinux domain (``su``).

    Every firmware starts daemons as root, so launch findings are LOW (root)
    or INFO: they matter when correlation ties them to a bad component.
    Which parser reads a file depends on where it lives (``Target.names``):
    the analyzer is path-sensitive.

Known limitations
    - Shell scripts are read heuristically, line by line, without running a
      shell: a program counts as started when it is the ``-x``/``-a`` of
      ``start-stop-daemon --start``, the command of OpenWrt's ``procd`` or
      ``service_start``, the target of ``exec``, an absolute path run as a
      command, or any command sent to the background with ``&``. Variables
      are substituted only from plain ``NAME=value`` assignments in the same
      file; a program still holding ``$`` after that is not reported.
      Functions and ``case`` arms named like stop/status/reload are skipped.
      Loops, sourced files (``. /lib/functions.sh``) and eval are not followed.
    - Each file is read alone: an Android ``start`` of a service declared in
      another ``.rc`` file, or a ``class_start`` of a vendor class, is not
      seen; a disabled service started elsewhere is reported as declared
      only (``configs:service``). Symlinks that enable a script or a unit
      (``/etc/rc.d/S50x``, ``*.wants/``) are not files, so an init.d script
      counts as started at boot when its name is ``S??*`` or it declares a
      start level (OpenWrt ``START=``, LSB ``Default-Start:``); a systemd
      unit when its ``[Install]`` section names a target.
    - Utilities that never stay running (mount, mkdir, echo, kill...) are
      not reported; programs run through another launcher than a shell
      (taskset, chrt, su) are reported as that launcher.
    - Only the first 1 MiB or 20,000 lines of a file are read, lines are
      parsed up to 8 KiB, and at most 200 programs per file with 8 evidence
      lines each are reported; a ``configs:partial`` finding says when a cap
      was reached. A file at a configuration path that is binary (too many
      control characters) gives one ``configs:not-text`` finding; an ELF
      stored as a boot script (``/etc/init.d/S99x``) or in ``/etc/cron.*/``
      is reported as started itself, with its path as evidence.
    - ``runs:`` holds the path as the configuration writes it (normalised,
      absolute only): an Android ``/system/bin/x`` may be stored as ``/bin/x``
      in a system image that is not system-as-root; symlinks (``/sbin/getty``
      → busybox) are not resolved here.

    Layout: ``locations`` (which parser, from the path), ``syntax`` (lines,
    words, commands, what a command runs), ``android_init``, ``scripts``,
    ``launches`` (inittab, crontab, systemd), ``props`` (build.prop) and
    ``findings`` (launches into findings and tags).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pipeline.analyze.base import Analyzer, AnalyzerFailed, Target
from pipeline.analyze.configs.android_init import parse_android_init
from pipeline.analyze.configs.findings import NAME, group_launches, launch_findings
from pipeline.analyze.configs.launches import ROOT, How, Launch, parse_crontab, parse_inittab, parse_systemd
from pipeline.analyze.configs.locations import Kind, Location, locate
from pipeline.analyze.configs.props import prop_findings
from pipeline.analyze.configs.scripts import parse_script
from pipeline.analyze.configs.syntax import Exec, Line, read_lines
from pipeline.model import Category, Finding, Severity

MAX_READ = 1024 * 1024
MAX_LINES = 20_000  # AOSP's init.rc has ~1,200 lines; the bound keeps hostile files to about a second
MAX_LAUNCHES = 200
BINARY_SAMPLE = 64 * 1024
BINARY_CONTROL_RATIO = 0.05  # random bytes have ~10% control characters; text (any 8-bit charset) almost none


def binary_self_launch(location: Location) -> Launch | None:
    """A binary (not a script) stored where the boot scripts live is itself run at boot."""
    if location.kind is Kind.INIT_SCRIPT and location.boot:
        return Launch(Exec(location.name), How.BOOT, "boot-directory", ROOT, (),
                      f"executable stored as boot script {location.name}")
    if location.kind is Kind.CRON_SCRIPT:
        return Launch(Exec(location.name), How.CRON, "boot-directory", ROOT, (),
                      f"executable run by cron {location.schedule}", schedule=location.schedule)
    return None


def looks_binary(data: bytes) -> bool:
    """Too many control characters to be a text configuration file (any 8-bit charset is fine)."""
    sample = data[:BINARY_SAMPLE]
    if not sample:
        return False
    control = sum(sample.count(bytes([c])) for c in (*range(0x00, 0x09), 0x0E, 0x0F, *range(0x10, 0x1B),
                                                     *range(0x1C, 0x20)))
    return control / len(sample) > BINARY_CONTROL_RATIO


def _partial(title: str, description: str) -> Finding:
    return Finding(rule="configs:partial", analyzer=NAME, category=Category.PROPERTY, severity=Severity.INFO,
                   title=title, tags=("config:partial",), description=description)


Parser = Callable[[list[Line], Location], list[Launch]]
PARSERS: dict[Kind, Parser] = {
    Kind.ANDROID_INIT: parse_android_init, Kind.INITTAB: parse_inittab, Kind.INIT_SCRIPT: parse_script,
    Kind.CRON_SCRIPT: parse_script, Kind.CRONTAB: parse_crontab, Kind.SYSTEMD: parse_systemd,
}
CONTINUED_LINES = frozenset({Kind.ANDROID_INIT, Kind.INIT_SCRIPT, Kind.CRON_SCRIPT, Kind.SYSTEMD})


def analyze_config(data: bytes, locations: Iterable[Location], truncated: bool) -> list[Finding]:
    """Every finding for one file's bytes read as each configuration its paths say it is."""
    if truncated:
        data = data[:data.rfind(b"\n") + 1]  # never parse a line cut in the middle
    rest = data.split(b"\n", MAX_LINES)[MAX_LINES:]
    if rest:
        data, truncated = data[:len(data) - len(rest[0])], True
    launches: list[Launch] = []
    findings: list[Finding] = []
    parsed: dict[bool, list[Line]] = {}
    for location in locations:
        continuation = location.kind in CONTINUED_LINES
        if continuation not in parsed:
            parsed[continuation] = read_lines(data, continuation=continuation)
        lines = parsed[continuation]
        if location.kind is Kind.PROPS:
            findings.extend(prop_findings(lines, location))
        else:
            launches.extend(PARSERS[location.kind](lines, location))
    groups = group_launches(launches)
    if len(groups) > MAX_LAUNCHES:
        findings.append(_partial(f"Only the first {MAX_LAUNCHES} of {len(groups)} started programs reported",
                                 "The file starts more programs than one report should list; the rest are omitted."))
    findings.extend(launch_findings(groups[:MAX_LAUNCHES]))
    if truncated:
        findings.append(_partial(f"Only the first {MAX_READ // 1024} KiB or {MAX_LINES} lines read",
                                 "The configuration file is larger than the analyzer reads; later lines were "
                                 "not parsed."))
    return _dedupe(findings)


def _order(finding: Finding) -> tuple:
    return (*finding.sort_key(), [e.offset for e in finding.evidence], finding.tags)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    unique = {(f.rule, f.title, f.tags, f.evidence, f.description): f for f in findings}
    return sorted(unique.values(), key=_order)


class ConfigsAnalyzer(Analyzer):
    """Init, inittab, init.d, crontab, systemd and build.prop files: what the firmware starts, how, as whom."""

    name = NAME
    version = "1"
    path_sensitive = True

    def accepts(self, target: Target) -> bool:
        if target.container or target.size == 0:
            return False
        locations = [loc for loc in map(locate, target.names) if loc]
        if not locations:
            return False
        if target.label == "text" or (target.label == "data" and target.size <= MAX_READ):
            return True
        # a binary stored where boot scripts live runs at boot itself
        return target.label == "elf" and any(binary_self_launch(loc) for loc in locations)

    def analyze(self, target: Target) -> list[Finding]:
        locations = sorted({loc for loc in map(locate, target.names) if loc}, key=lambda loc: loc.name)
        if target.label == "elf":
            return launch_findings(group_launches(filter(None, map(binary_self_launch, locations))))
        try:
            with open(target.path, "rb") as handle:
                data = handle.read(MAX_READ + 1)
        except OSError as exc:
            raise AnalyzerFailed(f"cannot read the file: {exc.strerror or exc}") from exc
        truncated = len(data) > MAX_READ
        data = data[:MAX_READ]
        if looks_binary(data):
            return [Finding(
                rule="configs:not-text", analyzer=NAME, category=Category.PROPERTY, severity=Severity.INFO,
                title=f"Not a text file: {locations[0].name if locations else target.name} was not parsed",
                tags=("config:not-text",),
                description="The file sits where a configuration file is expected but holds binary data; "
                            "init, cron or the shell would fail to read it as configuration.")]
        return analyze_config(data, locations, truncated)
