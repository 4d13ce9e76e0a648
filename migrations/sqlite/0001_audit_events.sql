-- The append-only, hash-chained audit log. See docs/evidence-chain.md for the hash.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY,      -- chain position: 1, 2, 3, … in ingest order
    event_id    TEXT    NOT NULL UNIQUE,  -- the producer's id; ingest is idempotent on it
    occurred_at INTEGER NOT NULL,         -- microseconds since the Unix epoch, UTC
    event_type  TEXT    NOT NULL,
    actor       TEXT,
    outcome     TEXT,
    resource    TEXT,
    attributes  TEXT,                     -- canonical JSON (sorted keys, compact), as hashed
    prev_hash   BLOB    NOT NULL,         -- hash of seq - 1; 32 zero bytes for seq 1
    hash        BLOB    NOT NULL          -- SHA-256(prev_hash || canonical encoding)
);

-- Serves the evaluation query (type + time range, outcome filter) from the index alone,
-- and "newest N of a type" as a backward index scan.
CREATE INDEX audit_events_type_time ON audit_events (event_type, occurred_at, outcome);

CREATE TRIGGER audit_events_append_only_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_append_only_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
