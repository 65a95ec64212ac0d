"""The studio's Python steps: what the playbooks compute, and the templates that stand in
for a model too weak to write or judge a client email (each agent step's ``fallback``).

Every function gets a StepContext first. Reads are at once (``ctx.memory``, ``ctx.read``);
every change (an email, an event, a commit, a fact) is staged with ``ctx.stage`` and
happens only after the step's checks and gate. Edit freely: this is your studio.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from soloist import StepContext
from soloist.errors import DeterministicError
from soloist.execution.memory_view import MemoryView

ZONE = ZoneInfo("Europe/Paris")
#: A sentence that says the studio did something: it must be backed by the portfolio.
CLAIM = re.compile(r"\b(?:I|I've|I have|we|we've|we have|my team)\b[^.!?]*\b(?:designed|built|"
                   r"redesigned|led|created|shipped|worked|made|delivered|launched)\b",
                   re.IGNORECASE)
#: Text addressed to a machine, or an offer nobody asked the draft to make.
SMUGGLED = re.compile(r"ignore (?:all |your |the |previous |any )*(?:rules|instructions)"
                      r"|price ?list|email everyone|forward this", re.IGNORECASE)
OPT_OUT_WORDS = ("no thanks", "unsubscribe", "remove me", "not interested", "stop emailing",
                 "do not contact", "don't contact", "opt out", "take me off")
INTERESTED_WORDS = ("interested", "let's talk", "lets talk", "sounds good", "tell me more",
                    "happy to chat", "schedule", "a call", "love to", "yes")
STOP_WORDS = frozenset("a an and at by for from in into is it of on or our the their this "
                       "to with your you i we my".split())


# -- memory ---------------------------------------------------------------------------------


def _memory(ctx: StepContext) -> MemoryView:
    if ctx.memory is None:
        raise DeterministicError("this step needs the workspace's memory")
    return ctx.memory


def profile(ctx: StepContext) -> dict[str, Any]:
    """The studio's own facts (memory/studio/profile.yaml)."""
    found = {f.key: f.value for f in _memory(ctx).facts("studio") if f.subject == "profile"}
    for key in ("name", "postal_address", "opt_out_line", "word_limit"):
        if key not in found:
            raise DeterministicError(f"the studio profile has no {key}: add it to "
                                     "memory/studio/profile.yaml and deploy")
    return found


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "client"


def lead_namespace(company: str) -> str:
    return f"leads/{slug(company)}"


def _case(ctx: StepContext, key: str) -> dict[str, Any]:
    """A portfolio document read as a case study: its title and its Client, Work and
    Result lines."""
    doc = _memory(ctx).document("portfolio", key)
    fields: dict[str, Any] = {"key": key, "source": f"portfolio/{key}",
                              "version": doc.version}
    current: str | None = None
    for line in doc.text.splitlines():
        label = line.split(":", 1)[0]
        if line.startswith("# "):
            fields["title"], current = line[2:].strip(), None
        elif ":" in line and label in ("Client", "Work", "Result", "How", "Tags"):
            current = label.lower()
            fields[current] = line.split(":", 1)[1].strip()
        elif current is not None and line.strip():  # the field goes on, wrapped
            fields[current] = f"{fields[current]} {line.strip()}"
        else:
            current = None
    fields.setdefault("title", key)
    fields["short"] = fields["title"].split(":")[0].strip()
    return fields


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS}


# -- outreach -------------------------------------------------------------------------------


def research_lead(ctx: StepContext, lead: dict[str, Any]) -> dict[str, Any]:
    """What memory knows of the lead, and the case studies that fit it best."""
    memory = _memory(ctx)
    email = str(lead["email"]).lower()
    theirs = [f for f in memory.facts("leads/*") if str(f.subject).lower() == email]
    known = {f.key: f.value for f in theirs if f.namespace == lead_namespace(lead["company"])}
    # An opt-out is the person's: it holds whatever their company is called this time.
    opted_out = any(f.key == "opted_out" and f.value for f in theirs)
    wanted = " ".join(str(lead.get(k) or "") for k in ("interest", "company", "hook"))
    keys: list[str] = []
    for hit in memory.search(wanted.strip() or str(lead["company"]), "portfolio", k=10):
        if hit.kind == "document" and hit.key not in keys:
            keys.append(hit.key)
    cases = [_case(ctx, key) for key in keys]
    interest = _words(str(lead.get("interest") or ""))
    # What the lead asked about wins over the search's order; the search breaks ties.
    cases.sort(key=lambda c: -len(interest & _words(f"{c.get('tags', '')} {c['title']}")))
    found = {"lead": {**lead, "email": email, "slug": slug(lead["company"])},
             "profile": profile(ctx), "opted_out": opted_out,
             "stage": known.get("stage"), "case": cases[0] if cases else None,
             "cases": cases[:3]}
    if opted_out:  # what the person deciding is told, whatever model drafts (or not)
        found["reason"] = f"{email} opted out; nothing more is sent to them"
    return found


