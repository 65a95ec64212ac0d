-- Full-text search over current chunks only, one index for documents' own chunks and one
-- for thread context chunks; and the namespace in a pattern index, so that PostgreSQL can
-- combine it with the text index and rank only the namespace's matches.
DROP INDEX chunks_tsv;
CREATE INDEX chunks_tsv ON chunks USING GIN (tsv) WHERE current = 1 AND context_of IS NULL;
CREATE INDEX chunks_context_tsv ON chunks USING GIN (tsv)
    WHERE current = 1 AND context_of IS NOT NULL;
CREATE INDEX chunks_namespace ON chunks (namespace text_pattern_ops) WHERE current = 1;
-- A chunk's vector (1.5 kB at 384 dimensions) stays out of the row: ranking a keyword
-- query reads the rows of every match, and narrow rows are many to a page.
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE EXTERNAL;
ALTER TABLE chunks SET (toast_tuple_target = 128);
