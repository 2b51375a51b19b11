"""Shell scripts run by init or cron (``/etc/init.d/*``, ``/etc/rc.local``, ``/etc/cron.daily/*``): what they start.

Heuristic, line by line (see the analyzer's "Known limitations"): a program
counts as started when it is the ``-x``/``-a`` of ``start-stop-daemon
--start``, the command of OpenWrt's procd or ``service_start``, the target
of ``exec``, an absolute path run as a command, or any command sent to the
background. Lines inside functions and ``case`` arms named like
stop/status/reload are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.analyze.configs.launches import ROOT, How, Launch
from pipeline.analyze.configs.locations import Kind, Location
from pipeline.analyze.configs.syntax import (
    UTILITIES,
    Command,
    Exec,
    Line,
    basename,
    expand,
    resolve,
    shell_commands,
    start_stop_daemon,
    strip_wrappers,
    words_of,
)

MAX_BLOCKS = 64  # nested functions and case arms tracked in a script


_FUNCTION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w.-]*)\s*\(\s*\)|^\s*function\s+([A-Za-z_][\w.-]*)")
_CASE_ARM = re.compile(r"^\s*\(?\s*([\w\"'*|. -]+?)\s*\)")
_NOT_START = re.compile(r"stop|status|kill|shutdown|usage|help|reload|disable")
_VARIABLE = re.compile(r"^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_]\w*)=(.*)$")
_LAUNCHERS = frozenset({"start-stop-daemon", "service_start", "start_daemon", "daemon"})


def script_variables(lines: list[Line]) -> dict[str, str | None]:
    """Plain ``NAME=value`` assignments; a name given two different values, or a computed one, maps to None."""
    variables: dict[str, str | None] = {}
    for line in lines:
        match = _VARIABLE.match(line.text)
        if not match:
            continue
        values = words_of(match.group(2).split(" #")[0])
        value = values[0] if len(values) == 1 and not re.search(r"[$`(]", values[0]) else None
        name = match.group(1)
        variables[name] = value if variables.get(name, value) == value else None
    return variables


def _block_starts(line: str, in_case: bool) -> str | None:
    """The name of a function or ``case`` arm this line opens, if any."""
    function = _FUNCTION.match(line)
    if function:
        return function.group(1) or function.group(2)
    arm = _CASE_ARM.match(line) if in_case else None
    return arm.group(1).replace('"', "").replace("'", "") if arm else None


def _skipped_block(name: str) -> bool:
    return name.strip() == "*" or (bool(_NOT_START.search(name)) and "start" not in name)


def _script_exec(command: Command, variables: dict[str, str | None]) -> Exec | None:
    """The program a script command starts, under the heuristics in the module docstring."""
    words = tuple(expand(w, variables) if "$" in w else w for w in command.words)
    stripped = strip_wrappers(words)
    explicit = bool(words) and words[0] == "exec" and len(stripped) > 0
    if not stripped:
        return None
    launcher = basename(stripped[0])
    if launcher == "start-stop-daemon":
        target = start_stop_daemon(stripped[1:])
    elif launcher in _LAUNCHERS:
        rest = [w for w in stripped[1:] if not w.startswith(("-", "+"))]
        target = resolve(tuple(rest)) if rest else None
    elif stripped[:2] == ("procd_set_param", "command"):
        target = resolve(stripped[2:])
    else:
        target = resolve(stripped)
        if target and not (explicit or command.background or target.program.startswith("/")):
            return None
    if target is None or "$" in target.program or "`" in target.program or target.basename in UTILITIES:
        return None
    return target


def _script_boot(lines: list[Line], location: Location) -> tuple[bool, str]:
    """Whether a script runs at boot, and why: its name, or a start level it declares."""
    if location.boot:
        return True, f"boot script {location.name}"
    for line in lines:
        openwrt = re.match(r"^\s*START=(\d+)", line.text)
        if openwrt:
            return True, f"init script with START={openwrt.group(1)} (OpenWrt rc.common, enabled by default)"
        lsb = re.match(r"^#\s*Default-Start:\s*(\S.*)$", line.text)
        if lsb:
            return True, f"init script with Default-Start: {lsb.group(1).strip()} (LSB)"
    return False, f"init script {location.name}"


@dataclass(frozen=True)
class _Procd:
    """OpenWrt procd instance settings of a script: respawn and user apply to its ``command``."""

    respawn: bool
    user: str | None


# A line can start a program only if it holds a path, a "&", or a launcher's name.
_MAY_LAUNCH = re.compile(r"[/&]|exec|daemon|procd_set_param|service_start")


def _script_launches(line: Line, variables: dict[str, str | None], how: How, via: str, why: str, schedule: str,
                     procd: _Procd) -> list[Launch]:
    launches: list[Launch] = []
    if not _MAY_LAUNCH.search(line.text):
        return launches
    for command in shell_commands(line.text):
        target = _script_exec(command, variables)
        if target is None:
            continue
        is_procd = command.words[:2] == ("procd_set_param", "command")
        user = target.user or (procd.user if is_procd else None) or ROOT
        launch_how = How.RESPAWN if is_procd and procd.respawn and how is How.BOOT else how
        launches.append(Launch(target, launch_how, via, user, (line,), why, schedule=schedule))
    return launches


def parse_script(lines: list[Line], location: Location) -> list[Launch]:
    """The programs a boot, init.d or cron.* shell script starts (heuristic: see the module docstring)."""
    variables = script_variables(lines)
    if location.kind is Kind.CRON_SCRIPT:
        how, via, why = How.CRON, "cron-script", f"run by cron {location.schedule}"
    else:
        boot, why = _script_boot(lines, location)
        how, via = (How.BOOT if boot else How.SERVICE), Kind.INIT_SCRIPT.value
    procd = _Procd(respawn=any("procd_set_param respawn" in line.text for line in lines),
                   user=next((m.group(1) for line in lines
                              if (m := re.search(r"procd_set_param user (\S+)", line.text))), None))
    blocks: list[tuple[str, bool, int]] = []  # (function or arm, skipped, brace depth when it opened)
    case_depth = brace_depth = skipped = 0
    launches: list[Launch] = []
    for line in lines:
        stripped = line.text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if re.match(r"^case\b.*\bin$", stripped):
            case_depth += 1
        opened = _block_starts(line.text, case_depth > 0)
        if opened is not None and len(blocks) < MAX_BLOCKS:
            blocks.append(("arm" if case_depth and not _FUNCTION.match(line.text) else "function",
                           _skipped_block(opened), brace_depth))
            skipped += blocks[-1][1]
        brace_depth += stripped.count("{") - stripped.count("}")
        if not skipped:
            launches.extend(_script_launches(line, variables, how, via, why, location.schedule, procd))
        if re.search(r"(^|[\s;])esac$", stripped):
            case_depth = max(0, case_depth - 1)
        while blocks and ((blocks[-1][0] == "arm" and (stripped.endswith(";;") or stripped.startswith("esac")))
                          or (blocks[-1][0] == "function" and brace_depth <= blocks[-1][2] and "}" in stripped)):
            skipped -= blocks.pop()[1]
    return launches
