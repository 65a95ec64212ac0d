from __future__ import annotations

from soloist.memory.context import build, count_tokens


def test_token_estimate_needs_no_tokenizer() -> None:
    assert count_tokens("") == 0
    assert count_tokens("four words in here") == 6
    assert count_tokens("x" * 400) == 100


def test_instructions_and_task_are_clipped_to_their_share() -> None:
    ctx = build(instructions="word " * 1000, task="do it", budget=100)
    [instructions] = ctx.section("instructions")
    assert instructions.tokens <= 20 and instructions.text.endswith("…")
    assert ctx.tokens <= 100
    assert [i["kind"] for i in ctx.record()["included"]] == ["instructions", "task"]
