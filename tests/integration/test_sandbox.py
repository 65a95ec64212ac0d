"""code.run under bubblewrap: every escape an agent's code might try is contained.

Skipped only where bwrap is missing and SOLOIST_REQUIRE_SANDBOX is not "1" (CI sets it, so a
runner without bubblewrap fails instead of skipping silently).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soloist.errors import DeterministicError
from soloist.execution.context import ToolCall
from soloist.execution.sandbox import BubblewrapSandbox, Limits, SandboxResult
from soloist.execution.tools.base import spec_of
from soloist.execution.tools.code import code_run

HAVE_BWRAP = shutil.which("bwrap") is not None
needs_bwrap = pytest.mark.skipif(
    not HAVE_BWRAP and os.environ.get("SOLOIST_REQUIRE_SANDBOX") != "1",
    reason="bubblewrap (bwrap) is not installed; set SOLOIST_REQUIRE_SANDBOX=1 to fail instead",
)

# Low limits so a contained escape ends fast and a broken sandbox cannot hurt the machine.
TIGHT = Limits(cpu_seconds=2, memory_mb=256, processes=32, output_bytes=4096,
               wall_seconds=5, scratch_mb=16)
CALL = ToolCall("run-1", "step-1", "key-1", "/nonexistent-workspace")


@pytest.fixture(scope="module")
def sandbox() -> BubblewrapSandbox:
    return BubblewrapSandbox()


def run(sandbox: BubblewrapSandbox, code: str, language: str = "python",
        limits: Limits = TIGHT) -> SandboxResult:
    assert language in ("python", "shell")
    return sandbox.run("python" if language == "python" else "shell", code, limits=limits)


@needs_bwrap
def test_hello_world_in_python_and_shell(sandbox: BubblewrapSandbox) -> None:
    py = run(sandbox, "print('hello from python')")
    sh = run(sandbox, "echo hello from shell", "shell")
    assert (py.exit_code, py.stdout, py.killed) == (0, "hello from python\n", None)
    assert (sh.exit_code, sh.stdout, sh.killed) == (0, "hello from shell\n", None)
    assert py.duration_s < 2


@needs_bwrap
def test_stdin_reaches_the_code(sandbox: BubblewrapSandbox) -> None:
    result = sandbox.run("python", "import sys; print(sys.stdin.read().upper())",
                         limits=TIGHT, stdin="quiet")
    assert result.stdout == "QUIET\n"


@needs_bwrap
def test_the_tool_returns_the_result_as_a_dict() -> None:
    assert spec_of(code_run).name == "code.run" and spec_of(code_run).effect == "read"
    out = code_run("python", "print(6 * 7)", CALL, timeout=10)
    assert out["exit_code"] == 0 and out["stdout"] == "42\n"
    assert set(out) == {"exit_code", "stdout", "stderr", "truncated", "timed_out", "killed",
                        "duration_s"}


def test_the_tool_refuses_an_unknown_language_or_timeout() -> None:
    with pytest.raises(DeterministicError, match="python, shell"):
        code_run("ruby", "puts 1", CALL)
    with pytest.raises(DeterministicError, match="timeout"):
        code_run("python", "print(1)", CALL, timeout=0)


def test_missing_bubblewrap_is_refused_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(DeterministicError, match=r"bubblewrap \(apt-get install bubblewrap"):
        code_run("python", "print('never runs')", CALL)


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A server on the host's loopback that counts connections: none may arrive."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()
    assert accepted == [], "the sandbox reached the host's loopback"


@needs_bwrap
def test_no_network_to_the_host_loopback(sandbox: BubblewrapSandbox, host_listener: int) -> None:
    code = ("import socket\ns = socket.socket(); s.settimeout(2)\n"
            f"s.connect(('127.0.0.1', {host_listener}))\nprint('connected')")
    result = run(sandbox, code)
    assert result.exit_code != 0 and "connected" not in result.stdout
    # The sandbox has a loopback of its own with nothing listening on it.
    assert "ConnectionRefusedError" in result.stderr


@needs_bwrap
def test_no_network_to_the_outside(sandbox: BubblewrapSandbox) -> None:
    # An empty network namespace has no route: this fails at once and sends nothing.
    code = ("import socket\ns = socket.socket(); s.settimeout(2)\n"
            "s.connect(('192.0.2.1', 80))\nprint('connected')")
    result = run(sandbox, code)
    assert result.exit_code != 0 and "Network is unreachable" in result.stderr
    dns = run(sandbox, "import socket; socket.getaddrinfo('example.com', 80)")
    assert dns.exit_code != 0 and "gaierror" in dns.stderr


@needs_bwrap
def test_the_workspace_and_its_secrets_are_invisible(
    sandbox: BubblewrapSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = tmp_path / "ws" / ".soloist" / "soloist.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"SQLite format 3\x00 planted")
    secrets_file = tmp_path / "ws" / "secrets.toml"
    secrets_file.write_text('api_key = "sk-planted"\n')
    monkeypatch.setenv("SOLOIST_SECRET_TOKEN", "sk-planted-env")
    for path in (database, secrets_file):
        result = run(sandbox, f"print(open({str(path)!r}).read())")
        assert result.exit_code == 1 and "FileNotFoundError" in result.stderr
        assert "planted" not in result.stdout
    listing = run(sandbox, "import os; print(sorted(os.listdir('/')))")
    for hidden in ("root", "home", "work", "var", "mnt", "opt"):
        assert f"'{hidden}'" not in listing.stdout
    assert run(sandbox, "import os; print(os.path.exists('/etc/shadow'))").stdout == "False\n"


@needs_bwrap
def test_the_environment_is_rebuilt_from_nothing(
    sandbox: BubblewrapSandbox, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOLOIST_SECRET_TOKEN", "sk-planted-env")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-planted-openai")
    result = run(sandbox, "env", "shell")
    assert result.exit_code == 0
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert not any(name.startswith("SOLOIST_") for name in names)
    assert "planted" not in result.stdout
    assert "HOME=/scratch" in result.stdout


@needs_bwrap
def test_fork_bomb_is_contained(
    sandbox: BubblewrapSandbox, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from soloist.execution import sandbox as module

    # Counted are the bomb's own processes only: the machine's total moves with whatever
    # else runs on it. As root every run gets a fresh uid; here the test knows which.
    uid = module._run_uid()
    monkeypatch.setattr(module, "_run_uid", lambda: uid)
    before = _sandboxed_processes(uid)
    started = time.monotonic()
    bomb = run(sandbox, "import os\nwhile True:\n    os.fork()")
    assert bomb.killed == "process limit" and bomb.exit_code != 0
    # One that swallows the failures keeps churning at the limit until the wall clock.
    stubborn = run(sandbox, "import os\nwhile True:\n    try:\n        os.fork()\n"
                            "    except OSError:\n        pass",
                   limits=Limits(processes=32, cpu_seconds=2, wall_seconds=2))
    assert stubborn.killed in ("wall clock", "cpu time limit")
    shell = run(sandbox, "bomb() { bomb | bomb & }; bomb; wait", "shell")
    # The shell's first pipeline may end before its orphans pile up (seen under load: exit 0
    # in 72 ms); then the pid namespace takes them down with it. Either way: contained.
    assert shell.killed in ("process limit", "wall clock", None)
    assert time.monotonic() - started < 12
    # The pid namespaces are torn down asynchronously.
    deadline = time.monotonic() + 5
    while _sandboxed_processes(uid) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandboxed_processes(uid) <= before, "processes of the bomb outlived the sandbox"


@needs_bwrap
def test_allocating_4_gb_hits_the_memory_limit(sandbox: BubblewrapSandbox) -> None:
    result = run(sandbox, "block = bytearray(4 << 30)\nprint('allocated')")
    assert result.killed == "memory limit" and "MemoryError" in result.stderr
    assert "allocated" not in result.stdout


@needs_bwrap
def test_infinite_loop_hits_the_cpu_limit(sandbox: BubblewrapSandbox) -> None:
    result = run(sandbox, "while True:\n    pass", limits=Limits(cpu_seconds=1, wall_seconds=5))
    assert result.killed == "cpu time limit" and not result.timed_out
    assert result.duration_s < 4


@needs_bwrap
def test_a_sleeping_program_hits_the_wall_clock(sandbox: BubblewrapSandbox) -> None:
    result = run(sandbox, "sleep 60", "shell", limits=Limits(wall_seconds=1))
    assert result.timed_out and result.killed == "wall clock"
    assert result.duration_s < 3


@needs_bwrap
@pytest.mark.parametrize("target", ["/usr/evil", "/etc/evil", "/evil", "/bin/evil",
                                    "/code/main.py"])
def test_writing_outside_scratch_fails(sandbox: BubblewrapSandbox, target: str) -> None:
    result = run(sandbox, f"open({target!r}, 'w').write('x')")
    assert result.exit_code == 1
    assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr


@needs_bwrap
def test_scratch_is_writable_cwd_and_capped(sandbox: BubblewrapSandbox) -> None:
    code = ("import os, tempfile\nopen('note.txt', 'w').write('kept')\n"
            "print(os.getcwd(), open('/scratch/note.txt').read(), tempfile.gettempdir())")
    assert run(sandbox, code).stdout == "/scratch kept /scratch\n"
    big = run(sandbox, "open('big', 'wb').write(b'x' * (64 << 20))")
    assert big.exit_code == 1 and big.killed == "file size limit"


@needs_bwrap
def test_output_flood_is_truncated(sandbox: BubblewrapSandbox) -> None:
    result = run(sandbox, "import sys\nfor _ in range(1000):\n    sys.stdout.write('x' * 1000)")
    assert result.exit_code == 0 and result.truncated
    assert result.stdout.startswith("x" * 4096)
    assert "[output truncated at 4096 bytes: 995904 more dropped]" in result.stdout


@needs_bwrap
def test_a_failed_setup_is_an_error_not_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from soloist.execution import sandbox as module

    monkeypatch.setattr(module, "SCRATCH", "/proc/sys/no-such-place")
    with pytest.raises(DeterministicError, match="could not set up the sandbox"):
        module.BubblewrapSandbox().run("python", "print(1)", limits=TIGHT)


def _sandboxed_processes(uid: int | None) -> int:
    """Processes of the sandbox's uid (as root), or of ours in another pid namespace."""
    own_ns = os.readlink("/proc/self/ns/pid")
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            owner = os.stat(f"/proc/{name}").st_uid
            if uid is not None:
                count += owner == uid
            elif owner == os.getuid():
                count += os.readlink(f"/proc/{name}/ns/pid") != own_ns
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return count
