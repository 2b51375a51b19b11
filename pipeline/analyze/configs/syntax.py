"""Lines, words and commands of configuration files, and the program a command line runs.

Shared by every parser of the configs analyzer. Nothing here runs a shell:
quoting, operators and redirections are recognised well enough to find the
program a line starts; expansions, globbing and here-documents are not
performed (see the analyzer's "Known limitations").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pipeline.model import Evidence

MAX_LINE = 8192  # longer lines are parsed only this far: no init, cron or shell line is that long
MAX_EVIDENCE_CHARS = 300


@dataclass(frozen=True)
class Line:
    """One logical line and the byte offset where it starts in the file."""

    offset: int
    text: str

    def evidence(self) -> Evidence:
        value = _CONTROL_ESCAPES.sub(lambda m: f"\\x{ord(m.group()):02x}", self.text.strip())
        if len(value) > MAX_EVIDENCE_CHARS:
            value = value[:MAX_EVIDENCE_CHARS] + "…"
        return Evidence("config", value, self.offset)


_CONTROL_ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_TO_SPACE = {c: " " for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F)}


def read_lines(data: bytes, *, continuation: bool) -> list[Line]:
    """The file's lines with their offsets; CR before LF dropped; ``\\`` joins continued lines when asked."""
    lines: list[Line] = []
    pending: tuple[int, str] | None = None
    offset = 0
    for raw in data.split(b"\n"):
        text = raw.decode("utf-8", "replace").rstrip("\r")
        start, offset = offset, offset + len(raw) + 1
        if pending is not None:
            start, text = pending[0], (pending[1] + " " + text.lstrip())[:MAX_LINE]
            pending = None
        text = text[:MAX_LINE]
        if continuation and text.endswith("\\") and not text.endswith("\\\\"):
            pending = (start, text[:-1].rstrip())
            continue
        lines.append(Line(start, text))
    if pending is not None:
        lines.append(Line(*pending))
    return lines


class Tok(Enum):
    WORD = "word"
    OP = "op"  # ; & && || | ( ) ;;
    REDIR = "redir"  # > 2>&1 >> <


_SHELL_PIECES = re.compile(
    r"""(?P<space>\s+)"""
    r"""|(?P<redir>\d*(?:&>>?|>>|<<|<>|>\||[<>])(?:&(?:\d+|-))?)"""
    r"""|(?P<op>&&|\|\||;;|[;&|()])"""
    r"""|(?P<single>'[^']*'?)"""
    r"""|(?P<double>"(?:\\.|[^"\\])*"?)"""
    r"""|(?P<escape>\\.?)"""
    r"""|(?P<bare>[^\s'"\\;&|()<>]+)""",
    re.DOTALL,
)
_PLAIN_PIECES = re.compile(
    r"""(?P<space>\s+)|(?P<single>'[^']*'?)|(?P<double>"(?:\\.|[^"\\])*"?)|(?P<escape>\\.?)|(?P<bare>[^\s'"\\]+)""",
    re.DOTALL,
)
_DOUBLE_ESCAPES = re.compile(r"\\(.)", re.DOTALL)


def tokenize(text: str, *, shell: bool) -> list[tuple[Tok, str]]:
    """Words of a line with quotes removed; in ``shell`` mode operators and redirections are tokens and
    ``#`` at a word start ends the line. An unterminated quote runs to the end of the line."""
    tokens: list[tuple[Tok, str]] = []
    word: list[str] | None = None
    for piece in (_SHELL_PIECES if shell else _PLAIN_PIECES).finditer(text.translate(_CONTROL_TO_SPACE)):
        kind, value = piece.lastgroup, piece.group()
        if kind in ("space", "op", "redir"):
            if word is not None:
                tokens.append((Tok.WORD, "".join(word)))
                word = None
            if kind != "space":
                tokens.append((Tok.OP if kind == "op" else Tok.REDIR, value))
            continue
        if word is None:
            if shell and kind == "bare" and value.startswith("#"):
                break
            word = []
        if kind == "single":
            word.append(value[1:-1] if len(value) > 1 and value.endswith("'") else value[1:])
        elif kind == "double":
            inner = value[1:-1] if len(value) > 1 and value.endswith('"') and not value.endswith('\\"') else value[1:]
            word.append(_DOUBLE_ESCAPES.sub(r"\1", inner))
        elif kind == "escape":
            word.append(value[1:])
        else:
            word.append(value)
    if word is not None:
        tokens.append((Tok.WORD, "".join(word)))
    return tokens


