"""The longer parts of a few workspace services, kept out of the composition root:
a diff of two versions, an edit at a gate checked against its tool, and acting on every
run a filter matches at the count a person confirmed."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from soloist.errors import InputError, InvalidState, NotFound, StepFailure
from soloist.orchestration.lifecycle import RunState
from soloist.store.base import RunFilter, RunRow
from soloist.workspace.listing import matching_ids

if TYPE_CHECKING:
    from soloist.workspace.core import Workspace


def diff_versions(ws: Workspace, kind: str, name: str, old: int, new: int) -> str:
    """What changed from version ``old`` to ``new``: a unified diff of the two
    definitions as YAML."""
    import yaml

    rows = {row.version: row for row in ws.history(kind, name)}
    for version in (old, new):
        if version not in rows:
            raise NotFound(f"{kind} {name!r} has no version {version}; it has "
                           f"{', '.join(str(v) for v in sorted(rows))}")

    def lines(version: int) -> list[str]:
        text = yaml.safe_dump(rows[version].body, sort_keys=False, allow_unicode=True)
        return text.splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), f"{name} v{old}",
                                        f"{name} v{new}"))


def checked_edit(ws: Workspace, approval_id: str, idx: int, args: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """``args`` for intent ``idx`` of the approval, if its tool takes them (the same check
    as when a step stages an intent); an :class:`InputError` naming the intent if not."""
    with ws.store.read() as tx:
        approval = tx.approvals.get(approval_id)
        staged = [] if approval is None else [
            i for i in tx.intents.for_step(approval.run_id, approval.step_id)
            if i.idx == idx and i.status == "staged"]
    if approval is None:
        raise NotFound(f"no approval {approval_id!r}; `soloist approvals` lists the open "
                       "ones")
    if not staged:
        raise InputError(f"approval {approval_id} has no staged intent {idx} to edit",
                         field=f"edits.{idx}")
    try:
        ws.tools.get(staged[0].tool).admit(args, str(ws.root))
    except StepFailure as error:
        raise InputError(f"the edit of intent {idx} is refused: {error.message}",
                         field=f"edits.{idx}") from None
    return dict(args)


def bulk(ws: Workspace, match: RunFilter, state: RunState, confirm: int,
         act: Callable[[str, str | None], RunRow], actor: str | None
         ) -> tuple[list[str], dict[str, str]]:
    """``act`` on every ``state`` run ``match`` matches, if they are ``confirm`` runs."""
    if match.state not in (None, state):
        raise InputError(f"this acts on {state} runs only; drop the state filter or make "
                         f"it {state!r}")
    ids = matching_ids(ws.store, replace(match, state=state), 10_000)
    if len(ids) != confirm:
        raise InvalidState(f"the filter matches {len(ids)} {state} runs now, not the "
                           f"{confirm} confirmed; look again and confirm that count")
    done, skipped = [], {}
    for run_id in ids:
        try:
            act(run_id, actor)
            done.append(run_id)
        except (InvalidState, NotFound) as error:
            skipped[run_id] = error.message
    return done, skipped


def start_many(ws: Workspace, playbook: str, rows: list[tuple[str, dict[str, Any]]],
               actor: str) -> list[str]:
    """A run of ``playbook`` for each row (``(where, inputs)``: ``where`` names the row in
    the error), all or none: every row is checked first, then all start in one commit."""
    from soloist.orchestration import runs

    if not rows:
        raise InputError(f"there is nothing to start: no rows of inputs for {playbook!r}")
    definition = ws.registry.latest_playbook(playbook)
    for where, inputs in rows:
        try:
            runs.validate_inputs(definition, inputs)
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}; nothing was started",
                             field=exc.field) from None
    pins = ws.registry.pins_for(definition)
    with ws.store.transaction() as tx:
        return [runs.start_run(tx, runs.StartRequest(
            definition, inputs, {"manual": actor, "row": where}, actor, None, pins))
            for where, inputs in rows]
