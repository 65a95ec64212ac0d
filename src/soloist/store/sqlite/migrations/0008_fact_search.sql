-- Facts are found by their words too: "subject key value" of every version but a forget,
-- in a contentless FTS5 index (the text is in the facts table already). A search keeps the
-- versions that are the newest of their fact.
CREATE VIRTUAL TABLE facts_fts USING fts5 (
    text, content = '', tokenize = 'porter unicode61'
);
INSERT INTO facts_fts (rowid, text)
SELECT id, subject || ' ' || key || ' ' || coalesce(value, '') FROM facts WHERE op <> 'forget';
CREATE TRIGGER facts_into_fts AFTER INSERT ON facts WHEN new.op <> 'forget'
BEGIN
    INSERT INTO facts_fts (rowid, text)
    VALUES (new.id, new.subject || ' ' || new.key || ' ' || coalesce(new.value, ''));
END;
