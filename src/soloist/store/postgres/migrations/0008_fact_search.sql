-- Facts are found by their words too: "subject key value" of every version but a forget.
-- A search keeps the versions that are the newest of their fact.
ALTER TABLE facts ADD COLUMN tsv TSVECTOR GENERATED ALWAYS AS (
    CASE WHEN op = 'forget' THEN NULL
         ELSE to_tsvector('english', subject || ' ' || key || ' ' || coalesce(value, ''))
    END) STORED;
CREATE INDEX facts_tsv ON facts USING GIN (tsv);
