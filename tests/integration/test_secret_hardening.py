"""Issue 9, group 2: no secret value in any table, log or output, in any encoding.

Every test here uses the real :class:`~soloist.control.secrets.SecretService` (through a
:class:`~soloist.workspace.Workspace`) and, where the store is involved, runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import pytest
from support.llm_server import LLMTestServer, RecordedRequest, Reply
from support.workspaces import write_workspace

from soloist.control.secrets import Redactor, encodings
from soloist.errors import ConfigError, InputError, NotFound
from soloist.execution.llm.base import ChatRequest, Message
from soloist.memory.facts import Cause
from soloist.store.base import NewEvent
from soloist.workspace import Workspace

# Awkward values: each is escaped by JSON, by repr, or both, or hides inside another.
CORPUS = {
    "pem": ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIB\n"
            "AQC7Vb3uGgkq/x+Zc9QJ\n-----END PRIVATE KEY-----\n"),
    "quotes": 'pa"ss\'w"ord-1234',
    "backslash": "C:\\Users\\ops\\key\\x41\\n",
    "unicode": "clé-secrète-ünï-日本語-🔑",
    "tabs": "tab\tseparated\tsecret\r\n",
    "control": "bell\x07and\x1bescape\x00nul",
    "short_prefix": "prefix-secret-0001",
    "long_prefix": "prefix-secret-0001-and-more",
    "plain": "sk-live-4f9a2c7e1b8d",
    "url": "abc/def+ghi=jkl?&x y",
}


def forms(value: str) -> set[str]:
    """What a leak of ``value`` would look like to someone reading the store or output."""
    found = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             repr(value)[1:-1], ascii(value)[1:-1],
             base64.b64encode(value.encode()).decode(), quote(value, safe=""),
             quote_plus(value)}
    return {f for f in found if len(f) >= 6}


def assert_no_secret(text: str, where: str) -> None:
    for name, value in CORPUS.items():
        for form in forms(value):
            assert form not in text, f"secret {name} in clear in {where} as {form!r}"


def assert_no_secret_bytes(data: bytes, where: str) -> None:
    for name, value in CORPUS.items():
        for form in forms(value):
            assert form.encode() not in data, f"secret {name} in the bytes of {where}"


# -- the redactor itself -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_encoding_of_every_awkward_secret_is_redacted(name: str) -> None:
    redact = Redactor(CORPUS)
    value = CORPUS[name]
    texts = [value, json.dumps({"k": value}), json.dumps({"k": value}, ensure_ascii=False),
             json.dumps({"k": json.dumps({"k": value})}), repr({"k": value}),
             f"error: {value!r} refused", json.dumps({"error": f"bad key {value!r}"}),
             str(RuntimeError(value)), f"GET https://api.test/v1?key={quote(value)}",
             json.dumps({"url": f"https://api.test/v1?key={quote_plus(value)}"})]
    for text in texts:
        clean = redact(text)
        assert f"[secret:{name}]" in clean, text
        assert_no_secret(clean, f"the redaction of {text!r}")
    # JSON stays JSON, with the marker where the value was.
    assert json.loads(redact(json.dumps({"k": value}))) == {"k": f"[secret:{name}]"}


def test_a_secret_that_is_a_prefix_of_another_is_redacted_where_it_stands_alone() -> None:
    redact = Redactor(CORPUS)
    text = f"{CORPUS['long_prefix']} / {CORPUS['short_prefix']}"
    assert redact(text) == "[secret:long_prefix] / [secret:short_prefix]"
    assert encodings("plain-value") == {"plain-value"}


# -- item 1: a provider's api_key = "secret:NAME" ------------------------------------------


def sent_key(sent: RecordedRequest) -> str | None:
    if "x-api-key" in sent.headers:
        return sent.headers["x-api-key"]
    scheme, _, token = sent.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_provider_sends_the_secret_value_not_its_name(tmp_path: Path, kind: str) -> None:
    key, rotated = "sk-provider-9f8e7d6c5b4a", "sk-provider-rotated-0001"
    with LLMTestServer([Reply("hello"), Reply("again")]) as server:
        base_url = server.openai_base_url if kind == "openai" else server.anthropic_base_url
        toml = (f'[llm.providers.p]\nkind = "{kind}"\nbase_url = "{base_url}"\n'
                'api_key = "secret:provider_key"\ntimeout = 5\n'
                '[llm.tiers]\nworker = "p:some-model"\n')
        root = write_workspace(tmp_path / "ws", {}, toml=toml)
        with Workspace(root) as ws:
            replies = []
            for value in (key, rotated):  # a rotated key is used from the next route on
                ws.secrets.set("provider_key", value, "person:test")
                route = ws.router.route("worker")
                replies.append(route.provider.complete(ChatRequest(
                    model=route.model, messages=(Message.user("hi"),), max_tokens=10)).text)
        assert replies == ["hello", "again"]
        assert [sent_key(sent) for sent in server.requests] == [key, rotated]


def test_a_provider_whose_secret_is_not_set_is_refused_not_sent(tmp_path: Path) -> None:
    with LLMTestServer() as server:
        toml = (f'[llm.providers.p]\nkind = "openai"\nbase_url = "{server.openai_base_url}"\n'
                'api_key = "secret:missing_key"\n[llm.tiers]\nworker = "p:m"\n')
        root = write_workspace(tmp_path / "ws", {}, toml=toml)
        with Workspace(root) as ws, pytest.raises(NotFound, match="no secret named"):
            ws.router.route("worker")
        assert server.requests == []


class _EmbeddingsHandler(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        type(self).seen.append(self.headers.get("authorization"))
        data = [{"object": "embedding", "index": i, "embedding": [1.0, 0.0, 0.0]}
                for i, _ in enumerate(body["input"])]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"],
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[tuple[str, list[str | None]]]:
    seen: ClassVar[list[str | None]] = []
    handler = type("Handler", (_EmbeddingsHandler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_embedder_sends_the_secret_value_and_reads_it_only_when_used(
        tmp_path: Path, embeddings_server: tuple[str, list[str | None]]) -> None:
    url, seen = embeddings_server
    key = "sk-embed-0a1b2c3d4e5f"
    toml = (f'[memory.embeddings]\nprovider = "openai"\nbase_url = "{url}"\n'
            'model = "tiny"\napi_key = "secret:embed_key"\ndimensions = 3\n')
    root = write_workspace(tmp_path / "ws", {}, toml=toml)
    with Workspace(root) as ws:  # opens although the secret is not set yet
        ws.secrets.set("embed_key", key, "person:test")
        embedder = ws.documents.embedder
        assert embedder is not None
        embedder.embed(["hello"])
    assert seen == [f"Bearer {key}"]


# -- item 2: a workflow that echoes awkward secrets everywhere ----------------------------

TASKS = f'''
import json

SECRETS = json.loads({json.dumps(json.dumps(CORPUS))})

def leak(ctx):
    # Careless code: the values as output values, as keys, inside a JSON string, in
    # intents (dispatched, so the tool's result records them too), and in a repr.
    for name, value in SECRETS.items():
        ctx.stage("note", {{"text": "calling with " + value}}, description=value)
    return {{"values": SECRETS, "keys": {{v: 1 for v in SECRETS.values()}},
             "as_json": json.dumps(SECRETS), "as_repr": repr(SECRETS)}}

def fail(ctx):
    raise RuntimeError("auth failed for " + repr(SECRETS) + " and " + " ".join(SECRETS.values()))
'''

PLAYBOOKS = {"echo": """
name: echo
steps:
  - {id: a, python: "tasks:leak"}
  - {id: b, python: "tasks:fail"}
