"""Chat models behind one provider-neutral API.

* :mod:`.base` -- the model (messages, tools, requests, responses) and the
  :class:`LLMProvider` protocol;
* :mod:`.structured` -- checking JSON replies against a schema, repair prompts;
* :mod:`.config` -- the ``[llm]`` configuration and :func:`~.config.build_provider`;
* :mod:`.openai_provider`, :mod:`.anthropic_provider` -- the providers (they need the
  ``llm`` extra: ``pip install soloist[llm]``).
"""

from __future__ import annotations

from soloist.execution.llm.base import (
    ChatRequest,
    ChatResponse,
    LLMProvider,
    Message,
    Role,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from soloist.execution.llm.structured import parse_json_output, repair_prompt

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "LLMProvider",
    "Message",
    "Role",
    "ToolCallRequest",
    "ToolSpec",
    "Usage",
    "parse_json_output",
    "repair_prompt",
]
