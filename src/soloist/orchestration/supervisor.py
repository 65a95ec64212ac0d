"""The long-running process: a worker and/or the scheduler until SIGTERM or SIGINT.

The worker's loop runs in the calling thread, the scheduler in a thread of its own. A
signal asks both to stop: the worker finishes (or gives back) the steps in hand within
its grace period, the scheduler ends its pass and releases its lock, and the previous
signal handlers come back.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Protocol

from soloist.orchestration.scheduler import Scheduler
from soloist.orchestration.worker import Worker

#: How long to wait for the scheduler's thread once asked to stop.
SCHEDULER_JOIN_SECONDS = 10.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Service(Protocol):
    """A loop that runs in a thread of its own beside the worker (a connector poller)."""

    def run(self) -> None: ...
    def stop(self) -> None: ...


class Supervisor:
    def __init__(self, worker: Worker | None, scheduler: Scheduler | None, *,
                 on_ready: Callable[[], None] | None = None,
                 services: Sequence[Service] = ()) -> None:
        self.worker = worker
        self.scheduler = scheduler
        self.services = list(services)
        self.on_ready = on_ready
        self.stopped = threading.Event()
        #: Set once the signal handlers are in place: from then on a signal stops us.
        self.ready = threading.Event()

    def stop(self) -> None:
        """Ask everything to stop (what a signal does); :meth:`run` then returns."""
        self.stopped.set()
        if self.worker is not None:
            self.worker.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        for service in self.services:
            service.stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def run(self) -> None:
        """Run until a signal or :meth:`stop`. Signals are caught only here, so this must
        run in the main thread (as Python requires of a signal handler)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready()
        loops = ([self.scheduler] if self.scheduler is not None else []) + self.services
        threads = [threading.Thread(target=loop.run, name=type(loop).__name__.lower(),
                                    daemon=True) for loop in loops]
        try:
            for thread in threads:
                thread.start()
            if self.worker is not None:
                self.worker.run()
            else:
                self.stopped.wait()
            for loop in loops:
                loop.stop()  # the worker may have stopped by itself (a store failure)
            for thread in threads:
                thread.join(timeout=SCHEDULER_JOIN_SECONDS)
        finally:
            self.ready.clear()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
