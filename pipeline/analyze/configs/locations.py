"""Where configuration lives: which parser reads a file, judged by its in-image path alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pipeline.analyze.configs.syntax import basename


class Kind(Enum):
    """The configuration language of a file, which picks its parser."""

    ANDROID_INIT = "android-init"
    INITTAB = "inittab"
    INIT_SCRIPT = "init-script"
    CRON_SCRIPT = "cron-script"
    CRONTAB = "crontab"
    SYSTEMD = "systemd"
    PROPS = "props"


@dataclass(frozen=True)
class Location:
    """What a file is, from its in-image path: which parser reads it and what the path implies."""

    kind: Kind
    name: str
    boot: bool = False  # a script run at boot because of its name (S??*, rcS, rc.local)
    user: str | None = None  # the owner of a per-user crontab; None for a system crontab (user field)
    schedule: str = ""  # cron.daily and friends


_ANDROID_INIT = re.compile(r"^/[^/]+\.rc$|/etc/init/.*\.rc$|/etc/init\.[^/]+\.rc$")
_RC_DIR_SCRIPT = re.compile(r"^/etc/(?:init\.d|rc\.d(?:/.*)?|rc[0-6S]\.d)/([^/]+)$")
_BOOT_SCRIPTS = re.compile(r"^/(?:etc/(?:rc\.local|rc\.d/rc\.local|rc\.sysinit|rc\.d/rc\.sysinit|init\.d/rcS|rc\.d/rcS|"
                           r"rcS)|(?:system/)?(?:etc|bin)/install-recovery\.sh)$")
_CRON_PERIODIC = re.compile(r"^/etc/cron\.(hourly|daily|weekly|monthly)/[^/]+$")
_SYSTEM_CRONTAB = re.compile(r"^/etc/(?:crontab|cron\.d/[^/]+)$")
_USER_CRONTAB = re.compile(r"^/(?:var/spool/cron/crontabs|etc/crontabs|var/spool/cron|var/cron/tabs)/([^/]+)$")
_SYSTEMD_UNIT = re.compile(r"^/(?:etc|run|lib|usr/lib|usr/local/lib)/systemd/system/(?:.*/)?[^/]+\.service$")
PROP_FILES = frozenset({"build.prop", "default.prop", "prop.default", "local.prop"})
_CRON_CONTROL_FILES = frozenset({"cron.update", ".placeholder", "cron.allow", "cron.deny"})
# Files in init script folders that are libraries, templates or shutdown runners, not services.
_NOT_SERVICES = frozenset({"functions", "README", "skeleton", "rcK", "rc.common"})


def normalise_name(name: str) -> str:
    """An in-image path as an absolute path: archive members come as ``etc/inittab`` or ``./etc/inittab``."""
    while name.startswith("./"):
        name = name[2:]
    return "/" + name.lstrip("/")


def locate(raw_name: str) -> Location | None:
    """The configuration a file is, judged by its path alone; None when it is none we read."""
    name = normalise_name(raw_name)
    base = basename(name)
    if base in PROP_FILES:
        return Location(Kind.PROPS, name)
    if _ANDROID_INIT.search(name):
        return Location(Kind.ANDROID_INIT, name)
    if name.endswith("/etc/inittab"):
        return Location(Kind.INITTAB, name)
    if _BOOT_SCRIPTS.match(name):
        return Location(Kind.INIT_SCRIPT, name, boot=True)
    script = _RC_DIR_SCRIPT.match(name)
    if script:
        if re.match(r"K\d\d", script.group(1)) or base in _NOT_SERVICES or base.startswith("."):
            return None  # shutdown (K??) scripts, script libraries, hidden files
        return Location(Kind.INIT_SCRIPT, name, boot=bool(re.match(r"S\d\d", script.group(1))))
    periodic = _CRON_PERIODIC.match(name)
    if periodic and base not in _CRON_CONTROL_FILES:
        return Location(Kind.CRON_SCRIPT, name, schedule=periodic.group(1))
    if _SYSTEM_CRONTAB.match(name):
        return Location(Kind.CRONTAB, name)
    user = _USER_CRONTAB.match(name)
    if user and base not in _CRON_CONTROL_FILES:
        return Location(Kind.CRONTAB, name, user=user.group(1))
    if _SYSTEMD_UNIT.match(name):
        return Location(Kind.SYSTEMD, name)
    return None
