"""The freelancer pack's main job, end to end on the real local servers: the demo's
scenario, with every outcome counted in the servers themselves (messages by Message-ID,
calendar events by UID, invoices by their key, commits by their trailer), and the brief's
provenance in memory. Then `soloist demo` and `soloist init --template freelancer` as a
person runs them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support.studio import studio
from tests_support import soloist

from soloist.demo.freelancer import scenario
from soloist.demo.workspace import REPOSITORY

ADA, BEN, CLEO = "ada@northwind.test", "ben@fernhill.test", "cleo@brightpath.test"


def test_the_studio_wins_and_delivers_each_side_effect_once(tmp_path: Path,
                                                             db_url: str) -> None:
    said: list[str] = []
    with studio(tmp_path / "studio", db_url, say=said.append) as demo:
        ws, servers = demo.ws, demo.servers
        scenario(demo)

        # -- email: every message once, to whom the story says --------------------------
        delivered = servers.delivered_messages()
        assert max(Counter(m.message_id for m in delivered).values()) == 1
        to = Counter(r for m in delivered for r in m.rcpt_tos)
        # first email, questions, invitation, status / first email only / first email,
        # one follow-up, questions, invitation, status
        assert (to[ADA], to[BEN], to[CLEO]) == (4, 1, 5)
        follow_ups = [m for m in delivered if "A quick follow-up" in m.text]
        assert [m.rcpt_tos for m in follow_ups] == [(CLEO,)]
        first_to_cleo = next(m for m in delivered if CLEO in m.rcpt_tos)
        assert follow_ups[0].in_reply_to == first_to_cleo.message_id
        assert "banking apps" not in first_to_cleo.text  # Mara's edit went out
        sent_folder = Counter(m.message_id for m in servers.imap_folder("Sent"))
        assert set(sent_folder) == {m.message_id for m in delivered}
        assert max(sent_folder.values()) == 1

        # -- calendar: two intro calls and five milestones, each once ------------------
        events = servers.calendar_events()
        assert max(Counter(e.uid for e in events).values()) == 1
        summaries = sorted(e.summary for e in events)
        assert sum("Intro call" in s for s in summaries) == 2
        assert sum("Milestone" in s for s in summaries) == 5

        # -- billing: milestone 1's invoice, created once, open, sent once -------------
        invoices = [i for i in servers.invoices() if i.metadata.get("soloist_intent")]
        assert [(i.status, i.amount, i.customer_email) for i in invoices] == [
            ("open", 400000, ADA)]
        assert [s["id"] for s in servers.invoices_sent()] == [invoices[0].id]

        # -- git: MILESTONES.md on each client branch, milestone 1 on Northwind's ------
        northwind = servers.commits(REPOSITORY, "client/northwind-outfitters")
        assert [c.subject for c in northwind if c.intent] == [
            "Milestone 1: The checkout flow", "Northwind Outfitters: milestones"]
        brightpath = servers.commits(REPOSITORY, "client/brightpath")
        assert [c.subject for c in brightpath if c.intent] == ["Brightpath: milestones"]
        intents = [c.intent for c in northwind + brightpath if c.intent]
        assert len(intents) == len(set(intents)) == 3

        # -- memory: the brief, drawn from Ada's answers -------------------------------
        brief = ws.document("projects/northwind-outfitters", "brief")
        assert "Budget: 12000.0 EUR" in brief.text and "Deadline: 2027-03-31" in brief.text
        [source] = brief.metadata["sources"]
        assert source["message_id"] == demo.leads.answers["ada"]
        budget = ws.get_fact("projects/northwind-outfitters", "northwind-outfitters",
                             "budget_eur")
        assert budget is not None and budget.value == 12000.0
        assert budget.sources == [source]
        assert ws.get_fact("leads/fernhill-clinics", BEN, "stage").value == "opted_out"

        # -- compounding: script v1 kept by Ada's run, v2 taken by Cleo's --------------
        qualify = {r.inputs["lead"]["email"]: r for r in ws.runs(playbook="qualify")}
        pinned = {email: run.pins["documents"]["playbooks/discovery-script"]
                  for email, run in qualify.items()}
        assert pinned == {ADA: 1, CLEO: 2}
        questions_to_cleo = [m for m in delivered if CLEO in m.rcpt_tos
                             and "Who decides" in m.text]
        assert len(questions_to_cleo) == 1
        figures = ws.metrics(days=30)
        assert figures["change_lead_time_s"] is not None
        assert figures["completion_rate"] == 1.0

        # -- overrides, the local model's fallbacks, the audit -------------------------
        [edit] = ws.overrides(playbook="outreach")
        assert edit["sources"] == [{"step": "draft", "agent": "acquisition"}]
        assert "banking apps" in edit["before"]["text"]
        assert "banking apps" not in edit["after"]["text"]
        fallbacks = [e for e in ws.log(limit=100_000) if e.kind == "agent.fallback"]
        assert fallbacks and all("fallback.models" in e.data["reason"] for e in fallbacks)
        assert ws.verify().ok
    assert any("verification FAILED" in line for line in said)


def test_soloist_demo_narrates_and_counts_in_the_servers(tmp_path: Path) -> None:
    done = soloist("demo", str(tmp_path / "studio"))
    out = done.stdout
    for line in ("1. Three leads", "2. Ada replies", "3. Ada answers", "4. Mara edits",
                 "5. Delivery for Northwind", "6. What the servers hold"):
        assert line in out
    assert out.count("each once") >= 5 and "TWICE" not in out
    assert "chain intact" in out and "Traceback" not in done.stderr
    assert "soloist up -w" in out
    again = soloist("demo", str(tmp_path / "studio"), check=False)  # it has files now
    assert again.returncode == 1 and "has files; give the demo a new folder" in again.stderr
    assert "Traceback" not in again.stderr and "Soloist demo" not in again.stdout


def test_init_writes_the_freelancer_workspace_and_it_deploys(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    made = soloist("init", "--template", "freelancer", str(root))
    assert "Created workspace" in made.stdout
    for path in ("soloist.toml", "agents/acquisition.yaml", "agents/qualification.yaml",
                 "agents/delivery.yaml", "agents/verifier.yaml", "playbooks/outreach.yaml",
                 "playbooks/qualify.yaml", "playbooks/deliver.yaml",
                 "playbooks/weekly-review.yaml", "memory/playbooks/discovery-script.md",
                 "memory/services/rates.yaml", "tasks.py", ".gitignore"):
        assert (root / path).is_file(), path
    refused = soloist("deploy", "-w", str(root), check=False)
    assert refused.returncode == 1 and "MAIL_PASSWORD" in refused.stderr  # secrets first
    for name in ("MAIL_PASSWORD", "CALDAV_PASSWORD", "STRIPE_KEY"):
        soloist("secret", "set", name, "-w", str(root), input_text="a-long-secret-value")
    deployed = soloist("deploy", "-w", str(root))
    assert "playbook outreach v1" in deployed.stdout
    assert "memory playbooks/discovery-script v1" in deployed.stdout
    unknown = soloist("init", "--template", "florist", str(tmp_path / "x"), check=False)
    assert unknown.returncode == 1
    assert "there is no template 'florist'; choose one of example, freelancer" in unknown.stderr


def test_the_template_follows_maras_edit_in_a_later_draft(tmp_path: Path) -> None:
    with studio(tmp_path / "studio") as demo:
        ws = demo.ws
        demo.outreach()  # Mara cuts Cleo's unbacked sentence at its gate
        later = ws.start("outreach", {
            "name": "Dora Vale", "email": "dora@quillpen.test", "company": "Quillpen",
            "interest": "onboarding", "hook": "I have designed banking apps for ten "
                                              "years."})
        pending = demo.gate(later, "send")  # verified: nothing unbacked is left
        draft = demo.step(later, "draft")
        assert "banking apps" not in draft.output["body"]
        assert "Hi Dora," in pending.intents[0].args["text"]
        [built] = [e.data for e in ws.log(run_id=later)
                   if e.kind == "context.built" and e.step_id == "draft"]
        [edit] = ws.overrides(playbook="outreach")
        assert {"kind": "overrides", "ref": f"event:{edit['id']}"}.items() <= next(
            i for i in built["included"] if i["kind"] == "overrides").items()
