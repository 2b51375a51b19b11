"""Launches: a program a configuration file makes the system run; the inittab, crontab and systemd parsers.

Each parser takes a file's lines and its ``Location`` and returns
``Launch`` records; ``findings`` turns them into findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pipeline.analyze.configs.locations import Kind, Location
from pipeline.analyze.configs.syntax import UTILITIES, Exec, Line, resolve, shell_commands, words_of

ROOT = "root"


class How(Enum):
    """How a program is started; each gives its own finding rule (``findings.RULES``)."""

    RESPAWN = "respawn"  # started at boot and restarted when it exits
    BOOT = "boot-service"  # started at boot
    CRON = "cron"  # run on a schedule
    SERVICE = "service"  # declared as a service; this file alone does not show it started


@dataclass(frozen=True)
class Launch:
    """A program a configuration file starts, how, as whom, and the lines that say so."""

    exec: Exec
    how: How
    via: str  # android-init, inittab, init-script, crontab, systemd, boot-directory
    user: str
    lines: tuple[Line, ...]
    detail: str
    schedule: str = ""
    tags: tuple[str, ...] = ()


def user_name(user: str) -> str:
    """uid 0 is root, whatever the file calls it."""
    return ROOT if user in ("0", "root") else user


# busybox and SysV init actions: which start a program at boot, which keep it running.
_INITTAB_BOOT = frozenset({"sysinit", "boot", "bootwait", "wait", "once"})
_INITTAB_RESPAWN = frozenset({"respawn", "askfirst"})


def parse_inittab(lines: list[Line], location: Location) -> list[Launch]:
    """``id:runlevels:action:process`` lines (busybox leaves id and runlevels empty)."""
    launches: list[Launch] = []
    for line in lines:
        fields = line.text.strip().split(":", 3)
        if len(fields) < 4 or fields[0].startswith("#"):
            continue
        action = fields[2].strip().lower()
        if action not in _INITTAB_BOOT and action not in _INITTAB_RESPAWN:
            continue
        process = fields[3].strip().lstrip("-+")  # busybox "-" asks for a login shell, SysV "+" skips utmp
        how = How.RESPAWN if action in _INITTAB_RESPAWN else How.BOOT
        detail = f"inittab action '{action}'" + (f", runlevels {fields[1]}" if fields[1] else "")
        for command in shell_commands(process):
            target = resolve(command.words)
            if target and target.basename not in UTILITIES:
                launches.append(Launch(target, how, Kind.INITTAB.value, ROOT, (line,), detail))
    return launches


_CRON_FIELD = re.compile(r"^(?:[\d*/,-]|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|"
                         r"sun|mon|tue|wed|thu|fri|sat)+$", re.IGNORECASE)
_CRON_KEYWORDS = frozenset({"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                            "@hourly"})


def cron_entry(text: str, system: bool) -> tuple[str, str, str] | None:
    """(schedule, user or "", command) of one crontab line; None for comments, variables and junk."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    fields = stripped.split(None, 1 if stripped.startswith("@") else 5)
    if stripped.startswith("@"):
        if fields[0].lower() not in _CRON_KEYWORDS or len(fields) < 2:
            return None
        schedule, rest = fields[0].lower(), fields[1]
    else:
        if len(fields) < 6 or not all(_CRON_FIELD.match(f) for f in fields[:5]):
            return None
        schedule, rest = " ".join(fields[:5]), fields[5]
    user = ""
    if system:
        parts = rest.split(None, 1)
        if len(parts) < 2:
            return None
        user, rest = parts
    command = re.split(r"(?<!\\)%", rest, maxsplit=1)[0]  # cron turns an unescaped % into stdin
    return schedule, user, command.strip()


def parse_crontab(lines: list[Line], location: Location) -> list[Launch]:
    """System crontabs (with a user field) and per-user crontabs (owner from the file name)."""
    launches: list[Launch] = []
    for line in lines:
        entry = cron_entry(line.text, system=location.user is None)
        if entry is None:
            continue
        schedule, user, command = entry
        user = user_name(location.user or user)
        how = How.BOOT if schedule == "@reboot" else How.CRON
        for part in shell_commands(command):
            target = resolve(part.words)
            if target and target.basename not in UTILITIES and "$" not in target.program:
                launches.append(Launch(target, how, "crontab", user, (line,), f"crontab schedule '{schedule}'",
                                       schedule=schedule, tags=("config:cron",)))
    return launches


_RESTART_POLICIES = frozenset({"always", "on-failure", "on-abnormal", "on-abort", "on-watchdog", "on-success"})


def parse_systemd(lines: list[Line], location: Location) -> list[Launch]:
    """A systemd service unit: ExecStart (as User=), Restart= and the [Install] targets that start it."""
    section = ""
    values: dict[str, list[tuple[str, Line]]] = {}
    for line in lines:
        stripped = line.text.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            continue
        key, sep, value = stripped.partition("=")
        if sep:
            entries = values.setdefault(f"{section}.{key.strip()}", [])
            if not value.strip() and key.strip() == "ExecStart":
                entries.clear()  # an empty assignment resets the list
            else:
                entries.append((value.strip(), line))

    def last(key: str) -> tuple[str, Line] | None:
        return values[key][-1] if values.get(key) else None

    user_entry, restart = last("Service.User"), last("Service.Restart")
    dynamic = last("Service.DynamicUser")
    user = user_entry[0] if user_entry else ROOT
    if dynamic and dynamic[0].lower() in ("yes", "true", "1"):
        user = "dynamic"
    targets = [(v, ln) for key in ("Install.WantedBy", "Install.RequiredBy") for v, ln in values.get(key, [])]
    wants_dir = re.search(r"/([^/]+)\.(?:wants|requires)/[^/]+$", location.name)
    respawn = bool(restart and restart[0] in _RESTART_POLICIES)
    if targets or wants_dir:
        how = How.RESPAWN if respawn else How.BOOT
        started_by = " ".join(v for v, _ in targets) or (wants_dir.group(1) if wants_dir else "")
        why = f"systemd unit wanted by {started_by} (when enabled)"
    else:
        how, why = How.SERVICE, "systemd unit with no [Install] target: started only as a dependency or on demand"
    if respawn and restart:
        why += f"; Restart={restart[0]}"
    common = tuple(entry[1] for entry in (user_entry, restart, dynamic) if entry)
    launches: list[Launch] = []
    for value, line in values.get("Service.ExecStart", []):
        words = words_of(value)
        if not words:
            continue
        prefix = re.match(r"^[-@:+!]*", words[0]).group()
        words[0] = words[0][len(prefix):]
        if "@" in prefix and len(words) > 1:
            del words[1]  # "@" makes the second word argv[0]
        target = resolve(tuple(words))
        if target:
            launches.append(Launch(target, how, Kind.SYSTEMD.value, ROOT if "+" in prefix else user,
                                   (line, *common, *(ln for _, ln in targets)), why))
    return launches
