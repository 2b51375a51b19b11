"""Android init language (``/init.rc``, ``/system/etc/init/*.rc``...): services and the triggers that start them.

Reference: system/core/init/README.md in AOSP. A service runs as root
unless it has a ``user`` option; init restarts it when it exits unless it
is ``oneshot``; ``class_start`` in AOSP's own init.rc starts the standard
classes at every boot; a ``disabled`` service starts only when a trigger
(or another file, or a property set at run time) starts it by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.analyze.configs.launches import ROOT, How, Launch, user_name
from pipeline.analyze.configs.locations import Kind, Location
from pipeline.analyze.configs.syntax import UTILITIES, Line, resolve, words_of

# Android init classes that AOSP's /init.rc starts with class_start at every boot.
BOOT_CLASSES = frozenset({"core", "main", "late_start", "default", "hal", "early_hal", "animation"})
# Triggers that do not fire on a normal boot.
_NOT_BOOT_TRIGGERS = re.compile(r"^(charger|shutdown|userspace-reboot)")


@dataclass
class _Service:
    name: str
    command: tuple[str, ...]
    line: Line
    option_lines: list[Line] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    user: str = ROOT
    groups: tuple[str, ...] = ()
    seclabel: str = ""
    capabilities: tuple[str, ...] = ()
    oneshot: bool = False
    disabled: bool = False


_SERVICE_OPTIONS = frozenset({"user", "group", "class", "oneshot", "disabled", "seclabel", "capabilities",
                              "critical", "restart_period"})


def _service_option(service: _Service, words: list[str], line: Line) -> None:
    option, values = words[0], words[1:]
    if option not in _SERVICE_OPTIONS:
        return
    service.option_lines.append(line)
    if option == "user" and values:
        service.user = user_name(values[0])
    elif option == "group":
        service.groups = tuple(values)
    elif option == "class":
        service.classes.extend(values)
    elif option == "oneshot":
        service.oneshot = True
    elif option == "disabled":
        service.disabled = True
    elif option == "seclabel" and values:
        service.seclabel = values[0]
    elif option == "capabilities":
        service.capabilities = tuple(values)


def _boot_trigger(trigger: str) -> bool:
    events = [part.strip() for part in trigger.split("&&") if not part.strip().startswith("property:")]
    return not any(_NOT_BOOT_TRIGGERS.match(event) for event in events)


def _exec_command(words: list[str]) -> tuple[str, tuple[str, ...]]:
    """``exec [seclabel [user [group...]]] -- command...``: the user and the command."""
    if "--" in words:
        split = words.index("--")
        context = words[1:split]
        user = context[1] if len(context) > 1 and context[1] != "-" else ROOT
        return user_name(user), tuple(words[split + 1:])
    return ROOT, tuple(words[1:])


def parse_android_init(lines: list[Line], location: Location) -> list[Launch]:
    """Android init language: ``service`` blocks and the ``on`` triggers that start them or ``exec``."""
    services: dict[str, _Service] = {}
    started: dict[str, list[tuple[str, str, Line]]] = {}  # service → (trigger, command, line)
    class_started: set[str] = set()
    launches: list[Launch] = []
    current: _Service | str | None = None
    for line in lines:
        words = words_of(line.text)
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0]
        if keyword == "service":
            current = None
            if len(words) >= 3 and words[1] not in services:
                current = services[words[1]] = _Service(words[1], tuple(words[2:]), line)
        elif keyword == "on":
            current = " ".join(words[1:])
        elif keyword == "import":
            current = None
        elif isinstance(current, _Service):
            _service_option(current, words, line)
        elif isinstance(current, str) and _boot_trigger(current):
            if keyword in ("start", "restart", "exec_start", "enable") and len(words) > 1:
                started.setdefault(words[1], []).append((current, keyword, line))
            elif keyword == "class_start" and len(words) > 1:
                class_started.add(words[1])
            elif keyword in ("exec", "exec_background"):
                user, command = _exec_command(words)
                target = resolve(command)
                if target and target.basename not in UTILITIES:
                    launches.append(Launch(target, How.BOOT, Kind.ANDROID_INIT.value, user, (line,),
                                           f"init runs it once with '{keyword}' on '{current}'"))
    for service in services.values():
        launch = _service_launch(service, started.get(service.name, []), class_started)
        if launch:
            launches.append(launch)
    return launches


def _service_launch(service: _Service, starts: list[tuple[str, str, Line]],
                    class_started: set[str]) -> Launch | None:
    """How init starts one service: with its class at boot, from a trigger, or only on demand."""
    target = resolve(service.command)
    if target is None:
        return None
    classes = service.classes or ["default"]
    by_class = [c for c in classes if c in BOOT_CLASSES or c in class_started]
    enabled = any(command == "enable" for _, command, _ in starts)  # a disabled service then starts with its class
    reasons = []
    if by_class and (not service.disabled or enabled):
        reasons.append(f"class {', '.join(by_class)}")
    reasons.extend(f"'{command}' on '{trigger}'" for trigger, command, _ in starts if command != "enable")
    if reasons:
        how = How.BOOT if service.oneshot else How.RESPAWN
    else:
        how = How.SERVICE
        reasons.append("disabled; started on demand" if service.disabled else f"class {', '.join(classes)}")
    parts = [f"init service '{service.name}'", *reasons,
             "one-shot" if service.oneshot else "restarted by init when it exits"]
    tags: list[str] = []
    if service.seclabel:
        parts.append(f"SELinux domain {service.seclabel}")
        tags.append(f"seclabel:{service.seclabel}")
    if service.capabilities:
        parts.append(f"capabilities {' '.join(service.capabilities)}")
        tags.extend(f"capability:{c}" for c in service.capabilities)
    if service.groups:
        parts.append(f"groups {' '.join(service.groups)}")
    lines = (service.line, *service.option_lines, *(ln for _, _, ln in starts))
    return Launch(target, how, Kind.ANDROID_INIT.value, service.user, lines, "; ".join(parts), tags=tuple(tags))
