"""soloist.toml read once into strict tables: where a mistake is (the line locator) and
how it reads (one sentence, with the nearest valid name)."""

from __future__ import annotations

import re

import pytest

from soloist.config import parse_table, parse_toml
from soloist.config.sections import LLMSection, MemorySection, Section, SoloistToml
from soloist.config.toml import line_of, positions
from soloist.errors import ConfigError

TEXT = '''# a comment
[workspace]
name = "acme"

[worker]
concurrency = 4
notes = """
[not.a.table]
concurency = 1
"""
list = [
  "a",
  "b",
]
after = 1

[llm.providers."my.local"]
kind = "openai"

[[jobs]]
name = "first"

[memory]
search = { vector_weight = 2.0, keyword_weight = 0.5 }
expiry."leads/*" = "1d"
'quoted key' = true
'''


def test_the_locator_finds_tables_and_keys_as_written() -> None:
    found = positions(TEXT)
    assert found[("workspace",)] == 2
    assert found[("workspace", "name")] == 3
    assert found[("worker", "concurrency")] == 6
    assert found[("worker", "after")] == 15  # past a multi-line string and array
    assert ("not", "a", "table") not in found and ("worker", "concurency") not in found
    assert found[("llm", "providers", "my.local")] == 17
    assert found[("llm", "providers", "my.local", "kind")] == 18
    assert found[("jobs",)] == 20
    assert found[("memory", "search", "keyword_weight")] == 24  # inside an inline table
    assert found[("memory", "expiry", "leads/*")] == 25  # a dotted key, quoted
    assert found[("memory", "quoted key")] == 26


def test_the_locator_falls_back_to_what_encloses_a_path() -> None:
    assert line_of(TEXT, ("worker", "lease_seconds")) == 5
    assert line_of(TEXT, ("llm",)) == 17  # only written through its sub-tables
    assert line_of(TEXT, ("nowhere",)) is None


def sentence(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_toml(text)
    return str(caught.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("[worker]\nconcurency = 3\n",
     "soloist.toml:2: unknown key concurency in [worker]; did you mean concurrency?"),
    ("\n[memory.serach]\nvector_weight = 1\n",
     "soloist.toml:2: unknown table [memory.serach]; did you mean [memory.search]?"),
    ("[serach]\nvector_weight = 1\n",
     "soloist.toml:1: unknown table [serach]; did you mean [memory.search]?"),
    ('[worker]\nllm_cache = "false"\n',
     'soloist.toml:2: [worker] llm_cache must be true or false, not "false"'),
    ('[worker]\nlease_seconds = "30"\n',
     'soloist.toml:2: [worker] lease_seconds must be a number, not "30"'),
    ("[worker]\nconcurrency = 2.5\n",
     "soloist.toml:2: [worker] concurrency must be a whole number, not 2.5"),
    ("[worker]\nconcurrency = 99999999999999999999\n",
     "soloist.toml:2: [worker] concurrency must be at most 1024, not 99999999999999999999"),
    ("[budgets]\nworkspace_daily_usd = inf\n",
     "soloist.toml:2: [budgets] workspace_daily_usd must be a finite number, not inf"),
    ("[tools]\nmodules = \"tasks\"\n",
     'soloist.toml:2: [tools] modules must be a list, not "tasks"'),
    ("colour = 1\n",
     "soloist.toml:1: unknown key colour outside any table; known: workspace, database, "
     "worker, api, queues, tools, llm, budgets, breakers, mcp, memory, connectors"),
    ('[llm.providers.a]\nkind = "cohere"\n',
     "soloist.toml:2: [llm.providers.a] kind must be 'openai', 'anthropic' or 'local', "
     'not "cohere"'),
    ('[llm.providers.a]\nbase_url = "http://x"\n',
     "soloist.toml:1: [llm.providers.a] kind is required"),
    ('[llm.providers.a]\nkind = "openai"\n[llm.tiers]\nworker = "b:m"\n',
     "soloist.toml:1: [llm] tiers.worker uses provider 'b', which is not in [llm.providers]"),
    ("[llm.prices.m]\ninput = -1\n", "soloist.toml:2: [llm.prices.m] input must be at least 0, "
                                      "not -1"),
    ('[breakers]\ncooldown = "later"\n',
     "soloist.toml:2: [breakers] cooldown: 'later' is not a duration; write it as 30s, 5m, "
     "2h or 1d"),
    ("[breakers.openai]\ncooldwn = 3\n",
     "soloist.toml:2: unknown key cooldwn in [breakers.openai]; did you mean cooldown?"),
    ('[mcp.servers.files]\ncommand = ["x"]\nurl = "http://x/mcp"\n',
     "soloist.toml:1: [mcp.servers.files] give exactly one of 'command' (stdio) or 'url' "
     "(HTTP)"),
    ("[mcp]\nallow_approval = true\n",
     "soloist.toml:2: unknown key allow_approval in [mcp]; did you mean allow_approvals?"),
    ('[mcp]\nallow_approvals = "yes"\n',
     'soloist.toml:2: [mcp] allow_approvals must be true or false, not "yes"'),
    ('[mcp.servers."a b"]\ncommand = ["x"]\n',
     "soloist.toml:1: [mcp.servers] \"a b\": the server name 'a b' may hold only letters, "
     "digits, '_' and '-'"),
    ('[memory.embeddings]\nprovider = "openai"\n',
     "soloist.toml:1: [memory.embeddings] model: required when provider = 'openai'"),
    ('[memory.embeddings]\nprovider = "none"\nmodel = "m"\n',
     "soloist.toml:1: [memory.embeddings] model: provider = 'none' turns vectors off and "
     "takes no other setting"),
    ('[memory.expiry]\n"leads/*" = "soon"\n',
     "soloist.toml:2: [memory.expiry] \"leads/*\": 'soon' is not a duration; write it as "
     "30s, 5m, 2h or 1d"),
    ("[worker]\nconcurrency = 1979-05-27\n",
     "soloist.toml:2: [worker] concurrency must be a whole number, not 1979-05-27"),
    ('[tools]\nmodules = ["tasks", 1]\n',
     "soloist.toml:2: [tools] modules[1] must be a string, not 1"),
    ('[llm.prices."gpt-4.1"]\ninput = "1"\n',
     'soloist.toml:2: [llm.prices."gpt-4.1"] input must be a number, not "1"'),
    ('[memory]\nsearch = { vector_weight = "x" }\n',
     'soloist.toml:2: [memory.search] vector_weight must be a number, not "x"'),
    ('[budgets]\nplaybook_daily_usd = { triage = "1" }\n',
     "soloist.toml:2: [budgets] playbook_daily_usd: the figure for triage must be a number "
     "of at least 0, not '1'"),
    ("[worker]\nconcurrency = 1\n[worker]\n",
     "soloist.toml:3: cannot declare [worker] twice"),
    ("[worker\n", "soloist.toml:1: expected ']' at the end of a table declaration"),
])
def test_a_mistake_is_one_sentence_with_its_line(text: str, expected: str) -> None:
    assert sentence(text) == expected


