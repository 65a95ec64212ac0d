"""The freelancer pack's stops, on real local servers: a lead who opts out (by replying, or
as an event) gets nothing more, now or from a new outreach; a cancelled project undoes
what its delivery did (the invoice voided, the milestone events removed, the commits
reverted). Every count is read from the servers themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from studio_cases import DAY, OPT_OUT_PLAYBOOK, contact, events, step_states, studio

from soloist.demo.freelancer import ANSWERS_ADA, CHECKOUT_AUDIT
from soloist.demo.workspace import REPOSITORY

pytestmark = pytest.mark.slow
ADA, BEN = "ada@northwind.test", "ben@fernhill.test"
FOLLOW_UPS = ("wait_1", "follow_up_1", "verify_1", "nudge_1", "wait_2", "follow_up_2",
              "verify_2", "nudge_2")


def test_a_lead_who_replies_remove_me_gets_nothing_more(tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url) as demo:
        ws = demo.ws
        run_id = contact(demo, "ben")
        control = contact(demo, "ada")  # a silent lead: shows when the timers have fired
        [first] = demo.sent_to(BEN)
        reply = demo.email_from("ben", "Hello,\n\nNo thanks, please remove me.\n\nBen",
                                first.subject, str(first.message_id))
        assert ws.wait(run_id).state == "done"
        assert {step_states(ws, run_id)[s] for s in FOLLOW_UPS} == {"skipped"}

        triage = demo.run_of("triage-reply", lambda r: r.inputs["message"]["message_id"]
                             == reply)
        assert ws.wait(triage).state == "done"
        stage = ws.get_fact("leads/fernhill-clinics", BEN, "stage")
        assert stage is not None and stage.value == "opted_out"
        assert stage.sources == [{"kind": "email", "message_id": reply}]
        assert stage.run_id == triage

        demo.advance(3 * DAY + 60, "past the first follow-up")
        demo.approve(demo.gate(control, "nudge_1"), "fine")
        demo.state(control, "wait_2", "waiting")
        demo.advance(4 * DAY + 60, "past the second")
        demo.approve(demo.gate(control, "nudge_2"), "fine")
        assert ws.wait(control).state == "done"
        assert len(demo.sent_to(ADA)) == 3
        assert [m.message_id for m in demo.sent_to(BEN)] == [first.message_id]

        # A new outreach to them stops at its verification, for a person, and sends nothing.
        again = ws.start("outreach", {"name": "Ben Ortiz", "email": BEN,
                                      "company": "Fernhill Clinics"})
        pending = demo.gate(again, "verify")
        verify = demo.step(again, "verify")
        assert verify.state == "awaiting_approval"
        reason = f"{BEN} opted out; nothing more is sent to them"
        assert verify.error is not None and reason in verify.error
        assert reason in pending.approval.message  # what the person is shown
        assert step_states(ws, again)["send"] in ("scheduled", "ready")
        assert [m.message_id for m in demo.sent_to(BEN)] == [first.message_id]
        assert {m.message_id for m in demo.servers.imap_folder("Sent")} == {
            m.message_id for m in demo.servers.delivered_messages()}


def test_an_opt_out_event_stops_a_running_outreach(tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url,
                playbooks={"opt-out.yaml": OPT_OUT_PLAYBOOK}) as demo:
        ws = demo.ws
        run_id = contact(demo, "ada")
        other = contact(demo, "ben")
        ws.start("opt-out", {"email": "Ada@Northwind.TEST"})  # the case of an address varies
        assert ws.wait(run_id).state == "done"
        [stopped] = events(ws, run_id, "run.stopped")
        assert stopped.data["topic"] == "lead.opted_out"
        assert {step_states(ws, run_id)[s] for s in FOLLOW_UPS} == {"skipped"}

        demo.advance(3 * DAY + 60, "past the first follow-up")
        demo.gate(other, "nudge_1")  # the other lead's timer fired; Ada's is gone
        assert ws.approvals(run_id=run_id) == []
        assert len(demo.sent_to(ADA)) == 1
        assert ws.get_run(other).state == "running"
