"""Faults to inject into processes the tests start: a shifted clock (libfaketime)."""

from __future__ import annotations

import glob


def _libfaketime() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


def faketime_available() -> str | None:
    """Why a shifted clock cannot be had here, or None (Debian's ``faketime``)."""
    if _libfaketime() is None:
        return "libfaketime is not installed (Debian package faketime; .ci/run installs it)"
    return None


def skewed(seconds: int) -> dict[str, str]:
    """The environment that runs a program with its wall clock ``seconds`` off the real
    one: libfaketime, multi-threaded, preloaded directly (the ``faketime`` wrapper would
    stand between the test and the process, and not pass signals on). The monotonic
    clock is left alone, since waits with a timeout are measured on it; in such a process
    ``time.sleep`` fails with EINVAL (libfaketime 0.9.10's clock_nanosleep), so code run
    under it waits on events instead."""
    lib = _libfaketime()
    assert lib is not None, faketime_available()
    return {"LD_PRELOAD": lib, "FAKETIME": f"{seconds:+d}s", "DONT_FAKE_MONOTONIC": "1"}
