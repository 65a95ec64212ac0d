-- Connector state (see soloist/store/connectors.py): where each connector stopped reading
-- each source, the shared token buckets and concurrency slots, and the inbound backlogs.
CREATE TABLE connector_cursors (
    connector  TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (connector, source)
);
CREATE TABLE connector_buckets (
    name       TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE connector_slots (
    name       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (name, holder)
);
CREATE TABLE inbound_events (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    received_at  REAL NOT NULL,
    processed_at REAL,
    UNIQUE (source, delivery_id)
);
-- The backlog's count and the oldest-first batch read only the unprocessed events.
CREATE INDEX inbound_unprocessed ON inbound_events (source, id) WHERE processed_at IS NULL;
