"""The single scheduler: cron triggers, event triggers, waits and stops, gate timeouts and
run deadlines.

Any number of processes may run a scheduler; only the one holding the scheduler lock acts
(a lease row on SQLite, an advisory lock on PostgreSQL), so a cron fire starts one run.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import threading
from typing import Any

from soloist.control import cron, templating
from soloist.control.playbooks import CronTrigger, EventTrigger, Playbook
from soloist.control.processes import Presence
from soloist.control.registry import Registry
from soloist.errors import SoloistError, StoreError, StoreUnavailable
from soloist.orchestration import runs, waits
from soloist.orchestration.gates import Gates
from soloist.orchestration.lifecycle import RunState
from soloist.store.base import NewEvent, Store
from soloist.store.outage import Outage
from soloist.store.waits import WaitRow

_log = logging.getLogger(__name__)


def topic_matches(pattern: str, topic: str) -> bool:
    return fnmatch.fnmatchcase(topic, pattern)


class Scheduler:
    def __init__(self, store: Store, registry: Registry, gates: Gates, owner: str,
                 interval: float = 0.5) -> None:
        self.store = store
        self.registry = registry
        self.gates = gates
        self.owner = owner
        self.interval = interval
        self.stop_event = threading.Event()
        self.leading = False

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        presence = Presence(self.store, f"{self.owner}/scheduler", "scheduler", 15.0)
        outage = Outage(_log, f"scheduler {self.owner}")
        try:
            while not self.stop_event.is_set():
                presence.beat()
                try:
                    self.tick()
                except StoreUnavailable as exc:
                    # Whatever the pass did not commit is done again by the next one; the
                    # lock went with the lost session, so it is taken again (or by another).
                    self.leading = False
                    self.stop_event.wait(outage.failed(exc))
                    continue
                outage.ok()
                self.stop_event.wait(self.interval)
        finally:
            presence.leave()
            if self.leading:
                with contextlib.suppress(StoreError):
                    self.store.release_scheduler_lock(self.owner)

    def tick(self, now: float | None = None) -> dict[str, int]:
        """One pass; returns what it did. Does nothing unless this process leads."""
        leading = self.store.try_scheduler_lock(self.owner)
        if not leading:
            self.leading = False
            return {}
        now = self.store.now() if now is None else now
        if not self.leading:
            # Who held the scheduler when is part of the record (a failover shows as the
            # next process's election, its time the handover's end).
            with self.store.transaction() as tx:
                tx.events.append(NewEvent("scheduler.elected", {"owner": self.owner},
                                          actor=self.owner, ts=now))
            self.leading = True
        playbooks = self.registry.latest_playbooks()
        with self.store.read() as tx:
            # The workspace's clock: what playbooks' timers (cron, waits) are read on.
            clock = now + tx.clock.offset()
        fired = self.fire_cron(playbooks, now, clock)
        inbound = self.publish_inbound(now)
        events, woken = self.route_events(playbooks, now)
        return {
            "cron": fired,
            "inbound": inbound,
            "events": events,
            "waits": woken + self.wake_waits(clock, now),
            "gates": self.gates.expire(now),
            "deadlines": self.enforce_deadlines(now),
        }

    def fire_cron(self, playbooks: list[Playbook], now: float,
                  clock: float | None = None) -> int:
        """Start the runs cron triggers owe; their times are read on ``clock`` (the
        workspace's clock, ``now`` unless it was moved)."""
        clock = now if clock is None else clock
        fired = 0
        for playbook in playbooks:
            for index, trigger in enumerate(playbook.triggers):
                if not isinstance(trigger, CronTrigger):
                    continue
                with self.store.transaction() as tx:
                    last = tx.scheduler.cron_last(playbook.name, index)
                    if last is None:
                        # First sight of this trigger: start counting from now.
                        tx.scheduler.cron_set(playbook.name, index, clock)
                        continue
                    due = cron.due(trigger.cron, trigger.timezone, last, clock, last)
                    if due is None:
                        continue
                    tx.scheduler.cron_set(playbook.name, index, due)
                    inputs = templating.render(trigger.inputs, {"fire_time": due})
                    runs.start_run(tx, runs.StartRequest(
                        playbook, inputs, {"cron": trigger.cron, "fire_time": due},
                        "system:cron", pins=self.registry.pins_for(playbook)), now)
                    fired += 1
        return fired

    def publish_inbound(self, now: float, batch: int = 200) -> int:
        """Move what connectors received (their inbound backlogs) onto the event bus, each
        event once: taken, published and marked processed in one transaction."""
        published = 0
        with self.store.read() as tx:
            sources = [s for s, waiting in tx.inbound.backlogs().items() if waiting]
        for source in sources:
            with self.store.transaction() as tx:
                rows = tx.inbound.take_batch(source, batch)
                for row in rows:
                    payload = row.payload if isinstance(row.payload, dict) else {}
                    topic = payload.get("topic")
                    tx.bus.publish(topic if isinstance(topic, str) else "inbound.received",
                                   payload.get("payload"), None, now)
                    published += 1
                tx.inbound.mark_processed([r.id for r in rows])
        return published

    def route_events(self, playbooks: list[Playbook], now: float) -> tuple[int, int]:
        """Start the runs event triggers ask for, end the waits the events are for, stop
        the runs they stop: (runs started, waits ended)."""
        started = woken = 0
        subscribers = [(p, t) for p in playbooks for t in p.triggers
                       if isinstance(t, EventTrigger)]
        stoppable = [p for p in playbooks if p.stop_on]
        with self.store.transaction() as tx:
            messages = tx.bus.pending(500)
            open_waits: list[WaitRow] = []
            if messages:
                tx.waits.lock()  # a wait that begins now sees these, or is seen by them
                open_waits = tx.waits.open()
            for message in messages:
                if stoppable:
                    waits.stop_runs(tx, message, stoppable, "system:stop", now)
                if open_waits:
                    woken += waits.route(tx, message, open_waits, "system:scheduler", now)
                event: dict[str, Any] = {"topic": message.topic, "payload": message.payload,
                                         "run_id": message.run_id}
                for playbook, trigger in subscribers:
                    if not topic_matches(trigger.event, message.topic):
                        continue
                    try:
                        if trigger.when and not templating.evaluate(trigger.when,
                                                                    {"event": event}):
                            continue
                        inputs = templating.render(trigger.inputs, {"event": event})
                        runs.start_run(tx, runs.StartRequest(
                            playbook, inputs, {"event": message.topic, "bus_id": message.id,
                                               "source_run": message.run_id},
                            "system:event", pins=self.registry.pins_for(playbook)), now)
                        started += 1
                    except SoloistError as exc:
                        tx.events.append(NewEvent("trigger.failed", {
                            "playbook": playbook.name, "topic": message.topic,
                            "error": exc.message}, run_id=message.run_id, ts=now))
            tx.bus.mark_processed([m.id for m in messages], now)
        return started, woken

    def wake_waits(self, clock: float, now: float) -> int:
        """End the waits whose deadline has passed on the workspace's clock."""
        with self.store.transaction() as tx:
            return waits.wake_due(tx, clock, "system:scheduler", now)

    def enforce_deadlines(self, now: float) -> int:
        count = 0
        with self.store.transaction() as tx:
            for run in tx.runs.past_deadline(now, 100):
                playbook = self.registry.playbook(run.playbook, run.playbook_version)
                if runs.end_run(tx, run.id, playbook, final_state=RunState.FAILED,
                                error="the run passed its deadline", actor="system:deadline",
                                now=now):
                    count += 1
        return count
