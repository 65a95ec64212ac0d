"""Running the ``git`` command line safely, and turning its failures into Soloist's errors.

Every call goes through :func:`run`: a fixed argv (never a shell), an environment built from
nothing but ``PATH`` (no system or global config, no terminal prompts, no credential
helper but the client's own, hooks off), ``LC_ALL=C`` so git's messages can be read, and a
timeout after which git and everything it started (``git-remote-http``, ``ssh``) are killed
as one process group.

A failure becomes one sentence (:func:`failure`): a server that cannot be reached or a
timeout is a :class:`~soloist.errors.TransientError`; an unknown repository, refused
credentials or a refused request is a :class:`~soloist.errors.DeterministicError`. Git's
stderr is summarised to its last ``fatal:``/``error:`` line, with any password in a URL
(and the client's password itself) replaced by ``***``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from soloist.errors import GitFailed, StepFailure, TransientError

__all__ = ["Done", "redact", "run", "safe_value"]

# Credentials reach git only through this helper, reading the environment: never argv,
# where any local user could read them with ps.
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    'printf "username=%s\\npassword=%s\\n" "$SOLOIST_GIT_USERNAME" "$SOLOIST_GIT_PASSWORD"; }; f'
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):[^/@\s]*@")

_UNREACHABLE = (
    "connection refused", "could not resolve host", "connection timed out",
    "network is unreachable", "unable to connect", "unable to look up", "no route to host",
    "connection reset", "failed to connect", "the remote end hung up unexpectedly",
    "returned error: 502", "returned error: 503", "returned error: 504",
    "returned error: 429",
)  # fmt: skip
_NO_REPOSITORY = (
    "no such repository", "repository not found", "does not appear to be a git repository",
    "returned error: 404",
)  # fmt: skip
_AUTH = (
    "authentication failed", "could not read username", "could not read password",
    "terminal prompts disabled", "permission denied", "returned error: 401",
    "returned error: 403", "access denied",
)  # fmt: skip



@dataclass(frozen=True)
class Done:
    """What a git command that succeeded printed."""

    stdout: str
    stderr: str


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with the password of every URL in it, and each of ``secrets``, as ``***``."""
    text = _USERINFO.sub(r"\g<scheme>\g<user>:***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def safe_value(what: str, value: str) -> str:
    """``value`` unchanged, or :class:`GitFailed` when git could read it as an option or it
    is not one line."""
    if not value:
        raise GitFailed(f"the {what} is empty")
    if value.startswith("-"):
        raise GitFailed(f"the {what} {value!r} starts with '-', which git would read as an option")
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise GitFailed(f"the {what} {value!r} contains a control character")
    return value


def environment(
    home: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of a git call: nothing of the caller's but ``PATH``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        # BatchMode: ssh fails instead of asking for a password or a host key.
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        "GIT_OPTIONAL_LOCKS": "0",
    }
    if username is not None:
        env["SOLOIST_GIT_USERNAME"] = username
    if password is not None:
        env["SOLOIST_GIT_PASSWORD"] = password
    env.update(extra or {})
    return env


def _config(with_credentials: bool) -> list[str]:
    # An empty credential.helper resets the list, so no helper of the machine runs.
    options = ["-c", "credential.helper=", "-c", "core.hooksPath=/dev/null",
               "-c", "protocol.ext.allow=never", "-c", "core.fsmonitor=false",
               "-c", "advice.detachedHead=false", "-c", "init.defaultBranch=main"]
    if with_credentials:
        options += ["-c", f"credential.helper={_HELPER}"]
    return options


def run(
    args: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    timeout: float,
    what: str,
    input: bytes | None = None,
    secrets: Sequence[str] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``git ARGS``; on failure (when ``check``), the error :func:`failure` gives.

    ``what`` names the operation for the message ("push main to git://..."), already free
    of secrets.
    """
    argv = ["git", *_config("SOLOIST_GIT_PASSWORD" in env), *args]
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed whole on timeout
        )
    except OSError as error:  # no git on PATH, or no such workdir
        place = f": {error.filename}" if error.filename else ""
        raise GitFailed(f"cannot {what}: {error.strerror or error}{place}") from None
    try:
        out, err = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise TransientError(f"cannot {what}: git did not finish within {timeout:g} s") from None
    except BaseException:
        _kill_group(process)
        process.communicate()
        raise
    done = subprocess.CompletedProcess(
        argv, process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )
    if check and done.returncode != 0:
        raise failure(what, done.stderr, secrets)
    return done


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def summary(stderr: str, secrets: Sequence[str] = ()) -> str:
    """Git's own reason, in one line: its first ``fatal:`` or ``error:`` line with the lines
    that continue it (``errno=Connection refused``), redacted."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("fatal:", "error:"))),
                 None)
    if start is None:
        kept = [line.strip() for line in lines if line.strip()][-1:]
    else:
        kept = [lines[start]]
        for line in lines[start + 1:]:
            if not line.strip() or line.startswith(("fatal:", "error:", "hint:")):
                break
            kept.append(line.strip())
    if not kept:
        return "git failed without saying why"
    line = " ".join(kept)
    for prefix in ("fatal: remote error: ", "fatal: ", "error: "):
        line = line.removeprefix(prefix)
    line = redact(line, secrets).rstrip(".")
    return line if len(line) <= 240 else f"{line[:237]}..."


def failure(what: str, stderr: str, secrets: Sequence[str] = ()) -> StepFailure:
    """The Soloist error for a git command that failed with ``stderr``."""
    low = stderr.lower()
    reason = summary(stderr, secrets)
    if any(marker in low for marker in _AUTH):
        return GitFailed(f"cannot {what}: authentication failed ({reason})")
    if any(marker in low for marker in _NO_REPOSITORY):
        return GitFailed(f"cannot {what}: the repository does not exist ({reason})")
    if any(marker in low for marker in _UNREACHABLE):
        return TransientError(f"cannot {what}: the server cannot be reached ({reason})")
    return GitFailed(f"cannot {what}: {reason}")
