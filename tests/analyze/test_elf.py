"""The elf analyzer: the planted samples and clean controls, hostile files, and syscall recovery per architecture.

Instruction bytes in the recovery tests were produced with the Debian cross
assemblers (``arm-linux-gnueabihf-as``, ``mipsel-linux-gnu-as [-EB]``) from
the assembly shown next to them; the AArch64 words are hand-encoded (no
AArch64 toolchain is installed) and checked against capstone's disassembly
in the comments.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.analyze import _elf_syscalls as sc
from pipeline.analyze.base import Target
from pipeline.analyze.elf import ElfAnalyzer, read_header, socket_channels
from pipeline.model import Category, ExtractionTree, Finding, Severity
from pipeline.store import LocalBlobStore

ANALYZER = ElfAnalyzer()


# --- helpers ---------------------------------------------------------------------------------------


def _target(path: Path, label: str = "elf") -> Target:
    return Target(path=path, sha256="0" * 64, size=path.stat().st_size, label=label, names=(str(path),))


def _summary(findings: list[Finding]) -> list[tuple]:
    """What a behaviour rule sees of each finding: rule, category, severity, channels, data, tags."""
    return [(f.rule, f.category, f.severity, f.channels, f.data, f.tags) for f in findings]


def _by_rule(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule: f for f in findings}


def _elf(machine: int, code: bytes, *, bits: int = 64, little: bool = True, flags: int = 0,
         sections: bool = True) -> bytes:
    """A minimal static executable: one PT_LOAD (R+X) holding ``code``, sections .text and .shstrtab, no symbols."""
    o = "<" if little else ">"
    base = 0x400000
    ehsize, phentsize, shentsize = (64, 56, 64) if bits == 64 else (52, 32, 40)
    text_offset = ehsize + phentsize
    shstrtab = b"\x00.text\x00.shstrtab\x00"
    strtab_offset = text_offset + len(code)
    shoff = (strtab_offset + len(shstrtab) + 7) & ~7
    shnum = 3 if sections else 0
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if little else 2, 1, 0]) + bytes(8)
    entry = base + text_offset
    if bits == 64:
        header = struct.pack(o + "HHIQQQIHHHHHH", 2, machine, 1, entry, ehsize, shoff if sections else 0, flags,
                             ehsize, phentsize, 1, shentsize, shnum, 2 if sections else 0)
        phdr = struct.pack(o + "IIQQQQQQ", 1, 5, 0, base, base, strtab_offset, strtab_offset, 0x1000)
    else:
        header = struct.pack(o + "HHIIIIIHHHHHH", 2, machine, 1, entry, ehsize, shoff if sections else 0, flags,
                             ehsize, phentsize, 1, shentsize, shnum, 2 if sections else 0)
        phdr = struct.pack(o + "IIIIIIII", 1, 0, base, base, strtab_offset, strtab_offset, 5, 0x1000)
    body = ident + header + phdr + code + shstrtab
    if not sections:
        return body
    body += bytes(shoff - len(body))

    def shdr(name: int, kind: int, flag: int, addr: int, offset: int, size: int) -> bytes:
        if bits == 64:
            return struct.pack(o + "IIQQQQIIQQ", name, kind, flag, addr, offset, size, 0, 0, 4, 0)
        return struct.pack(o + "IIIIIIIIII", name, kind, flag, addr, offset, size, 0, 0, 4, 0)

    return body + shdr(0, 0, 0, 0, 0, 0) + shdr(1, 1, 6, entry, text_offset, len(code)) + shdr(
        7, 3, 0, 0, strtab_offset, len(shstrtab))


def _words(*words: int, little: bool = True) -> bytes:
    return b"".join(struct.pack("<I" if little else ">I", w) for w in words)


def _recover(abi: sc.Abi, code: bytes, address: int = 0x10000) -> sc.SyscallRecovery:
    return sc.recover(abi, [sc.CodeRegion(0x1000, address, code)])


def _calls(recovery: sc.SyscallRecovery) -> list[tuple]:
    return [(c.name, c.address, c.args, c.site, c.inline) for c in recovery.syscalls]


# --- the planted samples and the clean controls ----------------------------------------------------


@pytest.fixture(scope="module")
def sample_elf(sample_trees: Callable[[str], ExtractionTree],
               samples_store: LocalBlobStore) -> Callable[[str, str], Target]:
    """The Target of a file of a bundled sample, by image and in-image path."""

    def target(image: str, path: str) -> Target:
        tree = sample_trees(image)
        artifact = next(a for a in tree.artifacts if a.lineage_path.endswith(" › " + path))
        return Target(path=samples_store.path(artifact.sha256), sha256=artifact.sha256, size=artifact.size,
                      label=artifact.format, names=(path,))

    return target


def test_accepts_elf_labels_only(sample_elf: Callable[[str, str], Target]) -> None:
    target = sample_elf("linux-rootfs-backdoor.squashfs", "/usr/sbin/syncd")
    assert target.label == "elf"
    assert ANALYZER.accepts(target)
    assert not ANALYZER.accepts(_target(target.path, label="data"))
    assert (ANALYZER.name, ANALYZER.version) == ("elf", "1")


def test_syncd_dynamic_armhf_network_and_serial_imports(sample_elf: Callable[[str, str], Target]) -> None:
    findings = ANALYZER.analyze(sample_elf("linux-rootfs-backdoor.squashfs", "/usr/sbin/syncd"))
    assert _summary(findings) == [
        ("elf:info", Category.PROPERTY, Severity.INFO, (), (),
         ("elf:arch:arm", "elf:dynamic", "elf:type:dyn")),
        ("elf:network-imports", Category.CHANNEL, Severity.LOW, ("dns", "tcp"), (),
         ("import:connect", "import:getaddrinfo", "import:recv", "import:send", "import:socket")),
        ("elf:serial-imports", Category.DATA_SOURCE, Severity.INFO, (), (),
         ("import:cfmakeraw", "import:cfsetspeed", "import:tcsetattr")),
    ]
    info = _by_rule(findings)["elf:info"]
    assert info.title == "ELF 32-bit LSB arm PIE executable, dynamically linked"
    assert [(e.kind, e.value) for e in info.evidence[:3]] == [
        ("property", "entry=0x9b5"), ("property", "interpreter=/lib/ld-linux-armhf.so.3"), ("library", "libc.so.6")]


def test_beacon_raw_syscalls_socket_and_sendto_over_udp(sample_elf: Callable[[str, str], Target]) -> None:
    findings = ANALYZER.analyze(sample_elf("linux-rootfs.jffs2", "/usr/bin/beacon"))
    assert [f.rule for f in findings] == ["elf:info", "elf:raw-syscalls"]
    info, raw = findings
    assert info.tags == ("elf:arch:arm", "elf:static", "elf:stripped", "elf:type:exec")
    assert (raw.category, raw.severity, raw.channels) == (Category.CHANNEL, Severity.MEDIUM, ("udp",))
    assert {"elf:raw-syscalls", "syscall:socket", "syscall:sendto", "syscall:open", "syscall:read",
            "syscall:write", "syscall:nanosleep"} <= set(raw.tags)
    assert raw.title == "Network syscalls trapped inline, not through a wrapper: sendto, socket"
    # socket(AF_INET, SOCK_DGRAM, 0) and sendto: Thumb `svc 0`, r7 set before intervening calls.
    assert [(e.kind, e.value, e.offset, e.excerpt) for e in raw.evidence[:2]] == [
        ("syscall", "socket (281)", 0x40E, "thumb inline trap at 0x1040e: r7=281, r0=2, r1=2"),
        ("syscall", "sendto (290)", 0x44A, "thumb inline trap at 0x1044a: r7=290"),
    ]


def test_logsvc_static_glibc_network_via_wrappers_is_low(sample_elf: Callable[[str, str], Target]) -> None:
    findings = ANALYZER.analyze(sample_elf("android-ota-update.zip", "/system/bin/logsvc"))
    assert [f.rule for f in findings] == ["elf:info", "elf:raw-syscalls"]
    raw = findings[1]
    # socket() through glibc's wrapper, connect/send through __libc_do_syscall (number in ip): no inline trap.
    assert (raw.category, raw.severity, raw.channels) == (Category.CHANNEL, Severity.LOW, ("tcp",))
    assert {"syscall:socket", "syscall:connect", "syscall:send"} <= set(raw.tags)
    assert raw.title == "Network syscalls in the static code: connect, send, socket"
    values = [(e.value, e.excerpt.split(":")[0]) for e in raw.evidence[:3]]
    assert values == [
        ("socket (281)", "thumb call at 0x10336 into a socket wrapper (trap at 0x245e6)"),
        ("connect (283)", "thumb call at 0x244d2 into a syscall stub (trap at 0x10ac4)"),
        ("connect (283)", "thumb call at 0x244f8 into a syscall stub (trap at 0x10ac4)"),
    ]


def test_netupdate_mipsel_network_imports_low(sample_elf: Callable[[str, str], Target]) -> None:
    findings = ANALYZER.analyze(sample_elf("router-netupdate.squashfs", "/usr/bin/netupdate"))
    assert _summary(findings) == [
        ("elf:info", Category.PROPERTY, Severity.INFO, (), (), ("elf:arch:mips", "elf:dynamic", "elf:type:dyn")),
        ("elf:network-imports", Category.CHANNEL, Severity.LOW, ("dns", "tcp"), (),
         ("import:connect", "import:getaddrinfo", "import:recv", "import:send", "import:socket")),
    ]


@pytest.mark.parametrize(("image", "arch"), [("linux-rootfs.jffs2", "arm"), ("router-netupdate.squashfs", "mips")])
def test_busybox_static_syscalls_are_not_damning(sample_elf: Callable[[str, str], Target], image: str,
                                                 arch: str) -> None:
    findings = ANALYZER.analyze(sample_elf(image, "/bin/busybox"))
    assert [f.rule for f in findings] == ["elf:info", "elf:raw-syscalls"]
    info, raw = findings
    assert info.tags == (f"elf:arch:{arch}", "elf:static", "elf:stripped", "elf:type:exec")
    assert (raw.category, raw.severity, raw.channels) == (Category.CHANNEL, Severity.LOW, ("tcp", "udp"))
    assert {"syscall:socket", "syscall:bind", "syscall:listen", "syscall:execve"} <= set(raw.tags)
    assert not any(e.excerpt and " inline trap " in e.excerpt for e in raw.evidence)


def test_clean_rootfs_binaries_have_no_medium_findings(sample_elf: Callable[[str, str], Target]) -> None:
    syncd = ANALYZER.analyze(sample_elf("linux-rootfs-clean.squashfs", "/usr/sbin/syncd"))
    assert [f.rule for f in syncd] == ["elf:info"]
    for path in ("/usr/sbin/dropbear", "/usr/bin/dbclient", "/bin/busybox"):
        findings = ANALYZER.analyze(sample_elf("linux-rootfs-clean.squashfs", path))
        assert all(f.severity in (Severity.INFO, Severity.LOW) for f in findings), path
    dropbear = _by_rule(ANALYZER.analyze(sample_elf("linux-rootfs-clean.squashfs", "/usr/sbin/dropbear")))
    assert dropbear["elf:network-imports"].channels == ("dns", "tcp")


def test_findings_are_deterministic(sample_elf: Callable[[str, str], Target]) -> None:
    target = sample_elf("linux-rootfs.jffs2", "/usr/bin/beacon")
    assert ANALYZER.analyze(target) == ANALYZER.analyze(target)


# --- binaries built here: ARM mode and MIPS with inline traps --------------------------------------

_ARM_RAW = r"""
#include <netinet/in.h>
static long sys3(long n, long a, long b, long c)
{
    register long r0 __asm__("r0") = a;
    register long r1 __asm__("r1") = b;
    register long r2 __asm__("r2") = c;
    register long r7 __asm__("r7") = n;
    __asm__ volatile("svc 0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory");
    return r0;
}
int main(void)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = 0x5000};
    long fd = sys3(281, AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && sys3(283, fd, (long)&to, sizeof to) == 0)
        sys3(289, fd, (long)"hello", 5);
    return 0;
}
"""

_MIPS_RAW = r"""
static long sys3(long n, long a, long b, long c)
{
    register long v0 __asm__("$2") = n;
    register long a0 __asm__("$4") = a;
    register long a1 __asm__("$5") = b;
    register long a2 __asm__("$6") = c;
    register long a3 __asm__("$7");
    __asm__ volatile("syscall" : "+r"(v0), "=r"(a3) : "r"(a0), "r"(a1), "r"(a2) : "memory");
    return v0;
}
int main(void)
{
    char to[16] = {2, 0, 0x14, 0xe9, 198, 51, 100, 23};
    long fd = sys3(4183, 2, 1, 0);  /* socket(AF_INET, SOCK_DGRAM (1 on MIPS), 0) */
    sys3(4180, fd, (long)to, 16);   /* sendto */
    return 0;
}
"""


@pytest.mark.parametrize(("compiler", "flags", "source", "channels", "first"), [
    ("arm-linux-gnueabihf-gcc", ["-marm"], _ARM_RAW, ("tcp",), ("arm inline trap at ", ": r7=281, r0=2, r1=1")),
    ("mipsel-linux-gnu-gcc", [], _MIPS_RAW, ("udp",), ("mips inline trap at ", ": $v0=4183, $a0=2, $a1=1")),
])  # fmt: skip
def test_compiled_static_binaries_with_inline_traps(tmp_path: Path, compiler: str, flags: list[str], source: str,
                                                    channels: tuple[str, ...], first: tuple[str, str]) -> None:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    (tmp_path / "raw.c").write_text(source)
    subprocess.run([compiler, "-static", "-O2", "-s", *flags, "-o", str(tmp_path / "raw"), str(tmp_path / "raw.c")],
                   check=True)
    raw = _by_rule(ANALYZER.analyze(_target(tmp_path / "raw")))["elf:raw-syscalls"]
    assert (raw.category, raw.severity, raw.channels) == (Category.CHANNEL, Severity.MEDIUM, channels)
    assert raw.evidence[0].value in ("socket (281)", "socket (4183)")
    assert raw.evidence[0].excerpt.startswith(first[0]) and raw.evidence[0].excerpt.endswith(first[1])


# --- synthetic ELF files ---------------------------------------------------------------------------

# AArch64: socket(AF_INET, SOCK_DGRAM), sendto, then connect whose x8 a call clobbers.
_A64_CODE = _words(
    0xD2800040,  # mov x0, #2
    0xD2800041,  # mov x1, #2
    0xD2800002,  # mov x2, #0
    0x528018C8,  # mov w8, #0xc6 (socket)
    0xD4000001,  # svc #0
    0xD28019C8,  # mov x8, #0xce (sendto)
    0xD4000001,  # svc #0
    0x52801968,  # mov w8, #0xcb (connect)
    0x94000002,  # bl #+8
    0xD4000001,  # svc #0: x8 unknown after the call
    0xD65F03C0,  # ret
)


def test_synthetic_aarch64_static_binary() -> None:
    data = _elf(183, _A64_CODE)
    assert read_header(data[:64]).arch == "aarch64"


def test_analyzer_on_synthetic_aarch64(tmp_path: Path) -> None:
    path = tmp_path / "a64"
    path.write_bytes(_elf(183, _A64_CODE))
    findings = ANALYZER.analyze(_target(path))
    assert _summary(findings) == [
        ("elf:info", Category.PROPERTY, Severity.INFO, (), (),
         ("elf:arch:aarch64", "elf:static", "elf:stripped", "elf:type:exec")),
        ("elf:raw-syscalls", Category.CHANNEL, Severity.MEDIUM, ("udp",), (),
         ("elf:raw-syscalls", "syscall:sendto", "syscall:socket")),
    ]
    raw = findings[1]
    assert [(e.value, e.offset, e.excerpt) for e in raw.evidence] == [
        ("socket (198)", 0x88, "aarch64 inline trap at 0x400088: x8=198, x0=2, x1=2"),
        ("sendto (206)", 0x90, "aarch64 inline trap at 0x400090: x8=206, x1=2"),
    ]
    assert "3 trap instructions" in raw.description and "1 traps whose number is not a constant" in raw.description


def test_high_entropy_code_is_flagged_packed(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "packed"
    path.write_bytes(_elf(40, rng.randbytes(64 << 10), bits=32, flags=0x05000000))
    packed = _by_rule(ANALYZER.analyze(_target(path)))["elf:packed"]
    assert (packed.category, packed.severity, packed.tags) == (Category.OBFUSCATION, Severity.MEDIUM, ("elf:packed",))
    assert packed.evidence[0].value.startswith(".text size=65536 entropy=")
    assert float(packed.evidence[0].value.split("entropy=")[1]) > 7.9


def test_upx_header_without_sections(tmp_path: Path) -> None:
    rng = random.Random(8)
    code = b"\x00" * 4 + b"UPX!" + rng.randbytes(32 << 10)
    path = tmp_path / "upx"
    path.write_bytes(_elf(40, code, bits=32, flags=0x05000000, sections=False))
    findings = _by_rule(ANALYZER.analyze(_target(path)))
    upx = findings["elf:packed-upx"]
    assert (upx.category, upx.severity, upx.tags) == (Category.OBFUSCATION, Severity.LOW, ("elf:packed", "packer:upx"))
    assert upx.evidence[0].offset == 52 + 32 + 4
    assert upx.evidence[1].value.startswith("segment size=")
    assert "elf:stripped" in findings["elf:info"].tags


# --- hostile input ---------------------------------------------------------------------------------


def _syncd(sample_elf: Callable[[str, str], Target]) -> bytes:
    return sample_elf("linux-rootfs-backdoor.squashfs", "/usr/sbin/syncd").path.read_bytes()


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "file shorter than the ELF magic"),
    (b"\x7fEL", "file shorter than the ELF magic"),
    (b"\x7fELF", "truncated ELF header (4 bytes)"),
    (b"\x7fELF\x01\x01\x01" + bytes(13), "truncated ELF header (20 bytes)"),
    (b"\x7fELF\x07\x01\x01" + bytes(60), "invalid ELF class 7 or data encoding 1"),
    (b"MZ\x90\x00" + bytes(100), "no ELF magic"),
])  # fmt: skip
def test_unparseable_headers(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    assert _summary(ANALYZER.analyze(_target(path))) == [
        ("elf:unparseable", Category.PROPERTY, Severity.INFO, (), (), ("elf:unparseable",))]
    assert ANALYZER.analyze(_target(path))[0].title == f"ELF file could not be parsed: {reason}"


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@pytest.mark.parametrize("mutation", ["truncated", "half", "shnum", "phnum", "shoff", "phoff", "entsize"])
def test_hostile_tables_do_not_crash(tmp_path: Path, sample_elf: Callable[[str, str], Target], mutation: str) -> None:
    data = _syncd(sample_elf)
    content = {
        "truncated": data[:300],
        "half": data[: len(data) // 2],
        "shnum": _patched(data, 48, "<H", 0xFFFF),
        "phnum": _patched(data, 44, "<H", 0xFFFF),
        "shoff": _patched(data, 32, "<I", 0xFFFFFFF0),
        "phoff": _patched(data, 28, "<I", 0xFFFFFFF0),
        "entsize": _patched(_patched(data, 46, "<H", 0), 42, "<H", 0),
    }[mutation]
    path = tmp_path / "hostile"
    path.write_bytes(content)
    findings = ANALYZER.analyze(_target(path))
    info = _by_rule(findings)["elf:info"]
    if mutation in ("truncated", "half", "shnum", "phnum", "shoff", "phoff"):
        assert "elf:truncated" in info.tags
        assert "runs past end of file" in info.description
    assert all(f.severity in (Severity.INFO, Severity.LOW) for f in findings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 255)), min_size=1, max_size=24))
def test_mutated_headers_never_crash(tmp_path_factory: pytest.TempPathFactory, sample_elf: Callable[[str, str], Target],
                                    edits: list[tuple[int, int]]) -> None:
    for image, name in (("linux-rootfs-backdoor.squashfs", "/usr/sbin/syncd"), ("linux-rootfs.jffs2",
                                                                                  "/usr/bin/beacon")):
        data = bytearray(sample_elf(image, name).path.read_bytes()[: 64 << 10])
        for offset, value in edits:
            data[offset] = value
        path = tmp_path_factory.mktemp("fuzz") / "mutant"
        path.write_bytes(bytes(data))
        findings = ANALYZER.analyze(_target(path))
        assert findings and all(isinstance(f, Finding) for f in findings)


def test_garbage_code_full_of_trap_encodings() -> None:
    rng = random.Random(3)
    code = bytearray(rng.randbytes(64 << 10))
    for offset in range(0, len(code), 64):
        code[offset : offset + 2] = b"\x00\xdf"  # Thumb svc 0
        code[offset + 32 : offset + 36] = b"\x00\x00\x00\xef"  # ARM svc 0
    recovery = _recover(sc.abi_for(40, 32, True, 0x05000000), bytes(code))
    assert recovery.traps > 0 and not recovery.truncated
    for arch, bits, little in ((183, 64, True), (8, 32, True), (8, 32, False), (8, 64, False)):
        sc.recover(sc.abi_for(arch, bits, little, 0), [sc.CodeRegion(0, 0x10000, bytes(code))])


# --- syscall recovery, per architecture ------------------------------------------------------------

ARM_EABI = sc.abi_for(40, 32, True, 0x05000000)
ARM_OABI = sc.abi_for(40, 32, True, 0)


def test_thumb_inline_traps_with_r7_kept_across_calls() -> None:
    # movs r0,#2; mov r1,r0; movs r2,#0; movw r7,#281; bl helper; movs r0,#2; movs r1,#2; svc 0;
    # mov r4,r0; mov.w r7,#290; bl helper; mov r0,r4; svc 0; bx lr; helper: bx lr
    code = bytes.fromhex("02200146002240f2191700f00bf80220022100df04464ff4917700f003f8204600df70477047")
    recovery = _recover(ARM_EABI, code)
    assert (recovery.abi, recovery.traps, recovery.unresolved) == ("arm-eabi", 2, 0)
    # the sendto trap is followed by a return, like a wrapper's: only the socket trap counts as inline
    assert _calls(recovery) == [("socket", 0x10012, (2, 2), "trap", True), ("sendto", 0x10020, (None, None), "trap",
                                                                              False)]
    assert recovery.syscalls[0].registers == (("r7", 281), ("r0", 2), ("r1", 2))
    assert recovery.syscalls[0].offset == 0x1012


def test_thumb_syscall_stub_resolved_at_call_sites_and_syscall_wrapper_unresolved() -> None:
    # caller: push {r4,lr}; movs r0,#2; movs r1,#1; movw ip,#283; bl stub; movw ip,#289; bl stub; pop {r4,pc}; nop
    # stub (glibc __libc_do_syscall): push {r7,lr}; mov r7,ip; svc 0; pop {r7,pc}
    # wrapper (glibc syscall(), never called here): push {r4-r7}; mov r7,r0; mov r0,r1; svc 0; pop {r4-r7}; bx lr
    code = bytes.fromhex("10b50220012140f21b1c00f006f840f2211c00f002f810bdc04680b5674600df80bdf0b40746084600df"
                         "f0bc7047")
    recovery = _recover(ARM_EABI, code)
    assert (recovery.traps, recovery.unresolved, recovery.stubs) == (2, 1, 2)
    assert _calls(recovery) == [("connect", 0x1000A, (2, 1), "stub", False),
                                ("send", 0x10012, (None, None), "stub", False)]
    assert recovery.syscalls[0].stub == 0x1001E
    assert recovery.syscalls[0].registers == (("ip", 283), ("r0", 2), ("r1", 1))


def test_arm_mode_immediate_arithmetic_and_literal_pool() -> None:
    # mov r0,#10; mov r1,#1; mov r7,#0x118; add r7,r7,#1; svc 0; ldr r7,lit; svc 0; bx lr; lit: .word 283
    code = bytes.fromhex("0a00a0e30110a0e3467fa0e3017087e2000000ef04709fe5000000ef1eff2fe11b010000")
    recovery = _recover(ARM_EABI, code)
    assert _calls(recovery) == [("socket", 0x10010, (10, 1), "trap", True), ("connect", 0x10018, (None, 1), "trap",
                                                                             False)]


def test_arm_oabi_number_in_the_instruction_and_socketcall() -> None:
    # mov r0,#2; mov r1,#1; svc #0x900119 (socket); mov r0,#3; svc #0x900066 (socketcall SYS_CONNECT); bx lr
    code = bytes.fromhex("0200a0e30110a0e3190190ef0300a0e3660090ef1eff2fe1")
    recovery = _recover(ARM_OABI, code)
    assert recovery.abi == "arm-oabi"
    assert [(c.name, c.number, c.args, c.via_socketcall) for c in recovery.syscalls] == [
        ("socket", 281, (2, 1), False), ("connect", 102, (None, None), True)]


def test_aarch64_movz_movk_literal_and_call_clobbers_x8() -> None:
    recovery = _recover(sc.abi_for(183, 64, True, 0), _A64_CODE)
    assert (recovery.traps, recovery.unresolved) == (3, 1)
    assert _calls(recovery) == [("socket", 0x10010, (2, 2), "trap", True),
                                ("sendto", 0x10018, (None, 2), "trap", True)]
    # movz x8,#0xc6; movk x8,#0,lsl #16; svc; ldr x8,lit; svc; ret; lit: .quad 206
    code = _words(0xD28018C8, 0xF2A00008, 0xD4000001, 0x58000068, 0xD4000001, 0xD65F03C0) + struct.pack("<Q", 206)
    assert [c.name for c in _recover(sc.abi_for(183, 64, True, 0), code).syscalls] == ["socket", "sendto"]


def test_aarch64_syscall_function_resolved_at_its_caller() -> None:
    code = _words(
        0xD28018C0,  # mov x0, #198 (socket)
        0xD2800041,  # mov x1, #2 (AF_INET)
        0xD2800022,  # mov x2, #1 (SOCK_STREAM)
        0x94000002,  # bl syscall
        0xD65F03C0,  # ret
        0xAA0003E8,  # syscall: mov x8, x0
        0xAA0103E0,  # mov x0, x1
        0xAA0203E1,  # mov x1, x2
        0xD4000001,  # svc #0
        0xD65F03C0,  # ret
    )
    recovery = _recover(sc.abi_for(183, 64, True, 0), code)
    assert (recovery.traps, recovery.unresolved, recovery.stubs) == (1, 0, 1)
    assert _calls(recovery) == [("socket", 0x1000C, (2, 1), "stub", False)]


_MIPS_O32 = (  # li a0,2; li a1,1; li v0,4183; syscall; li v0,4180; syscall; li v0,4183; jal 0; nop; syscall;
    #            jr ra; li v0,4170 (delay slot); syscall; padding
    "0200042401000524571002240c000000541002240c000000571002240000000c000000000c0000000800e0034a1002240c000000"
    "000000000000000000000000",
    "2404000224050001240210570000000c240210540000000c240210570c000000000000000000000c03e000082402104a0000000c"
    "000000000000000000000000",
)


@pytest.mark.parametrize(("little", "code"), [(True, _MIPS_O32[0]), (False, _MIPS_O32[1])])
def test_mips_o32_traps_calls_and_delay_slots(little: bool, code: str) -> None:
    recovery = _recover(sc.abi_for(8, 32, little, 0x50001007), bytes.fromhex(code))
    assert (recovery.abi, recovery.traps, recovery.unresolved) == ("mips-o32", 4, 2)
    # a $v0 set before a call, or in the delay slot of a return, does not reach the trap after it
    assert _calls(recovery) == [("socket", 0x1000C, (2, 1), "trap", True), ("sendto", 0x10014, (2, 1), "trap", True)]
    assert (recovery.sock_stream, recovery.sock_dgram) == (2, 1)


def test_mips_n64_big_endian_lui_ori() -> None:
    # li a0,10; li a1,2; li v0,5040; syscall; lui v0,0; ori v0,v0,5041; syscall
    code = bytes.fromhex("2404000a24050002240213b00000000c3c020000344213b10000000c00000000")
    recovery = _recover(sc.abi_for(8, 64, False, 0), code)
    assert recovery.abi == "mips-n64"
    assert [(c.name, c.args) for c in recovery.syscalls] == [("socket", (10, 2)), ("connect", (10, 2))]


def test_unknown_architectures_are_not_searched() -> None:
    assert sc.abi_for(62, 64, True, 0) is None  # x86-64
    assert sc.abi_for(40, 32, False, 0x05000000) is None  # big-endian ARM


# --- channel inference -----------------------------------------------------------------------------


@pytest.mark.parametrize(("calls", "kwargs", "channels"), [
    ({"socket", "connect", "send", "recv"}, {}, {"tcp"}),
    ({"socket", "sendto", "recvfrom"}, {}, {"udp"}),
    ({"socket", "connect", "send", "sendto"}, {}, {"udp"}),  # connect/send may be a connected UDP socket
    ({"socket", "bind", "listen", "accept", "sendto"}, {}, {"tcp", "udp"}),
    ({"socket", "sendmsg"}, {}, set()),  # netlink and Unix sockets use sendmsg too
    ({"socket", "sendmsg"}, {"messages_are_datagrams": True}, {"udp"}),
    ({"socket", "sendmsg", "connect"}, {"messages_are_datagrams": True}, {"tcp"}),
    ({"socket"}, {}, set()),
    ({"socket", "sendto"}, {"stream": True}, {"tcp"}),
    ({"socket", "connect", "send"}, {"datagram": True}, {"udp"}),
])  # fmt: skip
def test_socket_channels(calls: set[str], kwargs: dict, channels: set[str]) -> None:
    assert socket_channels(calls, **kwargs) == channels


# --- dynamic linkage read from the section headers, and LIEF when there are none ----------------------


@pytest.mark.parametrize(("image", "path"), [
    ("linux-rootfs-backdoor.squashfs", "/usr/sbin/syncd"),
    ("router-netupdate.squashfs", "/usr/bin/netupdate"),
    ("linux-rootfs-clean.squashfs", "/usr/sbin/dropbear"),
])  # fmt: skip
def test_own_dynamic_symbol_reader_agrees_with_lief(sample_elf: Callable[[str, str], Target], image: str,
                                                    path: str) -> None:
    from pipeline.analyze import elf

    target = sample_elf(image, path)
    header = read_header(target.path.read_bytes()[:64])
    with target.path.open("rb") as handle:
        own = elf._linkage(handle, header, elf._sections(handle, header, target.size), target.size)
    assert own == elf._lief_linkage(target.path)
    assert own.libraries and own.imports


def test_dynamic_binary_without_section_headers(tmp_path: Path, sample_elf: Callable[[str, str], Target]) -> None:
    data = _patched(_patched(_syncd(sample_elf), 32, "<I", 0), 48, "<H", 0)  # e_shoff = e_shnum = 0 (sstrip)
    path = tmp_path / "sstripped"
    path.write_bytes(data)
    findings = _by_rule(ANALYZER.analyze(_target(path)))
    assert findings["elf:info"].tags == ("elf:arch:arm", "elf:dynamic", "elf:stripped", "elf:type:dyn")
    assert findings["elf:network-imports"].channels == ("dns", "tcp")


def test_registry_finds_the_analyzer() -> None:
    from pipeline.analyze.registry import analyzer_classes

    assert ElfAnalyzer in analyzer_classes()
