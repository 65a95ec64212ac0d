-- The embedding model memory's vectors come from: one at a time, so a change of model is
-- a re-embed (soloist memory reembed), never a silent mix. `indexed` says whether the
-- pgvector table (chunk_vectors, made on demand once the dimension is known, when the
-- server has the extension) holds every current chunk's vector.
CREATE TABLE embedding_model (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    model   TEXT    NOT NULL,
    dim     INTEGER NOT NULL,
    indexed INTEGER NOT NULL DEFAULT 0,
    -- bumped by every re-embed batch: a reader holding vectors in memory reloads them
    generation INTEGER NOT NULL DEFAULT 0,
    set_at  DOUBLE PRECISION NOT NULL
);

-- Which document version retired a chunk: document ids only grow, so a reader that keeps
-- vectors in memory learns what was retired since it last looked from one index range.
ALTER TABLE chunks ADD COLUMN retired_by BIGINT;
DROP INDEX chunks_retired;
CREATE INDEX chunks_retired_by ON chunks (retired_by) WHERE retired_by IS NOT NULL;

-- Threads: documents that are turns of one conversation or messages of one thread carry
-- `thread` and `position` (from their metadata). Each such chunk gets a keyword-only
-- context chunk: its text with its thread neighbours' (`context_of` names the chunk it
-- stands for), which finds a short answer by the words of the turns around it.
ALTER TABLE chunks ADD COLUMN thread TEXT;
ALTER TABLE chunks ADD COLUMN position BIGINT;
ALTER TABLE chunks ADD COLUMN context_of BIGINT;
CREATE INDEX chunks_thread ON chunks (namespace, thread, position)
    WHERE current = 1 AND context_of IS NULL AND thread IS NOT NULL;
CREATE INDEX chunks_context ON chunks (context_of) WHERE context_of IS NOT NULL AND current = 1;
