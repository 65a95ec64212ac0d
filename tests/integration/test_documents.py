"""Documents and hybrid retrieval over the store, on both backends."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from soloist.memory.documents import Documents, chunk_text
from soloist.memory.facts import Cause
from soloist.store import open_store
from soloist.store.base import Store


class HashingEmbedder:
    """A tiny deterministic embedder for tests: hashed bag of words, normalised."""

    name = "test-hashing-32"
    dimensions = 32

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in text.lower().split():
                digest = hashlib.sha256(word.strip(".,?!").encode()).digest()
                vector[digest[0] % self.dimensions] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


CAUSE = Cause("person:test", "import")


def test_keyword_and_vector_rankings_are_fused(store: Store) -> None:
    docs = Documents(store, HashingEmbedder())
    docs.add("notes", "billing", "Invoices are sent on the first Monday of each month.", CAUSE)
    docs.add("notes", "holidays", "The office is closed between Christmas and New Year.",
             CAUSE, {"author": "ada"})
    docs.add("other", "billing", "Invoices for Globex go to their Berlin office.", CAUSE)
    hits = docs.search("when are invoices sent", namespace="notes", k=5)
    assert hits[0].chunk.doc_key == "billing" and hits[0].chunk.namespace == "notes"
    assert hits[0].keyword_rank == 1 and hits[0].vector_rank is not None
    assert all(h.chunk.namespace == "notes" for h in hits)
    everywhere = docs.search("invoices office", namespace="*", k=5)
    assert {h.chunk.namespace for h in everywhere} == {"notes", "other"}


def test_a_new_version_replaces_the_current_chunks(store: Store) -> None:
    docs = Documents(store, HashingEmbedder())
    assert docs.add("notes", "plan", "We sell the starter plan.", CAUSE) == 1
    assert docs.add("notes", "plan", "We sell the enterprise plan now.", CAUSE) == 2
    texts = [h.chunk.text for h in docs.search("plan", "notes")]
    assert texts == ["We sell the enterprise plan now."]


def test_keyword_only_without_an_embedder_and_hostile_queries(store: Store) -> None:
    docs = Documents(store)
    docs.add("notes", "a", 'Quotes " and NEAR( operators ) stay text.', CAUSE)
    hits = docs.search('"NEAR( operators OR AND * quotes', "notes")
    assert hits and hits[0].vector_rank is None


def test_chunking_packs_paragraphs() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 500 for i in range(5))
    chunks = chunk_text(text, limit=1200)
    assert len(chunks) == 3 and all(len(c) <= 1200 for c in chunks)
    assert chunk_text("a" * 3000, limit=1200) == ["a" * 1200, "a" * 1200, "a" * 600]


def test_many_documents_in_one_transaction(store: Store, tmp_path: Path) -> None:
    docs = Documents(store, HashingEmbedder())
    items = [("conv-1", f"D1:{i}", f"speaker {i % 2}: line number {i} about topic {i % 7}",
              {"session": 1}) for i in range(200)]
    assert docs.add_many(items, CAUSE) == 200
    hits = docs.search("topic 3", "conv-1", k=10)
    assert len(hits) == 10