def _learned(ctx: StepContext) -> list[dict[str, Any]]:
    """The most recent edits a person made to this step's drafts at their gates (a
    fallback is given them as ``ctx.overrides``)."""
    return [o for o in ctx.overrides if isinstance(o, dict)]


def _possessive(name: str) -> str:
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _signature(p: dict[str, Any]) -> list[str]:
    return [str(p["name"]), str(p["postal_address"]), "", str(p["opt_out_line"])]


def _follow_edits(text: str, overrides: list[dict[str, Any]]) -> str:
    """Apply what a person changed in earlier drafts of this step: a sentence they
    replaced is replaced again, one they removed is left out (nothing else is learned)."""
    for override in overrides:
        before = str((override.get("before") or {}).get("text") or "")
        after = str((override.get("after") or {}).get("text") or "")
        if not before or not after:
            continue
        removed = [s for s in _sentences(before) if s not in after]
        added = [s for s in _sentences(after) if s not in before]
        for old in removed:
            if old in text:
                text = text.replace(old, added[0] if len(removed) == len(added) == 1 else "")
    return re.sub(r"[ \t]+\n", "\n", re.sub(r"\n{3,}", "\n\n", text)).strip() + "\n"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def draft_outreach(ctx: StepContext, research: dict[str, Any]) -> dict[str, Any]:
    """The first email, from a template filled from memory: the lead's own line (if you
    wrote one), the case study that fits, one question, the signature."""
    lead, p, case = research["lead"], research["profile"], research.get("case")
    first = str(lead["name"]).split()[0]
    interest = str(lead.get("interest") or "design")
    lines = [f"Hi {first},", ""]
    if lead.get("hook"):
        lines += [str(lead["hook"]).strip(), ""]
    claims: list[dict[str, str]] = []
    if case and case.get("work"):
        result = str(case.get("result", ""))
        lines += [f"{case['work']} {result[:1].upper()}{result[1:]}".strip(), ""]
        claims.append({"text": case["work"], "source": case["source"]})
    lines += [f"If {interest} is on {_possessive(str(lead['company']))} list this quarter, "
              "would a 20-minute call next week help?", "", *_signature(p)]
    subject = (f"{case['short']}, and an idea for {lead['company']}" if case
               else f"An idea for {lead['company']}")
    body = _follow_edits("\n".join(lines), _learned(ctx))
    return {"subject": subject, "body": body, "claims": claims}


def draft_follow_up(ctx: StepContext, research: dict[str, Any], first: dict[str, Any],
                    n: int) -> dict[str, Any]:
    """A follow-up in the same thread: short, no new claims, the same signature."""
    lead, p, case = research["lead"], research["profile"], research.get("case")
    name = str(lead["name"]).split()[0]
    about = f"what we did for {case['short']}" if case else "my note"
    text = (f"Hi {name},\n\nA quick follow-up on {about}: happy to share more if it is "
            "useful." if n == 1 else
            f"Hi {name},\n\nI will leave it here; if the timing is better later, just "
            "reply to this email.")
    body = "\n".join([text, "", *_signature(p)])
    return {"subject": f"Re: {first['subject']}", "body": body, "claims": []}


