"""The freelancer pack's follow-ups, on real local servers: a silent lead gets exactly two,
in the thread; a reply stops them, even one that arrives while a follow-up waits at its
gate; only a message in the run's thread counts as a reply; the triage only classifies a
lead still in stage contacted. Every count is read from the servers themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.studio import DAY, contact, events, mail_from, received, step_states, studio

from soloist.errors import InvalidState

pytestmark = pytest.mark.slow
ADA, BEN = "ada@northwind.test", "ben@fernhill.test"


def test_a_silent_lead_gets_two_follow_ups_in_the_thread_then_nothing(
        tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url) as demo:
        ws, servers = demo.ws, demo.servers
        run_id = contact(demo, "ben")
        [first] = demo.sent_to(BEN)

        demo.advance(3 * DAY + 60, "no reply in three days")
        demo.approve(demo.gate(run_id, "nudge_1"), "fine")
        demo.state(run_id, "wait_2", "waiting")
        first_nudge = demo.sent_to(BEN)[1]
        assert first_nudge.in_reply_to == first.message_id
        assert first.message_id in first_nudge.references

        demo.advance(4 * DAY + 60, "four more days")
        demo.approve(demo.gate(run_id, "nudge_2"), "fine")
        assert ws.wait(run_id).state == "done"
        second_nudge = demo.sent_to(BEN)[2]
        assert second_nudge.in_reply_to == first_nudge.message_id
        assert "I will leave it here" in second_nudge.text

        demo.advance(7 * DAY, "another week")
        # The run is over: nothing of it is left to wake.
        assert ws.get_run(run_id).state == "done" and not ws.approvals(run_id=run_id)
        sent = demo.sent_to(BEN)
        assert [m.message_id for m in sent] == [first.message_id, first_nudge.message_id,
                                                second_nudge.message_id]
        assert all(servers.delivered()[m.message_id] == 1 for m in sent)
        assert sorted(m.message_id for m in servers.imap_folder("Sent")) == sorted(
            m.message_id for m in sent)


def test_a_reply_while_the_follow_up_waits_at_its_gate_withdraws_it(
        tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url) as demo:
        ws, servers = demo.ws, demo.servers
        run_id = contact(demo, "ada")
        [first] = demo.sent_to(ADA)
        demo.advance(3 * DAY + 60, "three days pass")
        pending = demo.gate(run_id, "nudge_1")
        assert pending.intents[0].args["in_reply_to"] == first.message_id

        demo.email_from("ada", "Thanks Mara, a busy month here. I will come back to you.",
                        first.subject, str(first.message_id))
        assert ws.wait(run_id).state == "done"

        with pytest.raises(InvalidState, match="withdrawn"):
            demo.approve(pending, "too late")
        states = step_states(ws, run_id)
        assert states["nudge_1"] == "skipped" and states["follow_up_2"] == "skipped"
        [stopped] = events(ws, run_id, "run.stopped")
        assert stopped.data["topic"] == "email.received"
        assert "nudge_1" in stopped.data["skipped"] and stopped.data["withdrawn"] == 1
        assert [m.message_id for m in demo.sent_to(ADA)] == [first.message_id]
        assert servers.delivered() == {first.message_id: 1}
        assert [m.message_id for m in servers.imap_folder("Sent")] == [first.message_id]


def test_only_a_message_in_the_runs_thread_is_a_reply(tmp_path: Path, db_url: str) -> None:
    with studio(tmp_path / "studio", db_url) as demo:
        ws = demo.ws
        run_id = contact(demo, "ada")
        [first] = demo.sent_to(ADA)
        ours = str(first.message_id)
        # From the lead, but not answering anything the run sent: a new thread, and an
        # answer to a message of theirs.
        fresh = mail_from(demo, f"Ada Quinn <{ADA}>", "Another question about shipping.",
                          f"Re: {first.subject}")
        theirs = "<spring-catalogue@northwind.test>"
        aside = mail_from(demo, f"Ada Quinn <{ADA}>", "See the catalogue below.",
                          "Fwd: spring catalogue", in_reply_to=theirs, references=[theirs])
        # In the thread by References alone (a client that drops In-Reply-To).
        answer = mail_from(demo, f"Ada Quinn <{ADA}>",
                           "Thanks, I will pass this on to our CTO.", f"Re: {first.subject}",
                           references=[theirs, ours])
        assert ws.wait(run_id).state == "done"

        bus = received(ws)
        assert bus[fresh][1] is None and bus[aside][1] is None
        assert bus[answer][1] == run_id
        # The bus is routed in order: the two before it were seen and did not stop the run.
        [stopped] = events(ws, run_id, "run.stopped")
        assert stopped.data["bus_id"] == bus[answer][0] > max(bus[fresh][0], bus[aside][0])
        [triage] = ws.runs(playbook="triage-reply")  # only replies to the studio start one
        assert ws.wait(triage.id).state == "done"
        assert triage.inputs["message"]["message_id"] == answer
        assert ws.get_fact("leads/northwind-outfitters", ADA, "stage").value == "replied"

        # The lead is no longer in stage contacted: their answer is read for an opt-out only
        # (it is none: no qualification); a colleague was never a lead: not read at all.
        later = mail_from(demo, f"Ada Quinn <{ADA}>", "Yes, we are interested, let's talk!",
                          f"Re: {first.subject}", in_reply_to=ours, references=[ours])
        colleague = mail_from(demo, "Dan Roe <dan@northwind.test>",
                              "No thanks, remove me.", f"Re: {first.subject}",
                              in_reply_to=ours, references=[ours])
        for message_id, read in ((later, "done"), (colleague, "skipped")):
            run = demo.run_of("triage-reply", lambda r, m=message_id: (  # type: ignore[misc]
                r.inputs["message"]["message_id"] == m))
            assert ws.wait(run).state == "done"
            states = step_states(ws, run)
            assert (states["lead"], states["classify"]) == ("done", read)
            assert {states[s] for s in ("record", "opted_out", "interested")} == {"skipped"}
        assert ws.runs(playbook="qualify") == []
        assert ws.get_fact("leads/northwind-outfitters", ADA, "stage").value == "replied"
        assert ws.get_fact("leads/northwind-outfitters", "dan@northwind.test",
                           "stage") is None
        assert [m.message_id for m in demo.sent_to(ADA)] == [first.message_id]