"""}


def dump_tables(url: str) -> str:
    """Every column of every row of every table, as text (nothing re-escaped)."""
    out: list[str] = []
    if url.startswith("sqlite"):
        import sqlite3

        from soloist.store.sqlite.backend import kept_path

        main = url.removeprefix("sqlite:///")
        # The kept database (dispatch ledger, version marks) is a file of its own.
        for path in (main, kept_path(main)):
            con = sqlite3.connect(path)
            try:
                tables = [r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    for row in con.execute(f'SELECT * FROM "{table}"'):
                        out.extend(v.decode("utf-8", "replace") if isinstance(v, bytes)
                                   else str(v) for v in row)
            finally:
                con.close()
        return "\n".join(out)
    import psycopg

    with psycopg.connect(url) as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position").fetchall()
        for table, column in columns:
            out.extend(str(r[0]) for r in con.execute(
                f'SELECT "{column}"::text FROM "{table}"'))
    return "\n".join(out)


def test_awkward_secrets_reach_no_table_on_either_backend(tmp_path: Path,
                                                          db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", PLAYBOOKS, TASKS)
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        for name, value in CORPUS.items():
            ws.secrets.set(name, value, "person:test")
        run_id = ws.start("echo", {"token": CORPUS["pem"], "other": CORPUS["quotes"]})
        ws.worker().run(until_idle=True)
        run = ws.get_run(run_id)
        assert run.state == "failed"
        detail = ws.show(run_id)
        output = detail.steps[0].output
        assert output["values"] == {n: f"[secret:{n}]" for n in CORPUS}
        assert json.loads(output["as_json"]) == output["values"]
        assert "[secret:pem]" in (run.error or "")
        assert len(detail.intents) == len(CORPUS)
        assert {i.status for i in detail.intents} == {"dispatched"}
        # Facts and events written directly go through the same seam.
        ws.memory.put("ops", "vault", "key", CORPUS["pem"],
                      Cause("person:test", f"pasted {CORPUS['backslash']!r}"))
        with ws.store.transaction() as tx:
            tx.events.append(NewEvent("note", {"said": CORPUS["unicode"]},
                                      actor=CORPUS["control"]))
        assert ws.verify().ok  # the chain covers the redacted text
        shown = json.dumps({"run": vars_of(run), "steps": [vars_of(s) for s in detail.steps],
                            "intents": [vars_of(i) for i in detail.intents],
                            "events": [vars_of(e) for e in ws.log(run_id=run_id)]},
                           default=str)
    assert_no_secret(shown, "what show and log return")
    dump = dump_tables(db_url)
    assert "[secret:pem]" in dump and "[secret:control]" in dump
    assert_no_secret(dump, "the store's tables")
    if db_url.startswith("sqlite"):
        from soloist.store.sqlite.backend import kept_path

        path = Path(db_url.removeprefix("sqlite:///"))
        kept = Path(kept_path(str(path)))
        for file in (path, Path(f"{path}-wal"), kept, Path(f"{kept}-wal")):
            if file.exists():
                assert_no_secret_bytes(file.read_bytes(), file.name)


def vars_of(row: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    return asdict(row) if is_dataclass(row) and not isinstance(row, type) else row


def test_short_values_are_refused_at_set(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root) as ws:
        with pytest.raises(InputError, match="shorter than 8 characters"):
            ws.secrets.set("pin", "1234567", "person:test")
        assert ws.secrets.list() == []
        ws.secrets.set("pin", "12345678", "person:test")


# -- item 3: a secret set by another process is redacted by the very next write -----------


def test_a_secret_set_elsewhere_is_redacted_by_the_next_write(tmp_path: Path,
                                                              db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {})
    value = 'fresh-"secret"\nvalue-42'
    with Workspace(root, database_url=db_url) as writer, \
            Workspace(root, database_url=db_url) as setter:
        with writer.store.transaction() as tx:  # the writer has loaded its (empty) list
            tx.events.append(NewEvent("warm", {"text": "nothing to hide"}, actor="t"))
        setter.secrets.set("fresh", value, "person:test")
        with writer.store.transaction() as tx:
            tx.events.append(NewEvent("echo", {"text": f"got {value}"}, actor="t"))
        [event] = [e for e in writer.log() if e.kind == "echo"]
        assert event.data == {"text": "got [secret:fresh]"}
        setter.secrets.delete("fresh", "person:test")  # and forgetting it applies too
        with writer.store.transaction() as tx:
            tx.events.append(NewEvent("after", {"text": "[secret:fresh] was fresh"},
                                      actor="t"))
        assert [e.data for e in writer.log() if e.kind == "after"] == [
            {"text": "[secret:fresh] was fresh"}]
        assert writer.verify().ok
    assert value not in dump_tables(db_url)


# -- item 4: the store's files are the owner's alone ---------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_folder_and_files_are_private(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {"p": "name: p\nsteps:\n  - {id: a, tool: note, "
                                                  "args: {text: hi}}\n"})
    with Workspace(root, database_url=db_url) as ws:
        ws.deploy()
        ws.secrets.set("api", "value-123456", "person:test")
        ws.start("p")
        ws.snapshots.create("person:test", "first")
        state = ws.settings.state_dir
        assert mode(state) == 0o700
        files = [p for p in state.rglob("*") if p.is_file()]
        snapshot = "first.sqlite" if db_url.startswith("sqlite") else "first.pgdump"
        assert {p.name for p in files} >= {"secret.key", snapshot, "first.json"}
        if db_url.startswith("sqlite"):  # the store itself, wherever the URL puts it
            database = Path(db_url.removeprefix("sqlite:///"))
            files += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        for path in files:
            assert mode(path) == 0o600, path
        for folder in [p for p in state.rglob("*") if p.is_dir()]:
            assert mode(folder) == 0o700, folder


def test_an_existing_world_readable_workspace_is_tightened_when_opened(
        tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root) as ws:
        ws.secrets.set("api", "value-123456", "person:test")
        ws.snapshots.create("person:test", "first")
    state = root / ".soloist"
    loose = [state, *state.rglob("*")]
    for path in loose:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    with Workspace(root) as ws:
        assert ws.secrets.get("api") == "value-123456"
        ws.secrets.set("more", "value-7890123", "person:test")
        for name in ("state.db", "state.db-wal", "state.db-shm"):  # the default store
            assert mode(state / name) == 0o600, name
    for path in loose:
        if path.exists():
            assert mode(path) == (0o700 if path.is_dir() else 0o600), path


# -- item 5: a lost key file --------------------------------------------------------------


def test_a_lost_key_breaks_only_what_needs_a_value(tmp_path: Path, db_url: str) -> None:
    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root, database_url=db_url) as ws:
        ws.secrets.set("one", "value-one-1234", "person:test")
        ws.secrets.set("two", "value-two-1234", "person:test")
        key = ws.settings.secret_key_file
    key.unlink()
    with Workspace(root, database_url=db_url) as ws:  # opens, lists, writes
        assert [r.name for r in ws.secrets.list()] == ["one", "two"]
        assert ws.runs() == []
        with ws.store.transaction() as tx:
            tx.events.append(NewEvent("note", {"text": "still writing"}, actor="t"))
        for attempt in (lambda: ws.secrets.get("one"),
                        lambda: ws.secrets.set("three", "value-three-12", "person:test")):
            with pytest.raises(ConfigError) as caught:
                attempt()
            message = caught.value.message
            assert "key file" in message and "missing" in message and "2 stored" in message
            assert "soloist secret delete" in message
        assert not key.exists()  # nothing was half-done
        with pytest.raises(NotFound, match="no secret named 'nope'"):
            ws.secrets.delete("nope", "person:test")
        ws.secrets.delete("one", "person:test")
        ws.secrets.delete("two", "person:test")
        ws.secrets.set("one", "value-one-5678", "person:test")
        assert ws.secrets.get("one") == "value-one-5678"
        kinds = [e.kind for e in ws.log() if e.kind.startswith("secret.")]
        assert kinds == ["secret.set"] * 2 + ["secret.deleted"] * 2 + ["secret.set"]


def test_a_snapshot_from_before_the_stamp_restores_and_redacts(tmp_path: Path) -> None:
    import sqlite3

    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root) as ws:
        snapshot = ws.snapshots.create("person:test", "old")
        con = sqlite3.connect(snapshot.path)  # as a version without the stamp made it
        con.executescript("DROP TABLE secrets_stamp; "
                          "DELETE FROM schema_migrations WHERE version = 10;")
        con.close()
        ws.snapshots.restore("old", "person:test")
        ws.secrets.set("api", "value-after-restore", "person:test")
        with ws.store.transaction() as tx:
            tx.events.append(NewEvent("echo", {"text": "value-after-restore"}, actor="t"))
        assert [e.data for e in ws.log() if e.kind == "echo"] == [{"text": "[secret:api]"}]


def test_a_key_file_restored_while_a_process_runs_is_used_for_redaction(
        tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", {})
    with Workspace(root) as ws:
        ws.secrets.set("api", "value-restored-key", "person:test")
        key = ws.settings.secret_key_file
    saved = key.read_bytes()
    key.unlink()
    with Workspace(root) as ws:
        with ws.store.transaction() as tx:  # loads the list without the key
            tx.events.append(NewEvent("before", {"text": "x"}, actor="t"))
        key.write_bytes(saved)
        key.chmod(0o600)
        value = ws.secrets.get("api")  # this process can read it now...
        with ws.store.transaction() as tx:
            tx.events.append(NewEvent("echo", {"text": value}, actor="t"))
        # ...so it redacts it too
        assert [e.data for e in ws.log() if e.kind == "echo"] == [{"text": "[secret:api]"}]
