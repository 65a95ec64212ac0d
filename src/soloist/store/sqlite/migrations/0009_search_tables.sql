-- Full-text search over current chunks only, one index for documents' own chunks and one
-- for thread context chunks (a search of one never reads the other's postings), with the
-- namespace as a second column: a query names its namespace inside MATCH, so FTS5 ranks
-- the namespace's matches only instead of every match in the store.
DROP TRIGGER chunks_into_fts;
DROP TABLE chunks_fts;
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    text, namespace, content = 'chunks', content_rowid = 'id', tokenize = 'porter unicode61'
);
CREATE VIRTUAL TABLE context_fts USING fts5 (
    text, namespace, content = 'chunks', content_rowid = 'id', tokenize = 'porter unicode61'
);
INSERT INTO chunks_fts (rowid, text, namespace)
SELECT id, text, namespace FROM chunks WHERE current = 1 AND context_of IS NULL;
INSERT INTO context_fts (rowid, text, namespace)
SELECT id, text, namespace FROM chunks WHERE current = 1 AND context_of IS NOT NULL;
CREATE TRIGGER chunks_into_fts AFTER INSERT ON chunks WHEN new.context_of IS NULL
BEGIN
    INSERT INTO chunks_fts (rowid, text, namespace) VALUES (new.id, new.text, new.namespace);
END;
CREATE TRIGGER context_into_fts AFTER INSERT ON chunks WHEN new.context_of IS NOT NULL
BEGIN
    INSERT INTO context_fts (rowid, text, namespace) VALUES (new.id, new.text, new.namespace);
END;
CREATE TRIGGER chunks_out_of_fts AFTER UPDATE OF current ON chunks
WHEN old.current = 1 AND new.current = 0 AND old.context_of IS NULL
BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text, namespace)
    VALUES ('delete', old.id, old.text, old.namespace);
END;
CREATE TRIGGER context_out_of_fts AFTER UPDATE OF current ON chunks
WHEN old.current = 1 AND new.current = 0 AND old.context_of IS NOT NULL
BEGIN
    INSERT INTO context_fts (context_fts, rowid, text, namespace)
    VALUES ('delete', old.id, old.text, old.namespace);
END;
