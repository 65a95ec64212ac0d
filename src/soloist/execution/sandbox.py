"""Run code written by an agent under bubblewrap, or refuse to run it.

The sandbox an agent's code sees::

    /usr  /bin /lib /lib64     the host's system, read-only (symlinks into /usr)
    /etc                       only ld.so.cache, alternatives, a two-line passwd and group
    /code/main.py|main.sh      the code, read-only
    /scratch                   a fresh tmpfs capped in bytes and entries: cwd, HOME, TMPDIR;
                               /tmp and /dev/shm are symlinks to it; gone afterwards
    /dev                       read-only: null zero full random urandom, the std* symlinks
    /proc                      the sandbox's own; no network (a namespace with only its own lo)

Nothing else of the host exists in it: not /root, /home, /work, the host's /tmp, the
workspace, its database or its secrets. The environment is rebuilt from nothing, so no
``SOLOIST_*`` variable or credential crosses over. /scratch is the only place that takes
data; the filter (:mod:`soloist.execution.seccomp`) refuses the kernel objects that would
hold data outside it (memfds, System V and POSIX IPC), and no process keeps a capability.

Limits and how each is enforced:

- **processes**: ``RLIMIT_NPROC``. The kernel never applies it to uid 0, and it counts a
  uid's processes across the whole machine, so when Soloist runs as root (containers, CI)
  bubblewrap is started as a fresh unprivileged uid picked for this run alone: the limit
  then binds, counts only this sandbox, and the code owns nothing on the host even if it
  escaped the namespaces. The limit is set *inside* the new user namespace by a tiny
  launcher; set outside, the kernel would also check it against every process the calling
  user already has.
- **cpu_seconds, memory_mb, open_files**: ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_NOFILE``
  (and ``RLIMIT_CORE`` = 0), set by the same launcher. ``RLIMIT_AS`` is per process, so a
  program may hold up to ``processes`` x ``memory_mb``; a cgroup would give one total, but
  cgroups are rarely writable where Soloist runs. For the same reason the kernel memory a
  program ties up in pipe and socket buffers or file locks is bounded only through
  ``open_files`` x ``processes`` and the clocks.
- **scratch_mb**: everything written, anywhere, together: the scratch's ``size`` and
  ``nr_inodes`` (see :func:`_scratch`), and ``RLIMIT_FSIZE`` per file.
- **wall_seconds**: the whole process group of bubblewrap is killed; ``--die-with-parent``
  and the pid namespace take everything inside with it.
- **output_bytes**: stdout and stderr are read as they come; bytes past the cap are read
  and dropped so the program never blocks on a full pipe.

No ``preexec_fn`` is used: it is unsafe in a threaded worker, and every limit is applied
inside the sandbox instead.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from soloist.errors import DeterministicError
from soloist.execution import seccomp

Language = Literal["python", "shell"]
LANGUAGES: tuple[Language, ...] = ("python", "shell")

SCRATCH = "/scratch"
INODE_COST = 1024  # what tmpfs counts per inode against its nr_inodes (BOGO_INODE_SIZE)
# Bound from the host one by one (as --dev does): character devices hold no data.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
SYSTEM_PYTHON = "/usr/bin/python3"
SANDBOX_UID = 1000
READY_FD = "{ready-fd}"  # placeholder in the argv for the launcher's ready pipe
# Unprivileged uids handed to one run each when Soloist runs as root: high enough to be
# clear of real accounts (login ranges end near 60000; nobody is 65534), far below 2**32-1.
RUN_UID_BASE = 1_900_000_000
RUN_UID_SPAN = 100_000_000

# Runs inside, first: mounts the scratch, drops the capabilities it had for that, sets the
# limits and the syscall filter from argv, then becomes the program. Runs with -I -S so it
# costs ~15 ms. Shell runs go through it too, so code.run needs a Python even for shell.
# bubblewrap cannot give a tmpfs an inode cap, and files and folders cost the kernel ~1 KiB
# each that ``size=`` does not count (1.8 million empty folders in 8 s, 1.8 GB): so the
# launcher mounts /scratch itself, in a mount namespace of its own (the one bubblewrap made
# belongs to an outer user namespace, where CAP_SYS_ADMIN does not reach). The filter is
# loaded here, not by bubblewrap, because it denies mount and unshare.
_LAUNCHER = """\
import ctypes, os, resource, sys
ready, cpu, mem, nproc, fsize, nofile, size, inodes = (int(v) for v in sys.argv[1:9])
scratch, bpf = sys.argv[9].encode(), bytes.fromhex(sys.argv[10])
CLONE_NEWNS, MS_NOSUID_NODEV, CAP_SYS_ADMIN, CAP_SETPCAP = 0x20000, 0x6, 21, 8
PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
libc = ctypes.CDLL(None, use_errno=True)
def ok(result, what):  # a failure is one line on stderr, and no ready byte
    if result != 0:
        sys.stderr.write("sandbox setup: %s: %s\\n" % (what, os.strerror(ctypes.get_errno())))
        os._exit(125)
