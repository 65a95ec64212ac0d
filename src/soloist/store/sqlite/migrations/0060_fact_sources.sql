-- A fact's provenance: the references (an email's Message-ID, an event, a document) that
-- it was drawn from, as a JSON list, or NULL for none (see memory/facts.py).
ALTER TABLE facts ADD COLUMN sources TEXT;
