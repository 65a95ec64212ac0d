-- A fact's provenance: the references (an email's Message-ID, an event, a document) that
-- it was drawn from, as a JSON list, or NULL for none (see memory/facts.py).
ALTER TABLE facts ADD COLUMN sources TEXT;
-- The change lead time reads the document versions a deploy wrote from memory/ (see
-- soloist/store/measures.py): few among many documents, so a partial index finds them.
-- IF NOT EXISTS: restoring an older snapshot runs this migration again.
CREATE INDEX IF NOT EXISTS documents_deployed ON documents (created_at)
    WHERE reason LIKE 'deployed from memory/%';