def prctl(*args):  # variadic in C: every argument passed as a full unsigned long
    return libc.prctl(*(ctypes.c_ulong(arg) for arg in (*args, 0, 0, 0)[:5]))
ok(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
options = "size=%d,nr_inodes=%d,mode=0755" % (size, inodes)
ok(libc.mount(b"scratch", scratch, b"tmpfs", ctypes.c_ulong(MS_NOSUID_NODEV),
              options.encode()), "mount the scratch")
os.chdir(scratch)
for cap in (CAP_SYS_ADMIN, CAP_SETPCAP):  # CAP_SETPCAP last: dropping needs it
    ok(prctl(PR_CAPBSET_DROP, cap), "drop a capability")
ok(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), "clear the ambient capabilities")
ok(libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()), "capset")
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
class Program(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]
program = Program(len(bpf) // 8, bpf)
ok(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
ok(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program)), "seccomp")
os.write(ready, b"1")
os.close(ready)
os.execv(sys.argv[11], sys.argv[11:])
"""

# What a program prints when it runs into a limit; the first match names the limit.
_SIGNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("memory limit", ("MemoryError", "Cannot allocate memory", "memory exhausted")),
    ("process limit", ("Resource temporarily unavailable", "Cannot fork", "fork: retry")),
    ("file size limit", ("File too large", "No space left on device")),
)


@dataclass(frozen=True)
class Limits:
    """What one run may use. Every limit is always on."""

    cpu_seconds: int = 10
    memory_mb: int = 512
    processes: int = 64
    output_bytes: int = 64 * 1024
    wall_seconds: float = 30.0
    scratch_mb: int = 64
    open_files: int = 256

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "processes", "output_bytes", "scratch_mb",
                     "open_files"):
            if int(getattr(self, name)) < 1:
                raise DeterministicError(f"sandbox limit {name} must be at least 1")
        if not 0 < self.wall_seconds <= 3600:
            raise DeterministicError("sandbox limit wall_seconds must be in (0, 3600]")


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended. ``killed`` names the limit the code ran into, as far as can be told
    from its exit and its stderr (a program can print anything, so it is a hint)."""

    exit_code: int
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    killed: str | None
    duration_s: float


def bubblewrap() -> str:
    """The path of ``bwrap``, or a clear refusal: code never runs unsandboxed."""
    path = shutil.which("bwrap")
    if path is None:
        raise DeterministicError(
            "code.run needs bubblewrap (apt-get install bubblewrap, dnf install bubblewrap): "
            "no bwrap on PATH, and agent code is never run unsandboxed"
        )
    return path


