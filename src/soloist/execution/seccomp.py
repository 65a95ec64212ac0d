"""The syscall filter of the code sandbox: a classic BPF program built here, no dependency.

bubblewrap loads it (``--seccomp FD``) just before it runs the program, with
``no_new_privs`` set, so every process inside inherits it and none can remove it. It is a
deny list: a syscall not named below is allowed. What it refuses, and why:

- **wrong ABI**: a syscall made under another architecture than the host's (the i386 or
  arm32 compat entry points) kills the process, since the numbers below would not apply
  to it; an x32 syscall (x86_64, ``nr >= 0x40000000``) fails with ``EPERM``.
- **kernel and system administration**: mount and the new mount API, namespaces
  (``unshare``, ``setns``, a ``clone`` with any ``CLONE_NEW*`` flag; ``clone3`` answers
  ``ENOSYS`` because its flags sit behind a pointer a filter cannot read, and the C
  library then falls back to ``clone``), modules, kexec, reboot, swap, the kernel log,
  accounting, quotas, the clock, ``chroot``, ``pivot_root``, port I/O.
- **wide kernel attack surface, never needed by a program of an agent**: ``ptrace`` and
  ``process_vm_*``, ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``, the
  keyrings, file handles (``open_by_handle_at``), ``personality`` other than the
  harmless values, ``TIOCSTI``/``TIOCLINUX`` (typing into a terminal), socket families
  other than Unix, IPv4, IPv6 and netlink.
- **writable memory outside the scratch cap**: ``memfd_create`` and ``memfd_secret``,
  System V shared memory, message queues and semaphores, POSIX message queues. Each
  would hold data in the kernel's memory that no limit of the sandbox counts.

Denied calls fail with ``EPERM`` (``EAFNOSUPPORT`` for a socket family), so a program
sees an ordinary error instead of dying.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from soloist.errors import DeterministicError

# <linux/filter.h> and <linux/seccomp.h>
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
RET_KILL_PROCESS = 0x8000_0000
RET_ERRNO = 0x0005_0000
RET_ALLOW = 0x7FFF_0000
MAX_INSTRUCTIONS = 4096  # BPF_MAXINSNS

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6].
_NR, _ARCH = 0, 4


def _arg(index: int) -> int:
    # The low 32 bits of args[index] (both supported hosts are little-endian): what the
    # kernel reads for an int argument such as a socket family or an ioctl request.
    return 16 + 8 * index


X32_SYSCALL_BIT = 0x4000_0000
AUDIT_ARCH = {"x86_64": 0xC000_003E, "aarch64": 0xC000_00B7}

CLONE_NAMESPACES = (
    0x0002_0000  # CLONE_NEWNS
    | 0x0200_0000  # CLONE_NEWCGROUP
    | 0x0400_0000  # CLONE_NEWUTS
    | 0x0800_0000  # CLONE_NEWIPC
    | 0x1000_0000  # CLONE_NEWUSER
    | 0x2000_0000  # CLONE_NEWPID
    | 0x4000_0000  # CLONE_NEWNET
)  # CLONE_NEWTIME (0x80) is not here: in clone's flags those bits are the exit signal
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
# PER_LINUX, PER_LINUX32, UNAME26 and their mix, and 0xffffffff (a query): what programs
# use. The rest turn off address randomisation or make data executable.
PERSONALITIES = (0x0, 0x8, 0x2_0000, 0x2_0008, 0xFFFF_FFFF)
SOCKET_FAMILIES = (1, 2, 10, 16)  # AF_UNIX, AF_INET, AF_INET6, AF_NETLINK

# Syscall numbers: x86_64 from arch/x86/entry/syscalls/syscall_64.tbl, aarch64 from the
# generic table (include/uapi/asm-generic/unistd.h). None where the host has no such call.
_NUMBERS: dict[str, tuple[int | None, int | None]] = {
    # name: (x86_64, aarch64)
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "open_tree_attr": (467, 467),
    "unshare": (272, 97),
    "setns": (308, 268),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "syslog": (103, 116),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "vhangup": (153, 58),
    "lookup_dcookie": (212, 18),
    "nfsservctl": (180, 42),
    "iopl": (172, None),
    "ioperm": (173, None),
    "modify_ldt": (154, None),
    "uselib": (134, None),
    "_sysctl": (156, None),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "fanotify_init": (300, 262),
    "memfd_create": (319, 279),
    "memfd_secret": (447, 447),
    "shmget": (29, 194),
    "msgget": (68, 186),
    "semget": (64, 190),
    "mq_open": (240, 180),
    # Filtered on their arguments, not denied outright:
    "clone": (56, 220),
    "clone3": (435, 435),
    "personality": (135, 92),
    "ioctl": (16, 29),
    "socket": (41, 198),
}
_BY_ARGUMENT = ("clone", "clone3", "personality", "ioctl", "socket")
DENIED: tuple[str, ...] = tuple(name for name in _NUMBERS if name not in _BY_ARGUMENT)


@dataclass(frozen=True)
class Instruction:
    """One ``struct sock_filter``."""

    code: int
    jt: int
    jf: int
    k: int

    def pack(self) -> bytes:
        return struct.pack("=HBBI", self.code, self.jt, self.jf, self.k)


def _ret(value: int) -> Instruction:
    return Instruction(_RET, 0, 0, value)


def _errno(number: int) -> int:
    return RET_ERRNO | number


def _when_nr(nr: int, block: Sequence[Instruction]) -> list[Instruction]:
    """``block`` runs for syscall ``nr`` (and must end in a return); others skip it."""
    return [Instruction(_JEQ, 0, len(block), nr), *block]


def _one_of(offset: int, values: Iterable[int], match: int, other: int) -> list[Instruction]:
    """Return ``match`` if the word at ``offset`` is one of ``values``, else ``other``."""
    wanted = list(values)
    n = len(wanted)
    tests = [Instruction(_JEQ, n - i, 0, value) for i, value in enumerate(wanted)]
    return [Instruction(_LD_W_ABS, 0, 0, offset), *tests, _ret(other), _ret(match)]


def instructions(machine: str | None = None) -> list[Instruction]:
    """The filter for ``machine`` (``os.uname().machine`` by default)."""
    machine = machine or os.uname().machine
    if machine not in AUDIT_ARCH:
        raise DeterministicError(
            f"code.run's syscall filter supports {' and '.join(AUDIT_ARCH)}, not {machine}: "
            "agent code is never run without it"
        )
    column = 0 if machine == "x86_64" else 1
    number: dict[str, int] = {}
    for name, numbers in _NUMBERS.items():
        if (nr := numbers[column]) is not None:
            number[name] = nr
    eperm = _errno(errno.EPERM)
    program = [
        Instruction(_LD_W_ABS, 0, 0, _ARCH),
        Instruction(_JEQ, 1, 0, AUDIT_ARCH[machine]),
        _ret(RET_KILL_PROCESS),
        Instruction(_LD_W_ABS, 0, 0, _NR),
    ]
    if machine == "x86_64":
        program += [Instruction(_JGE, 0, 1, X32_SYSCALL_BIT), _ret(eperm)]
    for name in DENIED:
        if name in number:
            program += _when_nr(number[name], [_ret(eperm)])
    program += _when_nr(number["clone3"], [_ret(_errno(errno.ENOSYS))])
    program += _when_nr(number["clone"], [
        Instruction(_LD_W_ABS, 0, 0, _arg(0)),
        Instruction(_JSET, 0, 1, CLONE_NAMESPACES),
        _ret(eperm),
        _ret(RET_ALLOW),
    ])
    program += _when_nr(number["personality"],
                        _one_of(_arg(0), PERSONALITIES, RET_ALLOW, eperm))
    program += _when_nr(number["ioctl"], _one_of(_arg(1), (TIOCSTI, TIOCLINUX), eperm,
                                                 RET_ALLOW))
    program += _when_nr(number["socket"], _one_of(_arg(0), SOCKET_FAMILIES, RET_ALLOW,
                                                  _errno(errno.EAFNOSUPPORT)))
    program.append(_ret(RET_ALLOW))
    assert len(program) <= MAX_INSTRUCTIONS
    return program


def program(machine: str | None = None) -> bytes:
    """The filter as bubblewrap's ``--seccomp`` reads it: packed ``sock_filter``s."""
    return b"".join(instruction.pack() for instruction in instructions(machine))
