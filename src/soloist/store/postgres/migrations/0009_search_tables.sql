-- Full-text search over current chunks only, one index for documents' own chunks and one
-- for thread context chunks; and the namespace in a pattern index, so that PostgreSQL can
-- combine it with the text index and rank only the namespace's matches.
DROP INDEX chunks_tsv;
CREATE INDEX chunks_tsv ON chunks USING GIN (tsv) WHERE current = 1 AND context_of IS NULL;
CREATE INDEX chunks_context_tsv ON chunks USING GIN (tsv)
    WHERE current = 1 AND context_of IS NOT NULL;
CREATE INDEX chunks_namespace ON chunks (namespace text_pattern_ops) WHERE current = 1;
