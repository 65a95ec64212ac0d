"""soloist.toml is checked when any command opens the workspace: a misspelt table or key,
or a value of the wrong type, is one sentence naming the line, with exit code 1; and an
OpenAI-compatible embedder gets its ``secret:NAME`` key through the real CLI. Every test
runs the real ``soloist`` binary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.llm_server import LLMTestServer
from support.workspaces import write_workspace
from tests_support import SOLOIST, soloist

PLAIN = """
name: plain
steps:
  - {id: a, tool: note, args: {text: "hello"}}
"""

COMMANDS = [
    ("deploy",), ("runs",), ("worker",), ("up",), ("approvals",), ("run", "plain"),
    ("show", "r-1"), ("log",), ("metrics",), ("versions",), ("cancel", "r-1"),
    ("approve", "a-1"), ("reject", "a-1", "--reason", "no"), ("rollback", "playbook", "plain",
                                                             "--to", "1"),
    ("secret", "list"), ("secret", "delete", "k"), ("memory", "search", "refunds"),
    ("memory", "status"), ("memory", "facts"), ("memory", "get", "n", "s", "k"),
    ("memory", "export"), ("memory", "reembed"), ("snapshot", "list"), ("snapshot", "create"),
    ("audit", "verify"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_misspelt_key_stops_every_command_with_one_sentence(tmp_path: Path,
                                                              command: tuple[str, ...]
                                                              ) -> None:
    # write_workspace writes [workspace] on lines 1-2: [worker] is line 3, the key line 4
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN},
                           toml="[worker]\nconcurency = 3\n")
    result = soloist(*command, "-w", str(root), check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == ("error: soloist.toml:4: unknown key concurency in "
                                      "[worker]; did you mean concurrency?")
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(("toml", "sentence"), [
    ("[memory.serach]\nvector_weight = 2.0\n",
     "soloist.toml:3: unknown table [memory.serach]; did you mean [memory.search]?"),
    ('[worker]\nllm_cache = "false"\n',
     'soloist.toml:4: [worker] llm_cache must be true or false, not "false"'),
    ('[worker]\nconcurrency = "8"\n',
     'soloist.toml:4: [worker] concurrency must be a whole number, not "8"'),
    ('[queues.default]\nconcurrency = 0\n',
     "soloist.toml:4: [queues.default] concurrency must be above 0, not 0"),
    ('[llm.providers.local]\nkind = "openai"\nbase-url = "http://x/v1"\n',
     "soloist.toml:5: unknown key base-url in [llm.providers.local]; did you mean base_url?"),
    ('[mcp.servers.files]\ncommand = ["x"]\ntimout = 5\n',
     "soloist.toml:5: unknown key timout in [mcp.servers.files]; did you mean timeout?"),
    ('[memory]\nsearch = { vector_weight = "high" }\n',
     'soloist.toml:4: [memory.search] vector_weight must be a number, not "high"'),
])
def test_wrong_tables_and_types_are_refused_at_open(tmp_path: Path, toml: str,
                                                    sentence: str) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN}, toml=toml)
    result = soloist("runs", "-w", str(root), check=False)
    assert (result.returncode, result.stderr.strip()) == (1, f"error: {sentence}")
    assert "Traceback" not in result.stdout + result.stderr


def test_an_environment_override_is_checked_and_named(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"plain": PLAIN})
    result = soloist("runs", "-w", str(root), env={"SOLOIST_CONCURRENCY": "many"},
                     check=False)
    assert (result.returncode, result.stderr.strip()) == (
        1, "error: SOLOIST_CONCURRENCY must be a whole number above 0, not 'many'")


def test_the_embedder_gets_its_secret_key_through_the_cli(tmp_path: Path) -> None:
    key = "sk-embed-cli-5e6f7a8b"
    with LLMTestServer() as server:
        root = write_workspace(tmp_path / "ws", {"plain": PLAIN}, toml=(
            f'[memory.embeddings]\nprovider = "openai"\nbase_url = "{server.openai_base_url}"\n'
            'model = "tiny"\napi_key = "secret:embed_key"\n'))
        stored = subprocess.run([SOLOIST, "secret", "set", "embed_key", "-w", str(root)],
                                input=key, capture_output=True, text=True, timeout=120)
        assert stored.returncode == 0, stored.stderr
        notes = tmp_path / "notes.jsonl"
        notes.write_text(json.dumps({"type": "document", "namespace": "notes",
                                     "key": "refunds", "text": "Refunds within thirty days."})
                         + "\n")
        soloist("memory", "import", str(notes), "-w", str(root))
        found = soloist("memory", "search", "refunds", "--namespace", "notes",
                        "-w", str(root))
        embedded = [r for r in server.requests if r.path == "/v1/embeddings"]
    assert "refunds" in found.stdout
    assert len(embedded) == 2  # the document, then the query
    assert {r.headers["authorization"] for r in embedded} == {f"Bearer {key}"}
