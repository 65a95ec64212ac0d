"""A freelancer workspace of its own on its own local servers, for the pack's tests: the
demo's workspace, deployed, with a worker and the scheduler running, and helpers to
contact a lead and to have mail arrive from outside."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from soloist.demo.freelancer import DAY, FreelancerDemo, prepare, running
from soloist.demo.workspace import servers_for, write_workspace
from soloist.workspace import Workspace

__all__ = ["DAY", "LEADS", "OPT_OUT_PLAYBOOK", "contact", "events", "mail_from", "received",
           "step_states", "studio"]

#: (name, email, company, interest, hook) of leads whose first draft passes verification
LEADS = {
    "ada": ("Ada Quinn", "ada@northwind.test", "Northwind Outfitters", "checkout",
            "I loved the new spring catalogue."),
    "ben": ("Ben Ortiz", "ben@fernhill.test", "Fernhill Clinics", "design system", ""),
}

#: A way for the operator to record an opt-out heard elsewhere (a call, a form): the
#: ``lead.opted_out`` event the outreach runs stop on.
OPT_OUT_PLAYBOOK = """\
name: opt-out
description: A lead opted out by another way than a reply (a call, a form).
inputs:
  type: object
  required: [email]
  properties:
    email: {type: string}
triggers: [manual]
steps:
  - id: announce
    emit: lead.opted_out
    args: {email: "{{ inputs.email }}", reason: "they asked on the phone"}
"""


@contextmanager
def studio(root: Path, db_url: str | None = None, *,
           playbooks: dict[str, str] | None = None,
           say: Callable[[str], None] | None = None) -> Iterator[FreelancerDemo]:
    """The demo's workspace in ``root`` (and any extra ``playbooks``, by file name) on
    fresh servers and the database ``db_url`` (default: the workspace's own), deployed and
    running; ``say`` hears what the demo's acts would narrate."""
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    with servers_for(root) as servers:
        write_workspace(root, servers)
        for name, text in (playbooks or {}).items():
            (root / "playbooks" / name).write_text(text)
        with Workspace(root, database_url=db_url) as ws:
            prepare(ws, servers)
            demo = FreelancerDemo(root, servers, ws, say or (lambda *_: None))
            with running(ws):
                yield demo


def contact(demo: FreelancerDemo, lead: str) -> str:
    """An outreach run for one of :data:`LEADS`, its first email approved and sent; it
    then waits 3 days for a reply. Its run id."""
    name, address, company, interest, hook = LEADS[lead]
    run_id = demo.ws.start("outreach", {"name": name, "email": address, "company": company,
                                        "interest": interest, "hook": hook})
    demo.leads.runs[lead], demo.leads.emails[lead] = run_id, address
    demo.approve(demo.gate(run_id, "send"), "reads well")
    demo.state(run_id, "wait_1", "waiting")
    return run_id


def mail_from(demo: FreelancerDemo, sender: str, text: str, subject: str, *,
              in_reply_to: str | None = None, references: Sequence[str] = ()) -> str:
    """A real message into the studio's INBOX with exactly the threading headers given,
    then the mailbox polled; its Message-ID."""
    return demo.arrive(sender, text, subject, in_reply_to=in_reply_to,
                       references=references)


def step_states(ws: Workspace, run_id: str) -> dict[str, str]:
    return {s.step_id: s.state for s in ws.show(run_id).steps}


def events(ws: Workspace, run_id: str, kind: str) -> list[Any]:
    return [e for e in ws.log(run_id) if e.kind == kind]


def received(ws: Workspace) -> dict[str, tuple[int, str | None]]:
    """Each ``email.received`` on the bus, by Message-ID: its bus id and the run it was
    found to answer."""
    with ws.store.read() as tx:
        found = tx.waits.bus_since(["email.received"], 0.0)
    return {m["payload"]["message"]["message_id"]: (m["id"], m["payload"]["reply_to_run"])
            for m in found}
