"""The freelancer pack's stops, on real local servers: a lead who opts out (by replying, or
as an event) gets nothing more, now or from a new outreach; a cancelled project undoes
what its delivery did (the invoice voided, the milestone events removed, the commits
reverted). Every count is read from the servers themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.studio import DAY, OPT_OUT_PLAYBOOK, contact, events, step_states, studio

from soloist.demo.freelancer import ANSWERS_ADA, CHECKOUT_AUDIT
from soloist.demo.workspace import REPOSITORY
from soloist.errors import InvalidState

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
        assert step_states(ws, triage)["opted_out"] == "done"  # lead.opted_out emitted
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

        # A new outreach to them stops at its research, for a person, before any draft,
        # however their address is written and whatever their company is called this time.
        again = ws.start("outreach", {"name": "Ben Ortiz", "email": "Ben@Fernhill.test",
                                      "company": "Fernhill Group"})
        pending = demo.gate(again, "research")
        research = demo.step(again, "research")
        assert research.state == "awaiting_approval"
        reason = f"{BEN} opted out; nothing more is sent to them"
        assert research.error is not None and reason in research.error
        assert reason in pending.approval.message  # what the person is shown
        assert step_states(ws, again)["draft"] == "scheduled"
        assert step_states(ws, again)["send"] == "scheduled"
        assert [m.message_id for m in demo.sent_to(BEN)] == [first.message_id]
        assert {m.message_id for m in demo.servers.imap_folder("Sent")} == {
            m.message_id for m in demo.servers.delivered_messages()}


def test_an_opt_out_event_stops_a_running_outreach_even_at_its_follow_up_gate(
        tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url,
                playbooks={"opt-out.yaml": OPT_OUT_PLAYBOOK}) as demo:
        ws = demo.ws
        run_id = contact(demo, "ada")
        other = contact(demo, "ben")
        demo.advance(3 * DAY + 60, "past the first follow-up")
        pending = demo.gate(run_id, "nudge_1")
        demo.gate(other, "nudge_1")

        ws.start("opt-out", {"email": "Ada@Northwind.TEST"})  # the case of an address varies
        assert ws.wait(run_id).state == "done"
        [stopped] = events(ws, run_id, "run.stopped")
        assert stopped.data["topic"] == "lead.opted_out" and stopped.data["withdrawn"] == 1
        assert {step_states(ws, run_id)[s] for s in FOLLOW_UPS[3:]} == {"skipped"}
        with pytest.raises(InvalidState, match="withdrawn"):
            demo.approve(pending, "too late")

        # Only Ada opted out: Ben's follow-up still waits for Mara, and goes.
        assert ws.get_run(other).state == "running"
        demo.approve(demo.gate(other, "nudge_1"), "fine")
        demo.state(other, "wait_2", "waiting")
        assert len(demo.sent_to(BEN)) == 2
        assert len(demo.sent_to(ADA)) == 1


def test_cancelling_a_project_voids_its_invoice_and_removes_its_milestones(
        tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url) as demo:
        ws, servers = demo.ws, demo.servers
        contact(demo, "ada")
        [first] = demo.sent_to(ADA)
        demo.email_from("ada", "Yes, we are interested. Let's talk!", first.subject,
                        str(first.message_id))
        qualify = demo.run_of("qualify", lambda r: r.inputs["lead"]["email"] == ADA)
        demo.approve(demo.gate(qualify, "ask"))
        demo.state(qualify, "answers", "waiting")
        asked = demo.sent_to(ADA)[-1]
        demo.email_from("ada", ANSWERS_ADA, asked.subject, str(asked.message_id))
        demo.approve(demo.gate(qualify, "invite"))
        demo.approve(demo.gate(qualify, "accept"), "let's do it")
        deliver = demo.run_of("deliver", lambda r: True)
        demo.state(deliver, "m1_ready", "waiting")
        ws.start("milestone-done", {"project": "northwind-outfitters", "milestone": 1,
                                    "files": {"northwind-outfitters/m1/audit.md":
                                              CHECKOUT_AUDIT}})
        demo.approve(demo.gate(deliver, "m1_invoice"), "matches the brief")
        demo.state(deliver, "m1_send", "done")
        demo.state(deliver, "m2_ready", "waiting")

        [invoice] = [i for i in servers.invoices() if i.metadata.get("soloist_intent")]
        assert invoice.status == "open"
        assert [s["id"] for s in servers.invoices_sent()] == [invoice.id]
        events_before = {e.uid: e.summary for e in servers.calendar_events()}
        milestones = {uid for uid, summary in events_before.items() if "Milestone" in summary}
        assert len(milestones) == 3
        branch = "client/northwind-outfitters"
        made = [c for c in servers.commits(REPOSITORY, branch) if c.intent]
        assert [c.subject for c in made] == ["Milestone 1: The checkout flow",
                                             "Northwind Outfitters: milestones"]

        ws.cancel(deliver, actor="person:mara")
        run = ws.wait(deliver)
        assert (run.state, run.error) == ("cancelled", "cancelled by person:mara")
        [compensating] = events(ws, deliver, "run.compensating")
        assert compensating.data["undo"] == ["m1_invoice", "m1_commit", "setup", "plan"]
        states = step_states(ws, deliver)
        assert {states[s] for s in ("plan", "setup", "m1_commit", "m1_invoice")} == {
            "compensated"}
        assert states["m2_ready"] == "cancelled"

        # Billing: the open invoice is void (its being emailed stays in the record).
        assert [(i.id, i.status) for i in servers.invoices()] == [(invoice.id, "void")]
        assert [s["id"] for s in servers.invoices_sent()] == [invoice.id]
        # Calendar: the milestone events are gone by UID; the intro call stays.
        events_after = {e.uid: e.summary for e in servers.calendar_events()}
        assert not milestones & events_after.keys()
        assert events_after == {uid: s for uid, s in events_before.items()
                                if uid not in milestones}
        # Git: nothing is rewritten; each commit is undone by a revert commit on the
        # branch, newest first, each with its own Soloist-Intent trailer.
        after = [c for c in servers.commits(REPOSITORY, branch) if c.intent]
        assert [c.subject for c in after] == [
            'Revert "Northwind Outfitters: milestones"',
            'Revert "Milestone 1: The checkout flow"', *[c.subject for c in made]]
        assert [c.sha for c in after[2:]] == [c.sha for c in made]
        assert [c.intent for c in after[:2]] == [f"{deliver}/compensate:setup/0",
                                                 f"{deliver}/compensate:m1_commit/0"]
        # Memory: the project is no longer in delivery, so Monday brings no status email.
        stage = ws.get_fact("projects/northwind-outfitters", "northwind-outfitters", "stage")
        assert stage is not None and (stage.value, stage.step_id) == (
            "stopped", "compensate:plan")
        sent = len(servers.delivered_messages())
        demo.advance(7 * DAY, "a week, past Monday 09:00")
        status = demo.run_of("status", lambda r: True)
        assert ws.wait(status).state == "done"
        assert demo.step(status, "facts").output == {"projects": []}
        assert step_states(ws, status)["send"] == "skipped"
        assert len(servers.delivered_messages()) == sent
