"""A scripted chat provider for tests: it answers from a list and records what it was asked.

Never a user default: it lives in :mod:`soloist.testing` and is built only by tests.

::

    provider = ScriptedProvider([
        ChatResponse(tool_calls=(ToolCallRequest(id="c1", name="crm.lookup",
                                                 arguments={"email": "a@b.c"}),)),
        TransientError("busy", retry_after=1),      # raised, not returned
        lambda request: ChatResponse(text=request.messages[-1].content.upper()),
        reply("done"),
    ])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from soloist.execution.llm.base import (
    ChatRequest,
    ChatResponse,
    ToolCallRequest,
    Usage,
)

ScriptItem = ChatResponse | BaseException | Callable[[ChatRequest], ChatResponse]


class ScriptExhausted(AssertionError):
    """The provider was called more often than its script allows."""


def reply(text: str = "ok", *, input_tokens: int = 10, output_tokens: int = 5,
          model: str = "") -> ChatResponse:
    """A plain text reply."""
    return ChatResponse(text=text, usage=Usage(input_tokens=input_tokens,
                                               output_tokens=output_tokens),
                        model=model, finish_reason="stop")


def tool_call(name: str, arguments: dict[str, Any] | None = None, *, id: str = "call_1",
              text: str = "", input_tokens: int = 10, output_tokens: int = 5,
              model: str = "") -> ChatResponse:
    """A reply asking for one tool call."""
    return ChatResponse(text=text,
                        tool_calls=(ToolCallRequest(id=id, name=name,
                                                    arguments=dict(arguments or {})),),
                        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                        model=model, finish_reason="tool_calls")


class ScriptedProvider:
    """Answers each :meth:`complete` with the next script item, in order.

    A :class:`ChatResponse` is returned (with ``model`` set to the request's model when
    left empty); an exception is raised; a callable is called with the request. The
    requests received are kept in :attr:`requests`. Thread-safe.
    """

    def __init__(self, responses: Iterable[ScriptItem] = (), *, name: str = "scripted"
                 ) -> None:
        self.name = name
        self._script: list[ScriptItem] = list(responses)
        self._lock = threading.Lock()
        self.requests: list[ChatRequest] = []

    def add(self, *items: ScriptItem) -> None:
        """Append items to the script."""
        with self._lock:
            self._script.extend(items)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            self.requests.append(request)
            if not self._script:
                raise ScriptExhausted(f"{self.name}: no scripted response left for call "
                                      f"{len(self.requests)}")
            item = self._script.pop(0)
        if isinstance(item, BaseException):
            raise item
        response = item if isinstance(item, ChatResponse) else item(request)
        if not response.model:
            response = response.model_copy(update={"model": request.model})
        return response
