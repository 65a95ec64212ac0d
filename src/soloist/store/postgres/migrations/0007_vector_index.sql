-- The embedding model memory's vectors come from: one at a time, so a change of model is
-- a re-embed (soloist memory reembed), never a silent mix. `indexed` says whether the
-- pgvector table (chunk_vectors, made on demand once the dimension is known, when the
-- server has the extension) holds every current chunk's vector.
CREATE TABLE embedding_model (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    model   TEXT    NOT NULL,
    dim     INTEGER NOT NULL,
    indexed INTEGER NOT NULL DEFAULT 0,
    set_at  DOUBLE PRECISION NOT NULL
);

-- Which document version retired a chunk: document ids only grow, so a reader that keeps
-- vectors in memory learns what was retired since it last looked from one index range.
ALTER TABLE chunks ADD COLUMN retired_by BIGINT;
DROP INDEX chunks_retired;
CREATE INDEX chunks_retired_by ON chunks (retired_by) WHERE retired_by IS NOT NULL;
