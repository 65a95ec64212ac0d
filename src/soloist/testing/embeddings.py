"""A deterministic embedder for tests: texts that share words get similar vectors.

It implements memory's ``Embedder`` protocol with no model to load: each word is hashed to
one of :attr:`~HashingEmbedder.dimensions` coordinates, and the counts are scaled to unit
length. The same text always gets the same vector, in every process and on every machine,
so a test of search can say which document comes first::

    from soloist.testing import HashingEmbedder

    documents = Documents(store, HashingEmbedder())
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

DEFAULT_DIMENSIONS = 32

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """A hashed bag of words, normalised: lower-cased words, punctuation ignored."""

    def __init__(self, dimensions: int = DEFAULT_DIMENSIONS) -> None:
        if dimensions < 1:
            raise ValueError(f"an embedder needs at least one dimension, not {dimensions}")
        self._dimensions = dimensions

    @property
    def name(self) -> str:
        """Stored beside every vector: another size is another model."""
        return f"hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        # sha256, not hash(): Python salts str hashes per process.
        vector = [0.0] * self._dimensions
        words = _WORD.findall(text.lower()) or [""]  # no words: still a unit vector
        for word in words:
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:8], "big") % self._dimensions] += 1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector]


if TYPE_CHECKING:  # mypy holds it to memory's protocol; nothing runs at import
    from soloist.memory.embeddings import Embedder

    _IS_AN_EMBEDDER: Embedder = HashingEmbedder()
