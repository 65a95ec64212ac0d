"""Tables of soloist.toml that reach the services a Workspace builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.llm_server import LLMTestServer
from support.workspaces import write_workspace

from soloist.control.breakers import BreakerPolicy
from soloist.errors import ConfigError
from soloist.memory.facts import Cause
from soloist.workspace import Workspace

PLAYBOOK = """
name: one
steps:
  - {id: a, python: "tasks:noop"}
"""
TASKS = "def noop(ctx):\n    return None\n"


def test_breaker_and_search_settings_reach_the_guard_and_memory(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS, toml=(
        '[breakers]\nfailure_threshold = 2\ncooldown = "1m"\n'
        '[breakers.ollama]\ncooldown = "5s"\n'
        '[memory.search]\nvector_weight = 3.0\n'))
    with Workspace(root) as ws:
        assert ws.guard.breakers.policy("openai") == BreakerPolicy(2, 60.0)
        assert ws.guard.breakers.policy("ollama") == BreakerPolicy(2, 5.0)
        assert [r.vector_weight for r in ws.documents.recipes] == [3.0, 3.0]
        assert ws.documents.status()["ranking"] == "vector_weight=3.0"


@pytest.mark.parametrize(("toml", "message"), [
    ('[breakers]\ncooldown = "later"\n', "[breakers] cooldown: 'later' is not a duration"),
    ("[memory.search]\nvectors = 2\n",
     "soloist.toml:4: unknown key vectors in [memory.search]; did you mean vector_weight?"),
])
def test_a_bad_table_stops_the_workspace_with_one_sentence(tmp_path: Path, toml: str,
                                                           message: str) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS, toml=toml)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Workspace(root)


def test_the_tables_arrive_typed(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS, toml=(
        "[worker]\nllm_cache = false\nlease_seconds = 12\n"
        "[queues.slow]\nconcurrency = 2\n[queues.other]\n"
        '[budgets]\nworkspace_daily_usd = 5\nplaybook_daily_usd = { one = 1 }\n'
        '[memory]\ncontext_tokens = 900\n[memory.expiry]\n"leads/*" = "2m"\n'))
    with Workspace(root, env={"SOLOIST_POLL_SECONDS": "0.5"}) as ws:
        assert ws.llm_cache_enabled() is False
        assert (ws.settings.lease_seconds, ws.settings.poll_seconds) == (12.0, 0.5)
        assert ws.settings.concurrency == 8
        assert ws.settings.queue_limits == {"slow": 2}
        assert (ws.budgets("one").playbook_daily_usd, ws.budgets("two").playbook_daily_usd,
                ws.budgets("one").workspace_daily_usd) == (1.0, None, 5.0)
        assert ws.memory.expiry == {"leads/*": 120.0}
        assert ws.settings.memory.context_tokens == 900


@pytest.mark.parametrize(("env", "message"), [
    ({"SOLOIST_CONCURRENCY": "0"}, "SOLOIST_CONCURRENCY must be a whole number above 0, "
                                   "not '0'"),
    ({"SOLOIST_LEASE_SECONDS": "soon"}, "SOLOIST_LEASE_SECONDS must be a number above 0, "
                                        "not 'soon'"),
    # what the number must be beyond that is the [worker] table's own rule
    ({"SOLOIST_CONCURRENCY": "5000"}, "SOLOIST_CONCURRENCY must be at most 1024, not '5000'"),
    ({"SOLOIST_POLL_SECONDS": "inf"}, "SOLOIST_POLL_SECONDS must be a finite number, "
                                      "not 'inf'"),
])
def test_a_bad_environment_override_names_its_variable(tmp_path: Path, env: dict[str, str],
                                                       message: str) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS)
    with pytest.raises(ConfigError) as caught:
        Workspace(root, env=env)
    assert str(caught.value) == message


def test_embeddings_provider_none_means_keyword_search_only(db_url: str,
                                                            tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS,
                           toml='[memory.embeddings]\nprovider = "none"\n')
    with Workspace(root, database_url=db_url) as ws:
        assert ws.documents.embedder is None
        ws.documents.add("notes", "refunds", "Refunds within thirty days.",
                         Cause("person:test", "a note"))
        hits = ws.documents.search("refunds", "notes")
        assert [h.chunk.doc_key for h in hits] == ["refunds"]
        status = ws.documents.status()
        assert status["embedder"] is None and not status["reembed_needed"]


def test_a_secret_key_reaches_the_embedder_when_a_search_embeds_its_query(
        db_url: str, tmp_path: Path) -> None:
    # The key is read on first use, which is inside the search's read transaction: on
    # SQLite that read within a read was refused before it had a connection of its own.
    key = "sk-embed-search-9a8b7c"
    with LLMTestServer() as server:
        root = write_workspace(tmp_path / "ws", {"one": PLAYBOOK}, TASKS, toml=(
            f'[memory.embeddings]\nprovider = "openai"\nbase_url = "{server.openai_base_url}"\n'
            'model = "tiny"\napi_key = "secret:embed_key"\n'))
        with Workspace(root, database_url=db_url) as ws:
            ws.secrets.set("embed_key", key, "person:test")
            hits = ws.documents.search("refunds", "notes")  # the first embedding
            assert hits == []
            ws.documents.add("notes", "refunds", "Refunds within thirty days.",
                             Cause("person:test", "a note"))
            assert [h.chunk.doc_key for h in ws.documents.search("refunds", "notes")] == [
                "refunds"]
        seen = [r.headers["authorization"] for r in server.requests
                if r.path == "/v1/embeddings"]
    assert seen == [f"Bearer {key}"] * 3
