"""The sandbox's syscall filter, run on a small classic-BPF interpreter: no kernel needed.

The interpreter follows the kernel's seccomp checker: loads of the seccomp_data words, the
three conditional jumps the filter uses, returns. Anything else in the program fails here.
"""

from __future__ import annotations

import errno
import re
import struct
from pathlib import Path

import pytest

from soloist.errors import DeterministicError
from soloist.execution import seccomp
from soloist.execution.seccomp import (
    AUDIT_ARCH,
    DENIED,
    RET_ALLOW,
    RET_ERRNO,
    RET_KILL_PROCESS,
    X32_SYSCALL_BIT,
)

EPERM = RET_ERRNO | errno.EPERM
MACHINES = tuple(AUDIT_ARCH)
COLUMN = {"x86_64": 0, "aarch64": 1}
AUDIT_ARCH_I386, AUDIT_ARCH_ARM = 0x4000_0003, 0x4000_0028


def evaluate(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """What the filter returns for one syscall."""
    assert len(program) % 8 == 0 and 0 < len(program) // 8 <= seccomp.MAX_INSTRUCTIONS
    full = (*args, 0, 0, 0, 0, 0, 0)[:6]
    data = struct.pack("=iIQ6Q", nr, arch, 0, *(a & 0xFFFF_FFFF_FFFF_FFFF for a in full))
    code = [struct.unpack_from("=HBBI", program, 8 * i) for i in range(len(program) // 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:  # ld [k]
            assert k % 4 == 0 and k + 4 <= len(data)
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
            continue
        if op == 0x06:  # ret k
            return int(k)
        taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[op]
        pc += 1 + (jt if taken else jf)
        assert pc < len(code), "a jump past the end of the program"


def nr(machine: str, name: str) -> int:
    number = seccomp._NUMBERS[name][COLUMN[machine]]
    assert number is not None
    return number


@pytest.fixture(params=MACHINES)
def machine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(machine: str, name: str, *args: int) -> int:
    return evaluate(seccomp.program(machine), nr(machine, name), AUDIT_ARCH[machine], args)


def test_every_denied_syscall_fails_with_eperm(machine: str) -> None:
    program = seccomp.program(machine)
    for name in DENIED:
        number = seccomp._NUMBERS[name][COLUMN[machine]]
        if number is not None:
            assert evaluate(program, number, AUDIT_ARCH[machine]) == EPERM, name


def test_everything_else_is_allowed(machine: str) -> None:
    program = seccomp.program(machine)
    denied = {seccomp._NUMBERS[name][COLUMN[machine]] for name in seccomp._NUMBERS}
    for number in range(0, 600):
        if number not in denied:
            assert evaluate(program, number, AUDIT_ARCH[machine]) == RET_ALLOW, number


def test_a_foreign_abi_is_killed_and_x32_refused() -> None:
    x86 = seccomp.program("x86_64")
    arm = seccomp.program("aarch64")
    # getpid through the i386 compat entry point, or arm32 on an arm64 host
    assert evaluate(x86, 20, AUDIT_ARCH_I386) == RET_KILL_PROCESS
    assert evaluate(arm, 20, AUDIT_ARCH_ARM) == RET_KILL_PROCESS
    assert evaluate(x86, 39, AUDIT_ARCH["aarch64"]) == RET_KILL_PROCESS
    assert evaluate(x86, X32_SYSCALL_BIT | 39, AUDIT_ARCH["x86_64"]) == EPERM
    assert evaluate(x86, X32_SYSCALL_BIT | 101, AUDIT_ARCH["x86_64"]) == EPERM


def test_clone_is_refused_only_with_a_namespace_flag(machine: str) -> None:
    sigchld = 17
    thread = 0x3D0F00  # what glibc's pthread_create passes
    assert run(machine, "clone", sigchld) == RET_ALLOW
    assert run(machine, "clone", thread) == RET_ALLOW
    for flag in (0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000,
                 0x2000_0000, 0x4000_0000):
        assert run(machine, "clone", sigchld | flag) == EPERM, hex(flag)
    # clone3's flags are behind a pointer: ENOSYS sends the C library back to clone.
    assert run(machine, "clone3") == RET_ERRNO | errno.ENOSYS


def test_only_harmless_personalities_pass(machine: str) -> None:
    for value in (0x0, 0x8, 0x2_0000, 0xFFFF_FFFF):
        assert run(machine, "personality", value) == RET_ALLOW
    for value in (0x0040000, 0x0400000, 0x1):  # ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC
        assert run(machine, "personality", value) == EPERM


def test_terminal_injection_ioctls_are_refused_even_with_high_bits(machine: str) -> None:
    for request in (0x5412, 0x541C, 0x1_0000_5412, 0xFFFF_FFFF_0000_541C):
        assert run(machine, "ioctl", 0, request) == EPERM, hex(request)
    for request in (0x5401, 0x541B, 0x5413):  # TCGETS, FIONREAD, TIOCGWINSZ
        assert run(machine, "ioctl", 0, request) == RET_ALLOW


def test_socket_families_beyond_unix_ip_and_netlink_are_refused(machine: str) -> None:
    for family in (1, 2, 10, 16):
        assert run(machine, "socket", family, 1) == RET_ALLOW
    for family in (17, 38, 40, 31, 0):  # AF_PACKET, AF_ALG, AF_VSOCK, AF_BLUETOOTH, AF_UNSPEC
        assert run(machine, "socket", family, 1) == RET_ERRNO | errno.EAFNOSUPPORT


def test_an_unsupported_host_is_refused_not_run_unfiltered() -> None:
    with pytest.raises(DeterministicError, match="x86_64 and aarch64, not riscv64"):
        seccomp.program("riscv64")


HEADERS = {
    "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
    "aarch64": Path("/usr/include/asm-generic/unistd.h"),
}


@pytest.mark.parametrize("machine_name", MACHINES)
def test_the_numbers_match_the_kernel_headers(machine_name: str) -> None:
    header = HEADERS[machine_name]
    if not header.exists():
        pytest.skip(f"{header} is not installed (linux-libc-dev)")
    found = dict(re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", header.read_text()))
    checked = 0
    for name, numbers in seccomp._NUMBERS.items():
        number = numbers[COLUMN[machine_name]]
        if name in found:  # the headers may be older than the newest calls listed
            assert number == int(found[name]), name
            checked += 1
        elif number is not None:
            assert number >= 440, f"{name} is missing from {header}"
    assert checked >= 50
