-- Documents: versioned text with metadata, chunked for retrieval (keyword by FTS5 with
-- BM25, vectors by exact search over the stored embeddings).
CREATE TABLE documents (
    id         INTEGER PRIMARY KEY,
    namespace  TEXT    NOT NULL,
    doc_key    TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    metadata   TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    run_id     TEXT,
    step_id    TEXT,
    created_at REAL    NOT NULL,
    UNIQUE (namespace, doc_key, version)
);

CREATE TABLE chunks (
    id          INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id),
    namespace   TEXT    NOT NULL,
    doc_key     TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    metadata    TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    current     INTEGER NOT NULL DEFAULT 1,
    model       TEXT,
    embedding   BLOB
);
CREATE INDEX chunks_current ON chunks (namespace, doc_key) WHERE current = 1;
CREATE INDEX chunks_retired ON chunks (id) WHERE current = 0;

CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text, content = 'chunks', content_rowid = 'id', tokenize = 'porter unicode61'
);
CREATE TRIGGER chunks_into_fts AFTER INSERT ON chunks
BEGIN INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text); END;
