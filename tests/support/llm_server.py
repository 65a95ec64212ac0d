"""A real local HTTP server speaking the OpenAI and Anthropic wire formats, for tests.

It serves ``POST /v1/chat/completions`` (OpenAI chat completions) and ``POST /v1/messages``
(Anthropic messages) on ``127.0.0.1`` at a free port, from a background thread, and answers
each request with the next behaviour of its script, rendered in the format of the endpoint
that was called (``POST /v1/embeddings`` takes no script: every text gets a small
vector made from its hash, the same each time):

* :class:`Reply` -- a normal reply (text and/or tool calls, with usage);
* :class:`ToolCall` -- a reply asking for one tool call;
* :class:`Status` -- an HTTP error with an error body in the endpoint's format
  (:func:`rate_limited` is ``429`` with ``Retry-After``, :func:`server_error` is ``500``);
* :class:`Delay` -- wait (longer than the client's timeout), then behave as ``then``;
* :class:`InvalidJSON` -- ``200`` with a body that is not JSON.

Every request is recorded (:attr:`LLMTestServer.requests`) before it is answered, so tests
can assert what the client sent. When the script is empty the server answers ``500``
("script exhausted") and counts it in :attr:`LLMTestServer.unexpected`.

::

    with LLMTestServer([ToolCall("lookup", {"q": "x"}), Reply("done")]) as server:
        provider = OpenAIProvider(base_url=server.openai_base_url, timeout=2)
        ...
        assert server.requests[1].body["messages"][-1]["role"] == "tool"
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Api = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class ToolCall:
    """The model asks for ``name`` with ``arguments``; ``id`` is generated when ``None``."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    input_tokens: int = 12
    output_tokens: int = 7


@dataclass(frozen=True)
class Reply:
    """A normal reply; ``model`` defaults to the requested model."""

    text: str = "ok"
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 12
    output_tokens: int = 7
    model: str | None = None
    finish_reason: str | None = None  # in the endpoint's own vocabulary; derived if None


@dataclass(frozen=True)
class Status:
    """An HTTP error status with an error body (``message``) and extra headers."""

    status: int
    message: str = "simulated error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (cut short when the server closes), then behave as ``then``."""

    seconds: float
    then: Reply | ToolCall | Status | InvalidJSON = field(default_factory=Reply)


@dataclass(frozen=True)
class InvalidJSON:
    """``200`` with a body that is not JSON."""

    body: str = '{"id": "broken", "choices": ['


Behaviour = Reply | ToolCall | Status | Delay | InvalidJSON


def rate_limited(retry_after: float | int = 2) -> Status:
    return Status(429, "rate limit reached", {"Retry-After": str(retry_after)})


def server_error(status: int = 500) -> Status:
    return Status(status, "the server had an error")


def bad_request(message: str = "invalid request") -> Status:
    return Status(400, message)


@dataclass(frozen=True)
class RecordedRequest:
    api: Api
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or the raw text when it is not JSON


EMBEDDING_DIMENSIONS = 8