def words_of(text: str) -> list[str]:
    """Whitespace-separated words with quotes removed (Android init, systemd)."""
    return [value for _, value in tokenize(text, shell=False)]


@dataclass(frozen=True)
class Command:
    """One simple shell command: its words (redirections removed) and whether it was sent to the background."""

    words: tuple[str, ...]
    background: bool = False


def shell_commands(text: str) -> list[Command]:
    """The simple commands of one shell line, split at ; & && || | ( )."""
    commands: list[Command] = []
    words: list[str] = []
    skip_target = False
    for kind, value in tokenize(text, shell=True):
        if kind is Tok.REDIR:
            skip_target = not re.search(r"&(\d+|-)$", value)  # "2>&1" has its target, "> /dev/null" does not
            continue
        if kind is Tok.WORD:
            if skip_target:
                skip_target = False
            else:
                words.append(value)
            continue
        skip_target = False
        if words:
            commands.append(Command(tuple(words), background=value == "&"))
            words = []
    if words:
        commands.append(Command(tuple(words)))
    return commands


def basename(path: str) -> str:
    """The last part of a path (posixpath.basename, faster: it runs for every word of every line)."""
    return path.rpartition("/")[2]



@dataclass(frozen=True)
class Exec:
    """A program a command line runs: the path as written (absolute or a bare name) and its arguments."""

    program: str
    args: tuple[str, ...] = ()
    applet: str = ""  # busybox/toybox applet name when the program is the multi-call binary
    user: str | None = None  # a user the launcher switches to (start-stop-daemon -c, procd user)

    @property
    def display(self) -> str:
        return f"{self.program} {self.applet}" if self.applet else self.program

    @property
    def basename(self) -> str:
        return self.applet or basename(self.program)


