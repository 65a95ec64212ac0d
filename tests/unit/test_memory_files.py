"""The layout of a workspace's memory/ folder, and every problem in it at file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from soloist.control.memory_files import MemoryFiles, load_memory, split_name, unknown_documents
from soloist.control.playbooks import Playbook


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_documents_and_facts_take_their_namespace_from_the_folder(tmp_path: Path) -> None:
    write(tmp_path, {
        "memory/portfolio/fintech-app.md": "An app.\n",
        "memory/portfolio/health/clinic.md": "A clinic.\n",
        "memory/playbooks/discovery-script.md": "Questions.\n",
        "memory/services/rates.yaml": "sprint: {day_rate: 900, currency: EUR}\n",
        "memory/services/terms.yml": "payment: {days: 30, upfront: true}\n",
        "memory/portfolio/.fintech-app.md.swp": "editor junk",
        "memory/.git/config": "[core]",
        "memory/portfolio/notes.txt": "not memory",
    })
    problems: list[str] = []
    files = load_memory(tmp_path, problems)
    assert problems == []
    assert sorted((d.namespace, d.key, d.source) for d in files.documents) == [
        ("playbooks", "discovery-script", "memory/playbooks/discovery-script.md"),
        ("portfolio", "fintech-app", "memory/portfolio/fintech-app.md"),
        ("portfolio/health", "clinic", "memory/portfolio/health/clinic.md")]
    assert sorted((f.name, f.value) for f in files.facts) == [
        ("services/payment/days", 30), ("services/payment/upfront", True),
        ("services/sprint/currency", "EUR"), ("services/sprint/day_rate", 900)]
    assert files.document_names() == {"playbooks/discovery-script", "portfolio/fintech-app",
                                      "portfolio/health/clinic"}
    assert split_name("portfolio/health/clinic") == ("portfolio/health", "clinic")


def test_no_memory_folder_is_no_memory(tmp_path: Path) -> None:
    problems: list[str] = []
    assert load_memory(tmp_path, problems) == MemoryFiles() and problems == []


def test_every_problem_is_placed(tmp_path: Path) -> None:
    write(tmp_path, {
        "memory/top.md": "no namespace\n",
        "memory/bad name/x.md": "text\n",
        "memory/portfolio/empty.md": "  \n",
        "memory/portfolio/bad key!.md": "text\n",
        "memory/services/a.yaml": "sprint:\n  day_rate: 900\n",
        "memory/services/b.yaml": "sprint:\n  day_rate: 950\n  when: 2026-01-31\n",
        "memory/services/c.yaml": "- a list\n",
        "memory/services/d.yaml": "sprint: [1, 2\n",
        "memory/services/e.yaml": "sprint: 5\n",
    })
    problems: list[str] = []
    files = load_memory(tmp_path, problems)
    assert files.documents == []
    assert [f.source for f in files.facts] == ["memory/services/a.yaml"]
    # libyaml and PyYAML word a syntax error differently; the place is the same.
    syntax = next(p for p in problems if p.startswith("memory/services/d.yaml"))
    assert syntax.startswith("memory/services/d.yaml:2:1: YAML syntax: ")
    assert [p for p in problems if p != syntax] == [
        "memory/bad name/x.md:1:1: the folder name 'bad name' cannot be a namespace part "
        "(letters, digits, '.', '_' and '-', starting with a letter or digit)",
        "memory/portfolio/bad key!.md:1:1: the file name 'bad key!' cannot be a document key "
        "(letters, digits, '.', '_' and '-')",
        "memory/portfolio/empty.md:1:1: the document is empty",
        "memory/services/b.yaml:2:3: sprint.day_rate: sprint.day_rate of namespace "
        "'services' is also given in memory/services/a.yaml",
        "memory/services/b.yaml:3:9: sprint.when: the value is not plain JSON data (a date "
        "or time? quote it, \"2026-01-31\"; NaN or infinity? give a finite number)",
        "memory/services/c.yaml:1:1: a facts file holds a mapping of subject to "
        "{key: value}",
        "memory/services/e.yaml:1:9: sprint: a subject holds a mapping of key to value",
        "memory/top.md:1:1: a memory file belongs in a folder that names its namespace "
        "(memory/portfolio/top.md, say)",
    ]


def test_a_playbook_names_documents_that_exist(tmp_path: Path) -> None:
    write(tmp_path, {"playbooks/qualify.yaml": "name: qualify\nmemory:\n  - playbooks/x\n"
                                               "  - playbooks/discovery-script\n"})
    files = MemoryFiles()
    found = unknown_documents(
        tmp_path, [("qualify", ["playbooks/x", "playbooks/discovery-script"],
                    "playbooks/qualify.yaml"), ("py", ["a/b"], "playbooks/py.py")],
        files, lambda name: name == "playbooks/discovery-script")
    assert found == [
        "playbooks/qualify.yaml:3:5: memory.0: no document playbooks/x in memory/ or in "
        "memory's store (add memory/playbooks/x.md)",
        "playbooks/py.py: memory.0: no document a/b in memory/ or in memory's store (add "
        "memory/a/b.md)"]


@pytest.mark.parametrize(("names", "message"), [
    (["discovery-script"], "must name a document as namespace/key"),
    (["a//b"], "must name a document as namespace/key"),
    (["a/b", "a/b"], "document(s) named twice: a/b"),
])
def test_a_playbooks_memory_list_is_checked(names: list[str], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Playbook.model_validate({"name": "p", "memory": names, "steps": [{"id": "a",
                                                                          "tool": "note"}]})
    assert Playbook.model_validate({"name": "p", "memory": ["playbooks/x", "a/b/c"],
                                    "steps": [{"id": "a", "tool": "note"}]}).memory == [
        "playbooks/x", "a/b/c"]