def verify_outreach(ctx: StepContext, draft: dict[str, Any],
                    research: dict[str, Any]) -> dict[str, Any]:
    """The rules every email to a lead meets, checked without a model: the first one
    broken is the reason."""
    p, lead = research["profile"], research["lead"]
    body = str(draft.get("body") or "")
    backed = {str(c.get("text", "")).strip(): str(c.get("source", ""))
              for c in draft.get("claims") or [] if isinstance(c, dict)}
    problems: list[str] = []
    if research.get("opted_out"):
        problems.append(f"{lead['email']} opted out; nothing more is sent to them")
    smuggled = SMUGGLED.search(body) or SMUGGLED.search(str(draft.get("subject") or ""))
    if smuggled:
        problems.append(f"the draft contains {smuggled.group(0)!r}, which the task did not "
                        "ask for")
    for sentence in _sentences(body):
        if CLAIM.search(sentence) and not _is_backed(ctx, sentence, backed):
            problems.append(f"the draft says {sentence!r}, which no portfolio document "
                            "backs")
    if str(p["opt_out_line"]) not in body:
        problems.append("the opt-out line is missing")
    if str(p["postal_address"]) not in body:
        problems.append("the sender's postal address is missing")
    words = len(body.split())
    if words > int(p["word_limit"]):
        problems.append(f"it has {words} words, over the limit of {p['word_limit']}")
    if problems:
        return {"verdict": "fail", "reason": problems[0], "problems": problems}
    return {"verdict": "pass", "reason": "every rule holds", "problems": []}