SHELLS = frozenset({"sh", "bash", "ash", "dash", "mksh", "ksh", "zsh", "hush"})
MULTICALL = frozenset({"busybox", "toybox", "toolbox"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
_SHELL_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
# Wrappers that run their argument in the same process slot: (name, options that take a value).
_WRAPPERS: dict[str, frozenset[str]] = {
    "nohup": frozenset(), "setsid": frozenset(), "exec": frozenset({"-a"}),
    "env": frozenset({"-u", "-C", "-S"}), "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
}
# Commands that never stay running: reporting them as "started at boot" would only add noise.
UTILITIES = frozenset({
    "[", "[[", "test", "echo", "printf", "true", "false", ":", "kill", "killall", "pkill", "pidof", "sleep",
    "cat", "rm", "mkdir", "ln", "chmod", "chown", "chgrp", "touch", "mount", "umount", "cp", "mv", "mknod",
    "cd", "export", "set", "unset", "local", "return", "exit", "shift", "source", ".", "eval", "read", "wait",
    "trap", "ulimit", "umask", "case", "esac", "fi", "done", "for", "in", "then", "else", "sync", "hostname",
    "grep", "sed", "awk", "cut", "head", "tail", "basename", "dirname", "logger", "usleep", "chcon", "restorecon",
})


def strip_wrappers(words: tuple[str, ...]) -> tuple[str, ...]:
    """The command a line really runs, past shell keywords, ``VAR=x`` prefixes and nohup/setsid/env/nice."""
    index = 0
    while index < len(words):
        word = words[index]
        name = basename(word)
        if word in _SHELL_KEYWORDS or _ASSIGNMENT.match(word):
            index += 1
        elif name in _WRAPPERS:
            index += 1
            while index < len(words) and words[index].startswith("-") and words[index] != "-":
                index += 2 if words[index] in _WRAPPERS[name] else 1
            if name == "env":
                while index < len(words) and _ASSIGNMENT.match(words[index]):
                    index += 1
        else:
            break
    return words[index:]


# What a program name looks like; anything else (binary junk, unexpanded syntax) is not reported.
_PROGRAM = re.compile(r"^[\w.+@%:,~/-]*\w[\w.+@%:,~/-]*$")


def resolve(words: tuple[str, ...], depth: int = 0) -> Exec | None:
    """What ``words`` executes: a shell given a script runs the script, ``sh -c TEXT`` runs TEXT's command,
    ``busybox APPLET`` runs the applet of that binary. None when it does not look like a program name."""
    target = _resolve(words, depth)
    if target is None or not _PROGRAM.match(target.program) or (target.applet and not _PROGRAM.match(target.applet)):
        return None
    return target


def _resolve(words: tuple[str, ...], depth: int) -> Exec | None:
    words = strip_wrappers(words)
    if not words or not words[0]:
        return None
    program, args = words[0], words[1:]
    name = basename(program)
    if name in MULTICALL and args and basename(args[0]) in SHELLS:
        name, args = basename(args[0]), args[1:]
    if name in SHELLS:
        for index, arg in enumerate(args):
            if arg == "-c" and index + 1 < len(args):
                if depth >= 2:
                    return None
                inner = [resolve(c.words, depth + 1) for c in shell_commands(args[index + 1])]
                return next((e for e in inner if e and e.basename not in UTILITIES), None)
            if not arg.startswith("-"):
                return Exec(arg, args[index + 1:])
        return Exec(program, args)
    if name in MULTICALL and args and not args[0].startswith("-"):
        return Exec(program, args[1:], applet=basename(args[0]))
    return Exec(program, args)


_SSD_VALUE_OPTIONS = frozenset("xacnpugNrsdkPIi")
_SSD_LONG = {"--exec": "x", "--startas": "a", "--chuid": "c", "--name": "n", "--pidfile": "p", "--user": "u",
             "--group": "g", "--nicelevel": "N", "--chroot": "r", "--signal": "s", "--chdir": "d", "--umask": "k"}


def start_stop_daemon(args: tuple[str, ...]) -> Exec | None:
    """The program ``start-stop-daemon --start`` runs (``--startas`` over ``--exec``), as ``--chuid``'s user."""
    options: dict[str, str] = {}
    flags: set[str] = set()
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            break
        if arg.startswith("--"):
            key, sep, value = arg.partition("=")
            if key == "--start":
                flags.add("S")
            elif key in _SSD_LONG:
                if not sep and index < len(args):
                    value, index = args[index], index + 1
                options[_SSD_LONG[key]] = value
        elif arg.startswith("-") and len(arg) > 1:
            for position, letter in enumerate(arg[1:], start=1):
                if letter in _SSD_VALUE_OPTIONS:
                    value = arg[position + 1:]
                    if not value and index < len(args):
                        value, index = args[index], index + 1
                    options[letter] = value
                    break
                flags.add(letter)
    program = options.get("a") or options.get("x")
    if "S" not in flags or not program or not _PROGRAM.match(program):
        return None
    user = options.get("c", "").split(":")[0] or None
    return Exec(program, args[index:], user=user)


def expand(word: str, variables: dict[str, str | None]) -> str:
    """``$NAME`` and ``${NAME}`` replaced by their single known value; left as is otherwise."""
    def value(match: re.Match[str]) -> str:
        known = variables.get(match.group(1) or match.group(2))
        return known if known is not None else match.group()
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, word)


_LISTENERS = frozenset({"telnetd", "utelnetd"})
_NETCAT = frozenset({"nc", "netcat", "ncat"})


def shell_listener(target: Exec) -> bool:
    """A network daemon that hands out a shell without a login: ``telnetd -l /bin/sh``, ``nc -l -e /bin/sh``."""
    args = target.args
    def shell_after(option: str) -> bool:
        for index, arg in enumerate(args):
            value = args[index + 1] if arg == option and index + 1 < len(args) else (
                arg[len(option):] if arg.startswith(option) and len(arg) > len(option) else "")
            if basename(value) in SHELLS:
                return True
        return False
    if target.basename in _LISTENERS:
        return shell_after("-l")
    if target.basename in _NETCAT:
        return shell_after("-e") or shell_after("-c")
    return False
