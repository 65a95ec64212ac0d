-- A random stamp that every change of the secrets replaces, in the same transaction: a
-- writer whose redactor was loaded for another stamp reloads it before it writes.
CREATE TABLE secrets_stamp (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    stamp TEXT NOT NULL
);
INSERT INTO secrets_stamp (id, stamp) VALUES (1, md5(random()::text || clock_timestamp()::text));