class BubblewrapSandbox:
    """Runs Python or shell code in a fresh bubblewrap sandbox per call."""

    def __init__(self, bwrap: str | None = None) -> None:
        self.bwrap = bwrap or bubblewrap()

    def run(
        self, language: Language, code: str, *, limits: Limits | None = None, stdin: str = ""
    ) -> SandboxResult:
        limits = limits or Limits()
        if language not in LANGUAGES:
            raise DeterministicError(
                f"code.run language must be one of {', '.join(LANGUAGES)}, not {language!r}"
            )
        fds: list[int] = []  # every fd opened for this run, closed when it ends
        try:
            argv = self._argv(language, code, limits, fds)
            data_fds = tuple(fds)  # what bubblewrap copies into the sandbox at setup
            stdin_fd = _memfd("stdin", stdin.encode())
            fds.append(stdin_fd)
            # The launcher writes one byte here once it runs inside: how a sandbox that
            # could not be set up is told apart from a program that failed.
            ready_r, ready_w = os.pipe()
            fds.append(ready_r)
            argv[argv.index(READY_FD)] = str(ready_w)
            run_uid = _run_uid()
            try:
                started = time.monotonic()
                proc = subprocess.Popen(
                    argv, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env={}, pass_fds=(*data_fds, ready_w), start_new_session=True,
                    user=run_uid, group=run_uid, extra_groups=None if run_uid is None else [],
                )
            finally:
                # Our copy of the write end must go, or reading it would never see EOF.
                os.close(ready_w)
            return _collect(proc, limits, started, ready_r)
        finally:
            for fd in fds:
                os.close(fd)

    def _argv(self, language: Language, code: str, limits: Limits, fds: list[int]) -> list[str]:
        python, python_binds = _python()
        argv = [
            self.bwrap,
            # Every namespace, the network's too: inside there is only a loopback of its own.
            "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr",
        ]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            # Merged-/usr systems have these as symlinks; older ones as real directories.
            host = Path("/") / name
            if host.is_symlink():
                argv += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                argv += ["--ro-bind", str(host), str(host)]
        argv += python_binds
        # Only what programs need from /etc: never the host's whole /etc (it holds keys).
        for path in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime"):
            argv += ["--ro-bind-try", path, path]
        passwd = f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}::{SCRATCH}:/bin/sh\n"
        group = f"sandbox:x:{SANDBOX_UID}:\n"
        suffix = "py" if language == "python" else "sh"
        for dest, data in (("/etc/passwd", passwd), ("/etc/group", group),
                           (f"/code/main.{suffix}", code)):
            fd = _memfd(dest, data.encode())
            fds.append(fd)
            argv += ["--ro-bind-data", str(fd), dest]
        data_bytes, inodes = _scratch(limits)
        argv += [
            # Capabilities in the sandbox's own user namespace, for the launcher to mount
            # /scratch; it drops every one before anything of the agent's runs.
            "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP",
            "--proc", "/proc",
            "--dir", SCRATCH, "--symlink", SCRATCH, "/tmp",
            *_dev_argv(),
            # bubblewrap's root and /dev are writable tmpfs of no fixed size (half the
            # host's memory); read-only, they leave /scratch the only place to write.
            "--remount-ro", "/dev", "--remount-ro", "/",
            "--clearenv",
            "--setenv", "HOME", SCRATCH, "--setenv", "TMPDIR", SCRATCH,
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--",
            python, "-I", "-S", "-c", _LAUNCHER, READY_FD,
            str(limits.cpu_seconds), str(limits.memory_mb << 20),
            str(limits.processes), str(limits.scratch_mb << 20), str(limits.open_files),
            str(data_bytes), str(inodes), SCRATCH, seccomp.program().hex(),
        ]
        # -I: no user site, no PYTHON* variables, no cwd on sys.path; the system's own
        # site-packages stay importable (they are part of the read-only system).
        program = [python, "-I", "/code/main.py"] if language == "python" else [
            "/bin/sh", "/code/main.sh"]
        return argv + program


