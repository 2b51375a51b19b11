"""System calls recovered from the machine code of a static ELF binary (capstone), for ``elf.py``.

Why: a statically linked, stripped binary has no import table and no
symbols, so nothing says it talks to the network, and that is exactly how a
small implant hides: it puts the syscall number in a register and traps into
the kernel itself (``mov r7, #281; svc 0`` is ``socket``). The numbers can be
read back from the code.

How, per trap instruction, without disassembling whole sections:

1. The traps are found by their encodings in the executable bytes (a regular
   expression, aligned): ARM EABI ``svc #0`` (ARM ``0xef000000``, Thumb
   ``0xdf00``), ARM OABI ``svc #0x9000nn`` (the number is in the
   instruction), AArch64 ``svc #0`` (``0xd4000001``), MIPS ``syscall``
   (``0x0000000c``).
2. Only a short window before each trap is disassembled (``disasm_lite``),
   from a start whose decoding lands exactly on the trap: Thumb mixes 2- and
   4-byte instructions, and capstone stops at undecodable bytes, so a start
   that fails is retried after the bad bytes.
3. The window is walked forward by a small constant propagator: immediate
   moves (``mov``/``movw``/``movt``, ``movz``/``movk``, ``li``/``addiu``/
   ``ori``/``lui``), register copies, ``add``/``sub``/``orr`` of an
   immediate and literal-pool loads; calls clobber the caller-saved
   registers, returns and unconditional branches start a new block. The
   syscall number register at the trap (``r7``, ``x8``, ``$v0``) names the
   call when it holds a constant; the first two argument registers give the
   socket domain and type.
4. Syscall stubs: when the number (or, for ``socket``, the arguments) is still
   an input of the enclosing function at the trap (glibc's Thumb
   ``__libc_do_syscall`` takes it in ``ip``, ``syscall()`` in ``r0``, glibc's
   ``socket()`` its domain and type in ``r0``/``r1``), the direct calls to that
   function (BL/JAL encodings, found with numpy over the executable bytes) are
   evaluated the same way at each call site.
5. Network traps get a shape: in a wrapper (a function boundary just before
   the trap, or a return within 16 instructions after it, before any other
   trap) or inline in ordinary code, which is how a program that bypasses its
   C library looks.

Syscall numbers are the Linux ones (torvalds/linux, Linux 6.1):
``arch/arm/tools/syscall.tbl`` (EABI; OABI adds the four marked below),
``include/uapi/asm-generic/unistd.h`` (AArch64), and
``arch/mips/kernel/syscalls/syscall_o32.tbl``, ``syscall_n64.tbl``,
``syscall_n32.tbl`` (MIPS, offset by 4000, 5000 and 6000). Only the calls a
triage can use are listed; other numbers are reported as ``#n``.

Known limitations:

- Only numbers that are constants in the code are recovered: a number loaded
  from memory or computed at run time, an indirect call into a stub (MIPS PIC
  code calls through ``$t9``) or a stub reached through another stub stays
  unresolved (counted, not named).
- The window is linear and short (32 bytes first, then 160 on ARM and 96
  elsewhere; 64 before a call into a stub): a value set in another basic
  block that jumps to the trap is missed, and a register set on one path but
  not another is taken from the fall-through path.
- Work is capped (32 MiB of code, 4096 traps, 4096 calls into stubs); a
  hostile file full of trap encodings costs about a second per MiB.
- Little-endian ARM only (no BE8/BE32), no MIPS16/microMIPS, no x86, PowerPC or
  RISC-V; ARM and Thumb are both tried wherever their encodings appear.
- Bytes inside code sections that are data (literal pools, jump tables) can
  look like a trap; such sites rarely decode to a constant number and only
  inflate the count of unresolved traps.
- A stripped static binary does not say which code is the program and which
  its C library: the shape of step 5 is a heuristic. An implant that calls
  libc's ``socket()`` or wraps each trap in a small function of its own looks
  like any static program; a C library that inlines network traps into larger
  functions looks like an implant.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import capstone
import numpy as np

# --- syscall numbers -------------------------------------------------------------------------------

ARM_EABI = {
    1: "exit", 2: "fork", 3: "read", 4: "write", 5: "open", 6: "close", 8: "creat", 9: "link", 10: "unlink",
    11: "execve", 12: "chdir", 14: "mknod", 15: "chmod", 16: "lchown", 19: "lseek", 20: "getpid", 21: "mount",
    23: "setuid", 24: "getuid", 26: "ptrace", 33: "access", 37: "kill", 38: "rename", 39: "mkdir", 40: "rmdir",
    41: "dup", 42: "pipe", 45: "brk", 46: "setgid", 47: "getgid", 49: "geteuid", 50: "getegid", 52: "umount2",
    54: "ioctl", 55: "fcntl", 57: "setpgid", 60: "umask", 61: "chroot", 63: "dup2", 64: "getppid", 66: "setsid",
    78: "gettimeofday", 79: "settimeofday", 83: "symlink", 85: "readlink", 88: "reboot", 91: "munmap",
    93: "ftruncate", 94: "fchmod", 95: "fchown", 99: "statfs", 104: "setitimer", 106: "stat", 107: "lstat",
    108: "fstat", 114: "wait4", 116: "sysinfo", 118: "fsync", 119: "sigreturn", 120: "clone", 122: "uname",
    125: "mprotect", 128: "init_module", 129: "delete_module", 132: "getpgid", 140: "_llseek", 141: "getdents",
    142: "_newselect", 145: "readv", 146: "writev", 147: "getsid", 154: "sched_setparam", 155: "sched_getparam",
    156: "sched_setscheduler", 157: "sched_getscheduler", 158: "sched_yield", 159: "sched_get_priority_max",
    160: "sched_get_priority_min", 162: "nanosleep", 163: "mremap", 164: "setresuid", 168: "poll", 170: "setresgid",
    172: "prctl", 173: "rt_sigreturn", 174: "rt_sigaction", 175: "rt_sigprocmask", 180: "pread64", 181: "pwrite64",
    182: "chown", 183: "getcwd", 184: "capget", 185: "capset", 186: "sigaltstack", 187: "sendfile", 190: "vfork",
    191: "ugetrlimit", 192: "mmap2", 194: "ftruncate64", 195: "stat64", 196: "lstat64", 197: "fstat64",
    217: "getdents64", 218: "pivot_root", 220: "madvise", 221: "fcntl64", 224: "gettid", 238: "tkill",
    239: "sendfile64", 240: "futex", 241: "sched_setaffinity", 242: "sched_getaffinity", 248: "exit_group",
    250: "epoll_create", 251: "epoll_ctl", 252: "epoll_wait", 256: "set_tid_address", 257: "timer_create",
    263: "clock_gettime", 265: "clock_nanosleep", 266: "statfs64", 268: "tgkill", 280: "waitid", 281: "socket",
    282: "bind", 283: "connect", 284: "listen", 285: "accept", 286: "getsockname", 287: "getpeername",
    288: "socketpair", 289: "send", 290: "sendto", 291: "recv", 292: "recvfrom", 293: "shutdown", 294: "setsockopt",
    295: "getsockopt", 296: "sendmsg", 297: "recvmsg", 317: "inotify_add_watch", 322: "openat", 323: "mkdirat",
    324: "mknodat", 325: "fchownat", 327: "fstatat64", 328: "unlinkat", 329: "renameat", 330: "linkat",
    331: "symlinkat", 332: "readlinkat", 333: "fchmodat", 334: "faccessat", 335: "pselect6", 336: "ppoll",
    337: "unshare", 338: "set_robust_list", 346: "epoll_pwait", 348: "utimensat", 350: "timerfd_create",
    356: "eventfd2", 357: "epoll_create1", 358: "dup3", 359: "pipe2", 360: "inotify_init1", 365: "recvmmsg",
    366: "accept4", 369: "prlimit64", 374: "sendmmsg", 375: "setns", 379: "finit_module", 383: "seccomp",
    384: "getrandom", 385: "memfd_create", 387: "execveat", 397: "statx", 398: "rseq", 403: "clock_gettime64",
    407: "clock_nanosleep_time64", 422: "futex_time64", 435: "clone3",
}  # fmt: skip
# ARM private calls (__ARM_NR_BASE + n, arch/arm/include/uapi/asm/unistd.h), made by the C library's start-up.
ARM_EABI.update({0xF0002: "cacheflush", 0xF0005: "set_tls", 0xF0006: "get_tls"})
# The old ABI (``svc #0x900000+n``) keeps four calls the EABI dropped.
ARM_OABI = {**ARM_EABI, 13: "time", 82: "select", 90: "mmap", 102: "socketcall"}

AARCH64 = {
    17: "getcwd", 19: "eventfd2", 20: "epoll_create1", 21: "epoll_ctl", 22: "epoll_pwait", 23: "dup",
    24: "dup3", 25: "fcntl", 26: "inotify_init1", 27: "inotify_add_watch", 29: "ioctl", 33: "mknodat", 34: "mkdirat",
    35: "unlinkat", 36: "symlinkat", 37: "linkat", 38: "renameat", 39: "umount2", 40: "mount", 41: "pivot_root",
    43: "statfs", 46: "ftruncate", 48: "faccessat", 49: "chdir", 51: "chroot", 52: "fchmod", 53: "fchmodat",
    54: "fchownat", 55: "fchown", 56: "openat", 57: "close", 59: "pipe2", 61: "getdents64", 62: "lseek", 63: "read",
    64: "write", 65: "readv", 66: "writev", 67: "pread64", 68: "pwrite64", 71: "sendfile", 72: "pselect6",
    73: "ppoll", 78: "readlinkat", 79: "newfstatat", 80: "fstat", 82: "fsync", 85: "timerfd_create", 88: "utimensat",
    90: "capget", 91: "capset", 93: "exit", 94: "exit_group", 95: "waitid", 96: "set_tid_address", 97: "unshare",
    98: "futex", 99: "set_robust_list", 101: "nanosleep", 103: "setitimer", 105: "init_module", 106: "delete_module",
    107: "timer_create", 113: "clock_gettime", 115: "clock_nanosleep", 117: "ptrace", 118: "sched_setparam",
    119: "sched_setscheduler", 120: "sched_getscheduler", 121: "sched_getparam", 122: "sched_setaffinity",
    123: "sched_getaffinity", 124: "sched_yield", 125: "sched_get_priority_max", 126: "sched_get_priority_min",
    129: "kill", 130: "tkill", 131: "tgkill", 132: "sigaltstack", 134: "rt_sigaction", 135: "rt_sigprocmask",
    139: "rt_sigreturn", 142: "reboot", 144: "setgid", 146: "setuid", 147: "setresuid", 149: "setresgid",
    154: "setpgid", 155: "getpgid", 156: "getsid", 157: "setsid", 160: "uname", 166: "umask", 167: "prctl",
    169: "gettimeofday", 170: "settimeofday", 172: "getpid", 173: "getppid", 174: "getuid", 175: "geteuid",
    176: "getgid", 177: "getegid", 178: "gettid", 179: "sysinfo", 198: "socket", 199: "socketpair", 200: "bind",
    201: "listen", 202: "accept", 203: "connect", 204: "getsockname", 205: "getpeername", 206: "sendto",
    207: "recvfrom", 208: "setsockopt", 209: "getsockopt", 210: "shutdown", 211: "sendmsg", 212: "recvmsg",
    214: "brk", 215: "munmap", 216: "mremap", 220: "clone", 221: "execve", 222: "mmap", 226: "mprotect",
    233: "madvise", 242: "accept4", 243: "recvmmsg", 260: "wait4", 261: "prlimit64", 268: "setns", 269: "sendmmsg",
    273: "finit_module", 277: "seccomp", 278: "getrandom", 279: "memfd_create", 281: "execveat", 291: "statx",
    293: "rseq", 403: "clock_gettime64", 407: "clock_nanosleep_time64", 422: "futex_time64", 435: "clone3",
}  # fmt: skip

MIPS_O32 = {
    4001: "exit", 4002: "fork", 4003: "read", 4004: "write", 4005: "open", 4006: "close", 4008: "creat",
    4009: "link", 4010: "unlink", 4011: "execve", 4012: "chdir", 4013: "time", 4014: "mknod", 4015: "chmod",
    4016: "lchown", 4019: "lseek", 4020: "getpid", 4021: "mount", 4023: "setuid", 4024: "getuid", 4026: "ptrace",
    4033: "access", 4037: "kill", 4038: "rename", 4039: "mkdir", 4040: "rmdir", 4041: "dup", 4042: "pipe",
    4045: "brk", 4046: "setgid", 4047: "getgid", 4049: "geteuid", 4050: "getegid", 4052: "umount2", 4054: "ioctl",
    4055: "fcntl", 4057: "setpgid", 4060: "umask", 4061: "chroot", 4063: "dup2", 4064: "getppid", 4066: "setsid",
    4078: "gettimeofday", 4079: "settimeofday", 4083: "symlink", 4085: "readlink", 4088: "reboot", 4090: "mmap",
    4091: "munmap", 4093: "ftruncate", 4094: "fchmod", 4095: "fchown", 4099: "statfs", 4102: "socketcall",
    4104: "setitimer", 4106: "stat", 4107: "lstat", 4108: "fstat", 4114: "wait4", 4116: "sysinfo", 4118: "fsync",
    4119: "sigreturn", 4120: "clone", 4122: "uname", 4125: "mprotect", 4128: "init_module", 4129: "delete_module",
    4132: "getpgid", 4140: "_llseek", 4141: "getdents", 4142: "_newselect", 4145: "readv", 4146: "writev",
    4151: "getsid", 4158: "sched_setparam", 4159: "sched_getparam", 4160: "sched_setscheduler",
    4161: "sched_getscheduler", 4162: "sched_yield", 4163: "sched_get_priority_max", 4164: "sched_get_priority_min",
    4166: "nanosleep", 4167: "mremap", 4168: "accept", 4169: "bind", 4170: "connect", 4171: "getpeername",
    4172: "getsockname", 4173: "getsockopt", 4174: "listen", 4175: "recv", 4176: "recvfrom", 4177: "recvmsg",
    4178: "send", 4179: "sendmsg", 4180: "sendto", 4181: "setsockopt", 4182: "shutdown", 4183: "socket",
    4184: "socketpair", 4185: "setresuid", 4188: "poll", 4190: "setresgid", 4192: "prctl", 4193: "rt_sigreturn",
    4194: "rt_sigaction", 4195: "rt_sigprocmask", 4200: "pread64", 4201: "pwrite64", 4202: "chown", 4203: "getcwd",
    4204: "capget", 4205: "capset", 4206: "sigaltstack", 4207: "sendfile", 4210: "mmap2", 4212: "ftruncate64",
    4213: "stat64", 4214: "lstat64", 4215: "fstat64", 4216: "pivot_root", 4218: "madvise", 4219: "getdents64",
    4220: "fcntl64", 4222: "gettid", 4236: "tkill", 4237: "sendfile64", 4238: "futex", 4239: "sched_setaffinity",
    4240: "sched_getaffinity", 4246: "exit_group", 4248: "epoll_create", 4249: "epoll_ctl", 4250: "epoll_wait",
    4252: "set_tid_address", 4255: "statfs64", 4257: "timer_create", 4263: "clock_gettime", 4265: "clock_nanosleep",
    4266: "tgkill", 4278: "waitid", 4285: "inotify_add_watch", 4288: "openat", 4289: "mkdirat", 4290: "mknodat",
    4291: "fchownat", 4293: "fstatat64", 4294: "unlinkat", 4295: "renameat", 4296: "linkat", 4297: "symlinkat",
    4298: "readlinkat", 4299: "fchmodat", 4300: "faccessat", 4301: "pselect6", 4302: "ppoll", 4303: "unshare",
    4309: "set_robust_list", 4313: "epoll_pwait", 4316: "utimensat", 4321: "timerfd_create", 4325: "eventfd2",
    4326: "epoll_create1", 4327: "dup3", 4328: "pipe2", 4329: "inotify_init1", 4334: "accept4", 4335: "recvmmsg",
    4338: "prlimit64", 4343: "sendmmsg", 4344: "setns", 4348: "finit_module", 4352: "seccomp", 4353: "getrandom",
    4354: "memfd_create", 4356: "execveat", 4366: "statx", 4367: "rseq", 4403: "clock_gettime64",
    4407: "clock_nanosleep_time64", 4422: "futex_time64", 4435: "clone3",
}  # fmt: skip

MIPS_N64 = {
    5000: "read", 5001: "write", 5002: "open", 5003: "close", 5004: "stat", 5005: "fstat", 5006: "lstat",
    5007: "poll", 5008: "lseek", 5009: "mmap", 5010: "mprotect", 5011: "munmap", 5012: "brk", 5013: "rt_sigaction",
    5014: "rt_sigprocmask", 5015: "ioctl", 5016: "pread64", 5017: "pwrite64", 5018: "readv", 5019: "writev",
    5020: "access", 5021: "pipe", 5022: "_newselect", 5023: "sched_yield", 5024: "mremap", 5027: "madvise",
    5031: "dup", 5032: "dup2", 5034: "nanosleep", 5036: "setitimer", 5038: "getpid", 5039: "sendfile",
    5040: "socket", 5041: "connect", 5042: "accept", 5043: "sendto", 5044: "recvfrom", 5045: "sendmsg",
    5046: "recvmsg", 5047: "shutdown", 5048: "bind", 5049: "listen", 5050: "getsockname", 5051: "getpeername",
    5052: "socketpair", 5053: "setsockopt", 5054: "getsockopt", 5055: "clone", 5056: "fork", 5057: "execve",
    5058: "exit", 5059: "wait4", 5060: "kill", 5061: "uname", 5070: "fcntl", 5072: "fsync", 5075: "ftruncate",
    5076: "getdents", 5077: "getcwd", 5078: "chdir", 5080: "rename", 5081: "mkdir", 5082: "rmdir", 5083: "creat",
    5084: "link", 5085: "unlink", 5086: "symlink", 5087: "readlink", 5088: "chmod", 5089: "fchmod", 5090: "chown",
    5091: "fchown", 5092: "lchown", 5093: "umask", 5094: "gettimeofday", 5097: "sysinfo", 5099: "ptrace",
    5100: "getuid", 5102: "getgid", 5103: "setuid", 5104: "setgid", 5105: "geteuid", 5106: "getegid",
    5107: "setpgid", 5108: "getppid", 5110: "setsid", 5115: "setresuid", 5117: "setresgid", 5119: "getpgid",
    5122: "getsid", 5123: "capget", 5124: "capset", 5129: "sigaltstack", 5131: "mknod", 5134: "statfs",
    5139: "sched_setparam", 5140: "sched_getparam", 5141: "sched_setscheduler", 5142: "sched_getscheduler",
    5143: "sched_get_priority_max", 5144: "sched_get_priority_min", 5151: "pivot_root", 5153: "prctl",
    5156: "chroot", 5159: "settimeofday", 5160: "mount", 5161: "umount2", 5164: "reboot", 5168: "init_module",
    5169: "delete_module", 5178: "gettid", 5192: "tkill", 5194: "futex", 5195: "sched_setaffinity",
    5196: "sched_getaffinity", 5205: "exit_group", 5207: "epoll_create", 5208: "epoll_ctl", 5209: "epoll_wait",
    5211: "rt_sigreturn", 5212: "set_tid_address", 5216: "timer_create", 5222: "clock_gettime",
    5224: "clock_nanosleep", 5225: "tgkill", 5237: "waitid", 5244: "inotify_add_watch", 5247: "openat",
    5248: "mkdirat", 5249: "mknodat", 5250: "fchownat", 5252: "newfstatat", 5253: "unlinkat", 5254: "renameat",
    5255: "linkat", 5256: "symlinkat", 5257: "readlinkat", 5258: "fchmodat", 5259: "faccessat", 5260: "pselect6",
    5261: "ppoll", 5262: "unshare", 5268: "set_robust_list", 5272: "epoll_pwait", 5275: "utimensat",
    5280: "timerfd_create", 5284: "eventfd2", 5285: "epoll_create1", 5286: "dup3", 5287: "pipe2",
    5288: "inotify_init1", 5293: "accept4", 5294: "recvmmsg", 5297: "prlimit64", 5302: "sendmmsg", 5303: "setns",
    5307: "finit_module", 5308: "getdents64", 5312: "seccomp", 5313: "getrandom", 5314: "memfd_create",
    5316: "execveat", 5326: "statx", 5327: "rseq", 5435: "clone3",
}  # fmt: skip

MIPS_N32 = {
    6000: "read", 6001: "write", 6002: "open", 6003: "close", 6004: "stat", 6005: "fstat", 6006: "lstat",
    6007: "poll", 6008: "lseek", 6009: "mmap", 6010: "mprotect", 6011: "munmap", 6012: "brk", 6013: "rt_sigaction",
    6014: "rt_sigprocmask", 6015: "ioctl", 6016: "pread64", 6017: "pwrite64", 6018: "readv", 6019: "writev",
    6020: "access", 6021: "pipe", 6022: "_newselect", 6023: "sched_yield", 6024: "mremap", 6027: "madvise",
    6031: "dup", 6032: "dup2", 6034: "nanosleep", 6036: "setitimer", 6038: "getpid", 6039: "sendfile",
    6040: "socket", 6041: "connect", 6042: "accept", 6043: "sendto", 6044: "recvfrom", 6045: "sendmsg",
    6046: "recvmsg", 6047: "shutdown", 6048: "bind", 6049: "listen", 6050: "getsockname", 6051: "getpeername",
    6052: "socketpair", 6053: "setsockopt", 6054: "getsockopt", 6055: "clone", 6056: "fork", 6057: "execve",
    6058: "exit", 6059: "wait4", 6060: "kill", 6061: "uname", 6070: "fcntl", 6072: "fsync", 6075: "ftruncate",
    6076: "getdents", 6077: "getcwd", 6078: "chdir", 6080: "rename", 6081: "mkdir", 6082: "rmdir", 6083: "creat",
    6084: "link", 6085: "unlink", 6086: "symlink", 6087: "readlink", 6088: "chmod", 6089: "fchmod", 6090: "chown",
    6091: "fchown", 6092: "lchown", 6093: "umask", 6094: "gettimeofday", 6097: "sysinfo", 6099: "ptrace",
    6100: "getuid", 6102: "getgid", 6103: "setuid", 6104: "setgid", 6105: "geteuid", 6106: "getegid",
    6107: "setpgid", 6108: "getppid", 6110: "setsid", 6115: "setresuid", 6117: "setresgid", 6119: "getpgid",
    6122: "getsid", 6123: "capget", 6124: "capset", 6129: "sigaltstack", 6131: "mknod", 6134: "statfs",
    6139: "sched_setparam", 6140: "sched_getparam", 6141: "sched_setscheduler", 6142: "sched_getscheduler",
    6143: "sched_get_priority_max", 6144: "sched_get_priority_min", 6151: "pivot_root", 6153: "prctl",
    6156: "chroot", 6159: "settimeofday", 6160: "mount", 6161: "umount2", 6164: "reboot", 6168: "init_module",
    6169: "delete_module", 6178: "gettid", 6192: "tkill", 6194: "futex", 6195: "sched_setaffinity",
    6196: "sched_getaffinity", 6205: "exit_group", 6207: "epoll_create", 6208: "epoll_ctl", 6209: "epoll_wait",
    6211: "rt_sigreturn", 6212: "fcntl64", 6213: "set_tid_address", 6217: "statfs64", 6219: "sendfile64",
    6220: "timer_create", 6226: "clock_gettime", 6228: "clock_nanosleep", 6229: "tgkill", 6241: "waitid",
    6248: "inotify_add_watch", 6251: "openat", 6252: "mkdirat", 6253: "mknodat", 6254: "fchownat",
    6256: "newfstatat", 6257: "unlinkat", 6258: "renameat", 6259: "linkat", 6260: "symlinkat", 6261: "readlinkat",
    6262: "fchmodat", 6263: "faccessat", 6264: "pselect6", 6265: "ppoll", 6266: "unshare", 6272: "set_robust_list",
    6276: "epoll_pwait", 6279: "utimensat", 6284: "timerfd_create", 6288: "eventfd2", 6289: "epoll_create1",
    6290: "dup3", 6291: "pipe2", 6292: "inotify_init1", 6297: "accept4", 6298: "recvmmsg", 6299: "getdents64",
    6302: "prlimit64", 6307: "sendmmsg", 6308: "setns", 6312: "finit_module", 6316: "seccomp", 6317: "getrandom",
    6318: "memfd_create", 6320: "execveat", 6330: "statx", 6331: "rseq", 6403: "clock_gettime64",
    6407: "clock_nanosleep_time64", 6422: "futex_time64", 6435: "clone3",
}  # fmt: skip

# socketcall(call, args): the first argument selects the socket call (include/uapi/linux/net.h).
SOCKETCALL = {
    1: "socket", 2: "bind", 3: "connect", 4: "listen", 5: "accept", 6: "getsockname", 7: "getpeername",
    8: "socketpair", 9: "send", 10: "recv", 11: "sendto", 12: "recvfrom", 13: "shutdown", 14: "setsockopt",
    15: "getsockopt", 16: "sendmsg", 17: "recvmsg", 18: "accept4", 19: "recvmmsg", 20: "sendmmsg",
}  # fmt: skip

# The calls that reach a network (socketcall's sub-calls are named as such).
NETWORK_NAMES = frozenset({
    "socket", "socketcall", "connect", "bind", "listen", "accept", "accept4", "send", "sendto", "sendmsg",
    "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg",
})  # fmt: skip

# Socket types (include/linux/net.h; MIPS swaps the first two, arch/mips/include/asm/socket.h).
SOCK_STREAM, SOCK_DGRAM = 1, 2
MIPS_SOCK_STREAM, MIPS_SOCK_DGRAM = 2, 1

# Caps that bound the work on any input.
MAX_CODE_BYTES = 32 << 20  # executable bytes searched for traps
MAX_TRAPS = 4096  # trap sites decoded (real binaries have tens to a few hundred)
MAX_CALLERS = 4096  # call sites into stubs decoded
_MAX_RETRIES = 12  # window starts tried per site before giving up on context
_SHORT_WINDOW = 32  # bytes decoded before a trap first; most numbers are set right before it
_CALLER_WINDOW = 64  # bytes decoded before a call into a stub, at most
_ENTRY_SPAN = 32  # bytes: a trap this close after a function boundary sits in a wrapper
_RETURN_SPAN = 16  # instructions: a wrapper returns (or fails) this soon after its trap
_SCAN_CHUNK = 4 << 20  # bytes of code scanned for calls at a time (bounds numpy's memory)


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeRegion:
    """Executable bytes of the file: where they are in the file and where they are mapped."""

    offset: int
    address: int
    data: bytes

    def contains(self, address: int, size: int = 1) -> bool:
        return self.address <= address and address + size <= self.address + len(self.data)


@dataclass(frozen=True)
class Syscall:
    """One system call whose number is a constant in the code.

    ``offset``/``address`` locate the trap (``site`` "trap"), or a call into
    a function that traps: a syscall stub that takes the number from its
    caller (``site`` "stub", e.g. glibc's ``__libc_do_syscall`` or
    ``syscall()``) or a wrapper with a fixed number whose socket arguments
    come from the caller (``site`` "wrapper", a libc ``socket()``); ``stub``
    is then that function's trap address. ``registers`` are the constant
    register values that proved it (number and first two arguments), ``args``
    the first two arguments when they are constants. ``inline`` marks a trap
    that is not shaped like a syscall wrapper: no function entry just before
    it and no return soon after (see ``_inline``).
    """

    number: int
    name: str | None
    offset: int
    address: int
    isa: str
    registers: tuple[tuple[str, int], ...]
    args: tuple[int | None, int | None] = (None, None)
    stub: int | None = None
    via_socketcall: bool = False
    site: str = "trap"
    inline: bool = False


@dataclass(frozen=True)
class SyscallRecovery:
    abi: str
    syscalls: tuple[Syscall, ...]
    traps: int  # trap instructions examined
    unresolved: int  # traps whose number is not a constant and was not resolved through callers
    stubs: int  # functions taking the syscall number (or socket arguments) from their caller
    truncated: bool  # a cap was hit: more code or more sites than were examined
    sock_stream: int = SOCK_STREAM
    sock_dgram: int = SOCK_DGRAM


# --- instruction semantics -------------------------------------------------------------------------

Value = int | str | None  # a constant, the name of a register still holding its block-entry value, or unknown
State = dict[str, Value]
Insn = tuple[int, int, str, str]  # capstone lite: address, size, mnemonic, operands

NONE, CALL, JUMP = 0, 1, 2


def _imm(token: str) -> int | None:
    text = token[1:] if token.startswith("#") else token
    try:
        return int(text, 0)
    except ValueError:
        return None


def _copy(state: State, reg: str) -> Value:
    return state.get(reg, reg)


@dataclass(frozen=True)
class _Isa:
    """One instruction set: how its traps look and what its instructions do to the registers we follow."""

    name: str
    cs_arch: int
    cs_mode: int
    align: int
    window: int
    trap: re.Pattern[bytes]
    number_reg: str | None  # None when the number is in the trap instruction itself (ARM OABI)
    arg_regs: tuple[str, str]
    stub_inputs: frozenset[str]
    caller_saved: tuple[str, ...]
    trap_clobbers: tuple[str, ...]
    delay_slot: bool
    mask: int
    step: Callable[[_Isa, State, Insn, _Image], int]
    callers: Callable[[_Isa, CodeRegion, np.ndarray], list[tuple[int, int]]]
    trap_number: Callable[[bytes], int | None] | None = None


class _Image:
    """Read access to the mapped executable bytes, for literal pools."""

    def __init__(self, regions: Sequence[CodeRegion], little: bool) -> None:
        self.regions = regions
        self.little = little

    def read(self, address: int, size: int) -> int | None:
        for region in self.regions:
            if region.contains(address, size):
                start = address - region.address
                return int.from_bytes(region.data[start : start + size], "little" if self.little else "big")
        return None


# ARM and Thumb ------------------------------------------------------------------------------------

_ARM_BRANCH = re.compile(r"^(b|bl|blx|bx)(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?$")
_ARM_NO_WRITE = (
    "str", "stm", "push", "vst", "vpush", "vpop", "cmp", "cmn", "tst", "teq", "pld", "pli", "dmb", "dsb", "isb", "nop",
    "bkpt", "udf", "wf", "sev", "cps", "msr", "vmsr", "vcmp", "setend", "clrex", "yield", "it", "cb", "svc",
)  # fmt: skip
_ARM_TWO_DEST = frozenset({"ldrd", "ldrexd", "ldaexd", "umull", "smull", "umlal", "smlal", "umaal"})
_ARM_ARITH = {
    "add": lambda a, b: a + b, "adds": lambda a, b: a + b, "addw": lambda a, b: a + b,
    "sub": lambda a, b: a - b, "subs": lambda a, b: a - b, "subw": lambda a, b: a - b,
    "orr": lambda a, b: a | b, "orrs": lambda a, b: a | b, "eor": lambda a, b: a ^ b, "eors": lambda a, b: a ^ b,
}  # fmt: skip
_ARM_CORE = frozenset({f"r{i}" for i in range(10)} | {"sb", "sl", "fp", "ip", "sp", "lr", "pc"})
_ARM_LITERAL = re.compile(r"^(\w+), \[pc(?:, #(-?(?:0x)?[0-9a-f]+))?\]$")


def _register_list(ops: str) -> list[str]:
    inside = ops[ops.find("{") + 1 : ops.rfind("}")]
    return [r.strip() for r in inside.split(",") if r.strip()]


def _writeback_base(ops: str) -> str | None:
    """The base register a load/store updates (``[r1], #4``, ``[r1, #4]!``, ``r1!, {...}``), if any."""
    if "!" not in ops and "], " not in ops:
        return None
    if "[" in ops:
        return ops[ops.find("[") + 1 :].split(",")[0].split("]")[0].strip()
    return ops.split("!")[0].strip()


# What an instruction does to the registers, decided once per mnemonic (the walk is the hot loop).
_K_CALL, _K_JUMP, _K_FLOW_NONE, _K_TRAP, _K_LIST, _K_STORE, _K_NO_WRITE, _K_VFP, _K_WRITE = range(9)


@functools.lru_cache(maxsize=4096)
def _arm_kind(base: str) -> int:
    branch = _ARM_BRANCH.match(base)
    if branch:
        kind, cond = branch.groups()
        if kind in ("bl", "blx"):
            return _K_CALL
        return _K_JUMP if cond is None else _K_FLOW_NONE
    if base in ("tbb", "tbh"):
        return _K_JUMP
    if base == "svc":
        return _K_TRAP
    if base.startswith(("pop", "ldm")):
        return _K_LIST
    if base.startswith(("str", "stm")) and not base.startswith("strex"):
        return _K_STORE
    if base.startswith(_ARM_NO_WRITE):
        return _K_NO_WRITE
    if base.startswith(("v", "mrc", "mrrc")):
        return _K_VFP
    return _K_WRITE


def _arm_step(isa: _Isa, state: State, insn: Insn, image: _Image) -> int:
    address, _, mnemonic, ops = insn
    base = mnemonic[:-2] if mnemonic.endswith((".w", ".n")) else mnemonic
    kind = _arm_kind(base)
    if kind == _K_WRITE:
        tokens = ops.split(", ")
        dest = tokens[0]
        if base in _ARM_TWO_DEST and len(tokens) > 1:
            state[tokens[1]] = None
        elif base[:2] == "ld" and ("!" in ops or "], " in ops):
            state[_writeback_base(ops) or ""] = None
        if dest == "pc":
            return JUMP if base in ("mov", "ldr", "add") else NONE
        state[dest] = _arm_value(isa, state, address, base, tokens, ops, image)
        return NONE
    if kind in (_K_NO_WRITE, _K_FLOW_NONE):
        return NONE
    if kind == _K_CALL:
        return CALL
    if kind == _K_JUMP:
        return JUMP
    if kind == _K_STORE:
        if "!" in ops or "], " in ops:
            state[_writeback_base(ops) or ""] = None
        return NONE
    if kind == _K_TRAP:
        for reg in isa.trap_clobbers:
            state[reg] = None
        return NONE
    if kind == _K_LIST:
        regs = _register_list(ops)
        if base.startswith("ldm") and "!" in ops:
            state[_writeback_base(ops) or ""] = None
        for reg in regs:
            state[reg] = None
        return JUMP if "pc" in regs and base in ("pop", "ldm", "ldmia", "ldmfd") else NONE
    for token in ops.split(", "):  # VFP moves and coprocessor reads: any core register named is overwritten
        if token in _ARM_CORE:
            state[token] = None
    return NONE


def _arm_value(isa: _Isa, state: State, address: int, base: str, tokens: list[str], ops: str, image: _Image) -> Value:
    dest = tokens[0]
    if len(tokens) == 2:
        source = tokens[1]
        if base in ("mov", "movs", "movw"):
            if source.startswith("#"):
                value = _imm(source)
                return None if value is None else value & isa.mask
            return _copy(state, source) if source in _ARM_CORE else None
        if base in ("mvn", "mvns") and source.startswith("#"):
            value = _imm(source)
            return None if value is None else ~value & isa.mask
        if base == "movt" and source.startswith("#"):
            old, value = _copy(state, dest), _imm(source)
            return None if not isinstance(old, int) or value is None else ((old & 0xFFFF) | (value << 16)) & isa.mask
        if base in _ARM_ARITH and source.startswith("#"):
            old, value = _copy(state, dest), _imm(source)
            return None if not isinstance(old, int) or value is None else _ARM_ARITH[base](old, value) & isa.mask
    if len(tokens) == 3 and base in _ARM_ARITH and tokens[2].startswith("#"):
        old, value = _copy(state, tokens[1]), _imm(tokens[2])
        return None if not isinstance(old, int) or value is None else _ARM_ARITH[base](old, value) & isa.mask
    if base == "ldr":
        literal = _ARM_LITERAL.match(ops)
        if literal:  # PC-relative literal: PC reads 4 (Thumb) or 8 (ARM) ahead, word-aligned
            pc = (address + (4 if isa.name == "thumb" else 8)) & ~3
            offset = _imm(literal.group(2)) if literal.group(2) else 0
            return None if offset is None else image.read(pc + offset, 4)
    return None


def _thumb_callers(isa: _Isa, region: CodeRegion, targets: np.ndarray) -> list[tuple[int, int]]:
    """(call address, target) of every Thumb ``BL`` in the region whose target is in ``targets``."""
    usable = len(region.data) & ~1
    if usable < 4:
        return []
    halves = np.frombuffer(region.data, dtype="<u2", count=usable // 2).astype(np.int64)
    first, second = halves[:-1], halves[1:]
    index = np.nonzero(((first & 0xF800) == 0xF000) & ((second & 0xD000) == 0xD000))[0]
    first, second = first[index], second[index]
    sign = (first >> 10) & 1
    i1 = 1 - (((second >> 13) & 1) ^ sign)
    i2 = 1 - (((second >> 11) & 1) ^ sign)
    offset = (sign << 24) | (i1 << 23) | (i2 << 22) | ((first & 0x3FF) << 12) | ((second & 0x7FF) << 1)
    offset -= sign << 25
    calls = region.address + index * 2
    return _matching(calls, calls + 4 + offset, targets)


def _arm_callers(isa: _Isa, region: CodeRegion, targets: np.ndarray) -> list[tuple[int, int]]:
    words = _words(region, "<u4")
    index = np.nonzero(((words & 0x0F000000) == 0x0B000000) & ((words >> 28) != 0xF))[0]
    offset = words[index] & 0xFFFFFF
    offset -= (offset & 0x800000) << 1
    calls = region.address + index * 4
    return _matching(calls, calls + 8 + offset * 4, targets)


# AArch64 ------------------------------------------------------------------------------------------

_A64_NO_WRITE = (
    "st", "cmp", "cmn", "tst", "ccmp", "ccmn", "fcmp", "fccmp", "prfm", "prfum", "nop", "hint", "dmb", "dsb", "isb",
    "msr", "hvc", "smc", "brk", "hlt", "sev", "wf", "yield", "clrex", "dc", "ic", "tlbi", "at", "bti", "svc",
)  # fmt: skip
_A64_TWO_DEST = frozenset({"ldp", "ldpsw", "ldnp", "ldxp", "ldaxp"})
_A64_EXTEND = frozenset({"uxtw", "sxtw", "uxth", "sxth", "uxtb", "sxtb"})
_A64_ARITH = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "orr": lambda a, b: a | b, "eor": lambda a, b: a ^ b,
}  # fmt: skip


def _a64_reg(token: str) -> str | None:
    """Canonical name (``x8`` for ``w8``) of a general register, ``zr`` for the zero register, None otherwise."""
    if token in ("xzr", "wzr"):
        return "zr"
    if len(token) > 1 and token[0] in "xw" and token[1:].isdigit():
        return "x" + token[1:]
    return token if token in ("sp", "fp", "lr") else None


def _a64_step(isa: _Isa, state: State, insn: Insn, image: _Image) -> int:
    _, _, mnemonic, ops = insn
    if mnemonic in ("b", "br", "ret", "retaa", "retab", "braa", "brab", "braaz", "brabz"):
        return JUMP
    if mnemonic in ("bl", "blr", "blraa", "blrab", "blraaz", "blrabz"):
        return CALL
    if mnemonic.startswith(("b.", "cbz", "cbnz", "tbz", "tbnz")):
        return NONE
    if mnemonic == "svc":
        for reg in isa.trap_clobbers:
            state[reg] = None
        return NONE
    tokens = ops.split(", ")
    writes_status = mnemonic.startswith(("stxr", "stlxr", "stxp", "stlxp"))
    if mnemonic.startswith(_A64_NO_WRITE) and not writes_status:
        written_base = _writeback_base(ops)
        if written_base and _a64_reg(written_base):
            state[_a64_reg(written_base)] = None
        return NONE
    dest = _a64_reg(tokens[0])
    if mnemonic in _A64_TWO_DEST and len(tokens) > 1 and _a64_reg(tokens[1]):
        state[_a64_reg(tokens[1])] = None
    if mnemonic.startswith("ld"):
        written_base = _writeback_base(ops)
        if written_base and _a64_reg(written_base):
            state[_a64_reg(written_base)] = None
    if dest is None or dest == "zr":
        return NONE
    state[dest] = _a64_value(state, mnemonic, tokens, image)
    return NONE


def _a64_value(state: State, mnemonic: str, tokens: list[str], image: _Image) -> Value:
    mask = 0xFFFFFFFF if tokens[0].startswith("w") else 0xFFFFFFFFFFFFFFFF
    shift = 0
    if tokens[-1].startswith("lsl #"):
        shift = _imm(tokens[-1][4:]) or 0
        tokens = tokens[:-1]
    if len(tokens) == 2:
        source = tokens[1]
        if source.startswith("#"):
            value = _imm(source)
            if value is None:
                return None
            if mnemonic in ("mov", "movz"):
                return (value << shift) & mask
            if mnemonic == "movn":
                return ~(value << shift) & mask
            if mnemonic == "movk":
                old = _copy(state, _a64_reg(tokens[0]) or "")
                return ((old & ~(0xFFFF << shift)) | (value << shift)) & mask if isinstance(old, int) else None
            if mnemonic in ("ldr", "ldrsw"):
                return image.read(value, 8 if mask > 0xFFFFFFFF and mnemonic == "ldr" else 4)
            return None
        reg = _a64_reg(source)
        if reg is not None and (mnemonic == "mov" or mnemonic in _A64_EXTEND):
            value = 0 if reg == "zr" else _copy(state, reg)
            return value & mask if isinstance(value, int) else value
        return None
    if len(tokens) == 3 and mnemonic in _A64_ARITH and tokens[2].startswith("#"):
        reg = _a64_reg(tokens[1])
        old = 0 if reg == "zr" else _copy(state, reg) if reg else None
        value = _imm(tokens[2])
        if isinstance(old, int) and value is not None:
            return _A64_ARITH[mnemonic](old, value << shift) & mask
    return None


def _a64_callers(isa: _Isa, region: CodeRegion, targets: np.ndarray) -> list[tuple[int, int]]:
    words = _words(region, "<u4")
    index = np.nonzero((words & 0xFC000000) == 0x94000000)[0]
    offset = words[index] & 0x3FFFFFF
    offset -= (offset & 0x2000000) << 1
    calls = region.address + index * 4
    return _matching(calls, calls + offset * 4, targets)


# MIPS ---------------------------------------------------------------------------------------------

_MIPS_JUMP = frozenset({"j", "jr", "b", "jr.hb"})
_MIPS_CALL = frozenset({"jal", "jalr", "bal", "bgezal", "bltzal", "jalr.hb", "jalx", "bgezall", "bltzall"})
_MIPS_NO_WRITE = frozenset((
    "sb", "sh", "sw", "sd", "swl", "swr", "sdl", "sdr", "swc1", "sdc1", "swc2", "sdc2", "swxc1", "sdxc1", "sync",
    "syscall", "cache", "pref", "nop", "ssnop", "ehb", "break", "teq", "tne", "tge", "tgeu", "tlt", "tltu", "teqi",
    "tnei", "tgei", "tgeiu", "tlti", "tltiu", "mult", "multu", "div", "divu", "dmult", "dmultu", "ddiv", "ddivu",
    "madd", "maddu", "msub", "msubu", "mthi", "mtlo", "mtc0", "mtc1", "dmtc1", "ctc1", "mthc1", "mtc2", "wait",
    "eret", "deret", "sdbbp", "synci", "tlbp", "tlbr", "tlbwi", "tlbwr",
))  # fmt: skip
_MIPS_ADD = frozenset({"addiu", "addi", "daddiu", "daddi"})
_MIPS_LOGIC = {"ori": lambda a, b: a | b, "xori": lambda a, b: a ^ b, "andi": lambda a, b: a & b}
_MIPS_COPY3 = frozenset({"or", "addu", "daddu", "add", "dadd"})


def _mips_is_branch(mnemonic: str) -> bool:
    """Conditional branches: no effect on the fall-through registers, but they have a delay slot."""
    return mnemonic[0] == "b" and mnemonic not in ("break",)


def _mips_step(isa: _Isa, state: State, insn: Insn, image: _Image) -> int:
    _, _, mnemonic, ops = insn
    if mnemonic in _MIPS_JUMP:
        return JUMP
    if mnemonic in _MIPS_CALL:
        return CALL
    if mnemonic == "syscall":
        for reg in isa.trap_clobbers:
            state[reg] = None
        return NONE
    if mnemonic in _MIPS_NO_WRITE or mnemonic.startswith("c.") or _mips_is_branch(mnemonic):
        return NONE
    tokens = ops.split(", ")
    dest = tokens[0]
    if not dest.startswith("$") or dest == "$zero":
        return NONE
    state[dest] = _mips_value(isa, state, mnemonic, tokens)
    return NONE


def _mips_source(state: State, token: str) -> Value:
    return 0 if token == "$zero" else _copy(state, token)


def _mips_value(isa: _Isa, state: State, mnemonic: str, tokens: list[str]) -> Value:
    if len(tokens) == 2:
        if mnemonic == "move":
            return _mips_source(state, tokens[1])
        value = _imm(tokens[1])
        if value is None:
            return None
        if mnemonic == "li":
            return value & isa.mask
        if mnemonic == "lui":
            upper = (value << 16) & 0xFFFFFFFF
            if isa.mask > 0xFFFFFFFF and upper & 0x80000000:
                upper |= 0xFFFFFFFF00000000  # lui sign-extends on 64-bit MIPS
            return upper
        return None
    if len(tokens) != 3:
        return None
    if mnemonic in _MIPS_COPY3 and "$zero" in tokens[1:]:
        other = tokens[2] if tokens[1] == "$zero" else tokens[1]
        return _mips_source(state, other)
    source, value = _mips_source(state, tokens[1]), _imm(tokens[2])
    if not isinstance(source, int) or value is None:
        return None
    if mnemonic in _MIPS_ADD:
        return (source + value) & isa.mask
    if mnemonic in _MIPS_LOGIC:
        return _MIPS_LOGIC[mnemonic](source, value) & isa.mask
    return None


def _mips_callers(isa: _Isa, region: CodeRegion, targets: np.ndarray) -> list[tuple[int, int]]:
    big = isa.cs_mode & capstone.CS_MODE_BIG_ENDIAN
    words = _words(region, ">u4" if big else "<u4")
    index = np.nonzero((words >> 26) == 3)[0]
    calls = region.address + index * 4
    return _matching(calls, ((calls + 4) & ~0x0FFFFFFF) | ((words[index] & 0x3FFFFFF) << 2), targets)


# shared helpers for the call scans ----------------------------------------------------------------


def _words(region: CodeRegion, dtype: str) -> np.ndarray:
    count = len(region.data) // 4
    return np.frombuffer(region.data, dtype=dtype, count=count).astype(np.int64)


def _matching(calls: np.ndarray, destinations: np.ndarray, targets: np.ndarray) -> list[tuple[int, int]]:
    hit = np.isin(destinations, targets)
    return [(int(c), int(t)) for c, t in zip(calls[hit], destinations[hit], strict=True)]


# --- the instruction sets and ABIs -----------------------------------------------------------------

_ARM_CALLER_SAVED = ("r0", "r1", "r2", "r3", "ip", "lr")
_ARM_INPUTS = frozenset({"r0", "r1", "r2", "r3", "ip"})
_A64_CALLER_SAVED = (*(f"x{i}" for i in range(19)), "lr", "x30")
_MIPS_CALLER_SAVED = (
    "$at", "$v0", "$v1", "$a0", "$a1", "$a2", "$a3", "$t0", "$t1", "$t2", "$t3", "$t4", "$t5", "$t6", "$t7",
    "$t8", "$t9", "$ra",
)  # fmt: skip


def _oabi_number(word: bytes) -> int | None:
    return int.from_bytes(word[:3], "little") - 0x900000


THUMB = _Isa(
    name="thumb", cs_arch=capstone.CS_ARCH_ARM, cs_mode=capstone.CS_MODE_THUMB, align=2, window=160,
    trap=re.compile(rb"\x00\xdf"), number_reg="r7", arg_regs=("r0", "r1"), stub_inputs=_ARM_INPUTS,
    caller_saved=_ARM_CALLER_SAVED, trap_clobbers=("r0",), delay_slot=False, mask=0xFFFFFFFF,
    step=_arm_step, callers=_thumb_callers,
)  # fmt: skip
ARM = _Isa(
    name="arm", cs_arch=capstone.CS_ARCH_ARM, cs_mode=capstone.CS_MODE_ARM, align=4, window=160,
    trap=re.compile(rb"\x00\x00\x00\xef"), number_reg="r7", arg_regs=("r0", "r1"), stub_inputs=_ARM_INPUTS,
    caller_saved=_ARM_CALLER_SAVED, trap_clobbers=("r0",), delay_slot=False, mask=0xFFFFFFFF,
    step=_arm_step, callers=_arm_callers,
)  # fmt: skip
ARM_OLD = _Isa(
    name="arm-oabi", cs_arch=capstone.CS_ARCH_ARM, cs_mode=capstone.CS_MODE_ARM, align=4, window=96,
    trap=re.compile(rb"[\x00-\xff][\x00-\xff][\x90-\x9f]\xef", re.DOTALL), number_reg=None, arg_regs=("r0", "r1"),
    stub_inputs=_ARM_INPUTS, caller_saved=_ARM_CALLER_SAVED, trap_clobbers=("r0",), delay_slot=False,
    mask=0xFFFFFFFF, step=_arm_step, callers=_arm_callers, trap_number=_oabi_number,
)  # fmt: skip
AARCH64_ISA = _Isa(
    name="aarch64", cs_arch=capstone.CS_ARCH_ARM64, cs_mode=capstone.CS_MODE_ARM, align=4, window=96,
    trap=re.compile(rb"\x01\x00\x00\xd4"), number_reg="x8", arg_regs=("x0", "x1"),
    stub_inputs=frozenset(f"x{i}" for i in range(8)), caller_saved=_A64_CALLER_SAVED, trap_clobbers=("x0",),
    delay_slot=False, mask=0xFFFFFFFFFFFFFFFF, step=_a64_step, callers=_a64_callers,
)  # fmt: skip


def _mips_isa(name: str, bits: int, big: bool) -> _Isa:
    mode = (capstone.CS_MODE_MIPS64 if bits == 64 else capstone.CS_MODE_MIPS32) | (
        capstone.CS_MODE_BIG_ENDIAN if big else capstone.CS_MODE_LITTLE_ENDIAN
    )
    return _Isa(
        name=name, cs_arch=capstone.CS_ARCH_MIPS, cs_mode=mode, align=4, window=96,
        trap=re.compile(rb"\x00\x00\x00\x0c" if big else rb"\x0c\x00\x00\x00"), number_reg="$v0",
        arg_regs=("$a0", "$a1"), stub_inputs=frozenset({"$a0", "$a1", "$a2", "$a3"}),
        caller_saved=_MIPS_CALLER_SAVED, trap_clobbers=("$v0", "$v1", "$a3"), delay_slot=True,
        mask=(1 << bits) - 1, step=_mips_step, callers=_mips_callers,
    )  # fmt: skip


@dataclass(frozen=True)
class Abi:
    """A Linux syscall convention: the instruction sets to search and the number table."""

    name: str
    isas: tuple[_Isa, ...]
    table: dict[int, str] = field(repr=False)
    little: bool = True
    sock_stream: int = SOCK_STREAM
    sock_dgram: int = SOCK_DGRAM


EM_ARM, EM_MIPS, EM_MIPS_RS3_LE, EM_AARCH64 = 40, 8, 10, 183
EF_ARM_EABIMASK = 0xFF000000
EF_MIPS_ABI2 = 0x20


def abi_for(machine: int, bits: int, little: bool, flags: int) -> Abi | None:
    """The syscall convention of an ELF header, or None when we cannot decode that architecture."""
    if machine == EM_ARM and little:
        if flags & EF_ARM_EABIMASK == 0:  # pre-EABI binary: old ABI traps, but try EABI ones too
            return Abi("arm-oabi", (ARM_OLD, ARM, THUMB), ARM_OABI)
        return Abi("arm-eabi", (THUMB, ARM), ARM_EABI)
    if machine == EM_AARCH64 and little:
        return Abi("aarch64", (AARCH64_ISA,), AARCH64)
    if machine in (EM_MIPS, EM_MIPS_RS3_LE):
        big = not little
        stream, dgram = MIPS_SOCK_STREAM, MIPS_SOCK_DGRAM
        if bits == 64:
            return Abi("mips-n64", (_mips_isa("mips64", 64, big),), MIPS_N64, little, stream, dgram)
        if flags & EF_MIPS_ABI2:
            return Abi("mips-n32", (_mips_isa("mips64", 64, big),), MIPS_N32, little, stream, dgram)
        return Abi("mips-o32", (_mips_isa("mips", 32, big),), MIPS_O32, little, stream, dgram)
    return None


# --- decoding windows ------------------------------------------------------------------------------

_local = threading.local()


def _disassembler(isa: _Isa) -> capstone.Cs:
    """One capstone handle per thread and instruction set: handles are not safe to share across threads."""
    handles = getattr(_local, "handles", None)
    if handles is None:
        handles = _local.handles = {}
    key = (isa.cs_arch, isa.cs_mode)
    if key not in handles:
        handles[key] = capstone.Cs(isa.cs_arch, isa.cs_mode)
    return handles[key]


def _window(isa: _Isa, region: CodeRegion, site: int, window: int, tail: int) -> list[Insn] | None:
    """Instructions from up to ``window`` bytes before ``site`` through ``site + tail``, decoded so that one
    starts exactly at ``site``; None when not even the site itself decodes."""
    cs = _disassembler(isa)
    lowest = region.address
    start = max(lowest, site - window)
    start += (site - start) % isa.align
    end = min(site + tail, region.address + len(region.data))
    for _ in range(_MAX_RETRIES):
        chunk = region.data[start - region.address : end - region.address]
        insns = list(cs.disasm_lite(chunk, start))
        landed = next((i for i, insn in enumerate(insns) if insn[0] >= site), None)
        if landed is not None and insns[landed][0] == site:
            return insns
        if start >= site:
            return None
        if landed is None and insns:  # stopped on undecodable bytes before the site: restart after them
            start = insns[-1][0] + insns[-1][1] + isa.align
        else:  # an instruction straddles the site, or nothing decoded: shift by one unit
            start += isa.align
        start = min(start, site)
    chunk = region.data[site - region.address : end - region.address]
    insns = list(cs.disasm_lite(chunk, site))
    return insns if insns else None


@dataclass
class _Walk:
    state: State
    block_start: int  # index in the window of the first instruction of the current block
    boundary: bool  # a block boundary (return, jump) was seen before the site


def _walk(isa: _Isa, insns: Sequence[Insn], site: int, image: _Image) -> _Walk:
    """Run the instructions before ``site``; the state at the site."""
    state: State = {}
    block_start, boundary, pending = 0, False, NONE
    step, delay_slot = isa.step, isa.delay_slot
    for index, insn in enumerate(insns):
        if insn[0] >= site:
            break
        flow = step(isa, state, insn, image)
        if delay_slot:  # a branch takes effect after the instruction in its delay slot
            flow, pending = pending, flow
        if flow == NONE:
            continue
        if flow == CALL:
            for reg in isa.caller_saved:
                state[reg] = None
        else:
            state.clear()
            block_start, boundary = index + 1, True
    return _Walk(state, block_start, boundary)


def _values(isa: _Isa, walk: _Walk) -> tuple[Value, Value, Value]:
    state = walk.state
    return (_copy(state, isa.number_reg or ""), _copy(state, isa.arg_regs[0]), _copy(state, isa.arg_regs[1]))


def _entries(isa: _Isa, insns: Sequence[Insn], walk: _Walk, site: int, image: _Image) -> list[int]:
    """Addresses in the trap's block from which the trap sees the same number and arguments: where callers
    may enter (a call into the middle of the block, past the instruction that picks up the number, does not)."""
    expected = _values(isa, walk)
    entries = []
    for start in range(walk.block_start, len(insns)):
        if insns[start][0] >= site:
            break
        if _values(isa, _walk(isa, insns[start:], site, image)) == expected:
            entries.append(insns[start][0])
    return entries


# --- recovery --------------------------------------------------------------------------------------


@dataclass
class _Stub:
    """A trap whose number or socket arguments come from the caller."""

    isa: _Isa
    address: int
    number: Value
    args: tuple[Value, Value]
    entries: list[int]


def _describe(reg: str | None, value: Value) -> tuple[str, int] | None:
    return (reg, value) if reg and isinstance(value, int) else None


def _name(abi: Abi, number: int, first_arg: Value) -> tuple[str | None, bool]:
    name = abi.table.get(number)
    if name == "socketcall" and isinstance(first_arg, int) and first_arg in SOCKETCALL:
        return SOCKETCALL[first_arg], True
    return name, False


def _make(abi: Abi, isa: _Isa, number: int, args: tuple[Value, Value], regions: Sequence[CodeRegion], address: int,
          registers: Iterable[tuple[str, int] | None], stub: int | None = None, site: str = "trap") -> Syscall:
    name, via = _name(abi, number, args[0])
    if via:  # socketcall's own arguments are in memory: only the sub-call is known
        args = (None, None)
    region = next(r for r in regions if r.contains(address))
    return Syscall(
        number=number, name=name, offset=region.offset + address - region.address, address=address, isa=isa.name,
        registers=tuple(r for r in registers if r is not None),
        args=tuple(a if isinstance(a, int) else None for a in args), stub=stub, via_socketcall=via, site=site,
    )  # fmt: skip


def _trap_sites(isa: _Isa, region: CodeRegion) -> Iterable[int]:
    for match in isa.trap.finditer(region.data):
        if (region.address + match.start()) % isa.align == 0:
            yield region.address + match.start()


def _is_return(mnemonic: str, ops: str) -> bool:
    """Return instructions, conditional ones included (glibc's ARM wrappers return with ``bxlo lr``)."""
    if mnemonic.startswith("bx"):
        return ops == "lr"
    if mnemonic.startswith(("pop", "ldm")):
        return "pc" in ops
    if mnemonic.startswith(("ldr", "mov")):
        return ops.startswith("pc,")
    return mnemonic.startswith("ret") or (mnemonic.startswith("jr") and ops == "$ra")


def _inline(isa: _Isa, region: CodeRegion, address: int, site: _Site) -> bool:
    """Whether a trap sits in ordinary code rather than in a syscall wrapper.

    A C library wrapper is a small function: its trap comes right after the
    function's entry and is followed within a few instructions by a return.
    A trap inlined in a larger function (what an implant that avoids libc
    looks like) has neither: the scan after it meets another trap, an
    unconditional jump or nothing before any return.
    """
    entry = site.insns[site.walk.block_start][0] if site.walk.block_start < len(site.insns) else address
    if site.walk.boundary and address - entry <= _ENTRY_SPAN:
        return False
    start = address - region.address
    after = _disassembler(isa).disasm_lite(region.data[start : start + 4 * (_RETURN_SPAN + 1)], address)
    for index, (_, _, mnemonic, ops) in enumerate(after):
        if index == 0:
            continue
        if _is_return(mnemonic, ops):
            return False
        if index > _RETURN_SPAN or mnemonic.startswith(("svc", "syscall")) or mnemonic in ("b", "b.w", "j"):
            return True
    return True


@dataclass
class _Site:
    """The registers at one trap or call: the instructions decoded, the walk, the number and first two args."""

    insns: list[Insn]
    walk: _Walk
    number: Value
    args: tuple[Value, Value]


def _settled(site: _Site, socket_numbers: set[int]) -> bool:
    """Whether a longer window could not tell more: the number is known, and so are the args of a socket call."""
    if not isinstance(site.number, int):
        return False
    return site.number not in socket_numbers or all(isinstance(a, int) for a in site.args)


def _trap(isa: _Isa, region: CodeRegion, site: int, image: _Image, socket_numbers: set[int]) -> _Site | None:
    """The registers at a trap, from a short window first and the full one only when that leaves questions."""
    result = None
    for window in (_SHORT_WINDOW, isa.window):
        insns = _window(isa, region, site, window, isa.align)
        trap = next((insn for insn in insns or () if insn[0] == site), None)
        if insns is None or trap is None or not trap[2].startswith(("svc", "syscall")):
            return result
        walk = _walk(isa, insns, site, image)
        if isa.trap_number is not None:
            offset = site - region.address
            number: Value = isa.trap_number(region.data[offset : offset + 4])
        else:
            number = _copy(walk.state, isa.number_reg or "")
        result = _Site(insns, walk, number, (_copy(walk.state, isa.arg_regs[0]), _copy(walk.state, isa.arg_regs[1])))
        if _settled(result, socket_numbers):
            break
    return result


def _call(isa: _Isa, region: CodeRegion, call: int, stub: _Stub, image: _Image,
          socket_numbers: set[int]) -> _Site | None:
    """The stub's number and arguments as seen from one call site."""
    result = None
    for window in (_SHORT_WINDOW // 2, _CALLER_WINDOW):
        insns = _window(isa, region, call, window, 8 if isa.delay_slot else 4)
        if insns is None:
            return result
        walk = _walk(isa, insns, call, image)
        if isa.delay_slot:  # the delay slot runs before the callee
            slot = next((i for i in insns if i[0] == call + isa.align), None)
            if slot is not None:
                isa.step(isa, walk.state, slot, image)
        number = _substitute(stub.number, walk.state)
        args = (_substitute(stub.args[0], walk.state), _substitute(stub.args[1], walk.state))
        result = _Site(insns, walk, number, args)
        if _settled(result, socket_numbers):
            break
    return result


def recover(abi: Abi, regions: Sequence[CodeRegion]) -> SyscallRecovery:
    """The syscalls with constant numbers in ``regions`` (executable bytes of one static binary)."""
    image = _Image(regions, abi.little)
    truncated = False
    found: list[Syscall] = []
    stubs: list[_Stub] = []
    traps = unresolved = 0
    socket_numbers = {n for n, name in abi.table.items() if name in ("socket", "socketcall")}
    for isa in abi.isas:
        for region in regions:
            for address in _trap_sites(isa, region):
                if traps >= MAX_TRAPS:
                    truncated = True
                    break
                site = _trap(isa, region, address, image, socket_numbers)
                if site is None:
                    continue
                traps += 1
                number, args = site.number, site.args
                if isinstance(number, int):
                    call = _make(abi, isa, number, args, regions, address, (
                        _describe(isa.number_reg, number),
                        _describe(isa.arg_regs[0], args[0]), _describe(isa.arg_regs[1], args[1]),
                    ))  # fmt: skip
                    if call.name in NETWORK_NAMES:
                        call = dataclasses.replace(call, inline=_inline(isa, region, address, site))
                    found.append(call)
                else:
                    unresolved += 1
                inputs = {v for v in (number, *args) if isinstance(v, str) and v in isa.stub_inputs}
                wants_callers = (isinstance(number, str) and number in isa.stub_inputs) or (
                    isinstance(number, int) and number in socket_numbers and inputs
                )
                if wants_callers:
                    entries = _entries(isa, site.insns, site.walk, address, image)
                    if entries:
                        stubs.append(_Stub(isa, address, number, args, entries))
    callers_found, resolved, capped = _resolve_stubs(abi, stubs, regions, image, socket_numbers)
    found.extend(callers_found)
    found.sort(key=lambda s: (s.offset, s.number))
    return SyscallRecovery(
        abi=abi.name, syscalls=tuple(found), traps=traps, unresolved=max(unresolved - resolved, 0),
        stubs=len(stubs), truncated=truncated or capped,
        sock_stream=abi.sock_stream, sock_dgram=abi.sock_dgram,
    )  # fmt: skip


def _resolve_stubs(abi: Abi, stubs: list[_Stub], regions: Sequence[CodeRegion], image: _Image,
                   socket_numbers: set[int]) -> tuple[list[Syscall], int, bool]:
    """Evaluate the stubs' inputs at each direct call into them: (syscalls, stubs resolved, capped)."""
    found: list[Syscall] = []
    resolved: set[int] = set()
    budget = MAX_CALLERS
    for isa in {stub.isa.name: stub.isa for stub in stubs}.values():
        by_entry = {entry: stub for stub in stubs if stub.isa is isa for entry in stub.entries}
        targets = np.fromiter(by_entry, dtype=np.int64)
        calls = {hit for region in regions for chunk in _chunks(region) for hit in isa.callers(isa, chunk, targets)}
        for call, target in sorted(calls):
            if budget <= 0:
                return found, len(resolved), True
            budget -= 1
            stub = by_entry[target]
            region = next(r for r in regions if r.contains(call))
            site = _call(isa, region, call, stub, image, socket_numbers)
            if site is None or not isinstance(site.number, int):
                continue
            if isinstance(stub.number, str):
                resolved.add(stub.address)
            registers = (
                _describe(stub.number, site.number) if isinstance(stub.number, str) else None,
                _describe(stub.args[0] if isinstance(stub.args[0], str) else None, site.args[0]),
                _describe(stub.args[1] if isinstance(stub.args[1], str) else None, site.args[1]),
            )
            found.append(_make(abi, isa, site.number, site.args, regions, call, registers, stub=stub.address,
                               site="stub" if isinstance(stub.number, str) else "wrapper"))
    return found, len(resolved), False


def _chunks(region: CodeRegion) -> Iterable[CodeRegion]:
    """The region in pieces of ``_SCAN_CHUNK`` bytes that overlap by one instruction, so no call is cut."""
    for start in range(0, max(len(region.data), 1), _SCAN_CHUNK):
        yield CodeRegion(region.offset + start, region.address + start, region.data[start : start + _SCAN_CHUNK + 4])


def _substitute(value: Value, caller: State) -> Value:
    """A stub's value seen from a call site: a constant stays, an input register takes the caller's value."""
    return _copy(caller, value) if isinstance(value, str) else value