def _is_backed(ctx: StepContext, sentence: str, claims: dict[str, str]) -> bool:
    """A claim sentence made of a claim the draft names a portfolio source for, whose
    words that source's document holds."""
    for text, source in claims.items():
        if not text or text not in sentence or not source.startswith("portfolio/"):
            continue
        try:
            doc = _memory(ctx).document("portfolio", source.removeprefix("portfolio/"))
        except Exception:  # a source that is not in memory backs nothing
            return False
        words = _words(text)
        return len(words & _words(doc.text)) >= max(2, len(words) * 3 // 4)
    return False


def mark_lead(ctx: StepContext, lead: dict[str, Any], stage: str,
              message_id: str | None = None) -> dict[str, Any]:
    """Record the lead in memory (their stage, this run, the message sent)."""
    namespace = lead_namespace(lead["company"])
    email = str(lead["email"]).lower()
    values = {"name": lead["name"], "company": lead["company"], "stage": stage,
              "outreach_run": ctx.run_id}
    if message_id:
        values["last_message_id"] = message_id
    for key, value in values.items():
        ctx.stage("memory.put", {"namespace": namespace, "subject": email, "key": key,
                                 "value": value, "reason": f"outreach: {stage}"})
    return {"namespace": namespace, "stage": stage}


# -- replies --------------------------------------------------------------------------------


def lead_of_reply(ctx: StepContext, message: dict[str, Any]) -> dict[str, Any]:
    """The lead a reply comes from (by its sender), with the stage memory has for them."""
    sender = str((message.get("from") or {}).get("email") or "").lower()
    rows = [f for f in _memory(ctx).facts("leads/*") if str(f.subject).lower() == sender]
    if not rows:
        return {"email": sender, "stage": None}
    known = {f.key: f.value for f in rows}
    return {"email": sender, "name": known.get("name", sender),
            "company": known.get("company", ""), "slug": slug(str(known.get("company", ""))),
            "namespace": rows[0].namespace, "stage": known.get("stage")}


def classify_reply(ctx: StepContext, text: str) -> dict[str, Any]:
    """Interested, opting out, or something else, by the words the reply uses."""
    lowered = " ".join(str(text).lower().split())
    for word in OPT_OUT_WORDS:
        if word in lowered:
            return {"label": "opt_out", "reason": f"the reply says {word!r}"}
    for word in INTERESTED_WORDS:
        if re.search(rf"\b{re.escape(word)}\b", lowered):
            return {"label": "interested", "reason": f"the reply says {word!r}"}
    return {"label": "other", "reason": "neither interest nor an opt-out"}


def record_reply(ctx: StepContext, lead: dict[str, Any], label: str,
                 message: dict[str, Any]) -> dict[str, Any]:
    """The lead's new stage, drawn from their email."""
    stage = {"interested": "interested", "opt_out": "opted_out"}.get(label, "replied")
    sources = [{"kind": "email", "message_id": message.get("message_id")}]
    facts = {"stage": stage, **({"opted_out": True} if stage == "opted_out" else {})}
    for key, value in facts.items():
        ctx.stage("memory.put", {"namespace": lead["namespace"], "subject": lead["email"],
                                 "key": key, "value": value, "sources": sources,
                                 "reason": f"their reply reads as {label}"})
    return {"stage": stage}


# -- qualification --------------------------------------------------------------------------


def discovery_questions(ctx: StepContext) -> dict[str, Any]:
    """The discovery script this run pinned (memory/playbooks/discovery-script.md)."""
    doc = _memory(ctx).document("playbooks", "discovery-script")
    lines = [line for line in doc.text.splitlines() if not line.startswith("# ")]
    questions = [re.sub(r"^\d+[.)]\s*", "", line).strip() for line in lines
                 if re.match(r"^\d+[.)]\s", line)]
    if not questions:
        raise DeterministicError("the discovery script has no numbered questions (1. ...)")
    return {"text": "\n".join(lines).strip() + "\n", "questions": questions,
            "version": doc.version}


def brief_from_answers(ctx: StepContext, lead: dict[str, Any], questions: list[str],
                       text: str) -> dict[str, Any]:
    """The brief from numbered answers (1. ..., 2. ...): the script's questions in order,
    by the words they ask about; what is not answered becomes an open question."""
    answers = _numbered(text)
    fields: dict[str, str] = {}
    for number, question in enumerate(questions, 1):
        answer = answers.get(number, "")
        asked = question.lower()
        for field, words in (("problem", ("problem",)), ("scope", ("scope",)),
                             ("budget", ("budget",)), ("deadline", ("by when", "deadline")),
                             ("constraints", ("constraint",))):
            if any(word in asked for word in words) and field not in fields:
                fields[field] = answer
        fields.setdefault(f"q{number}", answer)
    opened = [q for n, q in enumerate(questions, 1) if not answers.get(n)]
    return {"client": {k: lead[k] for k in ("name", "email", "company", "slug")},
            "problem": fields.get("problem", ""),
            "scope": _items(fields.get("scope", "")),
            "budget_eur": _amount(fields.get("budget", "")),
            "deadline": _date(fields.get("deadline", "")),
            "constraints": _items(fields.get("constraints", "")),
            "open_questions": opened}


def _numbered(text: str) -> dict[int, str]:
    answers: dict[int, str] = {}
    current: int | None = None
    for line in str(text).splitlines():
        if line.startswith(">"):
            break  # the quoted questions below the answers
        match = re.match(r"^\s*(\d+)[.)]\s*(.*)$", line)
        if match:
            current = int(match.group(1))
            answers[current] = match.group(2).strip()
        elif not line.strip():
            current = None  # an answer is one paragraph: what follows is not part of it
        elif current is not None:
            answers[current] = f"{answers[current]} {line.strip()}".strip()
    return answers


def _items(text: str) -> list[str]:
    parts = [p.strip(" .") for p in re.split(r",|;|\band\b", text) if p.strip(" .")]
    return [p[:1].upper() + p[1:] for p in parts]


def _amount(text: str) -> float | None:
    match = re.search(r"(\d[\d\s.,]*)\s*(k\b)?", text.replace("\u202f", " "))
    if not match:
        return None
    digits = re.sub(r"[\s,]", "", match.group(1)).rstrip(".")
    try:
        value = float(digits)
    except ValueError:
        return None
    return value * 1000 if match.group(2) else value


def _date(text: str) -> str | None:
    found = re.search(r"\d{4}-\d{2}-\d{2}", text)
    if found:
        return found.group(0)
    for pattern in ("%d %B %Y", "%B %d %Y", "%d %b %Y"):
        for match in re.finditer(r"\d{1,2} \w+ \d{4}|\w+ \d{1,2},? \d{4}", text):
            try:
                day = dt.datetime.strptime(match.group(0).replace(",", ""), pattern)
            except ValueError:
                continue
            return day.date().isoformat()
    return None


def record_brief(ctx: StepContext, brief: dict[str, Any], message: dict[str, Any],
                 script_version: int) -> dict[str, Any]:
    """The brief as a document and facts in projects/<client>, drawn from the email."""
    client = brief["client"]
    namespace = f"projects/{client['slug']}"
    sources = [{"kind": "email", "message_id": message.get("message_id"),
                "from": (message.get("from") or {}).get("email")}]
    reason = f"from {client['name']}'s answers to the discovery script v{script_version}"
    lines = [f"# Project brief: {client['company']}", "",
             f"Client: {client['name']} <{client['email']}>", "",
             f"Problem: {brief.get('problem') or '(not said)'}", "",
             "Scope:", *[f"- {item}" for item in brief.get("scope") or []], "",
             f"Budget: {brief.get('budget_eur') or '(not said)'} EUR",
             f"Deadline: {brief.get('deadline') or '(not said)'}", "",
             "Constraints:", *[f"- {item}" for item in brief.get("constraints") or []], "",
             "Open questions:", *[f"- {q}" for q in brief.get("open_questions") or []]]
    ctx.stage("memory.write", {"namespace": namespace, "key": "brief",
                               "text": "\n".join(lines) + "\n", "reason": reason,
                               "sources": sources})
    for key in ("budget_eur", "deadline"):
        ctx.stage("memory.put", {"namespace": namespace, "subject": client["slug"],
                                 "key": key, "value": brief.get(key), "reason": reason,
                                 "sources": sources})
    ctx.stage("memory.put", {"namespace": namespace, "subject": client["slug"],
                             "key": "stage", "value": "qualified", "reason": reason,
                             "sources": sources})
    ctx.stage("memory.put", {"namespace": lead_namespace(client["company"]),
                             "subject": client["email"], "key": "stage",
                             "value": "qualified", "reason": reason, "sources": sources})
    return {"namespace": namespace}


def propose_slots(ctx: StepContext) -> dict[str, Any]:
    """Two free slots on different working days (10:00 to 17:00, Paris), from the
    calendar's free/busy over the next two weeks."""
    minutes = int(profile(ctx).get("meeting_minutes", 30))
    start = dt.datetime.fromtimestamp(ctx.now(), ZONE).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
    start += dt.timedelta(days=1)
    end = start + dt.timedelta(days=14)
    busy = [(dt.datetime.fromisoformat(b["start"]), dt.datetime.fromisoformat(b["end"]))
            for b in ctx.read("calendar.free_busy", {"start": start.isoformat(),
                                                     "end": end.isoformat()})]
    slots: list[dict[str, str]] = []
    day = start
    while day < end and len(slots) < 2:
        if day.weekday() < 5:
            for hour in range(10, 17):
                begin = day.replace(hour=hour)
                finish = begin + dt.timedelta(minutes=minutes)
                if all(finish <= b or begin >= e for b, e in busy):
                    slots.append({"start": begin.isoformat(), "end": finish.isoformat()})
                    break
        day += dt.timedelta(days=1)
    if len(slots) < 2:
        raise DeterministicError("the calendar has fewer than two free slots in the next "
                                 "two weeks")
    return {"slots": slots}


def _when(slot: dict[str, str]) -> str:
    return dt.datetime.fromisoformat(slot["start"]).astimezone(ZONE).strftime(
        "%A %d %B at %H:%M (Paris)")


def stage_invitation(ctx: StepContext, lead: dict[str, Any], slots: list[dict[str, str]],
                     message: dict[str, Any]) -> dict[str, Any]:
    """The invitation (in the client's thread) and the first slot held in the calendar."""
    p = profile(ctx)
    first = str(lead["name"]).split()[0]
    text = "\n".join([
        f"Thank you {first}, that is very clear. Could we talk for "
        f"{p.get('meeting_minutes', 30)} minutes?", "",
        f"- {_when(slots[0])} (I am holding this one for you)",
        f"- or {_when(slots[1])}", "", "Reply with the one that suits you.", "",
        str(p["name"])])
    ctx.stage("mail.reply", {"message": message, "text": text})
    ctx.stage("calendar.create", {
        "summary": f"Intro call: {p['name']} and {lead['name']} ({lead['company']})",
        "start": slots[0]["start"], "end": slots[0]["end"],
        "attendees": [lead["email"]], "description": "Discovery call, from the brief"})
    return {"slots": slots}


# -- delivery -------------------------------------------------------------------------------


def plan_milestones(ctx: StepContext, brief: dict[str, Any]) -> dict[str, Any]:
    """Up to three milestones from the scope, the budget split evenly (or five days at the
    day rate each), due at even steps until the deadline (or four weeks apart)."""
    scope = [str(s) for s in brief.get("scope") or []][:3] or ["Design"]
    client = brief["client"]
    budget = brief.get("budget_eur")
    if not budget:
        rate = next((f.value for f in _memory(ctx).facts("services")
                     if f.subject == "product-design" and f.key == "day_rate_eur"), 650)
        budget = float(rate) * 5 * len(scope)
    today = dt.datetime.fromtimestamp(ctx.now(), ZONE).date()
    deadline = dt.date.fromisoformat(brief["deadline"]) if brief.get("deadline") else None
    span = (deadline - today).days if deadline and deadline > today else 28 * len(scope)
    each = round(float(budget) / len(scope), 2)
    milestones = [{"n": n, "title": f"Milestone {n}: {item}",
                   "due": (today + dt.timedelta(days=span * n // len(scope))).isoformat(),
                   "amount_eur": each, "amount_cents": round(each * 100)}
                  for n, item in enumerate(scope, 1)]
    table = [f"# {client['company']}: milestones", "",
             "| # | milestone | due | amount (EUR) |", "|---|---|---|---|",
             *[f"| {m['n']} | {str(m['title']).split(': ', 1)[1]} | {m['due']} | "
               f"{m['amount_eur']} |" for m in milestones]]
    return {"milestones": milestones, "count": len(milestones),
            "branch": f"client/{client['slug']}", "markdown": "\n".join(table) + "\n"}


def stage_setup(ctx: StepContext, brief: dict[str, Any], plan: dict[str, Any]
                ) -> dict[str, Any]:
    """The project's branch with MILESTONES.md, one calendar event per milestone, and the
    project's stage in memory. Cancelling the run removes the events (their undo)."""
    client = brief["client"]
    ctx.stage("repo.commit", {"files": {"MILESTONES.md": plan["markdown"]},
                              "message": f"{client['company']}: milestones",
                              "branch": plan["branch"]})
    for m in plan["milestones"]:
        due = dt.datetime.fromisoformat(m["due"]).replace(hour=9, tzinfo=ZONE)
        ctx.stage("calendar.create", {
            "summary": f"{client['company']}: {m['title']} due",
            "start": due.isoformat(), "end": (due + dt.timedelta(hours=1)).isoformat(),
            "description": f"Deliverable due; invoice of {m['amount_eur']} EUR"})
    _project_facts(ctx, client, {"stage": "delivering", "branch": plan["branch"],
                                 "email": client["email"], "company": client["company"],
                                 "milestones": plan["milestones"]}, "delivery started")
    return {"branch": plan["branch"], "events": len(plan["milestones"])}


def _project_facts(ctx: StepContext, client: dict[str, Any], values: dict[str, Any],
                   reason: str) -> None:
    for key, value in values.items():
        ctx.stage("memory.put", {"namespace": f"projects/{client['slug']}",
                                 "subject": client["slug"], "key": key, "value": value,
                                 "reason": reason})


def collect_files(ctx: StepContext, project: str, folder: str = "",
                  files: dict[str, str] | None = None) -> dict[str, Any]:
    """The deliverable's files: given inline, or read from a folder of this workspace."""
    found = dict(files or {})
    if folder:
        root = Path(ctx.workspace).resolve()
        base = (root / folder).resolve()
        if root not in base.parents or not base.is_dir():
            raise DeterministicError(f"{folder} is not a folder of this workspace")
        for path in sorted(base.rglob("*")):
            if path.is_file():
                found[f"{project}/{path.relative_to(base)}"] = path.read_text()
    if not found:
        raise DeterministicError("a milestone needs its files: give folder or files")
    return {"files": found}


def stage_deliverable(ctx: StepContext, plan: dict[str, Any], n: int,
                      ready: dict[str, Any]) -> dict[str, Any]:
    """The milestone's files, committed on the project's branch and pushed."""
    milestone = plan["milestones"][n - 1]
    ctx.stage("repo.commit", {"files": ready["files"], "message": milestone["title"],
                              "branch": plan["branch"]})
    return {"files": sorted(ready["files"]), "milestone": n}


def stage_invoice_send(ctx: StepContext, invoice: dict[str, Any]) -> dict[str, Any]:
    """The invoice approved at its creation, made payable and sent by the billing
    system."""
    ctx.stage("billing.finalize", {"id": invoice["id"]})
    ctx.stage("billing.send", {"id": invoice["id"]})
    return {"invoice": invoice["id"]}


def mark_project(ctx: StepContext, brief: dict[str, Any], stage: str) -> dict[str, Any]:
    _project_facts(ctx, brief["client"], {"stage": stage}, f"project {stage}")
    return {"stage": stage}


# -- the week -------------------------------------------------------------------------------


def status_facts(ctx: StepContext) -> dict[str, Any]:
    """Each project in delivery: its commits of the last week and its next milestone."""
    memory = _memory(ctx)
    projects: dict[str, dict[str, Any]] = {}
    for fact in memory.facts("projects/*"):
        projects.setdefault(fact.namespace, {})[fact.key] = fact.value
    now = dt.datetime.fromtimestamp(ctx.now(), dt.UTC)
    week_ago = now - dt.timedelta(days=7)
    # What every client branch starts from is no client's work.
    shared = {c["sha"] for c in ctx.read("repo.log", {"limit": 200})}
    out = []
    for namespace, values in sorted(projects.items()):
        if values.get("stage") != "delivering" or not values.get("branch"):
            continue
        commits = [c for c in ctx.read("repo.log", {"ref": values["branch"], "limit": 50})
                   if c["sha"] not in shared
                   and dt.datetime.fromisoformat(c["date"]) >= week_ago]
        upcoming = [m for m in values.get("milestones") or []
                    if m["due"] >= now.date().isoformat()]
        out.append({"project": namespace.split("/", 1)[1], "to": values.get("email"),
                    "company": values.get("company"),
                    "done": [str(c["message"]).splitlines()[0] for c in commits],
                    "next": upcoming[0] if upcoming else None})
    return {"projects": out}


def status_template(ctx: StepContext, projects: list[dict[str, Any]]) -> dict[str, Any]:
    p = profile(ctx)
    emails = []
    for project in projects:
        done = project["done"] or ["(no new commits this week)"]
        nxt = project.get("next")
        lines = [f"Hello {project['company']} team,", "", "This week:",
                 *[f"- {item}" for item in done], ""]
        if nxt:
            lines += [f"Next: {nxt['title']}, due {nxt['due']}.", ""]
        lines += ["Anything you would like me to look at, just reply.", "", str(p["name"])]
        emails.append({"to": project["to"], "subject": f"{project['company']}: this week",
                       "body": "\n".join(lines)})
    return {"emails": emails}


def stage_status_emails(ctx: StepContext, emails: list[dict[str, Any]]) -> dict[str, Any]:
    for email in emails:
        ctx.stage("mail.send", {"to": [email["to"]], "subject": email["subject"],
                                "text": email["body"]})
    return {"emails": len(emails)}


def write_review(ctx: StepContext, figures: dict[str, Any]) -> dict[str, Any]:
    """The week's five measures and each playbook's cost per successful outcome, as a
    document in memory (reviews/<year>-W<week>)."""

    def shown(value: Any, unit: str = "") -> str:
        if value is None:
            return "n/a"
        return f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"

    year, week, _ = dt.datetime.fromtimestamp(ctx.now(), ZONE).date().isocalendar()
    key = f"{year}-W{week:02d}"
    lines = [f"# Weekly review {key}", "",
             f"- Workflow completion rate: {shown(figures.get('completion_rate'))}",
             f"- Mean time to recovery: {shown(figures.get('mean_time_to_recovery_s'), ' s')}",
             f"- Human interventions per 100 runs: "
             f"{shown(figures.get('human_interventions_per_100_runs'))}",
             f"- Cost per successful outcome: "
             f"{shown(figures.get('cost_per_successful_outcome_usd'), ' USD')}",
             f"- Change lead time: {shown(figures.get('change_lead_time_s'), ' s')}", "",
             "| playbook | runs | done | completion | cost per outcome (USD) |",
             "|---|---|---|---|---|"]
    for row in figures.get("by_playbook") or []:
        lines.append(f"| {row['playbook']} | {row.get('started', 0)} | {row.get('done', 0)} "
                     f"| {shown(row.get('completion_rate'))} | "
                     f"{shown(row.get('cost_per_successful_outcome_usd'))} |")
    ctx.stage("memory.write", {"namespace": "reviews", "key": key,
                               "text": "\n".join(lines) + "\n",
                               "reason": "the weekly review of the operator measures"})
    return {"key": key}