def _scratch(limits: Limits) -> tuple[int, int]:
    """The scratch's data bytes and inodes: the two together hold ``scratch_mb``.

    A file or folder costs the kernel about 1 KiB (``INODE_COST``) besides its data; one
    sixteenth of the cap is set aside for them, so 64 MB hold 4,096 entries and 60 MB.
    """
    cap = limits.scratch_mb << 20
    inodes = max(cap // (16 * INODE_COST), 64)
    return cap - inodes * INODE_COST, inodes


def _dev_argv() -> list[str]:
    """A /dev of the device nodes programs use, built by hand instead of ``--dev``.

    ``--dev`` adds a devpts instance, whose terminals are kernel memory counted nowhere and
    drawn from the host's shared pool of ptys; nothing here needs a terminal. /dev/shm is
    /scratch, so shared memory and POSIX semaphores work and count in its cap.
    """
    argv = ["--tmpfs", "/dev"]
    for node in DEVICES:
        argv += ["--dev-bind", node, node]
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        argv += ["--symlink", f"/proc/self/fd/{fd}", f"/dev/{name}"]
    return [*argv, "--symlink", "/proc/self/fd", "/dev/fd", "--symlink", SCRATCH, "/dev/shm"]


def _collect(
    proc: subprocess.Popen[bytes], limits: Limits, started: float, ready_r: int
) -> SandboxResult:
    """Read the output as it comes, enforce the wall clock, and describe the end."""
    deadline = started + limits.wall_seconds
    out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
    timed_out = False
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    key.data.add(chunk)
                else:
                    sel.unregister(key.fileobj)
    if timed_out:
        _kill(proc)
    try:
        code = proc.wait(max(deadline - time.monotonic(), 0.05))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        code = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    duration = time.monotonic() - started
    if not _ready(ready_r) and not timed_out:
        raise DeterministicError(
            f"bubblewrap could not set up the sandbox: {err.text().strip() or f'exit {code}'}"
            " (it needs unprivileged user namespaces)"
        )
    stderr = err.text()
    return SandboxResult(
        exit_code=code,
        stdout=out.text(),
        stderr=stderr,
        truncated=out.dropped > 0 or err.dropped > 0,
        timed_out=timed_out,
        killed=_why(code, timed_out, stderr, duration, limits),
        duration_s=round(duration, 3),
    )


class _Capture:
    """Keeps the first ``cap`` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.kept)
        self.kept += chunk[:max(room, 0)]
        self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[output truncated at {self.cap} bytes: {self.dropped} more dropped]"
        return text


def _memfd(name: str, data: bytes) -> int:
    # bubblewrap copies --ro-bind-data from the fd at setup; a memfd needs no temp file
    # on the host and never blocks the way a pipe would past 64 KiB.
    fd = os.memfd_create(name.strip("/").replace("/", "-"))
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _python() -> tuple[str, list[str]]:
    """The interpreter to run inside, and the binds it needs.

    The system's ``/usr/bin/python3`` comes with ``/usr``. Without one, the interpreter
    Soloist runs on is used and only its installation prefix is bound, read-only and at the
    same path; never its virtualenv or the rest of its home. When Soloist runs as root the
    sandbox is started by an unprivileged uid that must be able to reach that prefix; a
    pyenv prefix under /root is not, and then code.run refuses rather than loosen anything.
    """
    if os.access(SYSTEM_PYTHON, os.X_OK):
        return SYSTEM_PYTHON, []
    prefix = os.path.realpath(sys.base_prefix)
    python = os.path.join(prefix, "bin", "python3")
    missing = (
        "code.run needs a Python interpreter (apt-get install python3): "
        f"no {SYSTEM_PYTHON}"
    )
    if not os.access(python, os.X_OK):
        raise DeterministicError(f"{missing}, and none at {python}")
    if os.geteuid() == 0 and not _world_reachable(prefix):
        raise DeterministicError(
            f"{missing}, and {prefix} cannot be reached by the sandbox's unprivileged user"
        )
    return python, ["--ro-bind", prefix, prefix]


def _world_reachable(path: str) -> bool:
    """Whether any user may walk to ``path`` and list it (o+x on every ancestor)."""
    current = Path(path)
    for directory in (current, *current.parents):
        if not directory.stat().st_mode & 0o001:
            return False
    return bool(current.stat().st_mode & 0o004)


def _run_uid() -> int | None:
    """A fresh unprivileged uid for this run alone when Soloist runs as root, else None.

    Root is exempt from RLIMIT_NPROC, and bubblewrap started by root maps the sandbox to
    uid 0 outside, so a fork bomb would not be stopped. A random uid from a wide unused
    range counts only this run's processes and owns nothing on the host.
    """
    if os.geteuid() != 0:
        return None
    return RUN_UID_BASE + secrets.randbelow(RUN_UID_SPAN)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _ready(ready_r: int) -> bool:
    """Whether the launcher ran inside the sandbox."""
    # Non-blocking: if setup failed nothing was written, and once bubblewrap has exited
    # the launcher's byte, if any, is already in the pipe.
    os.set_blocking(ready_r, False)
    try:
        return os.read(ready_r, 1) == b"1"
    except BlockingIOError:
        return False


def _why(code: int, timed_out: bool, stderr: str, duration: float,
         limits: Limits) -> str | None:
    if timed_out:
        return "wall clock"
    # bubblewrap exits 128 + N when the program died of signal N.
    if code == 128 + signal.SIGXCPU or (
        code == 128 + signal.SIGKILL and duration >= limits.cpu_seconds
    ):
        return "cpu time limit"
    if code == 128 + signal.SIGXFSZ:
        return "file size limit"
    if code == 128 + signal.SIGSYS:
        return "syscall filter"
    for name, signs in _SIGNS:
        if any(sign in stderr for sign in signs):
            return name
    if code == 128 + signal.SIGKILL:
        return "killed"
    return None
