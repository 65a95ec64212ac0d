"""Through the real binary: a playbook's ``code.run`` step meets the same walls as the
sandbox's own tests (issue 9, group 8): /dev is read-only, everything written anywhere
stays within the scratch cap, the syscall filter is on, and the step still succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests_support import SOLOIST, soloist

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.environ.get("SOLOIST_REQUIRE_SANDBOX") != "1",
    reason="bubblewrap (bwrap) is not installed; set SOLOIST_REQUIRE_SANDBOX=1 to fail instead",
)

PROBE = """\
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
chunk = b"x" * (1 << 20)
stored, places = 0, {}
for n, place in enumerate(("/dev", "/dev/shm", "/tmp", "/scratch")):
    try:
        for i in range(200):
            with open("%s/fill-%d-%d" % (place, n, i), "wb") as f:
                f.write(chunk)
            stored += len(chunk)
        places[place] = "no limit"
    except OSError as e:
        places[place] = errno.errorcode[e.errno]
def refused(call):
    try:
        return "ok" if call() >= 0 else errno.errorcode[ctypes.get_errno()]
    except OSError as e:
        return errno.errorcode[e.errno]
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
writable = sorted(row.split()[1] for row in open("/proc/self/mounts")
                  if "rw" in row.split()[3].split(","))
print(json.dumps({
    "stored_mb": stored >> 20, "places": places, "writable": writable,
    "seccomp": status["Seccomp"].strip(),
    "ptrace": refused(lambda: libc.ptrace(ctypes.c_ulong(16), ctypes.c_ulong(1), None, None)),
    "memfd": refused(lambda: os.memfd_create("x")),
    "unshare": refused(lambda: libc.unshare(0x10000000)),
}))
"""


def test_a_code_run_step_meets_the_sandbox_walls(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    soloist("init", str(root))
    ws = ["-w", str(root)]
    step = {"id": "probe", "tool": "code.run",
            "args": {"language": "python", "code": PROBE, "timeout": 60}}
    (root / "playbooks" / "probe.yaml").write_text(
        json.dumps({"name": "probe", "steps": [step]}))  # JSON is YAML
    soloist("deploy", *ws)
    run = json.loads(soloist("run", "probe", "--json", *ws).stdout)
    worker = subprocess.Popen([SOLOIST, "worker", *ws],
                              env={**os.environ, "SOLOIST_POLL_SECONDS": "0.05"})
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            shown = json.loads(soloist("show", run["id"], "--json", *ws).stdout)
            if shown["run"]["state"] in ("done", "failed"):
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        assert worker.wait(30) == 0
    assert shown["run"]["state"] == "done", shown["run"]
    output = shown["steps"][0]["output"]
    assert output["exit_code"] == 0, output["stderr"]
    report = json.loads(output["stdout"])
    assert report["places"]["/dev"] == "EROFS"
    assert {report["places"][p] for p in ("/dev/shm", "/tmp", "/scratch")} <= {
        "ENOSPC", "EFBIG"}
    assert report["stored_mb"] <= 64  # the default cap, for everything written together
    assert report["writable"] == sorted(["/proc", "/scratch", "/dev/full", "/dev/null",
                                         "/dev/random", "/dev/urandom", "/dev/zero"])
    assert report["seccomp"] == "2"
    assert (report["ptrace"], report["memfd"], report["unshare"]) == ("EPERM",) * 3
