"""Launches into findings: one per program started, with the tags correlation links components by.

Rules (one finding per program, user and way of starting it):
    configs:respawn       PERSISTENCE  started at boot and restarted when it exits (inittab respawn/askfirst,
                                       Android service not oneshot, systemd Restart=, procd respawn)
    configs:boot-service  PERSISTENCE  started at boot (boot script, inittab sysinit/once/wait, Android oneshot
                                       service or exec on a boot trigger, systemd unit with [Install], @reboot)
    configs:cron          PERSISTENCE  run on a cron schedule (crontab line, /etc/cron.<period>/ script)
    configs:service       PROPERTY     declared as a service, but this file alone does not show it started
    severity LOW when the program runs as root (INFO for a declared-only service), else INFO.
    configs:shell-listener   EXECUTION HIGH    telnetd -l /bin/sh, nc -e /bin/sh: a network shell without login
    configs:unconfined-service PRIVILEGE MEDIUM Android service in SELinux domain su, kernel, init or magisk

Tags of launch findings:
    config:boot-service (started at boot, respawned ones included), config:respawn, config:cron,
    config:service, config:root (runs as uid 0), user:<name>, via:<android-init|inittab|init-script|
    cron-script|crontab|systemd|boot-directory>, runs:<absolute path> (only when the file names an absolute
    path: the link correlation follows), runs-name:<basename>, applet:<name> (busybox/toybox applet),
    seclabel:<context>, capability:<CAP> (Android).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from pipeline.analyze.configs.launches import ROOT, How, Launch
from pipeline.analyze.configs.syntax import Exec, Line, basename, shell_listener
from pipeline.model import Category, Evidence, Finding, Severity

NAME = "configs"
MAX_EVIDENCE = 8
RULES = {How.RESPAWN: "configs:respawn", How.BOOT: "configs:boot-service", How.CRON: "configs:cron",
         How.SERVICE: "configs:service"}


UNCONFINED_DOMAINS = frozenset({"u:r:su:s0", "u:r:kernel:s0", "u:r:init:s0", "u:r:magisk:s0"})


def _runs_tags(target: Exec) -> list[str]:
    tags = [f"runs-name:{basename(target.program)}"]
    if target.program.startswith("/"):
        tags.append(f"runs:/{posixpath.normpath(target.program).lstrip('/')}")
    if target.applet:
        tags.append(f"applet:{target.applet}")
    return tags


def _launch_tags(launch: Launch) -> set[str]:
    tags = {f"config:{launch.how.value}", f"via:{launch.via}", f"user:{launch.user}", *_runs_tags(launch.exec),
            *launch.tags}
    if launch.how is How.RESPAWN:
        tags.add("config:boot-service")
    if launch.user == ROOT:
        tags.add("config:root")
    return tags


def _title(how: How, user: str, program: str, schedules: list[str]) -> str:
    if how is How.RESPAWN:
        return f"Started at boot as {user} and respawned: {program}"
    if how is How.BOOT:
        return f"Started at boot as {user}: {program}"
    if how is How.CRON:
        return f"Scheduled as {user} ({'; '.join(schedules)}): {program}"
    return f"Declared service, runs as {user} when started: {program}"


LaunchKey = tuple[How, str, str]  # how, program as displayed, user


def group_launches(launches: Iterable[Launch]) -> list[tuple[LaunchKey, list[Launch]]]:
    """Launches of one program by one user in one way, grouped, in the order the file first states them.

    A program only declared as a service is dropped when the same file shows it started.
    """
    launches = list(launches)
    started = {(launch.exec.display, launch.user) for launch in launches if launch.how is not How.SERVICE}
    groups: dict[LaunchKey, list[Launch]] = {}
    for launch in launches:
        if launch.how is How.SERVICE and (launch.exec.display, launch.user) in started:
            continue
        groups.setdefault((launch.how, launch.exec.display, launch.user), []).append(launch)
    return sorted(groups.items(), key=lambda item: min((ln.offset for la in item[1] for ln in la.lines), default=0))


def launch_findings(groups: Iterable[tuple[LaunchKey, list[Launch]]]) -> list[Finding]:
    """One finding per group, merging the lines of every launch in it, plus the alarms it raises."""
    findings: list[Finding] = []
    for (how, program, user), group in groups:
        lines = sorted({line.offset: line for launch in group for line in launch.lines}.values(),
                       key=lambda line: line.offset)
        details = list(dict.fromkeys(launch.detail for launch in group))
        schedules = list(dict.fromkeys(launch.schedule for launch in group if launch.schedule))
        description = "; ".join(details[:3]) + (f" (and {len(details) - 3} more)" if len(details) > 3 else "")
        if len(lines) > MAX_EVIDENCE:
            description += f"; {len(lines) - MAX_EVIDENCE} more lines not listed"
        findings.append(Finding(
            rule=RULES[how], analyzer=NAME,
            category=Category.PROPERTY if how is How.SERVICE else Category.PERSISTENCE,
            severity=Severity.LOW if user == ROOT and how is not How.SERVICE else Severity.INFO,
            title=_title(how, user, program, schedules),
            tags=tuple(sorted(set().union(*(_launch_tags(launch) for launch in group)))),
            evidence=_evidence(lines, program), description=description))
        findings.extend(_alarm_findings(group, lines))
    return findings


def _evidence(lines: list[Line], program: str) -> tuple[Evidence, ...]:
    """The configuration lines, or the program's own path when its location alone is the evidence."""
    if not lines:
        return (Evidence("path", program),)
    return tuple(line.evidence() for line in lines[:MAX_EVIDENCE])


def _alarm_findings(group: list[Launch], lines: list[Line]) -> list[Finding]:
    """Findings that stand on their own: a login-less shell listener, a service in an unconfined domain."""
    first = group[0]
    evidence = _evidence(lines, first.exec.display)
    runs = tuple(_runs_tags(first.exec))
    findings = []
    if first.how is not How.SERVICE and shell_listener(first.exec):
        findings.append(Finding(
            rule="configs:shell-listener", analyzer=NAME, category=Category.EXECUTION, severity=Severity.HIGH,
            title=f"Started as {first.user}: network shell without login ({first.exec.display})",
            tags=tuple(sorted({"config:shell-listener", f"user:{first.user}", *runs})), evidence=evidence,
            description="A network daemon is told to hand out a shell directly (telnetd -l, nc -e): anyone "
                        "who reaches the port gets a shell as this user, without a password."))
    domains = sorted({t.partition(":")[2] for launch in group for t in launch.tags if t.startswith("seclabel:")})
    unconfined = [d for d in domains if d in UNCONFINED_DOMAINS]
    if unconfined:
        findings.append(Finding(
            rule="configs:unconfined-service", analyzer=NAME, category=Category.PRIVILEGE, severity=Severity.MEDIUM,
            title=f"Service runs in SELinux domain {unconfined[0]}: {first.exec.display}",
            tags=tuple(sorted({"config:unconfined", f"user:{first.user}", *runs,
                               *(f"seclabel:{d}" for d in unconfined)})),
            evidence=evidence,
            description="An init service is given an unconfined SELinux domain (su, kernel, init): SELinux "
                        "does not restrict it. AOSP uses the su domain only on eng/userdebug builds."))
    return findings