def _hash_vector(text: str) -> list[float]:
    """A unit vector of ``EMBEDDING_DIMENSIONS`` floats that depends on ``text`` only."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [byte - 127.5 for byte in digest[:EMBEDDING_DIMENSIONS]]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_api_key",
                       404: "not_found_error", 429: "rate_limit_exceeded"}
_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                          404: "not_found_error", 429: "rate_limit_error",
                          529: "overloaded_error"}


class LLMTestServer:
    """The server; use it as a context manager (``.url`` is set once it has started)."""

    def __init__(self, script: Iterable[Behaviour] = (), *, host: str = "127.0.0.1",
                 start_timeout: float = 10.0) -> None:
        self.host = host
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._script: list[Behaviour] = list(script)
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.unexpected = 0
        self.port = 0

    # -- script and records ---------------------------------------------------------------

    def add(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the server has not started")
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for the ``openai`` SDK (it appends ``/chat/completions``)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for the ``anthropic`` SDK (it appends ``/v1/messages``)."""
        return self.url

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LLMTestServer:
        if self._thread is not None:
            raise RuntimeError("the server was already started")
        app = Starlette(routes=[
            Route("/v1/chat/completions", self._openai, methods=["POST"]),
            Route("/v1/messages", self._anthropic, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
        ])
        config = uvicorn.Config(app, host=self.host, port=0, log_config=None,
                                log_level="warning", access_log=False, lifespan="off",
                                loop="asyncio", http="h11", ws="none",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="llm-test-server",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the LLM test server did not start")
            time.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():  # pragma: no cover - a bug in the server
                raise RuntimeError("the LLM test server did not stop")

    def __enter__(self) -> LLMTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- handlers -------------------------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        return await self._handle("openai", request)

    async def _anthropic(self, request: Request) -> Response:
        return await self._handle("anthropic", request)

    async def _embeddings(self, request: Request) -> Response:
        body: Any = json.loads(await request.body())
        with self._lock:
            self._requests.append(RecordedRequest("openai", request.url.path,
                                                  dict(request.headers), body))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": _hash_vector(str(text))}
                for i, text in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", ""),
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    async def _handle(self, api: Api, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._requests.append(RecordedRequest(api, request.url.path,
                                                  dict(request.headers), body))
            behaviour: Behaviour | None = self._script.pop(0) if self._script else None
            if behaviour is None:
                self.unexpected += 1
        if behaviour is None:
            return self._error(api, Status(500, "soloist test server: script exhausted"))
        return await self._respond(api, behaviour, body)

    async def _respond(self, api: Api, behaviour: Behaviour, body: Any) -> Response:
        if isinstance(behaviour, Delay):
            deadline = time.monotonic() + behaviour.seconds
            while time.monotonic() < deadline and not self._closing.is_set():
                await asyncio.sleep(0.02)
            return await self._respond(api, behaviour.then, body)
        if isinstance(behaviour, Status):
            return self._error(api, behaviour)
        if isinstance(behaviour, InvalidJSON):
            return Response(behaviour.body, status_code=200, media_type="application/json")
        if isinstance(behaviour, ToolCall):
            behaviour = Reply(text="", tool_calls=(behaviour,),
                              input_tokens=behaviour.input_tokens,
                              output_tokens=behaviour.output_tokens)
        model = behaviour.model or (body.get("model") if isinstance(body, dict) else None)
        number = next(self._ids)
        if api == "openai":
            return JSONResponse(self._openai_reply(behaviour, str(model or "test"), number))
        return JSONResponse(self._anthropic_reply(behaviour, str(model or "test"), number))

    @staticmethod
    def _openai_reply(reply: Reply, model: str, number: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": call.id or f"call_{number}_{index}", "type": "function",
                 "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
                for index, call in enumerate(reply.tool_calls)
            ]
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": {"prompt_tokens": reply.input_tokens,
                      "completion_tokens": reply.output_tokens,
                      "total_tokens": reply.input_tokens + reply.output_tokens},
        }

    @staticmethod
    def _anthropic_reply(reply: Reply, model: str, number: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        content.extend({"type": "tool_use", "id": call.id or f"toolu_{number}_{index}",
                        "name": call.name, "input": call.arguments}
                       for index, call in enumerate(reply.tool_calls))
        stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        return {
            "id": f"msg_{number}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens,
                      "output_tokens": reply.output_tokens},
        }

    @staticmethod
    def _error(api: Api, status: Status) -> Response:
        if api == "openai":
            kind = _OPENAI_ERROR_TYPES.get(status.status, "server_error")
            payload: dict[str, Any] = {"error": {"message": status.message, "type": kind,
                                                 "param": None, "code": None}}
        else:
            kind = _ANTHROPIC_ERROR_TYPES.get(status.status, "api_error")
            payload = {"type": "error", "error": {"type": kind, "message": status.message}}
        return JSONResponse(payload, status_code=status.status, headers=status.headers)