def test_names_the_user_picks_are_free_but_their_tables_are_strict() -> None:
    tables = parse_toml('[queues.anything-at-all]\nconcurrency = 3\n'
                        '[llm.providers.mine]\nkind = "local"\n'
                        '[llm.prices."mine:small"]\ninput = 1\n'
                        '[breakers.mine]\ncooldown = "5s"\n'
                        '[mcp.servers.crm]\nurl = "http://127.0.0.1:9/mcp"\n'
                        '[memory.expiry]\n"leads/*" = "1h"\n')
    assert tables.queues["anything-at-all"].concurrency == 3
    assert tables.llm.prices["mine:small"].input == 1.0
    assert tables.breakers.providers["mine"].cooldown == 5.0
    assert tables.mcp.servers["crm"].url == "http://127.0.0.1:9/mcp"
    assert tables.memory.expiry == {"leads/*": 3600.0}
    assert re.search("unknown key colour in \\[queues.x\\]",
                     sentence("[queues.x]\ncolour = 1\n"))


def test_the_tables_are_frozen_and_have_their_defaults() -> None:
    tables = parse_toml("")
    assert tables == SoloistToml()
    assert (tables.worker.concurrency, tables.worker.llm_cache) == (8, True)
    assert tables.memory.embeddings is None and tables.memory.context_tokens == 4000
    assert tables.mcp.allow_approvals is False
    assert parse_toml("[mcp]\nallow_approvals = true\n").mcp.allow_approvals is True
    with pytest.raises(ValueError, match="frozen"):
        tables.worker.concurrency = 2  # type: ignore[misc]


def test_every_table_refuses_what_it_does_not_know() -> None:
    def models(model: type[Section]) -> set[type[Section]]:
        found = {model}
        for field in model.model_fields.values():
            for arg in getattr(field.annotation, "__args__", (field.annotation,)):
                for inner in (*getattr(arg, "__args__", ()), arg):
                    if isinstance(inner, type) and issubclass(inner, Section):
                        found |= models(inner)
        return found

    every = models(SoloistToml)
    assert {LLMSection, MemorySection} <= every
    assert all(m.model_config.get("extra") == "forbid" and m.model_config.get("frozen")
               and m.model_config.get("strict") for m in every)


def test_one_table_without_a_file() -> None:
    assert parse_table(LLMSection, None, "llm") == LLMSection()
    with pytest.raises(ConfigError) as caught:
        parse_table(MemorySection, {"context_tokens": 0}, "memory")
    assert str(caught.value) == "[memory] context_tokens must be above 0, not 0"


def test_override_examples_is_a_small_count_zero_turns_it_off() -> None:
    assert parse_toml("").memory.override_examples == 3
    assert parse_toml("[memory]\noverride_examples = 0\n").memory.override_examples == 0
    with pytest.raises(ConfigError) as caught:
        parse_table(MemorySection, {"override_examples": -1}, "memory")
    assert str(caught.value) == "[memory] override_examples must be at least 0, not -1"
