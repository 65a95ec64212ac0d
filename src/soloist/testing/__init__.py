"""Test doubles for your own tests: a scripted model provider and a hashing embedder.

Nothing here needs a dev-only package, and the engine never uses them at run time.
"""

from __future__ import annotations

from soloist.testing.embeddings import HashingEmbedder
from soloist.testing.llm import ScriptedProvider, ScriptExhausted, reply, tool_call

__all__ = ["HashingEmbedder", "ScriptExhausted", "ScriptedProvider", "reply", "tool_call"]
